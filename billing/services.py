"""Metering, invoicing and usage reports."""

import csv
import io
import logging
import math
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Sum

from billing import allowances
from billing.models import Invoice, Plan, UsageRecord, UsageReport
from billing.selectors import plan_for_tenant
from calls.models import Call
from tenants.models import Tenant

logger = logging.getLogger(__name__)
CENT = Decimal("0.01")


def _billable_seconds(seconds: int, plan: Plan | None) -> int:
    increment = plan.billing_increment_seconds if plan else 1
    return math.ceil(seconds / increment) * increment if seconds else 0


def usage_record_for_call(*, call: Call) -> UsageRecord | None:
    """Meter one ended call once (a second run finds the row and returns it unchanged)."""
    if call.status != Call.Status.ENDED:
        return None
    plan = plan_for_tenant(tenant=call.tenant)
    seconds = call.duration_seconds or 0
    billable = _billable_seconds(seconds, plan)
    price = plan.price_per_minute if plan else Decimal("0")
    record, created = UsageRecord.objects.get_or_create(
        tenant_id=call.tenant_id,
        call=call,
        metric=UsageRecord.Metric.CALL_SECONDS,
        defaults={
            "agent_id": call.agent_id,
            "period_start": call.answered_at or call.started_at or call.ended_at,
            "period_end": call.ended_at,
            "quantity": seconds,
            "billable_quantity": billable,
            "amount": (Decimal(billable) / 60 * price).quantize(Decimal("0.0001"), ROUND_HALF_UP),
        },
    )
    if created:  # only the run that created the record draws credit: exactly once per call
        allowances.usage_apply(record=record, plan=plan)
    return record


def usage_meter_ended_calls(*, since: datetime, until: datetime) -> int:
    """Meter every call that ended in [since, until) and is not metered yet; returns how many were new."""
    calls = (
        Call.objects.dangerously_unscoped()
        .filter(status=Call.Status.ENDED, ended_at__gte=since, ended_at__lt=until)
        .exclude(usage_records__metric=UsageRecord.Metric.CALL_SECONDS)
        .select_related("tenant")
    )
    metered = 0
    for call in calls.iterator():
        with transaction.atomic():
            if usage_record_for_call(call=call) is not None:
                metered += 1
    logger.info("metered %s calls that ended between %s and %s", metered, since.isoformat(), until.isoformat())
    return metered


def invoice_for_period(*, tenant: Tenant, period_start: datetime, period_end: datetime) -> Invoice:
    """The tenant's draft invoice for a period from its plan and metered usage (made once, then returned)."""
    existing = Invoice.objects.for_tenant(tenant).filter(period_start=period_start, period_end=period_end).first()
    if existing is not None:
        return existing
    plan = plan_for_tenant(tenant=tenant)
    usage = UsageRecord.objects.for_tenant(tenant).filter(
        metric=UsageRecord.Metric.CALL_SECONDS, period_end__gte=period_start, period_end__lt=period_end
    )
    totals = usage.aggregate(total=Sum("billable_quantity"), credit=Sum("credit_seconds"))
    lines = invoice_lines(plan, Decimal(totals["total"] or 0) / 60, Decimal(totals["credit"] or 0) / 60)
    subtotal = sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))
    invoice, _created = Invoice.objects.get_or_create(
        tenant=tenant,
        period_start=period_start,
        period_end=period_end,
        defaults={
            "number": f"INV-{period_start:%Y%m}-{tenant.slug[:30].upper()}",
            "currency": plan.currency if plan else "USD",
            "subtotal": subtotal,
            "total": subtotal,
            "line_items": lines,
        },
    )
    return invoice


def invoice_lines(plan: Plan | None, minutes: Decimal, credit_minutes: Decimal = Decimal("0")) -> list[dict]:
    """The line items of an invoice for these billable minutes (the usage page's estimate uses them too)."""
    if plan is None:
        return [
            {
                "description": "Call minutes (no plan)",
                "quantity": str(minutes.quantize(CENT)),
                "unit_price": "0",
                "amount": "0.00",
            }
        ]
    overage = max(minutes - plan.included_minutes - credit_minutes, Decimal("0"))
    credit = [
        {
            "description": "Call minutes covered by credit",
            "quantity": str(credit_minutes.quantize(CENT)),
            "unit_price": "0",
            "amount": "0.00",
        }
    ]
    return [
        {
            "description": f"{plan.name} plan",
            "quantity": "1",
            "unit_price": str(plan.monthly_fee),
            "amount": str(plan.monthly_fee),
        },
        {
            "description": f"Call minutes beyond the {plan.included_minutes} included",
            "quantity": str(overage.quantize(CENT)),
            "unit_price": str(plan.price_per_minute),
            "amount": str((overage * plan.price_per_minute).quantize(CENT, ROUND_HALF_UP)),
        },
        *(credit if credit_minutes else []),
    ]


def invoices_for_month(*, month_start: datetime) -> int:
    """Draft invoices for every live tenant for the calendar month starting at `month_start`."""
    period_end = (month_start + timedelta(days=32)).replace(day=1)
    count = 0
    for tenant in Tenant.objects.alive().iterator():
        invoice_for_period(tenant=tenant, period_start=month_start, period_end=period_end)
        count += 1
    return count


REPORT_COLUMNS = ["date", "agent_id", "agent_name", "calls", "seconds", "billable_seconds", "amount"]


def daily_report_for_tenant(*, tenant: Tenant, day_start: datetime) -> str:
    """Write the tenant's usage for one UTC day as CSV to storage; returns the file's storage name."""
    rows = (
        UsageRecord.objects.for_tenant(tenant)
        .filter(period_end__gte=day_start, period_end__lt=day_start + timedelta(days=1))
        .values("agent_id", "agent__name")
        .annotate(calls=Count("id"), seconds=Sum("quantity"), billable=Sum("billable_quantity"), amount=Sum("amount"))
        .order_by("agent__name")
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                day_start.date().isoformat(),
                row["agent_id"] or "",
                row["agent__name"] or "",
                row["calls"],
                row["seconds"],
                row["billable"],
                Decimal(row["amount"]).quantize(Decimal("0.0001")),
            ]
        )
    name = f"reports/{tenant.pk}/usage-{day_start:%Y-%m-%d}.csv"
    if default_storage.exists(name):
        default_storage.delete(name)  # re-running the report for a day replaces it
    saved = default_storage.save(name, ContentFile(buffer.getvalue().encode()))
    UsageReport.objects.update_or_create(
        tenant=tenant, day=day_start.date(), defaults={"file": saved, "rows": len(rows)}
    )
    return saved
