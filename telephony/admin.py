"""Staff admin for phone numbers: which tenant and agent answer a dialled number."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from calls.models import Call
from core.admin_base import TenantOwnedAdmin, admin_changelist_link
from telephony.carriers.goto import grant
from telephony.goto_views import start_consent
from telephony.models import GoToConnection, PhoneNumber
from tenants.admin import register_tenant_records
from tenants.models import Tenant


@admin.register(PhoneNumber)
class PhoneNumberAdmin(TenantOwnedAdmin):
    list_display = ("e164", "friendly_name", "tenant", "agent", "status", "provider", "external_id", "created_at")
    list_filter = ("status", "provider")
    search_fields = ("e164", "friendly_name", "external_id", "tenant__name", "tenant__slug", "agent__name")
    list_select_related = ("tenant", "agent")
    autocomplete_fields = ("tenant", "agent")
    ordering = ("e164",)
    readonly_fields = ("calls", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("e164", "friendly_name", "tenant", "agent", "status")}),
        (
            "Provider",
            {"fields": ("provider", "external_id"), "description": "How the PBX identifies this number."},
        ),
        ("Overview", {"fields": ("calls", "created_at", "updated_at")}),
    )

    @admin.display(description="Calls")
    def calls(self, obj):
        return admin_changelist_link(Call, "View calls on this number", phone_number__id__exact=obj.pk)


register_tenant_records(PhoneNumber, "Numbers", order=30)


class GoToConnectForm(forms.Form):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.filter(deleted_at__isnull=True).order_by("name"),
        help_text="You will sign in at GoTo as that tenant's GoTo user (the one whose line the agents answer on).",
    )


@admin.register(GoToConnection)
class GoToConnectionAdmin(TenantOwnedAdmin):
    """Tenants' GoTo grants. Made only by the consent at GoTo ("Connect GoTo"); the sealed tokens never show."""

    list_display = ("tenant", "status", "extension", "account_key", "principal", "connected_at", "refreshed_at")
    list_filter = ("status",)
    search_fields = ("tenant__name", "tenant__slug", "account_key", "extension", "principal")
    list_select_related = ("tenant",)
    ordering = ("tenant__name",)
    actions = ["disconnect"]
    change_list_template = "admin/telephony/gotoconnection/change_list.html"
    fields = (
        "tenant",
        "status",
        "last_error",
        "principal",
        "account_key",
        "organization_id",
        "extension",
        "line_id",
        "scopes",
        "connected_by",
        "connected_at",
        "refreshed_at",
        "access_expires_at",
        "reconnect",
    )
    readonly_fields = fields  # key_id, nonce and ciphertext (the sealed tokens) are never shown

    def has_add_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view(self.connect_view)
        return [path("connect/", view, name="telephony_gotoconnection_connect"), *super().get_urls()]

    def connect_view(self, request):
        """Staff connect (or reconnect) a tenant's GoTo: pick the tenant, then sign in at GoTo."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = GoToConnectForm(request.POST or None, initial={"tenant": request.GET.get("tenant")})
        if request.method == "POST" and form.is_valid():
            back = reverse("admin:telephony_gotoconnection_changelist")
            return start_consent(request, tenant_id=form.cleaned_data["tenant"].pk, via=grant.VIA_ADMIN, back=back)
        context = {**self.admin_site.each_context(request), "title": "Connect GoTo for a tenant", "form": form}
        return TemplateResponse(request, "admin/telephony/gotoconnection/connect.html", context)

    @admin.display(description="Reconnect")
    def reconnect(self, obj):
        url = reverse("admin:telephony_gotoconnection_connect")
        return format_html('<a href="{}?tenant={}">Sign in at GoTo again for this tenant</a>', url, obj.tenant_id)

    @admin.action(description="Disconnect GoTo (forget the tokens)", permissions=["change"])
    def disconnect(self, request, queryset):
        for connection in queryset:
            grant.connection_disconnect(
                connection=connection, actor_user=request.user, ip_address=request.META.get("REMOTE_ADDR")
            )
        self.message_user(request, f"{queryset.count()} GoTo connection(s) disconnected.")


register_tenant_records(GoToConnection, "GoTo connection", order=31)
