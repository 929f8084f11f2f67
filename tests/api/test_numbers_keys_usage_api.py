"""/v1/numbers, /v1/api-keys and /v1/usage."""

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from calls.services import call_transition
from telephony.models import PhoneNumber
from tenants.models import ApiKey, AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


def test_add_a_number_and_assign_it(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    created = api_client.post("/v1/numbers", {"e164": "+15550102030", "friendly_name": "Main"}, format="json")
    assert created.status_code == 201
    number_id = created.json()["id"]
    assert (created.json()["agent_id"], created.json()["status"], created.json()["provider"]) == (
        None,
        "active",
        "gotoconnect",
    )
    assigned = api_client.patch(f"/v1/numbers/{number_id}", {"agent_id": str(agent.pk)}, format="json")
    assert assigned.json()["agent_id"] == str(agent.pk)
    unassigned = api_client.patch(f"/v1/numbers/{number_id}", {"agent_id": None}, format="json")
    assert unassigned.json()["agent_id"] is None
    assert list(
        AuditLog.objects.for_tenant(tenant)
        .filter(object_id=number_id)
        .values_list("action", flat=True)
        .order_by("created_at")
    ) == ["number.create", "number.update", "number.update"]


@pytest.mark.parametrize("e164", ["5550102030", "+0550102030", "+1555010203012345", "+1 555 010", ""])
def test_numbers_must_be_e164(api_client, e164):
    response = api_client.post("/v1/numbers", {"e164": e164}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["e164"]


def test_a_number_registered_by_anyone_is_a_409_that_names_no_one(api_client, other_tenant):
    factories.PhoneNumberFactory(tenant=other_tenant, e164="+15550102030")
    response = api_client.post("/v1/numbers", {"e164": "+15550102030"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "number_unavailable")
    assert other_tenant.name not in response.content.decode()
    assert PhoneNumber.objects.dangerously_unscoped().count() == 1


def test_numbers_list_filters(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    routed = factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    factories.PhoneNumberFactory(tenant=tenant, agent=None, status="inactive")
    assert [n["id"] for n in api_client.get(f"/v1/numbers?agent_id={agent.pk}").json()["results"]] == [str(routed.pk)]
    assert api_client.get("/v1/numbers?status=inactive").json()["count"] == 1
    assert api_client.get("/v1/numbers?status=lost").status_code == 400


def test_api_key_secret_is_shown_once_and_only_its_hash_is_kept(api_client, tenant):
    response = api_client.post("/v1/api-keys", {"name": "CRM", "scopes": ["read"]}, format="json")
    assert response.status_code == 201
    secret = response.json()["secret"]
    key = ApiKey.objects.for_tenant(tenant).get(name="CRM")
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert response.json()["prefix"] == secret[:16]
    listed = api_client.get("/v1/api-keys").json()["results"]
    assert "secret" not in str(listed) and secret not in str(listed)
    assert {k["name"]: k["status"] for k in listed} == {"CRM": "active", "test": "active"}
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=secret)
    assert client.get("/v1/agents").status_code == 200


def test_revoking_a_key_through_the_api(api_client, tenant):
    key = factories.ApiKeyFactory(tenant=tenant)
    assert api_client.delete(f"/v1/api-keys/{key.pk}").status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    audit = AuditLog.objects.for_tenant(tenant).get(action="api_key.revoke")
    assert audit.actor_api_key is not None


def test_api_key_input_is_validated(api_client):
    response = api_client.post("/v1/api-keys", {"name": "x", "scopes": ["root"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"scopes.0": ['"root" is not a valid choice.']}


def ended_call(tenant, agent, *, day: datetime, seconds: int):
    call = factories.CallFactory(tenant=tenant, agent=agent, started_at=day)
    call_transition(call=call, to_status="ringing", at=day)
    call_transition(call=call, to_status="connected", at=day)
    return call_transition(
        call=call, to_status="ended", end_reason="caller_hangup", at=day + timedelta(seconds=seconds)
    )


def test_usage_per_day_and_per_agent(api_client, tenant):
    plan = factories.PlanFactory(billing_increment_seconds=60, price_per_minute=Decimal("0.10"))
    factories.SubscriptionFactory(tenant=tenant, plan=plan)
    desk, sales = factories.AgentFactory(tenant=tenant), factories.AgentFactory(tenant=tenant)
    ended_call(tenant, desk, day=datetime(2026, 11, 2, 10, tzinfo=UTC), seconds=90)
    ended_call(tenant, desk, day=datetime(2026, 11, 2, 11, tzinfo=UTC), seconds=30)
    ended_call(tenant, sales, day=datetime(2026, 11, 3, 9, tzinfo=UTC), seconds=60)
    ended_call(tenant, sales, day=datetime(2026, 10, 31, 9, tzinfo=UTC), seconds=600)  # outside the period

    by_day = api_client.get("/v1/usage?start=2026-11-01&end=2026-11-30").json()
    assert by_day["totals"] == {"calls": 3, "minutes": "3.00", "billable_minutes": "4.00", "cost": "0.4000"}
    assert by_day["results"] == [
        {"date": "2026-11-02", "calls": 2, "minutes": "2.00", "billable_minutes": "3.00", "cost": "0.3000"},
        {"date": "2026-11-03", "calls": 1, "minutes": "1.00", "billable_minutes": "1.00", "cost": "0.1000"},
    ]
    by_agent = api_client.get("/v1/usage?start=2026-11-01&end=2026-11-30&group_by=agent").json()
    assert {r["agent_id"]: r["calls"] for r in by_agent["results"]} == {str(desk.pk): 2, str(sales.pk): 1}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=2026-11-10&end=2026-11-01", "start"),
        ("start=2024-01-01&end=2026-01-01", "end"),
        ("start=yesterday", "start"),
        ("group_by=week", "group_by"),
    ],
)
def test_usage_rejects_bad_periods(api_client, query, field):
    response = api_client.get(f"/v1/usage?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
