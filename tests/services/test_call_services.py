"""calls.services: creating calls, the event log, a whole call's lifecycle, and the calls metrics."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from calls.models import Call, CallEvent
from calls.services import call_create, call_event_record, call_transition
from core.errors import ApplicationError
from tests import factories

pytestmark = pytest.mark.django_db


def _seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def _calls_total(call: Call, status: str) -> float:
    labels = {"tenant": str(call.tenant_id), "direction": call.direction, "status": status}
    return REGISTRY.get_sample_value("calls_total", labels) or 0.0


def _duration_sum(call: Call) -> float:
    labels = {"tenant": str(call.tenant_id), "direction": call.direction}
    return REGISTRY.get_sample_value("call_duration_seconds_sum", labels) or 0.0


# --- call_create --------------------------------------------------------------------------------


def test_call_create(tenant):
    agent = factories.AgentFactory(tenant=tenant)
    number = factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15559876543")
    before = timezone.now()

    call = call_create(
        tenant=tenant,
        agent=agent,
        direction="inbound",
        from_number="+15551234567",
        to_number="+15559876543",
        phone_number=number,
        external_call_id="goto-123",
        metadata={"caller_name": "Pat"},
    )

    call.refresh_from_db()
    assert call.tenant_id == tenant.pk
    assert call.agent_id == agent.pk
    assert call.phone_number_id == number.pk
    assert call.direction == "inbound"
    assert call.status == "initial"
    assert (call.from_number, call.to_number) == ("+15551234567", "+15559876543")
    assert call.external_call_id == "goto-123"
    assert call.metadata == {"caller_name": "Pat"}
    assert call.room_name == f"call-{tenant.pk}-{call.pk}"
    assert before <= call.started_at <= timezone.now()
    assert (call.answered_at, call.ended_at, call.duration_seconds, call.end_reason) == (None, None, None, "")
    assert CallEvent.objects.dangerously_unscoped().filter(call=call).count() == 0


def test_call_create_defaults(tenant):
    call = call_create(tenant=tenant, agent=factories.AgentFactory(tenant=tenant), direction="outbound")

    call.refresh_from_db()
    assert (call.phone_number, call.external_call_id, call.metadata) == (None, None, {})
    assert (call.from_number, call.to_number) == ("", "")


@pytest.mark.parametrize("whose", ["another-tenants", "soft-deleted"])
def test_call_create_refuses_agent(tenant, other_tenant, whose):
    if whose == "another-tenants":
        agent = factories.AgentFactory(tenant=other_tenant)
    else:
        agent = factories.AgentFactory(tenant=tenant, deleted_at=timezone.now())

    with pytest.raises(ApplicationError) as exc:
        call_create(tenant=tenant, agent=agent, direction="inbound")

    assert exc.value.code == "agent_not_found"
    assert exc.value.message == "Unknown agent."
    assert exc.value.fields == {"agent": ["Unknown agent."]}
    assert Call.objects.dangerously_unscoped().count() == 0


def test_call_create_refuses_another_tenants_phone_number(tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant)
    number = factories.PhoneNumberFactory(tenant=other_tenant)

    with pytest.raises(ApplicationError) as exc:
        call_create(tenant=tenant, agent=agent, direction="inbound", phone_number=number)

    assert exc.value.code == "number_not_found"
    assert exc.value.message == "Unknown phone number."
    assert Call.objects.dangerously_unscoped().count() == 0


def test_call_create_refuses_unknown_direction(tenant):
    with pytest.raises(ApplicationError) as exc:
        call_create(tenant=tenant, agent=factories.AgentFactory(tenant=tenant), direction="sideways")

    assert exc.value.code == "invalid_direction"
    assert exc.value.message == "Unknown direction 'sideways'."
    assert Call.objects.dangerously_unscoped().count() == 0


# --- call_event_record --------------------------------------------------------------------------


def test_call_event_record_numbers_events_per_call(tenant):
    call = factories.CallFactory(tenant=tenant)
    other_call = factories.CallFactory(tenant=tenant)
    when = timezone.now()

    first = call_event_record(call=call, event_type="room.ready", payload={"room_name": "r"}, occurred_at=when)
    call_event_record(call=other_call, event_type="room.ready")
    second = call_event_record(call=call, event_type="agent.joined")
    third = call_event_record(call=call, event_type="transcript.turn", payload={"text": "Hi"})

    assert (first.sequence, second.sequence, third.sequence) == (1, 2, 3)
    assert (first.tenant_id, first.payload, first.occurred_at) == (tenant.pk, {"room_name": "r"}, when)
    assert second.payload == {}
    assert list(CallEvent.objects.dangerously_unscoped().filter(call=call).values_list("sequence", "event_type")) == [
        (1, "room.ready"),
        (2, "agent.joined"),
        (3, "transcript.turn"),
    ]
    assert list(
        CallEvent.objects.dangerously_unscoped().filter(call=other_call).values_list("sequence", flat=True)
    ) == [1]


def test_call_event_record_continues_after_a_gap(tenant):
    call = factories.CallFactory(tenant=tenant)
    factories.CallEventFactory(call=call, sequence=7)

    assert call_event_record(call=call, event_type="usage.minute").sequence == 8


# --- A whole call -------------------------------------------------------------------------------


def test_inbound_call_lifecycle(tenant):
    agent = factories.AgentFactory(tenant=tenant)
    call = call_create(
        tenant=tenant, agent=agent, direction="inbound", from_number="+15551234567", to_number="+15559876543"
    )
    t0 = call.started_at
    base = {"call_id": str(call.pk), "tenant_id": str(tenant.pk)}

    call = call_transition(call=call, to_status="ringing", at=t0 + _seconds(1))
    assert (call.status, call.answered_at) == ("ringing", None)
    call = call_transition(call=call, to_status="connected", at=t0 + _seconds(5))
    assert (call.status, call.answered_at) == ("connected", t0 + _seconds(5))
    call = call_transition(call=call, to_status="conversing", at=t0 + _seconds(6))
    call = call_transition(call=call, to_status="on_hold", at=t0 + _seconds(40))
    call = call_transition(call=call, to_status="conversing", at=t0 + _seconds(70))
    assert call.ended_at is None
    call = call_transition(call=call, to_status="ended", end_reason="caller_hangup", at=t0 + _seconds(132.7))

    call.refresh_from_db()
    assert call.status == "ended"
    assert call.answered_at == t0 + _seconds(5)
    assert call.ended_at == t0 + _seconds(132.7)
    assert call.duration_seconds == 127  # whole seconds from answer to end
    assert call.end_reason == "caller_hangup"
    assert list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .values_list("sequence", "event_type", "payload", "occurred_at")
    ) == [
        (
            1,
            "call.ringing",
            base | {"from": "+15551234567", "to": "+15559876543", "direction": "inbound"},
            t0 + _seconds(1),
        ),
        (2, "call.connected", base | {"answered_at": (t0 + _seconds(5)).isoformat()}, t0 + _seconds(5)),
        (
            3,
            "call.status_changed",
            base | {"from_status": "connected", "to_status": "conversing"},
            t0 + _seconds(6),
        ),
        (4, "call.status_changed", base | {"from_status": "conversing", "to_status": "on_hold"}, t0 + _seconds(40)),
        (5, "call.status_changed", base | {"from_status": "on_hold", "to_status": "conversing"}, t0 + _seconds(70)),
        (6, "call.ended", base | {"duration": 127, "end_reason": "caller_hangup"}, t0 + _seconds(132.7)),
    ]


def test_outbound_call_dialing_event_payload(tenant):
    call = call_create(
        tenant=tenant,
        agent=factories.AgentFactory(tenant=tenant),
        direction="outbound",
        from_number="+15559876543",
        to_number="+15551234567",
    )

    call_transition(call=call, to_status="dialing", at=call.started_at)

    event = CallEvent.objects.dangerously_unscoped().get(call=call)
    assert (event.sequence, event.event_type) == (1, "call.dialing")
    assert event.payload == {
        "call_id": str(call.pk),
        "tenant_id": str(tenant.pk),
        "from": "+15559876543",
        "to": "+15551234567",
        "direction": "outbound",
    }


def test_call_ended_without_answer_has_zero_duration(tenant):
    call = call_create(tenant=tenant, agent=factories.AgentFactory(tenant=tenant), direction="inbound")
    call = call_transition(call=call, to_status="ringing", at=call.started_at + _seconds(1))

    call = call_transition(call=call, to_status="ended", end_reason="no_answer", at=call.started_at + _seconds(30))

    call.refresh_from_db()
    assert (call.answered_at, call.ended_at) == (None, call.started_at + _seconds(30))
    assert (call.duration_seconds, call.end_reason) == (0, "no_answer")
    assert CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.ended").payload == {
        "call_id": str(call.pk),
        "tenant_id": str(tenant.pk),
        "duration": 0,
        "end_reason": "no_answer",
    }


def _conversing_call(tenant, direction="inbound"):
    call = call_create(tenant=tenant, agent=factories.AgentFactory(tenant=tenant), direction=direction)
    t0 = call.started_at
    call = call_transition(call=call, to_status="dialing" if direction == "outbound" else "ringing", at=t0)
    call = call_transition(call=call, to_status="connected", at=t0 + _seconds(2))
    return call_transition(call=call, to_status="conversing", at=t0 + _seconds(3))


def _errored_call(tenant):
    call = _conversing_call(tenant)
    return call_transition(call=call, to_status="error", at=call.started_at + _seconds(10))


def test_ending_from_error_without_reason_records_error(tenant):
    call = _errored_call(tenant)

    call = call_transition(call=call, to_status="ended", at=call.started_at + _seconds(20))

    call.refresh_from_db()
    assert (call.status, call.end_reason, call.duration_seconds) == ("ended", "error", 18)
    assert (
        CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.ended").payload["end_reason"]
        == "error"
    )


def test_ending_from_error_keeps_a_given_reason(tenant):
    call = _errored_call(tenant)

    call = call_transition(call=call, to_status="ended", end_reason="agent_hangup", at=call.started_at + _seconds(20))

    call.refresh_from_db()
    assert call.end_reason == "agent_hangup"


# --- Metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_calls_total_counted_once_when_a_call_ends(tenant, django_capture_on_commit_callbacks, direction):
    call = _conversing_call(tenant, direction)
    t0 = call.started_at
    assert _calls_total(call, "completed") == 0

    with django_capture_on_commit_callbacks(execute=True):
        call_transition(call=call, to_status="ended", end_reason="caller_hangup", at=t0 + _seconds(62))
        assert _calls_total(call, "completed") == 0  # not before the transaction commits

    assert _calls_total(call, "completed") == 1
    assert _calls_total(call, "error") == 0
    assert _duration_sum(call) == 60


def test_calls_total_counts_a_call_ended_from_error_as_error(tenant, django_capture_on_commit_callbacks):
    call = _errored_call(tenant)

    with django_capture_on_commit_callbacks(execute=True):
        call_transition(call=call, to_status="ended", at=call.started_at + _seconds(20))

    assert _calls_total(call, "error") == 1
    assert _calls_total(call, "completed") == 0


def test_calls_total_not_counted_for_other_transitions(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call = _conversing_call(tenant)
        call_transition(call=call, to_status="on_hold", at=call.started_at + _seconds(10))

    assert _calls_total(call, "completed") == 0
    assert _calls_total(call, "error") == 0


def test_the_sweep_ends_a_call_the_carrier_ended_only_after_the_grace_and_ignores_a_garbled_mark(tenant, settings):
    from calls import services

    settings.CALL_CARRIER_END_GRACE_SECONDS = 60
    now = timezone.now()
    ended_at_carrier = factories.CallFactory(
        tenant=tenant, status="connected", started_at=now - _seconds(310), answered_at=now - _seconds(300)
    )
    garbled = factories.CallFactory(
        tenant=tenant, status="connected", started_at=now - _seconds(310), answered_at=now - _seconds(300)
    )
    still_talking = factories.CallFactory(
        tenant=tenant, status="connected", started_at=now - _seconds(310), answered_at=now - _seconds(300)
    )
    services.call_carrier_ended(call_id=ended_at_carrier.pk, tenant_id=tenant.pk, at=now - _seconds(61))
    services.call_note(call_id=garbled.pk, tenant_id=tenant.pk, key="carrier_ended_at", value="yesterday")

    assert services.calls_end_stuck(now=now) == 1
    statuses = {c.pk: (c.status, c.end_reason) for c in Call.objects.for_tenant(tenant)}
    assert statuses == {
        ended_at_carrier.pk: ("ended", "error"),
        garbled.pk: ("connected", ""),
        still_talking.pk: ("connected", ""),
    }
