"""Which tenant a signed-in dashboard user is acting in, and what their role lets them do.

The active tenant is kept in the session under the same key the REST API's session authentication
and the websockets read (`SESSION_TENANT_KEY`), so the dashboard's own JavaScript calls `/v1/...`
and `/ws/...` in the tenant the page shows. A user who is not a member of a tenant cannot pick it:
it is a 404, exactly like a tenant that does not exist.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from core.logging import tenant_id_var
from tenants.api.authentication import ROLE_SCOPE, SESSION_TENANT_KEY
from tenants.api.permissions import scope_satisfied
from tenants.models import Membership


def memberships_of(user):
    """The user's memberships in tenants that still exist, tenant loaded, by tenant name."""
    return (
        Membership.objects.dangerously_unscoped()
        .select_related("tenant")
        .filter(user=user, tenant__deleted_at__isnull=True)
        .order_by("tenant__name")
    )


def active_membership(request) -> Membership | None:
    """The membership for the session's tenant; the first one (remembered) when none is chosen yet."""
    memberships = list(memberships_of(request.user))
    wanted = request.session.get(SESSION_TENANT_KEY)
    chosen = next((m for m in memberships if str(m.tenant_id) == str(wanted)), None)
    if chosen is None and memberships:
        chosen = memberships[0]
        request.session[SESSION_TENANT_KEY] = str(chosen.tenant_id)
    request.memberships = memberships
    return chosen


def switch_tenant(request, tenant_ref: str) -> Membership:
    """Make the user's tenant named by slug or id the active one; not a member is a 404."""
    for membership in memberships_of(request.user):
        if tenant_ref in (membership.tenant.slug, str(membership.tenant_id)):
            request.session[SESSION_TENANT_KEY] = str(membership.tenant_id)
            return membership
    raise Http404("No such tenant.")


class TenantPageMixin(LoginRequiredMixin):
    """Base of every dashboard page: signed in, a member of an active tenant, with enough role.

    Sets `request.tenant`, `request.membership` and `request.granted_scopes`. `required_scopes`
    maps an HTTP method to "read", "write" or "admin" (GET/HEAD need read, anything else write).
    Views read only through tenant-scoped selectors with `tenant=self.tenant`.
    """

    required_scopes: dict[str, str] = {}
    page_title = ""
    nav_section = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = active_membership(request)
        if membership is None:
            return render(request, "web/no_tenant.html", {"page_title": "No tenant"}, status=403)
        if not membership.tenant.is_active:
            context = {"page_title": "Tenant suspended", "suspended_tenant": membership.tenant}
            return render(request, "web/suspended.html", context, status=403)
        request.tenant = membership.tenant
        request.membership = membership
        request.granted_scopes = {ROLE_SCOPE[membership.role]}
        tenant_id_var.set(str(membership.tenant_id))
        if not self.allows(self.required_scope(request.method)):
            raise PermissionDenied("Your role in this tenant does not allow this.")
        return super().dispatch(request, *args, **kwargs)

    @property
    def tenant(self):
        return self.request.tenant

    def required_scope(self, method: str) -> str:
        default = "read" if method in ("GET", "HEAD", "OPTIONS") else "write"
        return self.required_scopes.get(method, default)

    def allows(self, scope: str) -> bool:
        return scope_satisfied(self.request.granted_scopes, scope)

    def audit_actor(self) -> dict:
        """The keyword arguments services take to record who acted (the API views' equivalent)."""
        return {
            "actor_user": self.request.user,
            "actor_api_key": None,
            "ip_address": self.request.META.get("REMOTE_ADDR"),
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("page_title", self.page_title)
        context.setdefault("nav_section", self.nav_section)
        return context
