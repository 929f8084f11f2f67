"""The webhooks a call's life stores in the outbox: call.started, call.ended, call.failed, call.transferred, tool.failed."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call, CallEvent, ToolCall
from calls.services import call_event_record, call_initiate, call_transfer_request, call_transition, tool_call_record
from integrations.models import WebhookDelivery
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(tenant):
    return factories.WebhookEndpointFactory(tenant=tenant, event_types=["*"])


def sent(tenant) -> list[tuple[str, dict]]:
    rows = WebhookDelivery.objects.for_tenant(tenant).order_by("created_at", "event_type")
    return [(row.event_type, json.loads(row.body)["data"]) for row in rows]


def lived(call, *statuses, **end):
    for status in statuses:
        call = call_transition(call=call, to_status=status, **(end if status == "ended" else {}))
    return call


def test_an_inbound_call_sends_started_then_ended(tenant, endpoint):
    call = factories.CallFactory(tenant=tenant)
    call = lived(call, "ringing", "connected", "conversing", "ended", end_reason="caller_hangup")

    events = sent(tenant)
    assert [name for name, _ in events] == ["call.started", "call.ended"]
    started, ended = events[0][1], events[1][1]
    assert started == {
        "call_id": str(call.pk),
        "agent_id": str(call.agent_id),
        "direction": "inbound",
        "from": "+15550000001",
        "to": "+15550000002",
        "status": "ringing",
        "started_at": started["started_at"],
    }
    assert (ended["end_reason"], ended["duration_seconds"]) == ("caller_hangup", call.duration_seconds)


def test_a_failed_outbound_call_sends_ended_and_failed_with_the_reason(tenant, endpoint):
    call = factories.CallFactory(tenant=tenant, direction="outbound")
    call_initiate(call=call)  # no telephony configured: ends at once with end_reason error

    assert [name for name, _ in sent(tenant)] == ["call.ended", "call.failed"]
    assert sent(tenant)[1][1]["failure_reason"] == "telephony_not_configured"


def test_a_call_ended_by_transfer_sends_transferred_before_ended(tenant, endpoint):
    agent = factories.AgentFactory(tenant=tenant, transfer_targets=[{"name": "Desk", "destination": "ext:1001"}])
    call = lived(factories.CallFactory(tenant=tenant, agent=agent), "ringing", "connected", "conversing")
    call = call_transfer_request(call=call, transfer_type="warm", target="Desk", reason="caller_request")
    lived(call, "ended", end_reason="transferred")

    names = [name for name, _ in sent(tenant)]
    assert names == ["call.started", "call.transferred", "call.ended"]
    transferred = dict(sent(tenant))["call.transferred"]
    assert (transferred["transfer_type"], transferred["transferred_to"], transferred["reason"]) == (
        "warm",
        "ext:1001",
        "caller_request",
    )
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="call.transferred").count() == 1


def test_a_transfer_reported_by_the_bridge_is_sent_once(tenant, endpoint):
    call = lived(factories.CallFactory(tenant=tenant), "ringing", "connected", "conversing")
    call_event_record(call=call, event_type=CallEvent.Type.CALL_TRANSFERRED, payload={"transferred_to": "+15551112222"})
    lived(call, "ended", end_reason="transferred")

    assert [name for name, _ in sent(tenant)].count("call.transferred") == 1


def test_a_failed_tool_call_is_stored_with_its_event_and_sent_as_tool_failed(tenant, endpoint):
    call = lived(factories.CallFactory(tenant=tenant), "ringing", "connected", "conversing")
    now = timezone.now()
    ok = tool_call_record(
        call=call, tool_name="check_availability", arguments={"date": "2026-11-24"}, status="succeeded",
        result={"slots": ["09:00"]}, http_status=200, started_at=now, ended_at=now, duration_ms=80,
    )  # fmt: skip
    failed = tool_call_record(
        call=call, tool_name="book", arguments={}, status="timed_out", error="no answer in 10s",
        started_at=now, ended_at=now + timedelta(seconds=10), duration_ms=10000,
    )  # fmt: skip

    assert ToolCall.objects.dangerously_unscoped().filter(call=call).count() == 2 and ok.status == "succeeded"
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="tool.called").count() == 2
    [data] = [data for name, data in sent(tenant) if name == "tool.failed"]
    assert data == {
        "call_id": str(call.pk),
        "tool_call_id": str(failed.pk),
        "tool_name": "book",
        "status": "timed_out",
        "error": "no answer in 10s",
        "http_status": None,
        "duration_ms": 10000,
    }


def test_nothing_is_stored_for_a_tenant_without_endpoints(tenant, other_tenant):
    factories.WebhookEndpointFactory(tenant=other_tenant)
    lived(factories.CallFactory(tenant=tenant), "ringing", "ended")
    assert not WebhookDelivery.objects.dangerously_unscoped().exists()
    assert Call.objects.dangerously_unscoped().get().status == "ended"
