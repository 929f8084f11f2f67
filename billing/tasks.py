"""Scheduled billing jobs (their times: voiceapp/schedules.py). Thin: they pick the period and call one service."""

from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone

from billing import aggregation, services
from tenants.models import Tenant


def _hour_start(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def aggregate_usage(lookback_hours: int = 2) -> int:
    """Hourly: meter calls of the last completed hours that were missed, then recompute their days' aggregates.

    Idempotent and overlapping on purpose; returns how many calls were newly metered.
    """
    until = _hour_start(timezone.now())
    since = until - timedelta(hours=lookback_hours)
    metered = services.usage_meter_ended_calls(since=since, until=until)
    aggregation.usage_aggregate_days(days=aggregation.days_between(since, until))
    return metered


@shared_task(acks_late=True, reject_on_worker_lost=True)
def generate_daily_report() -> int:
    """Daily at 00:00 UTC: yesterday's usage per tenant as CSV."""
    yesterday = _day_start(timezone.now()) - timedelta(days=1)
    services.usage_meter_ended_calls(since=yesterday, until=yesterday + timedelta(days=1))
    aggregation.usage_aggregate_day(day=yesterday.date())
    tenants = Tenant.objects.alive()
    for tenant in tenants.iterator():
        services.daily_report_for_tenant(tenant=tenant, day_start=yesterday)
    return tenants.count()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sync_billing() -> int:
    """Monthly: draft invoices for the previous calendar month."""
    this_month = _day_start(timezone.now()).replace(day=1)
    previous_month = (this_month - timedelta(days=1)).replace(day=1)
    services.usage_meter_ended_calls(since=previous_month, until=this_month)
    return services.invoices_for_month(month_start=previous_month)
