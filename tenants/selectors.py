"""Reads for tenants and access."""

from tenants.models import ApiKey, Membership, Tenant, User


def tenants_for_user(*, user: User):
    """Tenants the user is a member of (alive ones only)."""
    return Tenant.objects.alive().filter(
        pk__in=Membership.objects.dangerously_unscoped().filter(user=user).values("tenant")
    )


def membership_get(*, tenant: Tenant, user: User) -> Membership | None:
    return Membership.objects.for_tenant(tenant).filter(user=user).first()


def api_key_list(*, tenant: Tenant):
    return ApiKey.objects.for_tenant(tenant).order_by("-created_at")
