"""The scheduled jobs: metering, invoices, daily reports, stale-call cleanup. Each runs twice to the same result."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage

from billing import services as billing_services
from billing.models import Invoice, UsageRecord
from billing.tasks import aggregate_usage, generate_daily_report, sync_billing
from calls.models import Call
from calls.services import call_transition
from calls.tasks import cleanup_sessions
from tests import factories

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def ended_call(tenant, *, answered: datetime, seconds: int, agent=None) -> Call:
    call = factories.CallFactory(
        tenant=tenant, started_at=answered - timedelta(seconds=5), **({"agent": agent} if agent else {})
    )
    call_transition(call=call, to_status="ringing", at=answered - timedelta(seconds=4))
    call_transition(call=call, to_status="connected", at=answered)
    return call_transition(
        call=call, to_status="ended", end_reason="caller_hangup", at=answered + timedelta(seconds=seconds)
    )


@pytest.fixture
def per_minute_plan(tenant):
    plan = factories.PlanFactory(
        billing_increment_seconds=60,
        price_per_minute=Decimal("0.1000"),
        included_minutes=1,
        monthly_fee=Decimal("10.00"),
    )
    factories.SubscriptionFactory(tenant=tenant, plan=plan)
    return plan


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    return NOW


def test_a_call_is_metered_when_it_ends(tenant, per_minute_plan, frozen_now):
    call = ended_call(tenant, answered=NOW - timedelta(minutes=20), seconds=61)
    record = UsageRecord.objects.dangerously_unscoped().get(call=call)
    assert (record.quantity, record.billable_quantity, record.amount) == (61, 120, Decimal("0.2000"))
    assert aggregate_usage() == 0


def test_aggregate_usage_meters_each_missed_call_once(tenant, other_tenant, per_minute_plan, frozen_now):
    call = ended_call(tenant, answered=NOW - timedelta(hours=1, minutes=20), seconds=61)
    other = ended_call(other_tenant, answered=NOW - timedelta(hours=1, minutes=10), seconds=30)
    UsageRecord.objects.dangerously_unscoped().all().delete()  # as if metering at the end had been lost
    assert aggregate_usage() == 2
    assert aggregate_usage() == 0  # re-running the same hours changes nothing
    record = UsageRecord.objects.dangerously_unscoped().get(call=call)
    assert (record.tenant, record.agent, record.quantity, record.billable_quantity) == (tenant, call.agent, 61, 120)
    assert record.amount == Decimal("0.2000")
    other_record = UsageRecord.objects.dangerously_unscoped().get(call=other)
    assert other_record.tenant == other_tenant
    assert (other_record.quantity, other_record.billable_quantity, other_record.amount) == (30, 30, Decimal("0"))
    assert UsageRecord.objects.dangerously_unscoped().count() == 2


def test_aggregate_usage_skips_calls_still_in_progress(tenant, frozen_now):
    factories.CallFactory(tenant=tenant, status="initial")
    assert aggregate_usage() == 0
    assert not UsageRecord.objects.dangerously_unscoped().exists()


def test_sync_billing_drafts_one_invoice_per_tenant_for_last_month(tenant, other_tenant, per_minute_plan, frozen_now):
    ended_call(tenant, answered=datetime(2026, 10, 5, 9, 0, tzinfo=UTC), seconds=150)  # 3 billable minutes
    assert sync_billing() == 2
    assert sync_billing() == 2
    invoice = Invoice.objects.get(tenant=tenant)
    assert (invoice.period_start, invoice.period_end) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert invoice.line_items[1]["quantity"] == "2.00"  # 3 minutes less 1 included
    assert invoice.total == Decimal("10.20")
    assert Invoice.objects.dangerously_unscoped().count() == 2
    assert Invoice.objects.get(tenant=other_tenant).total == Decimal("0.00")  # no plan, no usage


def test_daily_report_is_a_csv_per_tenant_with_only_its_usage(tenant, other_tenant, per_minute_plan, frozen_now):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    ended_call(tenant, answered=datetime(2026, 11, 21, 15, 0, tzinfo=UTC), seconds=90, agent=agent)
    ended_call(other_tenant, answered=datetime(2026, 11, 21, 16, 0, tzinfo=UTC), seconds=45)
    assert generate_daily_report() == 2
    generate_daily_report()
    name = f"reports/{tenant.pk}/usage-2026-11-21.csv"
    rows = list(csv.DictReader(io.StringIO(default_storage.open(name).read().decode())))
    assert rows == [
        {
            "date": "2026-11-21",
            "agent_id": str(agent.pk),
            "agent_name": "Front desk",
            "calls": "1",
            "seconds": "90",
            "billable_seconds": "120",
            "amount": "0.2000",
        }
    ]


def test_cleanup_sessions_ends_calls_whose_session_died(tenant, settings, frozen_now):
    limit = settings.CALL_SETUP_TIMEOUT_SECONDS + settings.CALL_MAX_DURATION_SECONDS
    stale = factories.CallFactory(tenant=tenant, started_at=NOW - timedelta(seconds=limit + 60))
    call_transition(call=stale, to_status="ringing", at=stale.started_at)
    fresh = factories.CallFactory(tenant=tenant, started_at=NOW - timedelta(minutes=5))
    assert cleanup_sessions() == 1
    assert cleanup_sessions() == 0
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.end_reason, stale.ended_at, stale.duration_seconds) == ("ended", "max_duration", NOW, 0)
    assert fresh.status == "initial"


def test_billable_rounding_follows_the_plan():
    plan = factories.PlanFactory.build(billing_increment_seconds=6)
    assert [billing_services._billable_seconds(s, plan) for s in (0, 1, 6, 7)] == [0, 6, 6, 12]
    assert billing_services._billable_seconds(7, None) == 7
