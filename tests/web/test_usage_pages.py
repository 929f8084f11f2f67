"""The usage & billing page: figures per day and agent from metered usage, the plan, invoices, concurrency."""

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, UsageRecord
from calls.state_machine import CallStatus
from tests import factories

pytestmark = pytest.mark.django_db

USAGE_URL = "/usage/"
MARCH = f"{USAGE_URL}?period=custom&start=2026-03-01&end=2026-03-31"
CHARTS = ("chart-minutes-per-day", "chart-calls-per-day", "chart-minutes-per-agent", "chart-calls-per-agent")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def metered(tenant, agent, *, ended_at: datetime, seconds: int, billable: int | None = None, amount="0", **fields):
    call = factories.CallFactory(
        tenant=tenant,
        agent=agent or factories.AgentFactory(tenant=tenant),  # no agent: the agent was deleted since
        status=CallStatus.ENDED,
        started_at=ended_at - timedelta(seconds=seconds),
        ended_at=ended_at,
        duration_seconds=seconds,
    )
    return factories.UsageRecordFactory(
        tenant=tenant,
        call=call,
        agent=agent,
        period_start=ended_at - timedelta(seconds=seconds),
        period_end=ended_at,
        quantity=seconds,
        billable_quantity=billable if billable is not None else seconds,
        amount=Decimal(amount),
        **fields,
    )


def usage_data(response) -> dict:
    match = re.search(r'<script id="usage-data" type="application/json">(.*?)</script>', response.content.decode())
    return json.loads(match.group(1))


@pytest.fixture
def plan(tenant):
    plan = factories.PlanFactory(
        name="Starter",
        included_minutes=1,
        monthly_fee=Decimal("49.00"),
        price_per_minute=Decimal("0.0500"),
        max_concurrent_calls=3,
    )
    factories.SubscriptionFactory(tenant=tenant, plan=plan)
    return plan


@pytest.fixture
def march_usage(tenant, other_tenant, plan):
    """Agent A: 60 s and 90 s on March 10; agent B: 30 s on March 11. The other tenant: a long call on March 10."""
    agent_a = factories.AgentFactory(tenant=tenant, name="Agent A")
    agent_b = factories.AgentFactory(tenant=tenant, name="Agent B")
    metered(tenant, agent_a, ended_at=at(10, 9), seconds=60, amount="0.0500")
    metered(tenant, agent_a, ended_at=at(10, 15), seconds=90, amount="0.0750", credit_seconds=30)
    metered(tenant, agent_b, ended_at=at(11), seconds=30, amount="0.0250")
    metered(tenant, agent_a, ended_at=datetime(2026, 4, 1, 0, 30, tzinfo=UTC), seconds=600)  # April: outside
    theirs = factories.AgentFactory(tenant=other_tenant, name="Globex agent")
    metered(other_tenant, theirs, ended_at=at(10), seconds=6000, amount="5.0000")
    return agent_a, agent_b


def test_usage_page_figures_equal_the_metered_usage(web_client, march_usage):
    response = web_client.get(MARCH)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["page_title"] == "Usage & billing"
    assert response.context["totals"] == {
        "calls": 3,
        "minutes": Decimal("3.00"),
        "billable_minutes": Decimal("3.00"),
        "cost": Decimal("0.1500"),
    }
    assert 'data-testid="usage-total-calls">3<' in html
    assert 'data-testid="usage-total-minutes">3.00<' in html
    assert 'data-testid="usage-empty"' not in html
    assert "Mar 1, 2026 – Mar 31, 2026" in html
    assert "Globex agent" not in html


def test_chart_data_has_every_day_and_agent(web_client, march_usage):
    data = usage_data(web_client.get(MARCH))

    assert data["start"] == "2026-03-01" and data["end"] == "2026-03-31"
    assert data["days"] == [f"2026-03-{day:02d}" for day in range(1, 32)]
    assert data["minutes_per_day"] == [0.0] * 9 + [2.5, 0.5] + [0.0] * 20
    assert data["calls_per_day"] == [0] * 9 + [2, 1] + [0] * 20
    assert data["agents"] == ["Agent A", "Agent B"]
    assert data["minutes_per_agent"] == [2.5, 0.5]
    assert data["calls_per_agent"] == [2, 1]


def test_every_chart_has_its_canvas_and_the_script(web_client, march_usage):
    html = web_client.get(MARCH).content.decode()

    for testid in CHARTS:
        assert re.search(rf'<div class="chart-box"><canvas data-testid="{testid}"', html)
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert "voiceapp/usage.js" in html
    assert "cdn" not in html.lower()


def test_deleted_agents_usage_is_labelled(web_client, tenant, plan):
    metered(tenant, None, ended_at=at(12), seconds=120)

    data = usage_data(web_client.get(MARCH))

    assert data["agents"] == ["Deleted agent"]
    assert data["minutes_per_agent"] == [2.0]


def test_plan_shows_included_used_overage_and_estimate(web_client, tenant, march_usage):
    factories.CreditBucketFactory(tenant=tenant, seconds_total=900, seconds_remaining=600)

    html = web_client.get(MARCH).content.decode()

    section = html[html.index('data-testid="usage-plan"') : html.index('data-testid="usage-concurrency"')]
    assert 'data-testid="usage-plan-name">Starter<' in section
    assert 'data-testid="usage-plan-included">1<' in section
    assert 'data-testid="usage-plan-used">3.00<' in section
    assert 'data-testid="usage-plan-credit-used">0.50<' in section
    # 3 billable minutes - 1 included - 0.5 from credit = 1.5 minutes at 0.05 on top of the 49.00 fee.
    assert 'data-testid="usage-plan-overage">1.50<' in section
    assert 'data-testid="usage-plan-estimate">49.08 USD<' in section
    assert 'data-testid="usage-credit-balance">10.00 minutes<' in section


def test_other_tenants_credit_is_not_counted(web_client, tenant, other_tenant, plan):
    factories.CreditBucketFactory(tenant=other_tenant, seconds_total=6000, seconds_remaining=6000)

    html = web_client.get(USAGE_URL).content.decode()

    assert 'data-testid="usage-credit-balance">0.00 minutes<' in html


def test_without_a_plan_says_so(web_client):
    html = web_client.get(USAGE_URL).content.decode()

    assert 'data-testid="usage-plan-name">No plan<' in html


def test_invoices_are_listed_with_period_amount_and_status(web_client, tenant, other_tenant, plan):
    factories.InvoiceFactory(
        tenant=tenant,
        number="INV-202602-ACME",
        period_start=datetime(2026, 2, 1, tzinfo=UTC),
        period_end=datetime(2026, 3, 1, tzinfo=UTC),
        total=Decimal("49.10"),
        status=Invoice.Status.PAID,
        paid_at=datetime(2026, 3, 2, tzinfo=UTC),
        line_items=[{"description": "Starter plan", "quantity": "1", "unit_price": "49.00", "amount": "49.00"}],
    )
    factories.InvoiceFactory(tenant=other_tenant, number="INV-202602-GLOBEX")

    html = web_client.get(USAGE_URL).content.decode()

    section = html[html.index('data-testid="usage-invoices"') :]
    assert 'data-invoice="INV-202602-ACME"' in section
    assert "Feb 1, 2026 – Feb 28, 2026" in section
    assert "49.10 USD" in section
    assert '<span class="badge status-paid">Paid</span>' in section
    assert "Starter plan: 1 × 49.00 = 49.00" in section
    assert "INV-202602-GLOBEX" not in html


def test_concurrency_shows_the_plan_limit_and_the_active_calls(web_client, tenant, other_tenant, plan):
    factories.CallFactory(tenant=tenant, status=CallStatus.CONVERSING)
    factories.CallFactory(tenant=tenant, status=CallStatus.RINGING)
    now = timezone.now()
    factories.CallFactory(tenant=tenant, status=CallStatus.ENDED, started_at=now, ended_at=now, duration_seconds=5)
    factories.CallFactory(tenant=other_tenant, status=CallStatus.CONVERSING)

    html = web_client.get(USAGE_URL).content.decode()

    assert 'data-testid="usage-concurrency-active">2<' in html
    assert 'data-testid="usage-concurrency-limit">3<' in html


def test_empty_usage_still_draws_zero_charts(web_client):
    today = timezone.now().date()

    response = web_client.get(USAGE_URL)

    html = response.content.decode()
    data = usage_data(response)
    assert response.status_code == 200
    assert 'data-testid="usage-empty"' in html
    assert "No invoices yet" in html
    assert data["start"] == today.replace(day=1).isoformat() and data["end"] == today.isoformat()
    assert data["minutes_per_day"] == [0.0] * today.day
    assert data["agents"] == [] and data["calls_per_agent"] == []
    for testid in CHARTS:
        assert f'data-testid="{testid}"' in html


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("this_month", lambda t: t.replace(day=1), lambda t: t),
        ("last_month", lambda t: (t.replace(day=1) - timedelta(days=1)).replace(day=1), lambda t: t.replace(day=1) - timedelta(days=1)),
        ("last_30_days", lambda t: t - timedelta(days=29), lambda t: t),
    ],
)  # fmt: skip
def test_named_periods(web_client, period, first, last):
    today = timezone.now().date()

    response = web_client.get(f"{USAGE_URL}?period={period}&start=2020-01-01&end=2020-01-31")

    assert response.status_code == 200
    assert (response.context["start"], response.context["end"]) == (first(today), last(today))
    assert response.context["form"].initial["period"] == period  # the dates shown are the period's


def test_dates_without_a_named_period_are_used(web_client, march_usage):
    response = web_client.get(f"{USAGE_URL}?start=2026-03-11&end=2026-03-11")

    assert (response.context["start"], response.context["end"]) == (date(2026, 3, 11), date(2026, 3, 11))
    assert usage_data(response)["calls_per_day"] == [1]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("period=custom&end=2026-03-31", "start", "Choose the first day."),
        ("period=custom&start=2026-03-31&end=2026-03-01", "end", "The last day must be on or after the first day."),
        ("period=custom&start=2025-01-01&end=2026-03-01", "end", "A period may span at most 366 days."),
        ("start=2026-02-30&end=2026-03-01", "start", "Enter a valid date."),
        ("period=forever", "period", "Select a valid choice. forever is not one of the available choices."),
    ],
)
def test_invalid_period_shows_an_inline_error(web_client, march_usage, query, field, message):
    today = timezone.now().date()

    response = web_client.get(f"{USAGE_URL}?{query}")

    html = response.content.decode()
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert '<small class="field-error"' in html and message in html
    # The page still answers, for this month, with its charts.
    assert usage_data(response)["start"] == today.replace(day=1).isoformat()
    assert 'data-testid="chart-minutes-per-day"' in html


def test_other_tenant_sees_only_its_own_usage(other_web_client, march_usage):
    response = other_web_client.get(MARCH)

    data = usage_data(response)
    assert data["agents"] == ["Globex agent"]
    assert data["minutes_per_agent"] == [100.0]
    assert response.context["totals"]["calls"] == 1


def test_viewer_sees_usage_but_cannot_post(viewer_client, march_usage):
    assert viewer_client.get(MARCH).status_code == 200

    response = viewer_client.post(USAGE_URL, {"period": "last_month"})

    assert response.status_code == 403
    assert UsageRecord.objects.dangerously_unscoped().count() == 5
