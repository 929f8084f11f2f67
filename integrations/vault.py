"""The credential vault: tenant secrets encrypted at rest with AES-256-GCM, and `${NAME}` resolution.

Each secret (a JSON object such as {"api_key": "..."}) is encrypted as a whole under the newest key of
INTEGRATION_CRYPTO_KEY with a fresh random 96-bit nonce, and "<tenant id>:<credential id>" is bound as
associated data: a ciphertext copied to another row or tenant does not decrypt. The key id is stored
beside the ciphertext, so older keys can stay listed (decrypt only) until `rotate_credential_keys` has
re-encrypted everything under the newest one.

Plaintext exists only in memory, at the moment of use: nothing here logs, caches or returns it except
`decrypt()` and the resolver, whose callers hand it straight to the provider.
"""

import base64
import binascii
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.errors import ApplicationError
from integrations.config import SECRET_REF

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the size GCM is specified for
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")  # fits ProviderCredential.key_id
DEV_KEY_ID = "dev"
HINT_MIN_LENGTH = 12  # shorter secrets get no hint: four characters of them would give too much away
MAX_VALUE_CHARS = 65536  # room for a PEM certificate chain (mTLS secrets of backend services)


# --- errors -------------------------------------------------------------------------------------


class VaultError(ApplicationError):
    """A secret that cannot be used. Messages name the credential, never the key or the plaintext."""

    code = "vault_error"
    status_code = 409


class CredentialKeyUnknown(VaultError):
    code = "credential_key_unknown"


class CredentialUndecryptable(VaultError):
    code = "credential_undecryptable"


class SecretNotFound(VaultError):
    code = "secret_not_found"
    status_code = 400


def _label(credential) -> str:
    return f"Credential {credential.name!r} ({credential.pk})"


# --- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]  # in INTEGRATION_CRYPTO_KEY order: the first one encrypts

    @property
    def current_id(self) -> str:
        return next(iter(self.keys))


def parse_keys(value: str) -> Keyring:
    """Parse `<key id>:<base64 of 32 bytes>,...`; the messages never quote key material."""
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(value.split(","), start=1):
        key_id, _, encoded = entry.strip().partition(":")
        where = f"INTEGRATION_CRYPTO_KEY entry {number}"
        if not key_id or not encoded:
            raise ImproperlyConfigured(f"{where} is not `<key id>:<base64 key>`.")
        if not KEY_ID.match(key_id):
            raise ImproperlyConfigured(f"{where}: the key id must be 1-64 letters, digits, '_', '.' or '-'.")
        if key_id in keys:
            raise ImproperlyConfigured(f"{where}: the key id {key_id!r} is listed twice.")
        keys[key_id] = _decode_key(encoded.strip(), f"{where} ({key_id!r})")
    return Keyring(keys)


def _decode_key(encoded: str, where: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{where} is not valid base64.") from None
    if len(key) != KEY_BYTES:
        raise ImproperlyConfigured(
            f"{where} decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}. "
            "Make one with `python manage.py generate_crypto_key`."
        )
    return key


def generate_key_value(key_id: str) -> str:
    """A fresh `<key id>:<base64>` entry for INTEGRATION_CRYPTO_KEY."""
    if not KEY_ID.match(key_id):
        raise ValueError("The key id must be 1-64 letters, digits, '_', '.' or '-'.")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


@lru_cache(maxsize=4)
def _keyring_for(value: str, secret_key: str) -> Keyring:
    if value.strip():
        return parse_keys(value)
    # Embedded defaults (settings refuse to start without the variable when DEBUG is off): a stable
    # development key, so a bare checkout keeps its credentials across restarts.
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"voiceapp integration vault (dev)")
    return Keyring({DEV_KEY_ID: hkdf.derive(secret_key.encode())})


def keyring() -> Keyring:
    # Keyed on the settings' values, so a changed setting (tests, reloads) is picked up.
    return _keyring_for(settings.INTEGRATION_CRYPTO_KEY or "", settings.SECRET_KEY)


# --- encryption ---------------------------------------------------------------------------------


def _aad(tenant_id, credential_id) -> bytes:
    return f"{tenant_id}:{credential_id}".encode()


def encrypt(*, tenant_id, credential_id, secret: dict) -> tuple[str, bytes, bytes]:
    """(key id, nonce, ciphertext) of `secret` under the newest key, bound to its tenant and row."""
    ring = keyring()
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps(secret, separators=(",", ":"), sort_keys=True).encode()
    ciphertext = AESGCM(ring.keys[ring.current_id]).encrypt(nonce, plaintext, _aad(tenant_id, credential_id))
    return ring.current_id, nonce, ciphertext


def decrypt(credential) -> dict:
    """The credential's secret; raises a VaultError naming the credential if it cannot be read."""
    return open_sealed(
        key_id=credential.key_id,
        nonce=credential.nonce,
        ciphertext=credential.ciphertext,
        tenant_id=credential.tenant_id,
        bound_id=credential.pk,
        label=_label(credential),
    )


def open_sealed(*, key_id: str, nonce, ciphertext, tenant_id, bound_id, label: str) -> dict:
    """Decrypt what `encrypt(tenant_id=..., credential_id=bound_id)` sealed; errors name `label` only."""
    key = keyring().keys.get(key_id)
    if key is None:
        raise CredentialKeyUnknown(
            f"{label} is encrypted with key {key_id!r}, which INTEGRATION_CRYPTO_KEY "
            "no longer lists: add that key back, or enter the secret again."
        )
    try:
        plaintext = AESGCM(key).decrypt(bytes(nonce), bytes(ciphertext), _aad(tenant_id, bound_id))
    except (InvalidTag, ValueError):
        # `from None`: the cryptography exception adds nothing and must not drag buffers into tracebacks.
        raise CredentialUndecryptable(
            f"{label} cannot be decrypted: the data or the key changed. "
            "Restore the key it was encrypted with, or enter the secret again."
        ) from None
    return json.loads(plaintext)


# Rows of higher apps sealed with this vault (GoTo connections in telephony), registered from their
# AppConfig.ready(): `rotate_credential_keys` calls each, which re-seals what is not under the newest
# key and returns (how many it re-sealed, a message for each it could not).
RESEALERS: dict[str, Callable[[], tuple[int, list[str]]]] = {}


def register_resealer(label: str, reseal: Callable[[], tuple[int, list[str]]]) -> None:
    RESEALERS[label] = reseal


def seal(credential, secret: dict) -> None:
    """Encrypt `secret` onto the (unsaved or locked) row under the newest key and refresh its hint."""
    credential.key_id, credential.nonce, credential.ciphertext = encrypt(
        tenant_id=credential.tenant_id, credential_id=credential.pk, secret=secret
    )
    credential.hint = hint_for(credential.provider, secret)


# --- secret shapes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretShape:
    required: tuple[str, ...]
    primary: str  # what ${NAME} resolves to, and where the hint comes from
    optional: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ("http", "https")


SECRET_SHAPES = {
    "anthropic": SecretShape(required=("api_key",), primary="api_key"),
    "deepgram": SecretShape(required=("api_key",), primary="api_key"),
    "gotoconnect": SecretShape(required=("client_id", "client_secret"), primary="client_secret"),
    "livekit": SecretShape(
        required=("url", "api_key", "api_secret"),
        primary="api_secret",
        urls=("url",),
        schemes=("http", "https", "ws", "wss"),
    ),
    "twilio": SecretShape(required=("account_sid", "auth_token"), primary="auth_token"),
    "http": SecretShape(required=("value",), primary="value", optional=("check_url", "header"), urls=("check_url",)),
}
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an RFC 9110 token


def validate_secret(provider: str, secret) -> dict[str, str]:
    """The provider's secret fields, trimmed; ApplicationError with `secret.<field>` errors otherwise."""
    shape = SECRET_SHAPES.get(provider)
    if shape is None:
        raise _invalid({"provider": [f"Must be one of {', '.join(SECRET_SHAPES)}."]})
    if not isinstance(secret, dict):
        raise _invalid({"secret": [f"Must be an object with the fields {', '.join(shape.required)}."]})
    errors: dict[str, list[str]] = {}
    for key in sorted(set(secret) - set(shape.required) - set(shape.optional)):
        errors[f"secret.{key}"] = [f"Unknown field for {provider}; expected {', '.join(shape.required)}."]
    cleaned = {}
    for key in (*shape.required, *shape.optional):
        problem, value = _check_value(key, secret.get(key), shape)
        if problem:
            errors[f"secret.{key}"] = [problem]
        elif value:
            cleaned[key] = value
    if errors:
        raise _invalid(errors)
    return cleaned


def _check_value(key: str, value, shape: SecretShape) -> tuple[str, str]:
    """(problem, trimmed value); the messages never quote the value."""
    if value is None or value == "":
        return ("This field is required." if key in shape.required else ""), ""
    if not isinstance(value, str):
        return "Must be a string.", ""
    value = value.strip()  # a pasted key often carries a newline
    if not value and key in shape.required:
        return "This field is required.", ""
    if len(value) > MAX_VALUE_CHARS:
        return f"Must be at most {MAX_VALUE_CHARS} characters.", ""
    if key in shape.urls:
        parts = urlsplit(value)
        if parts.scheme not in shape.schemes or not parts.hostname:
            return f"Must be a {'/'.join(shape.schemes)} URL.", ""
    if key == "header" and not _header_ok(value):
        return "Must be a header name (X-API-Key) or 'Name: text with <value>'.", ""
    return "", value


def _header_ok(header: str) -> bool:
    name, colon, template = header.partition(":")
    return bool(HEADER_NAME.match(name.strip())) and (not colon or "<value>" in template)


def _invalid(fields: dict) -> ApplicationError:
    path, messages = next(iter(fields.items()))
    return ApplicationError(f"{path}: {messages[0]}", code="invalid_secret", fields=fields)


def primary_value(provider: str, secret: dict) -> str:
    return secret.get(SECRET_SHAPES[provider].primary, "")


def hint_for(provider: str, secret: dict) -> str:
    """The last four characters of the primary secret, only when it is long enough to spare them."""
    value = primary_value(provider, secret)
    return value[-4:] if len(value) >= HINT_MIN_LENGTH else ""


# --- resolution for the gateway ---------------------------------------------------------------


class SecretResolver:
    """Resolves `${NAME}` and `${NAME.field}` from one tenant's vault, decrypting at every use.

    Nothing is cached: a rotated or deleted credential takes effect on the next request.
    """

    def __init__(self, tenant):
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"<SecretResolver tenant={self.tenant.pk}>"

    def resolve(self, name: str, field: str | None = None) -> str:
        from integrations.selectors import credential_get_by_name  # selectors import models; keep vault light

        reference = f"${{{name}.{field}}}" if field else f"${{{name}}}"
        credential = credential_get_by_name(tenant=self.tenant, name=name)
        if credential is None:
            raise SecretNotFound(f"secret {reference} is not in this tenant's vault")
        secret = decrypt(credential)
        key = field or SECRET_SHAPES[credential.provider].primary
        value = secret.get(key)
        if not value:
            raise SecretNotFound(
                f"secret {reference} is not in this tenant's vault: {_label(credential)} has no field {key!r}"
            )
        return value


def secret_resolver(tenant) -> SecretResolver:
    """The resolver the gateway uses for one request of `tenant`."""
    return SecretResolver(tenant)


def resolve_template(text: str, resolver) -> str:
    """`text` with every `${NAME}` / `${NAME.field}` replaced by the resolver's value."""
    return SECRET_REF.sub(lambda match: resolver.resolve(match.group(1), match.group(2)), text)
