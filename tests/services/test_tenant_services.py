"""tenants.services: tenants, status changes, memberships and API keys, each with its audit row."""

import hashlib

import pytest
from django.db import IntegrityError

from core.errors import ApplicationError
from tenants.models import ApiKey, AuditLog, Membership, Tenant
from tenants.services import (
    api_key_create,
    api_key_hash,
    api_key_revoke,
    membership_set,
    tenant_create,
    tenant_set_status,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _audit_rows(tenant):
    return list(
        AuditLog.objects.filter(tenant=tenant)
        .order_by("created_at")
        .values_list("action", "object_type", "object_id", "actor_user__username", "actor_label", "changes")
    )


# --- tenant_create ------------------------------------------------------------------------------


def test_tenant_create_with_owner():
    bob = factories.UserFactory(username="bob")

    tenant = tenant_create(name="Initech", slug="initech", owner=bob, settings={"timezone": "UTC"})

    tenant.refresh_from_db()
    assert (tenant.name, tenant.slug, tenant.status, tenant.settings) == (
        "Initech",
        "initech",
        "active",
        {"timezone": "UTC"},
    )
    assert list(Membership.objects.filter(tenant=tenant).values_list("user__username", "role")) == [("bob", "owner")]
    assert _audit_rows(tenant) == [("tenant.create", "tenants.tenant", str(tenant.pk), "bob", "bob", {})]


def test_tenant_create_without_owner(db):
    tenant = tenant_create(name="Initech", slug="initech")

    assert tenant.settings == {}
    assert Membership.objects.filter(tenant=tenant).count() == 0
    assert _audit_rows(tenant) == [("tenant.create", "tenants.tenant", str(tenant.pk), None, "", {})]


def test_tenant_create_duplicate_slug_leaves_nothing_behind(tenant):
    bob = factories.UserFactory(username="bob")

    with pytest.raises(IntegrityError):
        tenant_create(name="Acme again", slug="acme-dental", owner=bob)

    assert Tenant.objects.count() == 1
    assert Membership.objects.dangerously_unscoped().filter(user=bob).count() == 0


# --- tenant_set_status --------------------------------------------------------------------------


def test_tenant_suspend_and_reactivate_are_idempotent(tenant, owner):
    suspended = tenant_set_status(tenant=tenant, status="suspended", actor_user=owner)
    again = tenant_set_status(tenant=tenant, status="suspended", actor_user=owner)

    assert suspended.status == again.status == "suspended"
    tenant.refresh_from_db()
    assert tenant.status == "suspended"
    assert tenant.is_active is False
    assert _audit_rows(tenant) == [
        ("tenant.suspend", "tenants.tenant", str(tenant.pk), "alice", "alice", {"status": ["active", "suspended"]}),
    ]

    tenant_set_status(tenant=tenant, status="active", actor_user=owner)
    tenant_set_status(tenant=tenant, status="active", actor_user=owner)

    tenant.refresh_from_db()
    assert tenant.status == "active"
    assert [row[0] for row in _audit_rows(tenant)] == ["tenant.suspend", "tenant.reactivate"]
    assert _audit_rows(tenant)[1][5] == {"status": ["suspended", "active"]}


def test_tenant_set_status_on_active_tenant_writes_nothing(tenant):
    tenant_set_status(tenant=tenant, status="active")

    assert AuditLog.objects.dangerously_unscoped().count() == 0


def test_tenant_set_status_refuses_unknown_status(tenant):
    with pytest.raises(ApplicationError) as exc:
        tenant_set_status(tenant=tenant, status="closed")

    assert exc.value.code == "invalid_status"
    assert exc.value.message == "Unknown tenant status 'closed'."
    tenant.refresh_from_db()
    assert tenant.status == "active"
    assert AuditLog.objects.dangerously_unscoped().count() == 0


# --- membership_set -----------------------------------------------------------------------------


def test_membership_set_creates_then_updates(tenant, owner):
    bob = factories.UserFactory(username="bob")

    created = membership_set(tenant=tenant, user=bob, role="member", actor_user=owner)
    updated = membership_set(tenant=tenant, user=bob, role="admin", actor_user=owner)

    assert created.pk == updated.pk
    assert list(Membership.objects.filter(tenant=tenant, user=bob).values_list("role", flat=True)) == ["admin"]
    object_id = str(created.pk)
    assert _audit_rows(tenant) == [
        ("membership.create", "tenants.membership", object_id, "alice", "alice", {"user": "bob", "role": "member"}),
        ("membership.update", "tenants.membership", object_id, "alice", "alice", {"user": "bob", "role": "admin"}),
    ]


def test_membership_set_refuses_unknown_role(tenant):
    bob = factories.UserFactory(username="bob")

    with pytest.raises(ApplicationError) as exc:
        membership_set(tenant=tenant, user=bob, role="superuser")

    assert exc.value.code == "invalid_role"
    assert exc.value.fields == {"role": ["Unknown role."]}
    assert Membership.objects.dangerously_unscoped().filter(user=bob).count() == 0
    assert AuditLog.objects.dangerously_unscoped().count() == 0


# --- API keys -----------------------------------------------------------------------------------


def test_api_key_create_stores_only_prefix_and_hash(tenant, owner):
    issued = api_key_create(tenant=tenant, name="CRM integration", scopes=["write", "read", "read"], created_by=owner)
    secret = issued.secret

    key = ApiKey.objects.dangerously_unscoped().get(pk=issued.api_key.pk)
    assert secret.startswith("vk_live_")
    assert len(secret) > 16 + 32  # 32 random bytes, URL-safe base64
    assert key.prefix == secret[:16]
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest() == api_key_hash(secret)
    assert key.scopes == ["read", "write"]
    assert (key.name, key.tenant_id, key.created_by_id) == ("CRM integration", tenant.pk, owner.pk)
    assert (key.revoked_at, key.expires_at, key.last_used_at) == (None, None, None)
    assert key.is_usable is True

    # The secret is in no column of the key or of the audit log.
    stored = [
        *ApiKey.objects.dangerously_unscoped().filter(pk=key.pk).values(),
        *AuditLog.objects.dangerously_unscoped().values(),
    ]
    assert len(stored) == 2
    for row in stored:
        for column, value in row.items():
            assert secret not in str(value), column
    assert _audit_rows(tenant) == [
        (
            "api_key.create",
            "tenants.apikey",
            str(key.pk),
            "alice",
            "alice",
            {"name": "CRM integration", "prefix": key.prefix, "scopes": ["read", "write"]},
        )
    ]


def test_api_key_create_default_scopes(tenant):
    issued = api_key_create(tenant=tenant, name="Default")

    assert ApiKey.objects.dangerously_unscoped().get(pk=issued.api_key.pk).scopes == ["read", "write"]


def test_api_key_create_issues_distinct_keys(tenant):
    first = api_key_create(tenant=tenant, name="One")
    second = api_key_create(tenant=tenant, name="Two")

    assert first.secret != second.secret
    assert first.api_key.prefix != second.api_key.prefix


@pytest.mark.parametrize(
    "scopes",
    [pytest.param([], id="empty"), pytest.param(["read", "superuser"], id="unknown"), pytest.param("admin", id="str")],
)
def test_api_key_create_refuses_invalid_scopes(tenant, scopes):
    with pytest.raises(ApplicationError) as exc:
        api_key_create(tenant=tenant, name="Bad", scopes=scopes)

    assert exc.value.code == "invalid_scopes"
    assert exc.value.message == "Scopes must be a non-empty list drawn from ['admin', 'read', 'write']."
    assert exc.value.fields == {"scopes": ["Invalid scopes."]}
    assert ApiKey.objects.dangerously_unscoped().count() == 0
    assert AuditLog.objects.dangerously_unscoped().count() == 0


def test_api_key_revoke_is_idempotent(tenant, owner):
    key = api_key_create(tenant=tenant, name="CRM").api_key

    revoked = api_key_revoke(api_key=key, actor_user=owner)
    first_revoked_at = revoked.revoked_at
    again = api_key_revoke(api_key=key, actor_user=owner)

    assert first_revoked_at is not None
    assert again.revoked_at == first_revoked_at
    key.refresh_from_db()
    assert key.revoked_at == first_revoked_at
    assert key.is_usable is False
    assert list(ApiKey.objects.dangerously_unscoped().usable()) == []
    assert [row[:5] for row in _audit_rows(tenant)] == [
        ("api_key.create", "tenants.apikey", str(key.pk), None, ""),
        ("api_key.revoke", "tenants.apikey", str(key.pk), "alice", "alice"),
    ]
