"""apply_retention (docs/billing.md#retention) and run_outbox, the embedded defaults' sweeper and scheduler."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from calls.models import Call, Recording, TranscriptTurn
from integrations.models import WebhookDelivery
from integrations.webhooks import outbox
from tenants.models import AuditLog
from tests import factories
from tests.webhooks.receiver import ReceiverServer
from voiceapp.tasks import apply_retention

pytestmark = pytest.mark.django_db


def aged(obj, days: int, field: str = "created_at"):
    type(obj)._base_manager.filter(pk=obj.pk).update(**{field: timezone.now() - timedelta(days=days)})
    return obj


def test_retention_deletes_what_the_seed_no_longer_keeps_and_nothing_else(tenant):
    old_call = aged(factories.CallFactory(tenant=tenant), 7 * 365 + 1)
    factories.TranscriptTurnFactory(call=old_call)
    kept_call = aged(factories.CallFactory(tenant=tenant), 7 * 365 - 1)
    old_recording = aged(factories.RecordingFactory(call=kept_call), 366)
    expired_recording = factories.RecordingFactory(expires_at=timezone.now() - timedelta(minutes=1))
    kept_recording = factories.RecordingFactory()
    long_ago = timezone.now() - timedelta(days=7 * 365 + 1)
    factories.UsageRecordFactory(tenant=tenant, period_start=long_ago, period_end=long_ago)
    aged(factories.AuditLogFactory(tenant=tenant), 7 * 365 + 1)
    kept_audit = factories.AuditLogFactory(tenant=tenant)
    old_delivery = aged(factories.WebhookDeliveryFactory(), 91)
    pending = aged(factories.WebhookDeliveryFactory(status="pending", next_attempt_at=timezone.now()), 91)
    storage = old_recording.file.storage
    old_file = old_recording.file.name

    deleted = apply_retention()

    assert {k: v for k, v in deleted.items() if v} == {
        "recordings": 2,
        "calls": 1,
        "usage_records": 1,
        "audit_logs": 1,
        "webhook_deliveries": 1,
    }
    assert not Call.objects.dangerously_unscoped().filter(pk=old_call.pk).exists()
    assert not TranscriptTurn.objects.dangerously_unscoped().filter(call_id=old_call.pk).exists()
    assert set(Recording.objects.dangerously_unscoped().values_list("pk", flat=True)) == {kept_recording.pk}
    assert not storage.exists(old_file)
    assert not Recording.objects.dangerously_unscoped().filter(pk=expired_recording.pk).exists()
    assert Call.objects.dangerously_unscoped().filter(pk=kept_call.pk).exists()
    assert list(AuditLog.objects.dangerously_unscoped().values_list("pk", flat=True)) == [kept_audit.pk]
    assert set(WebhookDelivery.objects.dangerously_unscoped().values_list("pk", flat=True)) == {pending.pk}
    assert not WebhookDelivery.objects.dangerously_unscoped().filter(pk=old_delivery.pk).exists()
    assert not any(apply_retention().values())  # idempotent


def test_run_outbox_sends_due_deliveries_and_runs_due_periodic_tasks(tenant):
    every_minute, _ = CrontabSchedule.objects.get_or_create(minute="*", hour="*", timezone="UTC")
    task = PeriodicTask.objects.create(
        name="aggregate_usage", task="billing.tasks.aggregate_usage", crontab=every_minute,
        last_run_at=timezone.now() - timedelta(minutes=5),
    )  # fmt: skip
    with ReceiverServer() as receiver:
        factories.WebhookEndpointFactory(tenant=tenant, url=receiver.url)
        outbox.webhook_emit(tenant_id=tenant.pk, event_type="call.ended", data={})
        out = StringIO()
        call_command("run_outbox", "--once", stdout=out)
        assert len(receiver.receiver.requests) == 1

    assert "1 deliveries attempted" in out.getvalue()
    task.refresh_from_db()
    assert task.total_run_count == 1 and task.last_run_at > timezone.now() - timedelta(seconds=30)
    call_command("run_outbox", "--once", stdout=StringIO())
    task.refresh_from_db()
    assert task.total_run_count == 1  # not due again within the minute


def test_run_outbox_leaves_the_work_to_celery_when_a_broker_is_configured(monkeypatch):
    monkeypatch.setattr(outbox, "broker_available", lambda: True)
    with pytest.raises(CommandError, match="A broker is configured"):
        call_command("run_outbox", "--once", stdout=StringIO())
