"""Database constraints of the tenants app: each one refuses a bad direct write and lets the valid one through."""

from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from tenants.models import ApiKey, IdempotencyKey, Membership, Tenant, User
from tests import factories
from tests.models.constraints import assert_check_constraint

pytestmark = pytest.mark.django_db

EXPIRES = datetime(2026, 1, 2, tzinfo=UTC)


def _idempotency_key(tenant, key="req-1"):
    # No factory for this model yet: build it directly.
    return IdempotencyKey.objects.create(
        tenant=tenant,
        key=key,
        request_method="POST",
        request_path="/api/v1/calls",
        request_fingerprint="0" * 64,
        expires_at=EXPIRES,
    )


# Every CheckConstraint: (constraint name, make a valid row, violating update, valid update).
CHECK_CASES = [
    pytest.param(
        "tenant_status_valid",
        lambda t: factories.TenantFactory(),
        {"status": "closed"},
        {"status": "suspended"},
        id="tenant_status_valid",
    ),
    pytest.param(
        "tenant_slug_not_empty",
        lambda t: factories.TenantFactory(),
        {"slug": ""},
        {"slug": "initech"},
        id="tenant_slug_not_empty",
    ),
    pytest.param(
        "membership_role_valid",
        lambda t: factories.MembershipFactory(tenant=t),
        {"role": "superuser"},
        {"role": "viewer"},
        id="membership_role_valid",
    ),
    pytest.param(
        "apikey_prefix_format",
        lambda t: factories.ApiKeyFactory(tenant=t),
        {"prefix": "sk_live_abcd1234"},
        {"prefix": "vk_test_abcd1234"},
        id="apikey_prefix_format",
    ),
    pytest.param(
        "apikey_hash_is_sha256_hex",
        lambda t: factories.ApiKeyFactory(tenant=t),
        {"key_hash": "A" * 64},
        {"key_hash": "0123456789abcdef" * 4},
        id="apikey_hash_is_sha256_hex-uppercase",
    ),
    pytest.param(
        "apikey_hash_is_sha256_hex",
        lambda t: factories.ApiKeyFactory(tenant=t),
        {"key_hash": "0" * 63},
        {"key_hash": "f" * 64},
        id="apikey_hash_is_sha256_hex-too-short",
    ),
    pytest.param(
        "apikey_hash_is_sha256_hex",
        lambda t: factories.ApiKeyFactory(tenant=t),
        {"key_hash": "g" * 64},
        {"key_hash": "a" * 64},
        id="apikey_hash_is_sha256_hex-not-hex",
    ),
    pytest.param(
        "idempotency_complete_has_status",
        lambda t: _idempotency_key(t),
        {"state": "complete"},
        {"state": "complete", "response_status": 201},
        id="idempotency_complete_has_status",
    ),
]

# UniqueConstraints, each tested by its own function below.
UNIQUE_CONSTRAINTS_TESTED = {"membership_unique_tenant_user", "idempotency_unique_tenant_key"}

# Field-level unique=True (and one-to-one), tested by test_unique_field.
UNIQUE_FIELD_CASES = [
    pytest.param(
        lambda t: factories.TenantFactory(slug="initech"),
        lambda first, t: Tenant.objects.create(name="Other", slug="initech"),
        lambda first, t: Tenant.objects.create(name="Other", slug="initech-2"),
        id="Tenant.slug",
    ),
    pytest.param(
        lambda t: User.objects.create(username="bob"),
        lambda first, t: User.objects.create(username="bob"),
        lambda first, t: User.objects.create(username="bob2"),
        id="User.username",
    ),
    pytest.param(
        lambda t: factories.ApiKeyFactory(tenant=t, prefix="vk_live_aaaaaaaa"),
        lambda first, t: factories.ApiKeyFactory(tenant=t, prefix="vk_live_aaaaaaaa"),
        lambda first, t: factories.ApiKeyFactory(tenant=t, prefix="vk_live_aaaaaaab"),
        id="ApiKey.prefix",
    ),
    pytest.param(
        lambda t: factories.ApiKeyFactory(tenant=t, key_hash="a" * 64),
        lambda first, t: factories.ApiKeyFactory(tenant=t, key_hash="a" * 64),
        lambda first, t: factories.ApiKeyFactory(tenant=t, key_hash="b" * 64),
        id="ApiKey.key_hash",
    ),
]


def _constraint_names(app_label: str) -> set[str]:
    return {c.name for m in apps.get_app_config(app_label).get_models() for c in m._meta.constraints}


def _unique_fields(app_label: str) -> set[str]:
    return {
        f"{m.__name__}.{f.name}"
        for m in apps.get_app_config(app_label).get_models()
        for f in m._meta.fields
        if f.unique and not f.primary_key
    }


def test_every_constraint_of_the_app_has_a_test():
    covered = {p.values[0] for p in CHECK_CASES} | UNIQUE_CONSTRAINTS_TESTED
    assert _constraint_names("tenants") == covered
    assert _unique_fields("tenants") == {p.id for p in UNIQUE_FIELD_CASES}


@pytest.mark.parametrize(("constraint", "make", "bad", "good"), CHECK_CASES)
def test_check_constraint(tenant, constraint, make, bad, good):
    assert_check_constraint(tenant, constraint, make, bad, good)


@pytest.mark.parametrize(("make_first", "make_duplicate", "make_valid"), UNIQUE_FIELD_CASES)
def test_unique_field(tenant, make_first, make_duplicate, make_valid):
    first = make_first(tenant)
    model = type(first)
    count = model._base_manager.count()

    with pytest.raises(IntegrityError), transaction.atomic():
        make_duplicate(first, tenant)

    assert model._base_manager.count() == count
    make_valid(first, tenant)
    assert model._base_manager.count() == count + 1


def test_membership_unique_tenant_user(tenant, other_tenant):
    user = factories.UserFactory(username="bob")
    Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.ADMIN)

    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.VIEWER)

    # The same user in another tenant, and another user in the same tenant, are fine.
    Membership.objects.create(tenant=other_tenant, user=user, role=Membership.Role.VIEWER)
    Membership.objects.create(tenant=tenant, user=factories.UserFactory(username="carol"))
    assert sorted(Membership.objects.dangerously_unscoped().values_list("tenant__slug", "user__username", "role")) == [
        ("acme-dental", "bob", "admin"),
        ("acme-dental", "carol", "member"),
        ("globex-clinic", "bob", "viewer"),
    ]


def test_apikey_constraints_apply_on_create_too(tenant):
    with pytest.raises(IntegrityError, match="apikey_prefix_format"), transaction.atomic():
        ApiKey.objects.create(tenant=tenant, name="k", prefix="live_abc", key_hash="a" * 64)
    assert ApiKey.objects.dangerously_unscoped().count() == 0


def test_idempotency_key_unique_per_tenant(tenant, other_tenant):
    _idempotency_key(tenant, "req-1")

    with pytest.raises(IntegrityError), transaction.atomic():
        _idempotency_key(tenant, "req-1")

    _idempotency_key(other_tenant, "req-1")
    _idempotency_key(tenant, "req-2")
    assert sorted(IdempotencyKey.objects.dangerously_unscoped().values_list("tenant__slug", "key")) == [
        ("acme-dental", "req-1"),
        ("acme-dental", "req-2"),
        ("globex-clinic", "req-1"),
    ]
