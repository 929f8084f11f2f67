"""Plans and subscriptions, usage records, credit buckets and invoices."""

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from agents.models import Agent
from calls.models import Call
from core.db import BaseModel
from tenants.models import Tenant, TenantOwnedModel


class Plan(BaseModel):
    """What a tenant pays and may use: included minutes, price per extra minute, limits."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    included_minutes = models.PositiveIntegerField(default=0, help_text="Minutes per month covered by the fee.")
    price_per_minute = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("0.0000"),
        help_text="Charged per minute beyond the included ones.",
    )
    billing_increment_seconds = models.PositiveIntegerField(
        default=1,
        help_text="Usage is rounded up to this many seconds per call (1 = per-second billing, 60 = per-minute).",
    )
    currency = models.CharField(max_length=3, default="USD")
    max_concurrent_calls = models.PositiveIntegerField(default=10, help_text="Calls a tenant may have active at once.")
    api_rate_limit_per_minute = models.PositiveIntegerField(default=100, help_text="REST API requests per minute.")
    api_burst_limit = models.PositiveIntegerField(default=20, help_text="REST API requests in flight at once.")
    is_default = models.BooleanField(default=False, help_text="The plan of tenants without a subscription.")

    class Meta:
        ordering = ["monthly_fee", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="plan_single_default"),
            models.CheckConstraint(condition=Q(monthly_fee__gte=0), name="plan_fee_not_negative"),
            models.CheckConstraint(condition=Q(price_per_minute__gte=0), name="plan_price_not_negative"),
            models.CheckConstraint(condition=Q(billing_increment_seconds__gte=1), name="plan_increment_positive"),
            models.CheckConstraint(condition=Q(max_concurrent_calls__gte=1), name="plan_concurrency_positive"),
            models.CheckConstraint(condition=Q(api_rate_limit_per_minute__gte=1), name="plan_rate_limit_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Subscription(BaseModel):
    """The plan a tenant is on."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["tenant__name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "past_due", "canceled"]), name="subscription_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} on {self.plan}"


class UsageRecord(TenantOwnedModel):
    """Metered usage: one row per call per metric, or an aggregate for a period."""

    class Metric(models.TextChoices):
        CALL_SECONDS = "call_seconds", "Call seconds"

    metric = models.CharField(max_length=30, choices=Metric.choices, default=Metric.CALL_SECONDS)
    call = models.ForeignKey(Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    quantity = models.PositiveIntegerField(help_text="Units of the metric (seconds, for call_seconds).")
    billable_quantity = models.PositiveIntegerField(help_text="Quantity after the plan's rounding.")
    amount = models.DecimalField(
        max_digits=12, decimal_places=4, default=Decimal("0"), help_text="Cost at the plan's price."
    )
    credit_seconds = models.PositiveIntegerField(
        default=0, help_text="Billable seconds beyond the plan's included minutes drawn from credit buckets."
    )

    class Meta:
        ordering = ["-period_start"]
        indexes = [models.Index(fields=["tenant", "period_start"], name="usage_tenant_period_idx")]
        constraints = [
            # A call is metered once per metric, however often metering runs.
            models.UniqueConstraint(
                fields=["tenant", "call", "metric"], condition=Q(call__isnull=False), name="usage_once_per_call_metric"
            ),
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="usage_period_ordered"),
            models.CheckConstraint(
                condition=Q(billable_quantity__gte=F("quantity")), name="usage_billable_covers_quantity"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="usage_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.metric}"


class CreditBucket(TenantOwnedModel):
    """Prepaid or included minutes that calls draw down, oldest expiring first."""

    class Source(models.TextChoices):
        PLAN = "plan", "Included in plan"
        PURCHASE = "purchase", "Purchased"
        PROMOTION = "promotion", "Promotion"

    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PLAN)
    seconds_total = models.PositiveIntegerField(help_text="Seconds granted.")
    seconds_remaining = models.PositiveIntegerField(help_text="Seconds not yet used.")
    valid_from = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")

    class Meta:
        ordering = ["expires_at", "created_at"]
        indexes = [models.Index(fields=["tenant", "expires_at"], name="credit_tenant_expires_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(seconds_remaining__lte=F("seconds_total")), name="credit_remaining_within_total"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=F("valid_from")),
                name="credit_expires_after_start",
            ),
            models.CheckConstraint(
                condition=Q(source__in=["plan", "purchase", "promotion"]), name="credit_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.seconds_remaining}/{self.seconds_total} s ({self.source})"


class Invoice(TenantOwnedModel):
    """A bill for one period, made from usage and plan."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    number = models.CharField(max_length=50, unique=True, help_text="Human-readable invoice number.")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    line_items = models.JSONField(default=list, blank=True, help_text="[{description, quantity, unit_price, amount}]")
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start", "period_end"], name="invoice_unique_tenant_period"
            ),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="invoice_period_ordered"),
            models.CheckConstraint(condition=Q(subtotal__gte=0, total__gte=0), name="invoice_amounts_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "open", "paid", "void"]), name="invoice_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False), name="invoice_paid_has_paid_at"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class UsageAggregate(TenantOwnedModel):
    """Usage per tenant, UTC day and agent, recomputed from the usage records by `aggregate_usage`.

    Recomputing replaces the figures of the day, so re-running the job for the same hour never adds twice.
    """

    day = models.DateField()
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    calls = models.PositiveIntegerField(default=0)
    seconds = models.PositiveBigIntegerField(default=0)
    billable_seconds = models.PositiveBigIntegerField(default=0)
    credit_seconds = models.PositiveBigIntegerField(default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))

    class Meta:
        ordering = ["-day"]
        indexes = [models.Index(fields=["tenant", "day"], name="usage_aggregate_tenant_day_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "agent"], condition=Q(agent__isnull=False), name="usage_aggregate_unique_agent"
            ),
            models.UniqueConstraint(
                fields=["tenant", "day"], condition=Q(agent__isnull=True), name="usage_aggregate_unique_no_agent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.calls} calls, {self.seconds} s"


class UsageReport(TenantOwnedModel):
    """The daily usage CSV of one tenant, kept in the default storage and downloadable through the API."""

    day = models.DateField()
    file = models.FileField(upload_to="reports/", max_length=255)
    rows = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="usage_report_unique_tenant_day")]

    def __str__(self) -> str:
        return f"usage {self.day}"


class UsageAlert(TenantOwnedModel):
    """A usage threshold a tenant crossed: sent once per threshold and period as usage.threshold_reached."""

    class Kind(models.TextChoices):
        INCLUDED_MINUTES = "included_minutes", "Included minutes"
        CREDIT = "credit", "Credit"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the allowance used: 80 or 100.")
    period = models.CharField(
        max_length=64, help_text="The month (2026-11) for included minutes; the newest credit bucket for credit."
    )
    used_seconds = models.PositiveBigIntegerField()
    allowance_seconds = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "threshold", "period"], name="usage_alert_once_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.threshold}% ({self.period})"
