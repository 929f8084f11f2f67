"""Staff admin for plans, subscriptions, usage, credit buckets and invoices."""

from django.contrib import admin

from billing.models import CreditBucket, Invoice, Plan, Subscription, UsageRecord
from calls.models import Call
from voiceapp.admin_base import (
    PlatformModelAdmin,
    RecordAdminMixin,
    TenantOwnedAdmin,
    admin_change_link,
    format_seconds,
    related_count,
)


@admin.register(Plan)
class PlanAdmin(PlatformModelAdmin):
    list_display = (
        "name",
        "slug",
        "monthly_fee",
        "currency",
        "included_minutes",
        "price_per_minute",
        "billing_increment_seconds",
        "max_concurrent_calls",
        "is_default",
        "subscriber_count",
    )
    list_filter = ("is_default", "currency")
    search_fields = ("name", "slug")
    ordering = ("monthly_fee", "name")
    prepopulated_fields = {"slug": ("name",)}
    create_only_fields = ("slug",)
    readonly_fields = ("subscriber_count", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_default")}),
        (
            "Pricing",
            {
                "fields": (
                    "currency",
                    "monthly_fee",
                    "included_minutes",
                    "price_per_minute",
                    "billing_increment_seconds",
                ),
                "description": "Changes apply to usage metered from now on; issued invoices keep their amounts.",
            },
        ),
        ("Limits", {"fields": ("max_concurrent_calls", "api_rate_limit_per_minute", "api_burst_limit")}),
        ("Overview", {"fields": ("subscriber_count", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        subscribers = related_count(Subscription.objects.all(), "plan")
        return super().get_queryset(request).annotate(subscriber_count=subscribers)

    @admin.display(description="Subscribers", ordering="subscriber_count")
    def subscriber_count(self, obj):
        return obj.subscriber_count


@admin.register(Subscription)
class SubscriptionAdmin(TenantOwnedAdmin):
    list_display = ("tenant", "plan", "status", "started_at", "updated_at")
    list_filter = ("status", "plan")
    search_fields = ("tenant__name", "tenant__slug", "plan__name")
    list_select_related = ("tenant", "plan")
    autocomplete_fields = ("tenant", "plan")
    ordering = ("tenant__name",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(UsageRecord)
class UsageRecordAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """Written by metering, once per call and metric; invoices are built from these rows."""

    list_display = ("period_start", "tenant", "metric", "quantity", "billable_quantity", "amount", "agent", "call_link")
    list_filter = ("metric",)
    search_fields = ("tenant__name", "tenant__slug", "agent__name")
    list_select_related = ("tenant", "agent")
    uuid_search_fields = ("pk", "call")
    date_hierarchy = "period_start"
    ordering = ("-period_start",)
    show_full_result_count = False
    fields = (
        "tenant",
        "metric",
        "call",
        "agent",
        "period_start",
        "period_end",
        "quantity",
        "billable_quantity",
        "amount",
        "created_at",
    )

    @admin.display(description="Call")
    def call_link(self, obj):
        return admin_change_link(Call, obj.call_id, str(obj.call_id)[:8]) if obj.call_id else "—"


@admin.register(CreditBucket)
class CreditBucketAdmin(TenantOwnedAdmin):
    list_display = ("tenant", "source", "remaining", "total", "valid_from", "expires_at", "created_at")
    list_filter = ("source",)
    search_fields = ("tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("tenant__name", "expires_at")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("tenant", "source")}),
        (
            "Seconds",
            {
                "fields": ("seconds_total", "seconds_remaining"),
                "description": "Calls draw down the remaining seconds, oldest-expiring bucket first.",
            },
        ),
        ("Validity", {"fields": ("valid_from", "expires_at", "created_at", "updated_at")}),
    )

    @admin.display(description="Remaining", ordering="seconds_remaining")
    def remaining(self, obj):
        return format_seconds(obj.seconds_remaining)

    @admin.display(description="Total", ordering="seconds_total")
    def total(self, obj):
        return format_seconds(obj.seconds_total)


@admin.register(Invoice)
class InvoiceAdmin(TenantOwnedAdmin):
    list_display = ("number", "tenant", "status", "period_start", "period_end", "total", "currency", "issued_at")
    list_filter = ("status", "currency")
    search_fields = ("number", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    date_hierarchy = "period_start"
    ordering = ("-period_start", "number")
    create_only_fields = ("tenant", "number")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("number", "tenant", "status", "issued_at", "paid_at")}),
        ("Period", {"fields": ("period_start", "period_end")}),
        ("Amounts", {"fields": ("currency", "subtotal", "total")}),
        (
            "Line items (JSON)",
            {"fields": ("line_items",), "description": "A list of {description, quantity, unit_price, amount}."},
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )
