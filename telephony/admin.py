"""Staff admin for phone numbers: which tenant and agent answer a dialled number."""

from django.contrib import admin

from calls.models import Call
from core.admin_base import TenantOwnedAdmin, admin_changelist_link
from telephony.models import PhoneNumber
from tenants.admin import register_tenant_records


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
