"""Who is calling and for which tenant: an API key (X-API-Key) or a dashboard session."""

import uuid
from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication

from core.logging import tenant_id_var
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import ApiKeyRefused, api_key_authenticate

# Membership role -> the API permission it grants (see tenants.api.permissions).
ROLE_SCOPE = {
    Membership.Role.OWNER: "admin",
    Membership.Role.ADMIN: "admin",
    Membership.Role.MEMBER: "write",
    Membership.Role.VIEWER: "read",
}
SESSION_TENANT_KEY = "active_tenant_id"


@dataclass
class ApiKeyPrincipal:
    """request.user for a request authenticated by an API key."""

    api_key: ApiKey
    is_authenticated = True
    is_anonymous = False
    is_staff = False
    pk = None

    def __str__(self) -> str:
        return f"api key {self.api_key.prefix}"


def _bind(request, *, tenant: Tenant, scopes: set[str], api_key: ApiKey | None = None, user=None) -> None:
    # Stored on the Django request so DRF's request, views and middleware all see them.
    django_request = getattr(request, "_request", request)
    django_request.tenant = tenant
    django_request.granted_scopes = scopes
    django_request.actor = {"actor_user": user, "actor_api_key": api_key}
    tenant_id_var.set(str(tenant.pk))


class ApiKeyAuthentication(BaseAuthentication):
    """`X-API-Key: vk_live_…`; a key belongs to exactly one tenant."""

    header = "HTTP_X_API_KEY"

    def authenticate(self, request):
        raw_key = request.META.get(self.header)
        if raw_key is None:
            return None
        try:
            api_key = api_key_authenticate(raw_key=raw_key.strip())
        except ApiKeyRefused as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from exc
        _bind(request, tenant=api_key.tenant, scopes=set(api_key.scopes), api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return 'ApiKey header="X-API-Key"'


class TenantSessionAuthentication(SessionAuthentication):
    """A signed-in dashboard user (CSRF enforced), acting in one of their tenants.

    The tenant is the `X-Tenant` header (slug or id), else the one chosen in the session, else the
    user's only tenant. A tenant the user is not a member of is refused like one that does not exist.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        membership = self._membership(request, user)
        if not membership.tenant.is_active:
            raise exceptions.AuthenticationFailed("This tenant is suspended.", code="tenant_suspended")
        _bind(request, tenant=membership.tenant, scopes={ROLE_SCOPE[membership.role]}, user=user)
        return result

    def _membership(self, request, user) -> Membership:
        memberships = (
            Membership.objects.dangerously_unscoped()
            .select_related("tenant")
            .filter(user=user, tenant__deleted_at__isnull=True)
        )
        wanted = request.META.get("HTTP_X_TENANT") or request.session.get(SESSION_TENANT_KEY)
        if wanted:
            memberships = memberships.filter(**_tenant_lookup(str(wanted)))
        found = list(memberships[:2])
        if len(found) == 1:
            return found[0]
        if not found:
            raise exceptions.AuthenticationFailed("No such tenant for this user.", code="tenant_not_found")
        raise exceptions.AuthenticationFailed(
            "You belong to several tenants: name one in the X-Tenant header (slug or id).", code="tenant_required"
        )


def _tenant_lookup(value: str) -> dict:
    try:
        return {"tenant_id": uuid.UUID(value)}
    except ValueError:
        return {"tenant__slug": value}
