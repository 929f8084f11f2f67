"""Dashboard pages that belong to no single app: the overview, switching tenant, signing in and out."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from agents.models import Agent
from calls import selectors as call_selectors
from telephony.models import PhoneNumber
from tenants.web import TenantPageMixin, switch_tenant


class OverviewView(TenantPageMixin, TemplateView):
    """What is happening in this tenant: calls now and today, the agents, the latest calls."""

    template_name = "web/overview.html"
    page_title = "Overview"
    nav_section = "overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        calls = call_selectors.call_list(tenant=self.tenant)
        since = timezone.now() - timedelta(days=1)
        today = calls.filter(created_at__gte=since)
        context.update(
            active_calls=call_selectors.call_list_active(tenant=self.tenant).count(),
            calls_today=today.count(),
            minutes_today=round((today.aggregate(total=Sum("duration_seconds"))["total"] or 0) / 60, 1),
            agent_count=Agent.objects.for_tenant(self.tenant).count(),
            recent_calls=calls.select_related("agent")[:8],
            answering_number=PhoneNumber.objects.for_tenant(self.tenant)
            .filter(status=PhoneNumber.Status.ACTIVE, agent__isnull=False, agent__deleted_at__isnull=True)
            .select_related("agent")
            .order_by("e164")
            .first(),
        )
        return context


class TenantSwitchView(LoginRequiredMixin, View):
    """POST tenant=<slug or id>: act in another of the user's tenants from now on."""

    def post(self, request):
        membership = switch_tenant(request, request.POST.get("tenant", ""))
        messages.success(request, f"Now working in {membership.tenant.name}.")
        target = request.POST.get("next") or resolve_url("web:overview")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = resolve_url("web:overview")
        return HttpResponseRedirect(target)


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True
    extra_context = {"page_title": "Sign in"}


class SignOutView(auth_views.LogoutView):
    """POST only (Django's LogoutView): a link cannot sign anybody out."""

    next_page = "login"
