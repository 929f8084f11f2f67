"""The vault: AES-256-GCM at rest, key ids and rotation, associated data, errors that name the credential."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from integrations import services, vault
from integrations.models import ProviderCredential
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

SECRET = {"api_key": "fake-ant-api03-roundtrip-0123456789abcdef"}
K0, K1, K2 = (vault.generate_key_value(key_id) for key_id in ("k0", "k1", "k2"))


def _credential(tenant, **kwargs):
    return factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY", secret=SECRET, **kwargs)


def _material(value: str) -> str:
    return value.partition(":")[2]


# --- encryption ---------------------------------------------------------------------------------


def test_round_trip_stores_only_ciphertext_under_the_dev_key(tenant):
    credential = _credential(tenant)
    credential.refresh_from_db()
    assert credential.key_id == "dev"
    assert len(bytes(credential.nonce)) == 12
    assert SECRET["api_key"].encode() not in bytes(credential.ciphertext)
    assert vault.decrypt(credential) == SECRET
    assert credential.hint == "cdef" and credential.masked == "••••cdef"


def test_each_encryption_draws_a_new_nonce(tenant):
    encryptions = [vault.encrypt(tenant_id=tenant.pk, credential_id="same-row", secret=SECRET) for _ in range(2)]
    (key_a, nonce_a, text_a), (key_b, nonce_b, text_b) = encryptions
    assert key_a == key_b == "dev"
    assert nonce_a != nonce_b
    assert text_a != text_b


def test_tampered_ciphertext_or_nonce_is_refused_with_the_credentials_name(tenant):
    credential = _credential(tenant)
    flipped = bytearray(bytes(credential.ciphertext))
    flipped[0] ^= 1
    for field, value in [("ciphertext", bytes(flipped)), ("nonce", b"\x00" * 12)]:
        row = ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk)
        setattr(row, field, value)
        with pytest.raises(vault.CredentialUndecryptable) as refused:
            vault.decrypt(row)
        assert refused.value.message == (
            f"Credential 'LLM_KEY' ({credential.pk}) cannot be decrypted: the data or the key changed. "
            "Restore the key it was encrypted with, or enter the secret again."
        )
        assert refused.value.code == "credential_undecryptable"


@pytest.mark.parametrize("target", ["other tenant", "other row of the same tenant"])
def test_a_ciphertext_copied_to_another_row_does_not_decrypt(tenant, other_tenant, target):
    source = _credential(tenant)
    row_tenant = other_tenant if target == "other tenant" else tenant
    copy = factories.ProviderCredentialFactory(tenant=row_tenant, name="COPY")
    copy.key_id, copy.nonce, copy.ciphertext = source.key_id, source.nonce, source.ciphertext
    copy.save()
    copy.refresh_from_db()
    with pytest.raises(vault.CredentialUndecryptable, match=rf"'COPY' \({copy.pk}\) cannot be decrypted"):
        vault.decrypt(copy)


def test_an_unlisted_key_id_is_a_clear_error_naming_the_credential(tenant, settings):
    settings.INTEGRATION_CRYPTO_KEY = K0
    credential = _credential(tenant)
    settings.INTEGRATION_CRYPTO_KEY = K1
    with pytest.raises(vault.CredentialKeyUnknown) as refused:
        vault.decrypt(credential)
    message = refused.value.message
    assert message == (
        f"Credential 'LLM_KEY' ({credential.pk}) is encrypted with key 'k0', which INTEGRATION_CRYPTO_KEY "
        "no longer lists: add that key back, or enter the secret again."
    )
    assert _material(K0) not in message and _material(K1) not in message and SECRET["api_key"] not in message
    assert (refused.value.status_code, refused.value.code) == (409, "credential_key_unknown")


def test_the_dev_key_follows_secret_key(tenant, settings):
    credential = _credential(tenant)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(vault.CredentialUndecryptable):
        vault.decrypt(credential)


# --- keys and rotation --------------------------------------------------------------------------


def test_rotation_re_encrypts_to_the_newest_key_and_then_the_old_one_can_go(tenant, other_tenant, settings, capsys):
    settings.INTEGRATION_CRYPTO_KEY = K1
    old = _credential(tenant)
    theirs = factories.ProviderCredentialFactory(tenant=other_tenant, secret={"api_key": "fake-ant-other-tenant-00000"})
    settings.INTEGRATION_CRYPTO_KEY = f"{K2},{K1}"
    assert vault.decrypt(old) == SECRET  # the old key is still listed: it decrypts
    new = factories.ProviderCredentialFactory(tenant=tenant, name="NEW")
    assert new.key_id == "k2"  # the first key encrypts

    call_command("rotate_credential_keys")
    assert capsys.readouterr().out == "Key 'k2': 2 re-encrypted, 1 already under it, 0 could not be decrypted.\n"
    assert set(ProviderCredential.objects.dangerously_unscoped().values_list("key_id", flat=True)) == {"k2"}
    call_command("rotate_credential_keys")  # idempotent
    assert capsys.readouterr().out == "Key 'k2': 0 re-encrypted, 3 already under it, 0 could not be decrypted.\n"

    settings.INTEGRATION_CRYPTO_KEY = K2
    assert vault.decrypt(ProviderCredential.objects.dangerously_unscoped().get(pk=old.pk)) == SECRET
    assert vault.decrypt(ProviderCredential.objects.dangerously_unscoped().get(pk=theirs.pk)) == {
        "api_key": "fake-ant-other-tenant-00000"
    }
    audit = AuditLog.objects.dangerously_unscoped().get(action="credential.reencrypt", object_id=str(old.pk))
    assert audit.changes == {"name": "LLM_KEY", "key_id": ["k1", "k2"]}


def test_rotation_reports_what_it_cannot_decrypt_and_carries_on(tenant, settings, capsys):
    settings.INTEGRATION_CRYPTO_KEY = K0
    lost = _credential(tenant)
    settings.INTEGRATION_CRYPTO_KEY = K1
    readable = factories.ProviderCredentialFactory(tenant=tenant, name="READABLE")
    settings.INTEGRATION_CRYPTO_KEY = f"{K2},{K1}"
    with pytest.raises(CommandError, match="1 credential"):
        call_command("rotate_credential_keys")
    output = capsys.readouterr()
    assert output.out == "Key 'k2': 1 re-encrypted, 0 already under it, 1 could not be decrypted.\n"
    assert f"'LLM_KEY' ({lost.pk}) is encrypted with key 'k0'" in output.err
    assert ProviderCredential.objects.dangerously_unscoped().get(pk=lost.pk).key_id == "k0"  # untouched
    assert ProviderCredential.objects.dangerously_unscoped().get(pk=readable.pk).key_id == "k2"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("k1:" + base64.b64encode(b"x" * 16).decode(), "entry 1 ('k1') decodes to 16 bytes; AES-256 needs exactly 32"),
        ("k1:not base64!", "entry 1 ('k1') is not valid base64"),
        (f"{K1},{K1}", "entry 2: the key id 'k1' is listed twice"),
        (base64.b64encode(b"k" * 32).decode(), "entry 1 is not `<key id>:<base64 key>`"),
        ("bad id:" + base64.b64encode(b"k" * 32).decode(), "entry 1: the key id must be"),
    ],
    ids=["short key", "bad base64", "duplicate id", "no id", "bad id"],
)
def test_a_bad_key_setting_is_improperly_configured_without_quoting_the_key(settings, value, message):
    settings.INTEGRATION_CRYPTO_KEY = value
    with pytest.raises(ImproperlyConfigured) as refused:
        vault.keyring()
    assert f"INTEGRATION_CRYPTO_KEY {message}" in str(refused.value)
    assert base64.b64encode(b"k" * 32).decode() not in str(refused.value) and _material(K1) not in str(refused.value)


def test_keys_are_listed_newest_first():
    ring = vault.parse_keys(f" {K2} , {K1} ")
    assert ring.current_id == "k2"
    assert list(ring.keys) == ["k2", "k1"]
    assert all(len(key) == 32 for key in ring.keys.values())


def test_generate_crypto_key_prints_one_usable_entry(capsys):
    call_command("generate_crypto_key", "--id", "prod-2026")
    value = capsys.readouterr().out.strip()
    assert value.startswith("prod-2026:")
    assert len(vault.parse_keys(value).keys["prod-2026"]) == 32
    call_command("generate_crypto_key")
    assert vault.parse_keys(capsys.readouterr().out.strip()).current_id.startswith("k20")
    with pytest.raises(CommandError, match="key id"):
        call_command("generate_crypto_key", "--id", "no spaces")


# --- secret shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "secret", "fields"),
    [
        ("anthropic", {}, {"secret.api_key": ["This field is required."]}),
        ("anthropic", {"api_key": 42}, {"secret.api_key": ["Must be a string."]}),
        ("deepgram", {"api_key": "k" * 20, "extra": "x"}, {"secret.extra": ["Unknown field for deepgram; expected api_key."]}),
        ("gotoconnect", {"client_id": "id"}, {"secret.client_secret": ["This field is required."]}),
        ("livekit", {"url": "ftp://x", "api_key": "k", "api_secret": "s"}, {"secret.url": ["Must be a http/https/ws/wss URL."]}),
        ("http", {"value": "v", "check_url": "nope"}, {"secret.check_url": ["Must be a http/https URL."]}),
        ("http", {"value": "v", "header": "Authorization: Bearer"}, {"secret.header": ["Must be a header name (X-API-Key) or 'Name: text with <value>'."]}),
        ("http", ["v"], {"secret": ["Must be an object with the fields value."]}),
    ],
)  # fmt: skip
def test_secret_shapes_are_validated_per_field(provider, secret, fields):
    with pytest.raises(vault.ApplicationError) as refused:
        vault.validate_secret(provider, secret)
    assert refused.value.fields == fields
    assert refused.value.code == "invalid_secret"


def test_secrets_are_trimmed_and_hints_spare_short_secrets():
    assert vault.validate_secret("http", {"value": "  tok\n", "header": "X-API-Key"}) == {
        "value": "tok",
        "header": "X-API-Key",
    }
    assert vault.hint_for("anthropic", {"api_key": "short-secret"}) == "cret"  # 12 characters: enough
    assert vault.hint_for("anthropic", {"api_key": "shortsecret"}) == ""  # 11: no hint at all
    assert vault.hint_for("gotoconnect", {"client_id": "id", "client_secret": "s" * 20 + "LAST"}) == "LAST"


# --- resolution for the gateway -----------------------------------------------------------------


def test_references_resolve_from_the_tenants_vault(tenant):
    factories.ProviderCredentialFactory(
        tenant=tenant, name="TICKETING_TOKEN", provider="http", secret={"value": "tk-0123456789abcdef"}
    )
    goto = {"client_id": "goto-id", "client_secret": "goto-secret-0123456789"}
    factories.ProviderCredentialFactory(tenant=tenant, name="GOTO", provider="gotoconnect", secret=goto)
    resolver = vault.secret_resolver(tenant)
    assert resolver.resolve("TICKETING_TOKEN", None) == "tk-0123456789abcdef"
    assert resolver.resolve("GOTO") == "goto-secret-0123456789"  # the primary value
    assert resolver.resolve("GOTO", "client_id") == "goto-id"
    text = "Bearer ${TICKETING_TOKEN}; client=${GOTO.client_id}; literal $TOKEN"
    assert vault.resolve_template(text, resolver) == "Bearer tk-0123456789abcdef; client=goto-id; literal $TOKEN"
    assert "tk-0123456789abcdef" not in repr(resolver)


def test_missing_secrets_are_named(tenant, other_tenant):
    factories.ProviderCredentialFactory(
        tenant=other_tenant, name="TICKETING_TOKEN", provider="http", secret={"value": "x" * 16}
    )
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM", secret=SECRET)
    resolver = vault.secret_resolver(tenant)
    with pytest.raises(vault.SecretNotFound) as missing:
        vault.resolve_template("Bearer ${TICKETING_TOKEN}", resolver)  # another tenant's does not count
    assert missing.value.message == "secret ${TICKETING_TOKEN} is not in this tenant's vault"
    with pytest.raises(vault.SecretNotFound) as missing_field:
        resolver.resolve("LLM", "client_id")
    assert missing_field.value.message == (
        f"secret ${{LLM.client_id}} is not in this tenant's vault: Credential 'LLM' ({credential.pk}) has no field 'client_id'"
    )


def test_resolution_decrypts_at_every_use(tenant):
    credential = factories.ProviderCredentialFactory(
        tenant=tenant, name="TOKEN", provider="http", secret={"value": "first-token-000000"}
    )
    resolver = vault.secret_resolver(tenant)
    assert resolver.resolve("TOKEN") == "first-token-000000"
    services.credential_update_secret(credential=credential, secret={"value": "second-token-00000"}, verify=False)
    assert resolver.resolve("TOKEN") == "second-token-00000"
    services.credential_delete(credential=ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk))
    with pytest.raises(vault.SecretNotFound):
        resolver.resolve("TOKEN")


def test_the_plaintext_is_canonical_json_bound_to_tenant_and_row(tenant):
    """Compact sorted JSON, with "<tenant id>:<credential id>" as the associated data."""
    credential = factories.ProviderCredentialFactory(
        tenant=tenant, provider="gotoconnect", secret={"client_secret": "b" * 12, "client_id": "a"}
    )
    ring = vault.keyring()
    plaintext = AESGCM(ring.keys["dev"]).decrypt(
        bytes(credential.nonce), bytes(credential.ciphertext), f"{tenant.pk}:{credential.pk}".encode()
    )
    assert json.loads(plaintext) == {"client_id": "a", "client_secret": "b" * 12}
    assert plaintext == b'{"client_id":"a","client_secret":"bbbbbbbbbbbb"}'


def test_a_malformed_key_setting_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.INTEGRATION_CRYPTO_KEY = "not-a-key"
    with pytest.raises(SystemCheckError, match=r"integrations\.E001"):
        call_command("check")
