"""What retention deletes of usage (core.retention): everything after RETENTION_DAYS["usage"]."""

from billing.models import UsageAggregate, UsageAlert, UsageRecord, UsageReport
from core.retention import Rule, register


def install() -> None:
    register(
        Rule(
            "usage_records", lambda now, c: UsageRecord.objects.dangerously_unscoped().filter(period_end__lt=c("usage"))
        )
    )
    register(
        Rule(
            "usage_aggregates",
            lambda now, c: UsageAggregate.objects.dangerously_unscoped().filter(day__lt=c("usage").date()),
        )
    )
    register(
        Rule("usage_alerts", lambda now, c: UsageAlert.objects.dangerously_unscoped().filter(created_at__lt=c("usage")))
    )
    register(
        Rule(
            "usage_reports",
            lambda now, c: UsageReport.objects.dangerously_unscoped().filter(day__lt=c("usage").date()),
            files="file",
        )
    )
