"""Reads for plans and usage."""

from datetime import date
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import CreditBucket, Invoice, Plan, Subscription, UsageRecord, UsageReport
from tenants.models import Tenant

CENT = Decimal("0.01")


def plan_for_tenant(*, tenant: Tenant) -> Plan | None:
    """The tenant's subscribed plan, else the platform's default plan, else None."""
    subscription = Subscription.objects.select_related("plan").filter(tenant=tenant).first()
    if subscription is not None:
        return subscription.plan
    return Plan.objects.filter(is_default=True).first()


DEFAULT_MAX_CONCURRENT_CALLS = 10


def credit_seconds_remaining(*, tenant: Tenant, now=None) -> int:
    """Unexpired credit the tenant can still draw on."""
    now = now or timezone.now()
    buckets = (
        CreditBucket.objects.for_tenant(tenant)
        .filter(valid_from__lte=now)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    )
    return buckets.aggregate(total=Sum("seconds_remaining"))["total"] or 0


def tenant_may_place_calls(*, tenant: Tenant) -> bool:
    """A tenant with an active subscription is billed for overage; one without needs remaining credit."""
    subscribed = Subscription.objects.filter(tenant=tenant, status=Subscription.Status.ACTIVE).exists()
    return subscribed or credit_seconds_remaining(tenant=tenant) > 0


def max_concurrent_calls(*, tenant: Tenant) -> int:
    plan = plan_for_tenant(tenant=tenant)
    return plan.max_concurrent_calls if plan else DEFAULT_MAX_CONCURRENT_CALLS


def usage_records_between(*, tenant: Tenant, start: date, end: date):
    """The tenant's metered calls that ended on the UTC days [start, end]."""
    return UsageRecord.objects.for_tenant(tenant).filter(
        metric=UsageRecord.Metric.CALL_SECONDS, period_end__date__gte=start, period_end__date__lte=end
    )


def usage_summary(*, tenant: Tenant, start: date, end: date, group_by: str) -> dict:
    """Calls, minutes and cost per day or per agent for the days [start, end] (UTC), from metered usage."""
    records = usage_records_between(tenant=tenant, start=start, end=end)
    key = {"day": TruncDate("period_end"), "agent": F("agent_id")}[group_by]
    rows = (
        records.annotate(group=key)
        .values("group")
        .annotate(calls=Count("id"), seconds=Sum("quantity"), billable=Sum("billable_quantity"), cost=Sum("amount"))
        .order_by("group")
    )
    totals = records.aggregate(
        calls=Count("id"), seconds=Sum("quantity"), billable=Sum("billable_quantity"), cost=Sum("amount")
    )
    return {"totals": _usage_row(totals), "rows": [{"group": row["group"], **_usage_row(row)} for row in rows]}


def _usage_row(row: dict) -> dict:
    return {
        "calls": row["calls"] or 0,
        "minutes": (Decimal(row["seconds"] or 0) / 60).quantize(Decimal("0.01")),
        "billable_minutes": (Decimal(row["billable"] or 0) / 60).quantize(Decimal("0.01")),
        "cost": Decimal(row["cost"] or 0).quantize(Decimal("0.0001")),
    }


def usage_against_plan(*, tenant: Tenant, start: date, end: date) -> dict:
    """The period's billable minutes against the plan, priced with the invoice's own line items."""
    from billing.services import invoice_lines  # services import this module

    plan = plan_for_tenant(tenant=tenant)
    totals = usage_records_between(tenant=tenant, start=start, end=end).aggregate(
        billable=Sum("billable_quantity"), credit=Sum("credit_seconds")
    )
    minutes, credit = Decimal(totals["billable"] or 0) / 60, Decimal(totals["credit"] or 0) / 60
    lines = invoice_lines(plan, minutes, credit)
    included = plan.included_minutes if plan else 0
    overage = max(minutes - included - credit, Decimal("0")) if plan else Decimal("0")
    return {
        "plan": plan,
        "currency": plan.currency if plan else "USD",
        "included_minutes": included,
        "billable_minutes": minutes.quantize(CENT),
        "credit_minutes": credit.quantize(CENT),
        "overage_minutes": overage.quantize(CENT),
        "lines": lines,
        "estimated_cost": sum((Decimal(line["amount"]) for line in lines), Decimal("0.00")),
        "credit_minutes_remaining": (Decimal(credit_seconds_remaining(tenant=tenant)) / 60).quantize(CENT),
    }


def invoice_list(*, tenant: Tenant):
    return Invoice.objects.for_tenant(tenant).order_by("-period_start", "-id")


def usage_report_list(*, tenant: Tenant):
    return UsageReport.objects.for_tenant(tenant).order_by("-day", "-id")
