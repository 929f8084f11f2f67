"""Billing app: database constraints of plans, subscriptions, usage, credit buckets and invoices."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from billing.models import Invoice, Plan, Subscription, UsageAggregate, UsageRecord
from tests import factories
from tests.models.constraints import assert_check_constraint, unique_violation

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)

CHECK_CASES = [
    pytest.param(
        "plan_fee_not_negative",
        lambda t: factories.PlanFactory(),
        {"monthly_fee": Decimal("-0.01")},
        {"monthly_fee": Decimal("0.00")},
        id="plan_fee_not_negative",
    ),
    pytest.param(
        "plan_price_not_negative",
        lambda t: factories.PlanFactory(),
        {"price_per_minute": Decimal("-0.0001")},
        {"price_per_minute": Decimal("0.0000")},
        id="plan_price_not_negative",
    ),
    pytest.param(
        "plan_increment_positive",
        lambda t: factories.PlanFactory(),
        {"billing_increment_seconds": 0},
        {"billing_increment_seconds": 60},
        id="plan_increment_positive",
    ),
    pytest.param(
        "plan_concurrency_positive",
        lambda t: factories.PlanFactory(),
        {"max_concurrent_calls": 0},
        {"max_concurrent_calls": 1},
        id="plan_concurrency_positive",
    ),
    pytest.param(
        "plan_rate_limit_positive",
        lambda t: factories.PlanFactory(),
        {"api_rate_limit_per_minute": 0},
        {"api_rate_limit_per_minute": 1},
        id="plan_rate_limit_positive",
    ),
    pytest.param(
        "subscription_status_valid",
        lambda t: factories.SubscriptionFactory(tenant=t),
        {"status": "trialing"},
        {"status": "past_due"},
        id="subscription_status_valid",
    ),
    pytest.param(
        "usage_period_ordered",
        lambda t: factories.UsageRecordFactory(tenant=t, period_start=T0),
        {"period_end": T0 - timedelta(seconds=1)},
        {"period_end": T0},
        id="usage_period_ordered",
    ),
    pytest.param(
        "usage_billable_covers_quantity",
        lambda t: factories.UsageRecordFactory(tenant=t, quantity=90, billable_quantity=120),
        {"billable_quantity": 89},
        {"billable_quantity": 90},
        id="usage_billable_covers_quantity",
    ),
    pytest.param(
        "usage_amount_not_negative",
        lambda t: factories.UsageRecordFactory(tenant=t),
        {"amount": Decimal("-0.0001")},
        {"amount": Decimal("0.0000")},
        id="usage_amount_not_negative",
    ),
    pytest.param(
        "credit_remaining_within_total",
        lambda t: factories.CreditBucketFactory(tenant=t, seconds_total=600, seconds_remaining=600),
        {"seconds_remaining": 601},
        {"seconds_remaining": 0},
        id="credit_remaining_within_total",
    ),
    pytest.param(
        "credit_expires_after_start",
        lambda t: factories.CreditBucketFactory(tenant=t, valid_from=T0),
        {"expires_at": T0},
        {"expires_at": T0 + DAY},
        id="credit_expires_after_start",
    ),
    pytest.param(
        "credit_source_valid",
        lambda t: factories.CreditBucketFactory(tenant=t),
        {"source": "gift"},
        {"source": "promotion"},
        id="credit_source_valid",
    ),
    pytest.param(
        "invoice_period_ordered",
        lambda t: factories.InvoiceFactory(tenant=t, period_start=T0, period_end=T0 + 31 * DAY),
        {"period_end": T0},
        {"period_end": T0 + timedelta(seconds=1)},
        id="invoice_period_ordered",
    ),
    pytest.param(
        "invoice_amounts_not_negative",
        lambda t: factories.InvoiceFactory(tenant=t),
        {"subtotal": Decimal("-0.01")},
        {"subtotal": Decimal("0.00")},
        id="invoice_amounts_not_negative-subtotal",
    ),
    pytest.param(
        "invoice_amounts_not_negative",
        lambda t: factories.InvoiceFactory(tenant=t),
        {"total": Decimal("-0.01")},
        {"total": Decimal("0.00")},
        id="invoice_amounts_not_negative-total",
    ),
    pytest.param(
        "invoice_status_valid",
        lambda t: factories.InvoiceFactory(tenant=t),
        {"status": "refunded"},
        {"status": "void"},
        id="invoice_status_valid",
    ),
    pytest.param(
        "invoice_paid_has_paid_at",
        lambda t: factories.InvoiceFactory(tenant=t),
        {"status": "paid"},
        {"status": "paid", "paid_at": T0},
        id="invoice_paid_has_paid_at",
    ),
]

UNIQUE_CONSTRAINTS_TESTED = {
    "plan_single_default",
    "usage_once_per_call_metric",
    "invoice_unique_tenant_period",
    "usage_aggregate_unique_agent",
    "usage_aggregate_unique_no_agent",
    "usage_report_unique_tenant_day",
    "usage_alert_once_per_period",
}

UNIQUE_FIELD_CASES = [
    pytest.param(
        lambda t, o: factories.PlanFactory(slug="pro"),
        lambda t, o: Plan.objects.create(name="Pro 2", slug="pro"),
        lambda t, o: Plan.objects.create(name="Pro 2", slug="pro-2"),
        id="Plan.slug",
    ),
    pytest.param(
        lambda t, o: factories.InvoiceFactory(tenant=t, number="INV-2026-0001"),
        lambda t, o: factories.InvoiceFactory(tenant=o, number="INV-2026-0001"),
        lambda t, o: factories.InvoiceFactory(tenant=o, number="INV-2026-0002"),
        id="Invoice.number",
    ),
    pytest.param(
        lambda t, o: factories.SubscriptionFactory(tenant=t),
        lambda t, o: factories.SubscriptionFactory(tenant=t),
        lambda t, o: factories.SubscriptionFactory(tenant=o),
        id="Subscription.tenant",
    ),
]


def test_every_constraint_of_the_app_has_a_test():
    models = list(apps.get_app_config("billing").get_models())
    declared = {c.name for m in models for c in m._meta.constraints}
    assert declared == {p.values[0] for p in CHECK_CASES} | UNIQUE_CONSTRAINTS_TESTED
    unique_fields = {f"{m.__name__}.{f.name}" for m in models for f in m._meta.fields if f.unique and not f.primary_key}
    assert unique_fields == {p.id for p in UNIQUE_FIELD_CASES}


@pytest.mark.parametrize(("constraint", "make", "bad", "good"), CHECK_CASES)
def test_check_constraint(tenant, constraint, make, bad, good):
    assert_check_constraint(tenant, constraint, make, bad, good)


@pytest.mark.parametrize(("make_first", "make_duplicate", "make_valid"), UNIQUE_FIELD_CASES)
def test_unique_field(tenant, other_tenant, make_first, make_duplicate, make_valid):
    model = type(make_first(tenant, other_tenant))

    with pytest.raises(IntegrityError), transaction.atomic():
        make_duplicate(tenant, other_tenant)

    assert model._base_manager.count() == 1
    make_valid(tenant, other_tenant)
    assert model._base_manager.count() == 2


def test_single_default_plan(db):
    factories.PlanFactory(slug="free", is_default=True)
    # Any number of non-default plans.
    factories.PlanFactory(slug="pro", is_default=False)
    factories.PlanFactory(slug="business", is_default=False)

    with unique_violation("plan_single_default"), transaction.atomic():
        Plan.objects.create(name="Starter", slug="starter", is_default=True)

    with unique_violation("plan_single_default"), transaction.atomic():
        Plan.objects.filter(slug="pro").update(is_default=True)

    # Moving the default: clear the old one first, then set the new one.
    Plan.objects.filter(slug="free").update(is_default=False)
    Plan.objects.filter(slug="pro").update(is_default=True)
    assert list(Plan.objects.filter(is_default=True).values_list("slug", flat=True)) == ["pro"]


def test_usage_once_per_call_and_metric(tenant, other_tenant):
    call = factories.CallFactory(tenant=tenant)
    factories.UsageRecordFactory(tenant=tenant, call=call, metric="call_seconds")

    with unique_violation("usage_once_per_call_metric"), transaction.atomic():
        UsageRecord.objects.create(
            tenant=tenant,
            call=call,
            metric="call_seconds",
            period_start=T0,
            period_end=T0,
            quantity=1,
            billable_quantity=1,
        )

    # Aggregates without a call may repeat; another call of the tenant is metered on its own.
    for _ in range(2):
        UsageRecord.objects.create(
            tenant=tenant,
            call=None,
            metric="call_seconds",
            period_start=T0,
            period_end=T0,
            quantity=1,
            billable_quantity=1,
        )
    factories.UsageRecordFactory(tenant=tenant, call=factories.CallFactory(tenant=tenant))
    assert UsageRecord.objects.filter(tenant=tenant, call__isnull=True).count() == 2
    assert UsageRecord.objects.filter(tenant=tenant, call__isnull=False).count() == 2


def test_invoice_unique_per_tenant_period(tenant, other_tenant):
    factories.InvoiceFactory(tenant=tenant, period_start=T0, period_end=T0 + 31 * DAY)

    with unique_violation("invoice_unique_tenant_period"), transaction.atomic():
        Invoice.objects.create(tenant=tenant, number="INV-X", period_start=T0, period_end=T0 + 31 * DAY)

    Invoice.objects.create(tenant=other_tenant, number="INV-Y", period_start=T0, period_end=T0 + 31 * DAY)
    Invoice.objects.create(tenant=tenant, number="INV-Z", period_start=T0 + 31 * DAY, period_end=T0 + 59 * DAY)
    assert Invoice.objects.dangerously_unscoped().count() == 3


def test_subscription_one_per_tenant_via_orm(tenant):
    subscription = factories.SubscriptionFactory(tenant=tenant)

    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(tenant=tenant, plan=factories.PlanFactory(), started_at=T0)

    assert list(Subscription.objects.values_list("pk", flat=True)) == [subscription.pk]


def test_one_aggregate_per_tenant_day_and_agent_even_without_agent(tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant)
    day = T0.date()
    factories.UsageAggregateFactory(tenant=tenant, day=day, agent=agent)
    factories.UsageAggregateFactory(tenant=tenant, day=day, agent=None)

    with unique_violation("usage_aggregate_unique_agent"), transaction.atomic():
        factories.UsageAggregateFactory(tenant=tenant, day=day, agent=agent)
    # NULLs are distinct in a plain unique constraint: the partial one catches a second agent-less row.
    with unique_violation("usage_aggregate_unique_no_agent"), transaction.atomic():
        factories.UsageAggregateFactory(tenant=tenant, day=day, agent=None)

    factories.UsageAggregateFactory(tenant=other_tenant, day=day, agent=None)
    factories.UsageAggregateFactory(tenant=tenant, day=day + DAY, agent=None)
    assert UsageAggregate.objects.dangerously_unscoped().count() == 4


def test_one_report_per_tenant_and_day(tenant, other_tenant):
    factories.UsageReportFactory(tenant=tenant, day=T0.date())

    with unique_violation("usage_report_unique_tenant_day"), transaction.atomic():
        factories.UsageReportFactory(tenant=tenant, day=T0.date())

    factories.UsageReportFactory(tenant=other_tenant, day=T0.date())


def test_a_usage_alert_once_per_threshold_and_period(tenant):
    factories.UsageAlertFactory(tenant=tenant, threshold=80, period="2026-11")

    with unique_violation("usage_alert_once_per_period"), transaction.atomic():
        factories.UsageAlertFactory(tenant=tenant, threshold=80, period="2026-11")

    factories.UsageAlertFactory(tenant=tenant, threshold=100, period="2026-11")
    factories.UsageAlertFactory(tenant=tenant, threshold=80, period="2026-12")
