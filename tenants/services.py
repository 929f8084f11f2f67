"""Writes for tenants, memberships, API keys and the audit log."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.models import ApiKey, AuditLog, Membership, Tenant, User
from voiceapp.errors import ApplicationError
from voiceapp.logging import request_id_var

API_KEY_PREFIX = "vk_live_"
API_KEY_LOOKUP_CHARS = 8  # random characters kept visible after "vk_live_"
VALID_SCOPES = {choice.value for choice in ApiKey.Scope}


def api_key_hash(raw_key: str) -> str:
    """SHA-256 hex digest of a full API key: what the database stores and looks keys up by."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # the full key, returned once and never stored


def audit_log_record(
    *,
    tenant: Tenant,
    action: str,
    obj=None,
    actor_user: User | None = None,
    actor_api_key: ApiKey | None = None,
    changes: dict | None = None,
    ip_address: str | None = None,
) -> AuditLog:
    """Append an audit row; call it inside the transaction of the write it records."""
    label = actor_user.get_username() if actor_user else (f"api key {actor_api_key.prefix}" if actor_api_key else "")
    return AuditLog.objects.create(
        tenant=tenant,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        actor_label=label,
        changes=changes or {},
        request_id=request_id_var.get() or "",
        ip_address=ip_address,
    )


@transaction.atomic
def tenant_create(
    *, name: str, slug: str, owner: User | None = None, settings: dict | None = None, actor_user: User | None = None
) -> Tenant:
    """Create a tenant and, if given, its owner's membership."""
    tenant = Tenant.objects.create(name=name, slug=slug, settings=settings or {})
    if owner is not None:
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    audit_log_record(tenant=tenant, action="tenant.create", obj=tenant, actor_user=actor_user or owner)
    return tenant


@transaction.atomic
def tenant_set_status(*, tenant: Tenant, status: str, actor_user: User | None = None) -> Tenant:
    """Suspend or reactivate a tenant (idempotent); the change is audited."""
    if status not in Tenant.Status.values:
        raise ApplicationError(f"Unknown tenant status {status!r}.", code="invalid_status")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status == status:
        return tenant
    previous, tenant.status = tenant.status, status
    tenant.save(update_fields=["status", "updated_at"])
    action = "tenant.suspend" if status == Tenant.Status.SUSPENDED else "tenant.reactivate"
    audit_log_record(
        tenant=tenant, action=action, obj=tenant, actor_user=actor_user, changes={"status": [previous, status]}
    )
    return tenant


@transaction.atomic
def membership_set(*, tenant: Tenant, user: User, role: str, actor_user: User | None = None) -> Membership:
    """Give a user a role in a tenant, creating or changing the membership."""
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", code="invalid_role", fields={"role": ["Unknown role."]})
    membership, created = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    audit_log_record(
        tenant=tenant,
        action="membership.create" if created else "membership.update",
        obj=membership,
        actor_user=actor_user,
        changes={"user": user.get_username(), "role": role},
    )
    return membership


def _validate_scopes(scopes) -> list[str]:
    if not isinstance(scopes, list | tuple) or not scopes or not set(scopes) <= VALID_SCOPES:
        raise ApplicationError(
            f"Scopes must be a non-empty list drawn from {sorted(VALID_SCOPES)}.",
            code="invalid_scopes",
            fields={"scopes": ["Invalid scopes."]},
        )
    return sorted(set(scopes))


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: list[str] | tuple[str, ...] = ("read", "write"),
    created_by: User | None = None,
    expires_at: datetime | None = None,
    actor: dict | None = None,
) -> IssuedApiKey:
    """Issue a key `vk_live_<random>`; the secret is in the result only, never stored."""
    clean_scopes = _validate_scopes(list(scopes))
    for _attempt in range(5):
        raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    tenant=tenant,
                    name=name,
                    prefix=raw_key[: len(API_KEY_PREFIX) + API_KEY_LOOKUP_CHARS],
                    key_hash=api_key_hash(raw_key),
                    scopes=clean_scopes,
                    created_by=created_by,
                    expires_at=expires_at,
                )
                audit_log_record(
                    tenant=tenant,
                    action="api_key.create",
                    obj=api_key,
                    changes={"name": name, "prefix": api_key.prefix, "scopes": clean_scopes},
                    **(actor or {"actor_user": created_by}),
                )
        except IntegrityError:
            continue  # a prefix collision: draw another key
        return IssuedApiKey(api_key=api_key, secret=raw_key)
    raise ApplicationError("Could not issue a unique API key; try again.", code="api_key_collision")


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor_user: User | None = None, actor: dict | None = None) -> ApiKey:
    """Revoke a key now (idempotent: revoking twice keeps the first time)."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
        audit_log_record(
            tenant=api_key.tenant, action="api_key.revoke", obj=api_key, **(actor or {"actor_user": actor_user})
        )
    return api_key


API_KEY_PATTERN = re.compile(r"^vk_live_[A-Za-z0-9_-]{43}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute per key


class ApiKeyRefused(ApplicationError):
    type = "authentication_error"
    status_code = 401


def api_key_authenticate(*, raw_key: str) -> ApiKey:
    """The usable key for `raw_key` (with its tenant loaded), or ApiKeyRefused saying why."""
    if not API_KEY_PATTERN.match(raw_key):
        raise ApiKeyRefused(
            "The API key is malformed: expected vk_live_ followed by 43 characters.", code="api_key_malformed"
        )
    api_key = ApiKey.objects.unscoped().select_related("tenant").filter(key_hash=api_key_hash(raw_key)).first()
    if api_key is None:
        raise ApiKeyRefused("The API key is not valid.", code="api_key_invalid")
    now = timezone.now()
    if api_key.revoked_at is not None:
        raise ApiKeyRefused("The API key has been revoked.", code="api_key_revoked")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise ApiKeyRefused("The API key has expired.", code="api_key_expired")
    if not api_key.tenant.is_active:
        raise ApiKeyRefused("The tenant of this API key is suspended.", code="tenant_suspended")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
