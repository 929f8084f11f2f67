"""Metering: credit drawn exactly once per call, included minutes first, thresholds once, idempotent aggregates."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage

from billing import services as billing_services
from billing.aggregation import usage_aggregate_day
from billing.models import CreditBucket, Invoice, UsageAggregate, UsageAlert, UsageRecord, UsageReport
from billing.tasks import aggregate_usage, generate_daily_report, sync_billing
from calls.services import call_transition
from integrations.models import WebhookDelivery
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


def ended_call(tenant, *, seconds: int, answered: datetime | None = None, agent=None):
    answered = answered or NOW - timedelta(hours=1, minutes=30)
    call = factories.CallFactory(tenant=tenant, started_at=answered, **({"agent": agent} if agent else {}))
    call_transition(call=call, to_status="ringing", at=answered)
    call_transition(call=call, to_status="connected", at=answered)
    return call_transition(
        call=call, to_status="ended", end_reason="caller_hangup", at=answered + timedelta(seconds=seconds)
    )


def bucket(tenant, seconds, **fields):
    fields.setdefault("valid_from", NOW - timedelta(days=100))
    return factories.CreditBucketFactory(tenant=tenant, seconds_total=seconds, seconds_remaining=seconds, **fields)


def remaining(*buckets):
    return [CreditBucket.objects.dangerously_unscoped().get(pk=b.pk).seconds_remaining for b in buckets]


def thresholds_sent(tenant):
    rows = (
        WebhookDelivery.objects.for_tenant(tenant).filter(event_type="usage.threshold_reached").order_by("created_at")
    )
    return sorted(
        (data["period"], data["kind"], data["threshold"]) for data in (json.loads(r.body)["data"] for r in rows)
    )


def test_credit_is_drawn_once_per_call_soonest_expiring_first(tenant):
    soon = bucket(tenant, 60, expires_at=NOW + timedelta(days=1))
    never = bucket(tenant, 600)
    call = ended_call(tenant, seconds=90)

    billing_services.usage_record_for_call(call=call)  # metering again (a redelivered task) changes nothing
    aggregate_usage()
    aggregate_usage()

    assert remaining(soon, never) == [0, 570]
    assert UsageRecord.objects.dangerously_unscoped().get(call=call).credit_seconds == 90


def test_expired_or_future_credit_is_not_drawn(tenant):
    expired = bucket(tenant, 60, valid_from=NOW - timedelta(days=40), expires_at=NOW - timedelta(days=1))
    future = factories.CreditBucketFactory(
        tenant=tenant, seconds_total=60, seconds_remaining=60, valid_from=NOW + timedelta(days=1)
    )
    ended_call(tenant, seconds=30)
    assert remaining(expired, future) == [60, 60]


def test_included_minutes_go_first_then_credit_then_overage(tenant):
    plan = factories.PlanFactory(included_minutes=1, price_per_minute=Decimal("0.1000"), monthly_fee=Decimal("10.00"))
    factories.SubscriptionFactory(tenant=tenant, plan=plan)
    credit = bucket(tenant, 30)
    first = ended_call(tenant, seconds=45, answered=datetime(2026, 10, 5, 9, 0, tzinfo=UTC))
    second = ended_call(tenant, seconds=45, answered=datetime(2026, 10, 6, 9, 0, tzinfo=UTC))
    third = ended_call(tenant, seconds=60, answered=datetime(2026, 10, 7, 9, 0, tzinfo=UTC))

    assert [UsageRecord.objects.dangerously_unscoped().get(call=c).credit_seconds for c in (first, second, third)] == [
        0,
        30,
        0,
    ]
    assert remaining(credit) == [0]
    sync_billing()
    invoice = Invoice.objects.get(tenant=tenant)
    # 150 s = 2.5 min: 1 included, 0.5 from credit, 1 billed at 0.10.
    assert [(line["description"], line["quantity"], line["amount"]) for line in invoice.line_items] == [
        (f"{plan.name} plan", "1", "10.00"),
        ("Call minutes beyond the 1 included", "1.00", "0.10"),
        ("Call minutes covered by credit", "0.50", "0.00"),
    ]
    assert invoice.total == Decimal("10.10")


def test_thresholds_of_included_minutes_are_sent_once_per_month(tenant):
    factories.WebhookEndpointFactory(tenant=tenant)
    factories.SubscriptionFactory(tenant=tenant, plan=factories.PlanFactory(included_minutes=10))
    ended_call(tenant, seconds=7 * 60)
    assert thresholds_sent(tenant) == []
    ended_call(tenant, seconds=90)  # 8.5 of 10 minutes
    ended_call(tenant, seconds=30)  # still past 80%: not again
    assert thresholds_sent(tenant) == [("2026-11", "included_minutes", 80)]
    ended_call(tenant, seconds=120)  # 11 of 10
    aggregate_usage()
    assert thresholds_sent(tenant) == [("2026-11", "included_minutes", 80), ("2026-11", "included_minutes", 100)]
    alert = UsageAlert.objects.for_tenant(tenant).get(threshold=100)
    assert (alert.period, alert.used_seconds, alert.allowance_seconds) == ("2026-11", 660, 600)


def test_thresholds_of_credit_are_sent_once_per_grant(tenant):
    factories.WebhookEndpointFactory(tenant=tenant)
    first = bucket(tenant, 100)
    ended_call(tenant, seconds=85)
    ended_call(tenant, seconds=20)  # runs out
    assert thresholds_sent(tenant) == [(f"credit:{first.pk}", "credit", 80), (f"credit:{first.pk}", "credit", 100)]
    assert remaining(first) == [0]
    second = bucket(tenant, 1000, valid_from=NOW - timedelta(days=1))  # new credit: a new period
    ended_call(tenant, seconds=800)
    assert (f"credit:{second.pk}", "credit", 80) in thresholds_sent(tenant)
    assert len(thresholds_sent(tenant)) == 3


def test_aggregates_per_tenant_day_and_agent_are_recomputed_not_added(tenant, other_tenant):
    desk, night = factories.AgentFactory(tenant=tenant), factories.AgentFactory(tenant=tenant)
    ended_call(tenant, seconds=61, agent=desk)
    ended_call(tenant, seconds=30, agent=desk)
    ended_call(tenant, seconds=10, agent=night)
    ended_call(other_tenant, seconds=45)

    aggregate_usage()
    first = sorted(
        UsageAggregate.objects.dangerously_unscoped().values_list(
            "tenant_id", "agent_id", "calls", "seconds", "billable_seconds"
        )
    )
    aggregate_usage()  # the same hour again
    usage_aggregate_day(day=NOW.date())  # and a redelivered task
    again = sorted(
        UsageAggregate.objects.dangerously_unscoped().values_list(
            "tenant_id", "agent_id", "calls", "seconds", "billable_seconds"
        )
    )

    assert first == again
    mine = {agent: (calls, seconds) for t, agent, calls, seconds, _ in first if t == tenant.pk}
    assert mine == {desk.pk: (2, 91), night.pk: (1, 10)}
    assert UsageAggregate.objects.dangerously_unscoped().count() == 3


def test_an_aggregate_follows_its_records(tenant):
    call = ended_call(tenant, seconds=30)
    aggregate_usage()
    moved = NOW - timedelta(days=3)  # corrected to another day
    UsageRecord.objects.dangerously_unscoped().filter(call=call).update(period_start=moved, period_end=moved)
    aggregate_usage()
    assert not UsageAggregate.objects.dangerously_unscoped().exists()


def test_daily_reports_are_listed_and_downloaded_by_their_tenant_only(tenant, other_tenant, api_client):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    ended_call(tenant, seconds=90, answered=datetime(2026, 11, 21, 15, 0, tzinfo=UTC), agent=agent)
    generate_daily_report()
    generate_daily_report()  # re-running replaces the day's report

    listing = api_client.get("/v1/usage/reports").json()
    [report] = listing["results"]
    download = api_client.get(f"/v1/usage/reports/{report['id']}")

    assert (listing["count"], report["day"], report["rows"]) == (1, "2026-11-21", 1)
    assert report["download_url"].endswith(f"/v1/usage/reports/{report['id']}")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    assert 'filename="usage-2026-11-21.csv"' in download["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows == [
        {
            "date": "2026-11-21",
            "agent_id": str(agent.pk),
            "agent_name": "Front desk",
            "calls": "1",
            "seconds": "90",
            "billable_seconds": "90",
            "amount": "0.0000",
        }
    ]
    assert UsageReport.objects.dangerously_unscoped().count() == 2  # one per live tenant
    assert default_storage.exists(UsageReport.objects.get(tenant=tenant).file.name)
