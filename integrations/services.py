"""Writes for the integrations app; each is audited in its own transaction."""

import logging
import re
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, NotFound
from integrations import vault, verification
from integrations.config import ConfigError, ServiceConfig, parse_integration, service_from_row
from integrations.models import BackendService, ProviderCredential
from integrations.selectors import credential_list
from integrations.verification import VerificationResult
from tenants.models import Tenant
from tenants.services import audit_log_record

logger = logging.getLogger(__name__)

# --- credentials

CREDENTIAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}\Z")  # the model's check constraint
VERIFICATION_FIELDS = ["verification", "verification_message", "verified_at"]
SEALED_FIELDS = ["key_id", "nonce", "ciphertext", "hint"]


def _name_error(message: str, code: str) -> ApplicationError:
    return ApplicationError(f"name: {message}", code=code, fields={"name": [message]})


def _check_name(tenant: Tenant, name: str) -> None:
    if not CREDENTIAL_NAME.match(name):
        raise _name_error("Use letters, digits and _ (not starting with a digit), at most 100.", "invalid_name")
    if credential_list(tenant=tenant).filter(name=name).exists():
        raise _name_error("A credential with this name already exists.", "credential_name_taken")


def _checked(provider: str, secret: dict, *, verify: bool, checked: VerificationResult | None):
    """The provider's verdict (asked now unless the caller just asked); refuses a secret it rejects."""
    result = checked or (verification.verify(provider, secret) if verify else None)
    if result is not None and result.ok is False:
        raise ApplicationError(
            result.verdict(provider),
            code="credential_verification_failed",
            fields={"secret": [result.message]},
        )
    return result


def _record(credential: ProviderCredential, result: VerificationResult | None) -> None:
    credential.verification = result.status if result else ProviderCredential.Verification.UNVERIFIED
    credential.verification_message = result.message if result else ""
    credential.verified_at = timezone.now() if result and result.ok is not None else None


def _summary(credential: ProviderCredential) -> dict:
    """What the audit log keeps of a credential: never the secret, its hint or its ciphertext."""
    return {"name": credential.name, "provider": credential.provider, "key_id": credential.key_id}


def _locked(credential: ProviderCredential) -> ProviderCredential:
    locked = ProviderCredential.objects.for_tenant(credential.tenant).select_for_update().filter(pk=credential.pk)
    found = locked.first()
    if found is None:
        raise NotFound("No such object.")
    return found


def credential_create(
    *,
    tenant: Tenant,
    name: str,
    provider: str,
    secret: dict,
    actor: dict | None = None,
    verify: bool = True,
    checked: VerificationResult | None = None,
) -> ProviderCredential:
    """Verify a secret with its provider, then store it encrypted; nothing is saved if the provider refuses.

    `checked` is a verification the caller has just run (the admin runs it while validating its form).
    """
    secret = vault.validate_secret(provider, secret)
    _check_name(tenant, name)
    # Outside any transaction: the provider may take seconds to answer, and no lock should wait on it.
    result = _checked(provider, secret, verify=verify, checked=checked)
    return _credential_insert(tenant=tenant, name=name, provider=provider, secret=secret, result=result, actor=actor)


@transaction.atomic
def _credential_insert(*, tenant, name, provider, secret, result, actor) -> ProviderCredential:
    actor = actor or {}
    credential = ProviderCredential(tenant=tenant, name=name, provider=provider, created_by=actor.get("actor_user"))
    vault.seal(credential, secret)  # the id exists already: it is bound into the ciphertext
    _record(credential, result)
    try:
        with transaction.atomic():
            credential.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent create took the name
        raise _name_error("A credential with this name already exists.", "credential_name_taken") from exc
    changes = {**_summary(credential), "verification": credential.verification}
    audit_log_record(tenant=tenant, action="credential.create", obj=credential, changes=changes, **actor)
    logger.info("credential %s created (%s, %s)", credential.pk, provider, credential.verification)
    return credential


def credential_update_secret(
    *,
    credential: ProviderCredential,
    secret: dict,
    actor: dict | None = None,
    verify: bool = True,
    checked: VerificationResult | None = None,
) -> ProviderCredential:
    """Replace the secret (verified first, like a new one) and encrypt it under the newest key."""
    secret = vault.validate_secret(credential.provider, secret)
    result = _checked(credential.provider, secret, verify=verify, checked=checked)
    with transaction.atomic():
        credential = _locked(credential)
        vault.seal(credential, secret)
        _record(credential, result)
        credential.save(update_fields=[*SEALED_FIELDS, *VERIFICATION_FIELDS, "updated_at"])
        changes = {**_summary(credential), "fields": ["secret"], "verification": credential.verification}
        audit_log_record(
            tenant=credential.tenant, action="credential.update", obj=credential, changes=changes, **(actor or {})
        )
    return credential


def credential_verify(*, credential: ProviderCredential, actor: dict | None = None) -> ProviderCredential:
    """Check a stored credential with its provider again and record the answer.

    A credential that cannot be decrypted raises a VaultError naming it, and is left as it was.
    """
    result = verification.verify(credential.provider, vault.decrypt(credential))
    with transaction.atomic():
        credential = _locked(credential)
        previous = credential.verification
        _record(credential, result)
        credential.save(update_fields=[*VERIFICATION_FIELDS, "updated_at"])
        changes = {**_summary(credential), "verification": [previous, credential.verification]}
        audit_log_record(
            tenant=credential.tenant, action="credential.verify", obj=credential, changes=changes, **(actor or {})
        )
    return credential


@transaction.atomic
def credential_delete(*, credential: ProviderCredential, actor: dict | None = None) -> None:
    """Delete a credential; services that refer to ${NAME} fail with a clear error from then on."""
    # Recorded first: delete() clears the instance's primary key.
    audit_log_record(
        tenant=credential.tenant,
        action="credential.delete",
        obj=credential,
        changes=_summary(credential),
        **(actor or {}),
    )
    credential.delete()


@dataclass
class ReencryptReport:
    key_id: str  # the newest key, which everything should end up under
    reencrypted: int = 0
    already_current: int = 0
    failed: list[str] = field(default_factory=list)  # VaultError messages, naming each credential


def credential_reencrypt_all() -> ReencryptReport:
    """Re-encrypt every credential that is not under the newest key (idempotent).

    Credentials that cannot be decrypted are reported, not fatal: they keep their old ciphertext.
    """
    report = ReencryptReport(key_id=vault.keyring().current_id)
    # Across tenants on purpose: key rotation covers the whole vault.
    rows = ProviderCredential.objects.dangerously_unscoped()
    report.already_current = rows.filter(key_id=report.key_id).count()
    for pk in list(rows.exclude(key_id=report.key_id).values_list("pk", flat=True)):
        try:
            report.reencrypted += _credential_reencrypt(pk, report.key_id)
        except vault.VaultError as exc:
            report.failed.append(exc.message)
            logger.warning("credential %s not re-encrypted: %s", pk, exc.message)
    return report


@transaction.atomic
def _credential_reencrypt(pk, key_id: str) -> int:
    credential = ProviderCredential.objects.dangerously_unscoped().select_for_update().filter(pk=pk).first()
    if credential is None or credential.key_id == key_id:
        return 0  # deleted or rotated since the list was read
    previous = credential.key_id
    vault.seal(credential, vault.decrypt(credential))
    credential.save(update_fields=[*SEALED_FIELDS, "updated_at"])
    audit_log_record(
        tenant=credential.tenant,
        action="credential.reencrypt",
        obj=credential,
        changes={"name": credential.name, "key_id": [previous, credential.key_id]},
    )
    return 1


# --- backend services ---------------------------------------------------------------------------

BACKEND_FIELDS = (
    "url",
    "method",
    "headers",
    "timeout_seconds",
    "retry",
    "rate_limit",
    "circuit_breaker",
    "tls",
    "auth",
    "logging",
    "enabled",
)


def _validated(service: BackendService) -> BackendService:
    """Check the row's settings with the same parser the gateway uses; errors keep their paths."""
    try:
        service_from_row(service)
    except ConfigError as exc:
        raise ApplicationError(
            f"The backend service settings are invalid: {exc}", code="invalid_backend_service", fields=exc.as_fields()
        ) from exc
    return service


@transaction.atomic
def backend_service_save(
    *, tenant: Tenant, name: str, actor: dict | None = None, **fields
) -> tuple[BackendService, bool]:
    """Create or update the tenant's backend service `name`; returns (service, created)."""
    service = BackendService.objects.for_tenant(tenant).select_for_update().filter(name=name).first()
    created = service is None
    service = service or BackendService(tenant=tenant, name=name)
    for key, value in fields.items():
        if key in BACKEND_FIELDS:
            setattr(service, key, value)
    _validated(service).save()
    audit_log_record(
        tenant=tenant,
        action="backend_service.create" if created else "backend_service.update",
        obj=service,
        changes={"fields": sorted(k for k in fields if k in BACKEND_FIELDS)},
        **(actor or {}),
    )
    return service, created


@transaction.atomic
def backend_service_delete(*, service: BackendService, actor: dict | None = None) -> None:
    audit_log_record(tenant=service.tenant, action="backend_service.delete", obj=service, **(actor or {}))
    service.delete()


def _row_fields(config: ServiceConfig, raw: dict) -> dict:
    """The model fields of a parsed YAML service (the raw sub-mappings are kept as written)."""
    return {
        "url": config.url,
        "method": config.method,
        "headers": config.headers,
        "timeout_seconds": config.timeout,
        "retry": raw.get("retry") or {},
        "rate_limit": raw.get("rate_limit") or {},
        "circuit_breaker": raw.get("circuit_breaker") or {},
        "tls": raw.get("tls") or {},
        "auth": raw.get("auth") or {},
        "logging": raw.get("logging") or {},
        "enabled": True,
    }


def backend_services_import(*, tenant: Tenant, document, actor: dict | None = None, dry_run: bool = False) -> dict:
    """Import an `integration:` block: all services or none (ConfigError lists every problem)."""
    defaults, configs = parse_integration(document)
    raw_services = document["integration"].get("services") or {}
    result = {"created": [], "updated": [], "missing_secrets": {}}
    known = set(ProviderCredential.objects.for_tenant(tenant).values_list("name", flat=True))
    with transaction.atomic():
        for name, config in configs.items():
            missing = sorted(config.secret_names() - known)
            if missing:
                result["missing_secrets"][name] = missing
            raw = dict(raw_services[name] or {})
            raw.setdefault("retry", {}).setdefault("max_attempts", defaults.max_retries)
            _service, created = backend_service_save(tenant=tenant, name=name, actor=actor, **_row_fields(config, raw))
            result["created" if created else "updated"].append(name)
        if dry_run:
            transaction.set_rollback(True)
    return result
