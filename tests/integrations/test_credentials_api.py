"""/v1/credentials: verify before save, masked answers, rotation, re-checks, scopes; secrets never leak."""

import json
import logging

import pytest

from integrations import services, vault, verification
from integrations.models import ProviderCredential
from tenants.models import AuditLog
from tests import factories
from tests.api.conftest import key_client
from tests.integrations.fakes import CREDENTIALS, providers_fixture  # noqa: F401 (the `providers` fixture)

pytestmark = pytest.mark.django_db

WRONG_KEY = "fake-ant-api03-wrong-0123456789abcdefWRNG"
PRIMARY = {"anthropic": "api_key", "deepgram": "api_key", "gotoconnect": "client_secret", "livekit": "api_secret"}
PRIMARY["twilio"] = "auth_token"
PRIMARY["http"] = "value"


@pytest.fixture
def client(tenant):
    return key_client(tenant)


def _create(client, secret, *, name="LLM_KEY", provider="anthropic"):
    return client.post("/v1/credentials", {"name": name, "provider": provider, "secret": secret}, format="json")


def _credential_audit() -> list[AuditLog]:
    return list(AuditLog.objects.dangerously_unscoped().filter(action__startswith="credential.").order_by("created_at"))


@pytest.mark.parametrize("provider", [provider for provider in PRIMARY if provider != "gotoconnect"])
def test_create_verifies_with_the_provider_then_stores_it_encrypted(client, tenant, providers, provider):
    secret = providers.secret(provider)
    response = _create(client, secret, provider=provider)
    assert response.status_code == 201, response.json()
    credential = ProviderCredential.objects.for_tenant(tenant).get()
    body = response.json()
    assert body == {
        "id": str(credential.pk),
        "name": "LLM_KEY",
        "provider": provider,
        "masked": "••••" + secret[PRIMARY[provider]][-4:],
        "verification": "verified",
        "verification_message": credential.verification_message,
        "verified_at": body["verified_at"],
        "created_at": body["created_at"],
    }
    assert credential.verification_message.startswith("200 OK")
    assert vault.decrypt(credential) == secret
    assert secret[PRIMARY[provider]].encode() not in bytes(credential.ciphertext)
    [audit] = _credential_audit()
    assert (audit.action, audit.actor_label[:16], audit.ip_address) == (
        "credential.create",
        "api key vk_live_",
        "127.0.0.1",
    )
    assert audit.changes == {"name": "LLM_KEY", "provider": provider, "key_id": "dev", "verification": "verified"}


def test_a_goto_credential_is_stored_unverified_without_asking_goto(client, tenant, providers):
    response = _create(client, providers.secret("gotoconnect"), provider="gotoconnect")
    assert response.status_code == 201, response.json()
    credential = ProviderCredential.objects.for_tenant(tenant).get()
    assert (response.json()["verification"], credential.verification) == ("unverified", "unverified")
    assert credential.verification_message == verification.GOTO_NOT_CHECKED
    assert providers.requests == []


def test_a_secret_the_provider_refuses_is_not_stored(client, tenant, providers):
    response = _create(client, {"api_key": WRONG_KEY})
    assert response.status_code == 400
    answer = "401 Unauthorized: authentication_error: invalid x-api-key"
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "credential_verification_failed",
            "message": f"Anthropic did not accept the credential: {answer}",
            "fields": {"secret": [answer]},
        }
    }
    assert not ProviderCredential.objects.dangerously_unscoped().exists()
    assert _credential_audit() == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "LLM", "provider": "anthropic", "secret": {}}, {"secret.api_key": ["This field is required."]}),
        (
            {"name": "LLM", "provider": "livekit", "secret": {"url": "nope", "api_key": "k", "api_secret": "s"}},
            {"secret.url": ["Must be a http/https/ws/wss URL."]},
        ),
        (
            {"name": "9lives", "provider": "anthropic", "secret": {"api_key": "k" * 20}},
            {"name": ["Use letters, digits and _ (not starting with a digit), at most 100."]},
        ),
        ({"name": "LLM", "provider": "openai", "secret": {}}, {"provider": ['"openai" is not a valid choice.']}),
    ],
    ids=["missing field", "bad url", "bad name", "unknown provider"],
)
def test_invalid_input_is_refused_before_any_provider_call(client, providers, body, fields):
    response = client.post("/v1/credentials", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert providers.requests == []
    assert not ProviderCredential.objects.dangerously_unscoped().exists()


def test_a_taken_name_is_refused_before_any_provider_call(client, tenant, providers):
    factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    response = _create(client, providers.secret("anthropic"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "credential_name_taken"
    assert providers.requests == []


def test_list_and_retrieve_show_masked_credentials_of_this_tenant_only(client, tenant, other_tenant):
    ours = factories.ProviderCredentialFactory(
        tenant=tenant, name="A_KEY", secret={"api_key": "fake-ant-0000000000ABCD"}
    )
    short = factories.ProviderCredentialFactory(tenant=tenant, name="B_KEY", secret={"api_key": "short-key"})
    factories.ProviderCredentialFactory(tenant=other_tenant, name="THEIRS")
    listing = client.get("/v1/credentials").json()
    assert listing["count"] == 2
    assert [(c["name"], c["masked"]) for c in listing["results"]] == [("A_KEY", "••••ABCD"), ("B_KEY", "••••")]
    detail = client.get(f"/v1/credentials/{ours.pk}").json()
    assert detail == listing["results"][0]
    assert set(detail) == {
        "id", "name", "provider", "masked", "verification", "verification_message", "verified_at", "created_at",
    }  # fmt: skip
    assert str(short.pk) in str(listing)


def test_patch_rotates_the_secret_after_verifying_it(client, tenant, providers):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY", secret={"api_key": WRONG_KEY})
    response = client.patch(
        f"/v1/credentials/{credential.pk}", {"secret": providers.secret("anthropic")}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["masked"] == "••••WXYZ"
    assert response.json()["verification"] == "verified"
    rotated = ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk)
    assert bytes(rotated.nonce) != bytes(credential.nonce)
    assert vault.decrypt(rotated) == CREDENTIALS["anthropic"]
    assert _credential_audit()[-1].changes == {
        "name": "LLM_KEY", "provider": "anthropic", "key_id": "dev", "fields": ["secret"], "verification": "verified",
    }  # fmt: skip


def test_a_refused_rotation_keeps_the_stored_secret(client, tenant, providers):
    credential = factories.ProviderCredentialFactory(tenant=tenant, secret=CREDENTIALS["anthropic"])
    response = client.patch(f"/v1/credentials/{credential.pk}", {"secret": {"api_key": WRONG_KEY}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "credential_verification_failed"
    kept = ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk)
    assert (bytes(kept.ciphertext), kept.updated_at) == (bytes(credential.ciphertext), credential.updated_at)
    assert _credential_audit() == []


def test_verify_rechecks_the_stored_secret_and_records_the_answer(client, tenant, providers):
    good = factories.ProviderCredentialFactory(tenant=tenant, name="GOOD", secret=CREDENTIALS["anthropic"])
    revoked = factories.ProviderCredentialFactory(tenant=tenant, name="REVOKED", secret={"api_key": WRONG_KEY})
    assert client.post(f"/v1/credentials/{good.pk}/verify").json()["verification"] == "verified"
    response = client.post(f"/v1/credentials/{revoked.pk}/verify")
    assert response.status_code == 200
    assert (response.json()["verification"], response.json()["verification_message"]) == (
        "failed",
        "401 Unauthorized: authentication_error: invalid x-api-key",
    )
    assert _credential_audit()[-1].changes == {
        "name": "REVOKED", "provider": "anthropic", "key_id": "dev", "verification": ["verified", "failed"],
    }  # fmt: skip


def test_verify_of_an_undecryptable_credential_is_a_409_naming_it(client, tenant, settings, providers):
    settings.INTEGRATION_CRYPTO_KEY = vault.generate_key_value("k0")
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    settings.INTEGRATION_CRYPTO_KEY = vault.generate_key_value("k1")
    response = client.post(f"/v1/credentials/{credential.pk}/verify")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "credential_key_unknown"
    assert response.json()["error"]["message"].startswith(
        f"Credential 'LLM_KEY' ({credential.pk}) is encrypted with key 'k0', which INTEGRATION_CRYPTO_KEY no longer"
    )
    assert ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk).verification == "verified"
    assert providers.requests == []


def test_delete_removes_the_credential_and_audits_it(client, tenant):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    assert client.delete(f"/v1/credentials/{credential.pk}").status_code == 204
    assert not ProviderCredential.objects.dangerously_unscoped().exists()
    [audit] = _credential_audit()
    assert (audit.action, audit.object_id, audit.changes) == (
        "credential.delete",
        str(credential.pk),
        {"name": "LLM_KEY", "provider": "anthropic", "key_id": "dev"},
    )


@pytest.mark.parametrize("scopes", [("read", "write"), ("read",)])
def test_only_admin_keys_reach_credentials(tenant, providers, scopes):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    before = list(ProviderCredential.objects.dangerously_unscoped().values_list("pk", "updated_at"))
    client = key_client(tenant, scopes=scopes)
    calls = [
        client.get("/v1/credentials"),
        client.get(f"/v1/credentials/{credential.pk}"),
        _create(client, providers.secret("anthropic"), name="NEW"),
        client.patch(f"/v1/credentials/{credential.pk}", {"secret": providers.secret("anthropic")}, format="json"),
        client.post(f"/v1/credentials/{credential.pk}/verify"),
        client.delete(f"/v1/credentials/{credential.pk}"),
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in calls] == [(403, "insufficient_permissions")] * 6
    assert list(ProviderCredential.objects.dangerously_unscoped().values_list("pk", "updated_at")) == before
    assert providers.requests == []


def test_an_unverifiable_generic_secret_is_stored_unverified(client, tenant, providers):
    response = _create(client, {"value": "backend-token-without-check"}, name="TICKETING_TOKEN", provider="http")
    assert response.status_code == 201
    assert (
        response.json()["verification"],
        response.json()["verification_message"],
        response.json()["verified_at"],
    ) == (
        "unverified",
        "Not checked: the secret has no check_url.",
        None,
    )


def test_services_can_skip_verification(tenant, providers):
    credential = services.credential_create(
        tenant=tenant, name="SEEDED", provider="deepgram", secret={"api_key": "dg-seeded-0000000000"}, verify=False
    )
    assert (credential.verification, credential.verified_at, providers.requests) == ("unverified", None, [])


def test_secrets_never_reach_logs_responses_or_the_audit_log(client, tenant, providers, caplog):
    """Every path that handles a plaintext, with all logging captured down to DEBUG (SDKs and HTTP clients too)."""
    caplog.set_level(logging.DEBUG)
    echoed = {"value": "echoed-token-0123456789SECRET", "check_url": f"{providers.url}/check"}
    livekit = {**providers.secret("livekit"), "api_secret": "lk-wrong-secret-0123456789abcdefWRONG"}
    responses = [
        _create(client, providers.secret("anthropic")),
        _create(client, {"api_key": WRONG_KEY}, name="REFUSED"),
        _create(client, echoed, name="ECHOED", provider="http"),  # the backend's 401 repeats the token
        _create(client, livekit, name="LK", provider="livekit"),
        _create(client, providers.secret("gotoconnect"), name="GOTO", provider="gotoconnect"),
        _create(client, providers.secret("twilio"), name="TWILIO", provider="twilio"),  # its answer holds the token
    ]
    credential = ProviderCredential.objects.dangerously_unscoped().get(name="LLM_KEY")
    responses += [
        client.post(f"/v1/credentials/{credential.pk}/verify"),
        client.patch(f"/v1/credentials/{credential.pk}", {"secret": {"api_key": WRONG_KEY}}, format="json"),
        client.get("/v1/credentials"),
    ]
    assert [r.status_code for r in responses] == [201, 400, 400, 400, 201, 201, 200, 400, 200]
    plaintexts = [
        CREDENTIALS["anthropic"]["api_key"], WRONG_KEY, echoed["value"], livekit["api_secret"],
        CREDENTIALS["gotoconnect"]["client_secret"], "goto-access-token-never-shown", CREDENTIALS["twilio"]["auth_token"],
    ]  # fmt: skip
    logs = caplog.text + "\n".join(repr(record.__dict__) for record in caplog.records)
    assert any(record.name.startswith(("httpx", "httpcore")) for record in caplog.records)  # DEBUG really captured
    bodies = "\n".join(r.content.decode() for r in responses)
    audit = json.dumps(list(AuditLog.objects.dangerously_unscoped().values()), default=str)
    for plaintext in plaintexts:
        assert plaintext not in logs
        assert plaintext not in bodies
        assert plaintext not in audit
