"""Data retention (docs/billing.md#retention), applied daily by `voiceapp.tasks.apply_retention`.

The policy: call records and transcripts after 7 years, audio recordings after 1 year,
usage records after 7 years, audit logs after 7 years; session state lives only in Redis with a TTL.
Hot, warm and archive tiers are storage decisions outside the database. Finished webhook deliveries
are kept 90 days. Every period is a setting (RETENTION_DAYS); rows go in batches, files with them.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.models import UsageAggregate, UsageAlert, UsageRecord, UsageReport
from calls.models import Call, Recording
from integrations.models import WebhookDelivery
from tenants.models import AuditLog, IdempotencyKey

logger = logging.getLogger(__name__)
BATCH = 1000


def _purge(queryset, *, files: str | None = None) -> int:
    """Delete the rows of `queryset` (across tenants) in batches, with the stored file in field `files`."""
    deleted = 0
    while ids := list(queryset.values_list("pk", flat=True)[:BATCH]):
        batch = queryset.model.objects.filter(pk__in=ids)
        if files:
            for row in batch:
                getattr(row, files).delete(save=False)
        batch.delete()
        deleted += len(ids)
    return deleted


def retention_apply(*, now=None) -> dict[str, int]:
    """Delete what is older than its retention period; returns the rows deleted per kind."""
    now = now or timezone.now()
    days = settings.RETENTION_DAYS

    def before(kind: str):
        return now - timedelta(days=days[kind])

    calls_before = before("calls")
    old_recordings = Q(expires_at__lt=now) | Q(expires_at__isnull=True, created_at__lt=before("recordings"))
    recordings = Recording.objects.unscoped().filter(old_recordings | Q(call__created_at__lt=calls_before))
    deleted = {
        "recordings": _purge(recordings, files="file"),  # first: a call's rows go with it, its files would not
        "calls": _purge(Call.objects.unscoped().filter(created_at__lt=calls_before)),  # with turns, events, tools
        "usage_records": _purge(UsageRecord.objects.unscoped().filter(period_end__lt=before("usage"))),
        "usage_aggregates": _purge(UsageAggregate.objects.unscoped().filter(day__lt=before("usage").date())),
        "usage_alerts": _purge(UsageAlert.objects.unscoped().filter(created_at__lt=before("usage"))),
        "usage_reports": _purge(UsageReport.objects.unscoped().filter(day__lt=before("usage").date()), files="file"),
        "audit_logs": _purge(AuditLog.objects.unscoped().filter(created_at__lt=before("audit"))),
        "webhook_deliveries": _purge(
            WebhookDelivery.objects.unscoped()
            .filter(created_at__lt=before("webhook_deliveries"))
            .exclude(status=WebhookDelivery.Status.PENDING)
        ),
        "idempotency_keys": _purge(IdempotencyKey.objects.unscoped().filter(expires_at__lt=now)),
    }
    logger.info("retention applied: %s", deleted)
    return deleted
