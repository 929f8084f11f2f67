"""What a metered call uses up: the month's included minutes first, then credit buckets, then overage.

Runs once per call, in the transaction that creates its UsageRecord (which is unique per call), so a
bucket is drawn down exactly once however often metering or its task runs. Crossing 80% or 100% of
the included minutes or of the credit is sent once per threshold and period as usage.threshold_reached.
"""

from datetime import UTC, datetime, timedelta

from django.db.models import F, Q, Sum

from billing.models import CreditBucket, Plan, UsageAlert, UsageRecord
from integrations.webhooks.outbox import webhook_emit
from tenants.models import Tenant

THRESHOLDS = (80, 100)


def month_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage_apply(*, record: UsageRecord, plan: Plan | None) -> None:
    """Draw the call's seconds beyond the included minutes from credit, then check the thresholds."""
    Tenant.objects.select_for_update().filter(pk=record.tenant_id).exists()  # one metering at a time per tenant
    start = month_start(record.period_end)
    used_before = _billable_this_month(record, start)
    included = (plan.included_minutes if plan else 0) * 60
    beyond = record.billable_quantity - max(included - used_before, 0)
    drawn = _draw(record, max(beyond, 0))
    if drawn:
        record.credit_seconds = drawn
        record.save(update_fields=["credit_seconds", "updated_at"])
        _check_credit(record)
    if included:
        used = used_before + record.billable_quantity
        _alert(record.tenant_id, UsageAlert.Kind.INCLUDED_MINUTES, f"{start:%Y-%m}", used, included)


def _billable_this_month(record: UsageRecord, start: datetime) -> int:
    # In metering order: whatever this month's calls metered before this one already used.
    next_month = (start + timedelta(days=32)).replace(day=1)
    earlier = (
        UsageRecord.objects.for_tenant(record.tenant_id)
        .filter(metric=record.metric, period_end__gte=start, period_end__lt=next_month)
        .exclude(pk=record.pk)
    )
    return earlier.aggregate(total=Sum("billable_quantity"))["total"] or 0


def _valid_buckets(tenant_id, at: datetime):
    return CreditBucket.objects.for_tenant(tenant_id).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=at), valid_from__lte=at
    )


def _draw(record: UsageRecord, seconds: int) -> int:
    """Take up to `seconds` from the tenant's valid buckets, soonest-expiring first; returns what was taken."""
    taken = 0
    buckets = _valid_buckets(record.tenant_id, record.period_end).filter(seconds_remaining__gt=0)
    soonest_first = (F("expires_at").asc(nulls_last=True), "created_at")  # never-expiring credit goes last
    for bucket in buckets.select_for_update().order_by(*soonest_first):
        if taken >= seconds:
            break
        part = min(bucket.seconds_remaining, seconds - taken)
        bucket.seconds_remaining -= part
        bucket.save(update_fields=["seconds_remaining", "updated_at"])
        taken += part
    return taken


def _check_credit(record: UsageRecord) -> None:
    buckets = _valid_buckets(record.tenant_id, record.period_end)
    totals = buckets.aggregate(total=Sum("seconds_total"), remaining=Sum("seconds_remaining"))
    newest = buckets.order_by("-valid_from", "-created_at").first()
    if newest is not None and totals["total"]:
        used = totals["total"] - totals["remaining"]
        _alert(record.tenant_id, UsageAlert.Kind.CREDIT, f"credit:{newest.pk}", used, totals["total"])


def _alert(tenant_id, kind: str, period: str, used: int, allowance: int) -> None:
    for threshold in THRESHOLDS:
        if used * 100 < allowance * threshold:
            break
        _alert_row, created = UsageAlert.objects.get_or_create(
            tenant_id=tenant_id,
            kind=kind,
            threshold=threshold,
            period=period,
            defaults={"used_seconds": used, "allowance_seconds": allowance},
        )
        if created:
            data = {
                "kind": kind,
                "threshold": threshold,
                "period": period,
                "used_seconds": used,
                "allowance_seconds": allowance,
                "used_percent": round(used * 100 / allowance, 1),
            }
            webhook_emit(tenant_id=tenant_id, event_type="usage.threshold_reached", data=data)
