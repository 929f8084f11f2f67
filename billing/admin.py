"""Staff admin for plans, subscriptions, usage (records, daily aggregates, reports, alerts), credit and invoices."""

from django.contrib import admin
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from billing.models import (
    CreditBucket,
    Invoice,
    Plan,
    Subscription,
    UsageAggregate,
    UsageAlert,
    UsageRecord,
    UsageReport,
)
from calls.models import Call
from core.admin_base import (
    PlatformModelAdmin,
    RecordAdminMixin,
    TenantOwnedAdmin,
    admin_change_link,
    format_seconds,
    related_count,
)
from tenants.admin import register_tenant_records


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


@admin.register(UsageAggregate)
class UsageAggregateAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """Recomputed hourly from the usage records (aggregate_usage): per tenant, UTC day and agent."""

    list_display = ("day", "tenant", "agent", "calls", "seconds", "billable_seconds", "credit_seconds", "amount")
    search_fields = ("tenant__name", "tenant__slug", "agent__name")
    list_select_related = ("tenant", "agent")
    date_hierarchy = "day"
    ordering = ("-day", "tenant__name")
    show_full_result_count = False
    fields = (
        "tenant",
        "day",
        "agent",
        "calls",
        "seconds",
        "billable_seconds",
        "credit_seconds",
        "amount",
        "updated_at",
    )


@admin.register(UsageReport)
class UsageReportAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """The daily usage CSV of each tenant (generate_daily_report); tenants download it at /v1/usage/reports."""

    list_display = ("day", "tenant", "rows", "download", "updated_at")
    search_fields = ("tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    date_hierarchy = "day"
    ordering = ("-day", "tenant__name")
    fields = ("tenant", "day", "rows", "download", "created_at", "updated_at")

    def get_urls(self):
        view = self.admin_site.admin_view(self.download_view)
        return [path("<uuid:pk>/download/", view, name="billing_usagereport_download"), *super().get_urls()]

    def download_view(self, request, pk):
        report = get_object_or_404(UsageReport, pk=pk)
        return FileResponse(report.file.open("rb"), as_attachment=True, filename=report.file.name.rsplit("/", 1)[-1])

    @admin.display(description="CSV")
    def download(self, obj):
        url = reverse("admin:billing_usagereport_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.file.name.rsplit("/", 1)[-1]) if obj.file else "—"


@admin.register(UsageAlert)
class UsageAlertAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """Thresholds tenants crossed, each sent once as usage.threshold_reached."""

    list_display = ("created_at", "tenant", "kind", "threshold", "period", "used_seconds", "allowance_seconds")
    list_filter = ("kind", "threshold")
    search_fields = ("tenant__name", "tenant__slug", "period")
    list_select_related = ("tenant",)
    ordering = ("-created_at",)
    fields = ("tenant", "kind", "threshold", "period", "used_seconds", "allowance_seconds", "created_at")


register_tenant_records(Invoice, "Invoices", order=60)
