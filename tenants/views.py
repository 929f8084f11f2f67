"""Dashboard pages of the tenants app: the tenant's members (mounted by voiceapp.web.urls)."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from core.errors import ApplicationError
from tenants import services
from tenants.forms import MemberAddForm, MemberRoleForm
from tenants.models import Membership
from tenants.web import TenantPageMixin

ADMIN_WRITES = {"POST": "admin"}


def tenant_members(tenant):
    return Membership.objects.for_tenant(tenant).select_related("user").order_by("user__username")


class MembersView(TenantPageMixin, TemplateView):
    """Who is in the tenant with which role; admins and owners add people by email and change roles."""

    template_name = "tenants/members.html"
    page_title = "Members"
    nav_section = "members"
    required_scopes = ADMIN_WRITES

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", MemberAddForm())
        context = super().get_context_data(**kwargs)
        members = list(tenant_members(self.tenant))
        context.update(
            members=[(m, MemberRoleForm(initial={"role": m.role}, prefix=str(m.pk))) for m in members],
            roles=Membership.Role.choices,
            refused_member=kwargs.get("refused_member"),
            refused_message=kwargs.get("refused_message", ""),
        )
        return context

    def post(self, request):
        form = MemberAddForm(request.POST)
        if form.is_valid():
            try:
                added = services.member_add(
                    tenant=self.tenant,
                    site_url=request.build_absolute_uri("/"),
                    actor=self.audit_actor(),
                    **form.cleaned_data,
                )
            except ApplicationError as exc:
                form.add_service_error(exc)
            else:
                user = added.membership.user
                if added.invited:
                    messages.success(
                        request, f"{user.email} is invited: an email with a link to choose a password is on its way."
                    )
                else:
                    messages.success(
                        request,
                        f"{user.get_username()} ({user.email}) is now a {added.membership.get_role_display().lower()} here.",
                    )
                return HttpResponseRedirect(reverse("web:members"))
        return self.render_to_response(self.get_context_data(form=form), status=400)


class MemberChangeView(TenantPageMixin, View):
    """POST role=… to change a member's role, or remove=1 to take them out of the tenant."""

    required_scopes = ADMIN_WRITES
    http_method_names = ["post"]

    def post(self, request, membership_id):
        membership = get_object_or_404(tenant_members(self.tenant), pk=membership_id)
        name = membership.user.get_username()
        try:
            if request.POST.get("remove"):
                services.member_remove(membership=membership, actor=self.audit_actor())
                messages.success(request, f"{name} is no longer a member of {self.tenant.name}.")
            else:
                form = MemberRoleForm(request.POST, prefix=str(membership.pk))
                if not form.is_valid():
                    raise ApplicationError("Choose one of the roles.", code="invalid_role")
                changed = services.member_role_change(
                    membership=membership, role=form.cleaned_data["role"], actor=self.audit_actor()
                )
                messages.success(request, f"{name} is now {changed.get_role_display().lower()}.")
        except ApplicationError as exc:
            messages.error(request, f"{name}: {exc.message}")
        return HttpResponseRedirect(reverse("web:members"))
