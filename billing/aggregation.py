"""Usage per tenant, UTC day and agent (UsageAggregate), recomputed from the usage records.

Each run replaces the figures of the days it covers with sums over the records, so re-running the
hourly job, or a task redelivered after a worker died, never counts a call twice.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Sum

from billing.models import UsageAggregate, UsageRecord


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def days_between(since: datetime, until: datetime) -> list[date]:
    """The UTC days that [since, until) touches."""
    first, last = since.astimezone(UTC).date(), (until - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@transaction.atomic
def usage_aggregate_day(*, day: date) -> int:
    """Recompute every tenant's aggregates of one UTC day; returns how many rows the day has."""
    start, end = day_bounds(day)
    groups = (
        UsageRecord.objects.dangerously_unscoped()  # across tenants on purpose: the job covers the platform
        .filter(metric=UsageRecord.Metric.CALL_SECONDS, period_end__gte=start, period_end__lt=end)
        .values("tenant_id", "agent_id")
        .annotate(
            calls=Count("id"),
            seconds=Sum("quantity"),
            billable=Sum("billable_quantity"),
            credit=Sum("credit_seconds"),
            amount=Sum("amount"),
        )
        .order_by()
    )
    kept = []
    for group in groups:
        row, _created = UsageAggregate.objects.update_or_create(
            tenant_id=group["tenant_id"],
            day=day,
            agent_id=group["agent_id"],
            defaults={
                "calls": group["calls"],
                "seconds": group["seconds"] or 0,
                "billable_seconds": group["billable"] or 0,
                "credit_seconds": group["credit"] or 0,
                "amount": Decimal(group["amount"] or 0),
            },
        )
        kept.append(row.pk)
    UsageAggregate.objects.dangerously_unscoped().filter(day=day).exclude(pk__in=kept).delete()
    return len(kept)


def usage_aggregate_days(*, days: Iterable[date]) -> int:
    return sum(usage_aggregate_day(day=day) for day in days)
