"""Connecting a tenant's GoTo Connect account: the "Connect GoTo" button, GoTo's callback, disconnecting.

Tenant admins start the consent from the Phone numbers page; staff start it for any tenant from the
admin (`telephony.admin`). Both come back to the one callback registered at GoTo, which finds in the
session which consent it answers (`grant.state_take`). Every failure is a page or a message saying
what happened, never a 500, and never shows a code, token or secret.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View

from telephony.carriers.goto import grant
from telephony.carriers.goto.config import GoToConnectError
from telephony.models import GoToConnection
from tenants.models import Membership, Tenant
from tenants.web import TenantPageMixin

logger = logging.getLogger(__name__)
ADMIN_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def redirect_uri(request: HttpRequest) -> str:
    """The callback GoTo sends the browser back to: GOTO_OAUTH_REDIRECT_URI, else this site's callback URL."""
    return settings.GOTO_OAUTH_REDIRECT_URI or request.build_absolute_uri(reverse("telephony:goto-callback"))


def start_consent(request: HttpRequest, *, tenant_id, via: str, back: str) -> HttpResponse:
    """Send the browser to GoTo's consent page (or back to `back` saying why not)."""
    try:
        url = grant.consent_url(request.session, tenant_id=tenant_id, via=via, redirect_uri=redirect_uri(request))
    except GoToConnectError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(back)
    return HttpResponseRedirect(url)


class GoToConnectView(TenantPageMixin, View):
    """POST: a tenant admin starts connecting the tenant's GoTo account (or reconnecting it)."""

    http_method_names = ["post"]
    required_scopes = {"POST": "admin"}

    def post(self, request):
        return start_consent(
            request, tenant_id=self.tenant.pk, via=grant.VIA_DASHBOARD, back=reverse("telephony:numbers")
        )


class GoToDisconnectView(TenantPageMixin, View):
    """POST: a tenant admin disconnects GoTo; another tenant's connection is a 404 like a missing one."""

    http_method_names = ["post"]
    required_scopes = {"POST": "admin"}

    def post(self, request, connection_id):
        connection = get_object_or_404(GoToConnection.objects.for_tenant(self.tenant), pk=connection_id)
        grant.connection_disconnect(connection=connection, **_actor(request))
        messages.success(request, "GoTo is disconnected: calls no longer reach your agents through it.")
        return HttpResponseRedirect(reverse("telephony:numbers"))


class GoToCallbackView(LoginRequiredMixin, View):
    """GET ?code&state (or ?error&state): GoTo's answer to a consent started here."""

    http_method_names = ["get"]

    def get(self, request):
        try:
            pending = grant.state_take(request.session, request.GET.get("state", ""))
        except grant.GrantError as exc:
            return _failed(request, exc.message)
        tenant = self._tenant(request, pending)
        back = (
            reverse("admin:telephony_gotoconnection_changelist")
            if pending.via == grant.VIA_ADMIN
            else reverse("telephony:numbers")
        )
        error = request.GET.get("error", "")
        if error:
            text = "GoTo was not connected: the sign-in at GoTo was cancelled or access was declined."
            if error != "access_denied":
                text = f"GoTo was not connected: GoTo answered {error[:60]!r}."
            messages.warning(request, text)
            return HttpResponseRedirect(back)
        code = request.GET.get("code", "")
        if not code:
            return _failed(request, "GoTo's answer carried no authorization code. Start again with Connect GoTo.")
        try:
            answer = grant.exchange_code(code=code, redirect_uri=pending.redirect_uri)
            line = grant.read_line(answer.access_token)
            connection = grant.connection_save(tenant=tenant, grant=answer, line=line, **_actor(request))
        except GoToConnectError as exc:
            logger.warning("Connecting GoTo for tenant %s failed: %s (%s)", tenant.pk, exc.code, exc.message)
            messages.error(request, f"GoTo was not connected. {exc.message}")
            return HttpResponseRedirect(back)
        messages.success(request, f"GoTo is connected: agents answer on extension {connection.extension}.")
        return HttpResponseRedirect(back)

    @staticmethod
    def _tenant(request: HttpRequest, pending: grant.PendingConsent) -> Tenant:
        """The consent's tenant, if this user may still connect it: else a 404, as for a tenant not theirs."""
        tenant = Tenant.objects.filter(pk=pending.tenant_id, deleted_at__isnull=True).first()
        if tenant is None:
            raise Http404("No such tenant.")
        if pending.via == grant.VIA_ADMIN:
            if request.user.is_staff and request.user.has_perm("telephony.change_gotoconnection"):
                return tenant
            raise Http404("No such tenant.")
        admin = Membership.objects.for_tenant(tenant).filter(user=request.user, role__in=ADMIN_ROLES).exists()
        if not admin or not tenant.is_active:
            raise Http404("No such tenant.")
        return tenant


def _actor(request: HttpRequest) -> dict:
    return {"actor_user": request.user, "ip_address": request.META.get("REMOTE_ADDR")}


def _failed(request: HttpRequest, message: str) -> HttpResponse:
    context = {"page_title": "GoTo not connected", "message": message}
    return render(request, "telephony/goto_failed.html", context, status=400)
