"""Writes for tenants, memberships, API keys and the audit log."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError
from core.logging import request_id_var
from tenants.models import ApiKey, AuditLog, Membership, Tenant, User

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
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk, tenant_id=api_key.tenant_id)
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
    api_key = (
        ApiKey.objects.dangerously_unscoped().select_related("tenant").filter(key_hash=api_key_hash(raw_key)).first()
    )
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
        ApiKey.objects.for_tenant(api_key.tenant_id).filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


# --- members: add by email (an invitation for someone new), change a role, remove ----------------------


@dataclass(frozen=True)
class MemberAdded:
    membership: Membership
    invited: bool  # a new account was made, and its invitation (a link to choose a password) emailed


def _actor_role(tenant: Tenant, actor: dict | None) -> str | None:
    user = (actor or {}).get("actor_user")
    if user is None:
        return None  # the platform itself (a command, the staff admin): no tenant role limits it
    return Membership.objects.for_tenant(tenant).filter(user=user).values_list("role", flat=True).first()


def _check_role_change(tenant: Tenant, actor: dict | None, *, old: str | None, new: str | None) -> None:
    """Only an owner makes or unmakes owners; a tenant always keeps at least one owner."""
    if new is not None and new not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {new!r}.", code="invalid_role", fields={"role": ["Unknown role."]})
    actor_role = _actor_role(tenant, actor)
    owner_involved = Membership.Role.OWNER in (old, new)
    if owner_involved and actor_role not in (None, Membership.Role.OWNER):
        raise ApplicationError(
            "Only an owner can make someone an owner or change an owner's role.",
            code="owner_required",
            fields={"role": ["Only an owner can do this."]},
            status_code=403,
            error_type="permission_error",
        )
    if old == Membership.Role.OWNER and new != Membership.Role.OWNER:
        owners = Membership.objects.for_tenant(tenant).select_for_update().filter(role=Membership.Role.OWNER)
        if len(owners) <= 1:  # evaluated under the lock: two demotions at once cannot both pass
            raise ApplicationError(
                "This is the tenant's last owner: make someone else an owner first.",
                code="last_owner",
                fields={"role": ["The tenant needs at least one owner."]},
                status_code=409,
            )


def _username_for(email: str) -> str:
    base = email[: User._meta.get_field("username").max_length - 6]
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _send_invitation(*, user: User, tenant: Tenant, site_url: str, invited_by: str) -> None:
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    link = site_url.rstrip("/") + reverse(
        "password_reset_confirm", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)}
    )
    context = {"tenant": tenant, "link": link, "invited_by": invited_by, "user": user}
    subject = render_to_string("registration/invitation_subject.txt", context).strip()
    send_mail(subject, render_to_string("registration/invitation_email.txt", context), None, [user.email])


@transaction.atomic
def member_add(*, tenant: Tenant, email: str, role: str, site_url: str, actor: dict | None = None) -> MemberAdded:
    """Add the person with this email to the tenant; someone new gets an account and an emailed invitation.

    The invitation is Django's password-reset link (one use, PASSWORD_RESET_TIMEOUT): the new account has
    no usable password until its owner chooses one there. Sent after commit.
    """
    email = User.objects.normalize_email(email.strip())
    _check_role_change(tenant, actor, old=None, new=role)
    matches = list(User.objects.filter(email__iexact=email, is_active=True)[:2])
    if len(matches) > 1:
        raise ApplicationError(
            "Several accounts use this email address: ask the platform's staff to add the right one.",
            code="ambiguous_email",
            fields={"email": ["Several accounts use this address."]},
        )
    user, invited = (matches[0], False) if matches else (None, True)
    if user is not None and Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise ApplicationError(
            f"{email} is already a member of this tenant.",
            code="already_a_member",
            fields={"email": ["Already a member: change their role below."]},
            status_code=409,
        )
    if user is None:
        user = User(username=_username_for(email), email=email)
        user.set_unusable_password()
        user.save()
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    audit_log_record(
        tenant=tenant,
        action="membership.create",
        obj=membership,
        changes={"user": user.get_username(), "email": email, "role": role, "invited": invited},
        **(actor or {}),
    )
    if invited:
        by = (actor or {}).get("actor_user")
        invited_by = by.get_username() if by is not None else "the platform's staff"
        transaction.on_commit(
            lambda: _send_invitation(user=user, tenant=tenant, site_url=site_url, invited_by=invited_by)
        )
    return MemberAdded(membership=membership, invited=invited)


@transaction.atomic
def member_role_change(*, membership: Membership, role: str, actor: dict | None = None) -> Membership:
    """Change a member's role (owners only touch owners; the last owner stays an owner); audited."""
    membership = Membership.objects.for_tenant(membership.tenant_id).select_for_update().get(pk=membership.pk)
    if membership.role == role:
        return membership
    _check_role_change(membership.tenant, actor, old=membership.role, new=role)
    previous, membership.role = membership.role, role
    membership.save(update_fields=["role", "updated_at"])
    audit_log_record(
        tenant=membership.tenant,
        action="membership.update",
        obj=membership,
        changes={"user": membership.user.get_username(), "role": [previous, role]},
        **(actor or {}),
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: dict | None = None) -> None:
    """Take someone out of the tenant (their account stays; the last owner cannot be removed); audited."""
    membership = Membership.objects.for_tenant(membership.tenant_id).select_for_update().get(pk=membership.pk)
    _check_role_change(membership.tenant, actor, old=membership.role, new=None)
    audit_log_record(
        tenant=membership.tenant,
        action="membership.delete",
        obj=membership,
        changes={"user": membership.user.get_username(), "role": membership.role},
        **(actor or {}),
    )
    membership.delete()
