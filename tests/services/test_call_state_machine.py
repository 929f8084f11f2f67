"""The call state machine through calls.services.call_transition: every pair, both directions."""

from datetime import UTC, datetime, timedelta

import pytest

from calls.models import Call, CallEvent
from calls.services import call_transition
from calls.state_machine import TRANSITIONS, CallStatus
from calls.state_machine import status_label as label
from core.errors import Conflict
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ANSWERED = T0 + timedelta(seconds=10)
ENDED = T0 + timedelta(seconds=70)
AT = T0 + timedelta(seconds=100)

STATUSES = ["initial", "ringing", "dialing", "connected", "conversing", "on_hold", "transferring", "error", "ended"]
DIRECTIONS = ["inbound", "outbound"]

# The allowed transitions (docs/architecture.md#the-call-state-machine), written out independently of
# calls/state_machine.py.
SEED_EDGES = {
    "initial": {"ringing", "dialing"},
    "ringing": {"connected"},  # answer
    "dialing": {"connected"},  # connect
    "connected": {"conversing"},  # agent_joined
    "conversing": {"on_hold", "transferring", "error"},
    "on_hold": {"conversing"},  # resume
    "transferring": {"conversing"},  # transfer_complete (to a different agent)
    "error": {"conversing"},
    "ended": set(),
}
DIRECTION_ONLY = {"ringing": "inbound", "dialing": "outbound"}
EVENT_FOR_STATUS = {
    "ringing": "call.ringing",
    "dialing": "call.dialing",
    "connected": "call.connected",
    "ended": "call.ended",
}
ANSWERED_STATES = {"connected", "conversing", "on_hold", "transferring", "error", "ended"}


def expected_allowed(current: str, target: str, direction: str) -> bool:
    if current == "ended":
        return False  # terminal
    if target == "ended":
        return True  # every other state may end
    if target not in SEED_EDGES[current]:
        return False
    return DIRECTION_ONLY.get(target, direction) == direction


def _cases():
    for direction in DIRECTIONS:
        for current in STATUSES:
            if DIRECTION_ONLY.get(current, direction) != direction:
                continue  # a ringing outbound or dialing inbound call cannot exist (DB constraint)
            for target in STATUSES:
                allowed = expected_allowed(current, target, direction)
                verdict = "allowed" if allowed else "refused"
                yield pytest.param(direction, current, target, allowed, id=f"{direction}-{current}->{target}-{verdict}")


CASES = list(_cases())
ALLOWED_CASES = [p for p in CASES if p.values[3]]
REFUSED_CASES = [p for p in CASES if not p.values[3]]


def _call_in(tenant, direction: str, status: str) -> Call:
    call = factories.CallFactory(tenant=tenant, direction=direction, started_at=T0)
    fields = {"status": status}
    if status in ANSWERED_STATES:
        fields["answered_at"] = ANSWERED
    if status == "ended":
        fields |= {"ended_at": ENDED, "duration_seconds": 60, "end_reason": "caller_hangup"}
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(**fields)
    call.refresh_from_db()
    return call


def test_table_covers_every_status_and_matches_the_seed():
    assert sorted(STATUSES) == sorted(CallStatus.values)
    assert len(CASES) == 2 * 9 * 9 - 2 * 9  # less the impossible ringing-outbound and dialing-inbound starts
    # The code's table agrees with the one written out above, direction aside.
    assert {s: set(t) for s, t in TRANSITIONS.items()} == {
        s: (SEED_EDGES[s] | {"ended"}) if s != "ended" else set() for s in STATUSES
    }


@pytest.mark.parametrize(("direction", "current", "target", "allowed"), ALLOWED_CASES)
def test_allowed_transition(tenant, direction, current, target, allowed):
    call = _call_in(tenant, direction, current)
    before_answered = call.answered_at

    result = call_transition(call=call, to_status=target, at=AT)

    call.refresh_from_db()
    assert result.status == call.status == target
    assert call.answered_at == (AT if target == "connected" else before_answered)
    if target == "ended":
        assert call.ended_at == AT
        assert call.duration_seconds == (90 if current in ANSWERED_STATES else 0)
        assert call.end_reason == ("error" if current == "error" else "")
    else:
        assert call.ended_at is None
        assert call.duration_seconds is None
        assert call.end_reason == ""
    events = list(
        CallEvent.objects.dangerously_unscoped().filter(call=call).values_list("sequence", "event_type", "occurred_at")
    )
    assert events == [(1, EVENT_FOR_STATUS.get(target, "call.status_changed"), AT)]


@pytest.mark.parametrize(("direction", "current", "target", "allowed"), REFUSED_CASES)
def test_refused_transition_changes_nothing(tenant, direction, current, target, allowed):
    call = _call_in(tenant, direction, current)
    before = Call.objects.dangerously_unscoped().filter(pk=call.pk).values().get()

    with pytest.raises(Conflict) as exc:
        call_transition(call=call, to_status=target, at=AT)

    assert exc.value.code == "invalid_call_transition"
    assert exc.value.status_code == 409
    required = DIRECTION_ONLY.get(target)
    if current != "ended" and target in SEED_EDGES[current] and required:
        assert exc.value.message == f"Only {required} calls go to “{label(target)}”; this call is {direction}."
    else:
        assert exc.value.message == f"A call cannot go from “{label(current)}” to “{label(target)}”."
    assert "CallStatus." not in exc.value.message
    assert Call.objects.dangerously_unscoped().filter(pk=call.pk).values().get() == before
    assert CallEvent.objects.dangerously_unscoped().filter(call=call).count() == 0


def test_unknown_target_status_refused(tenant):
    call = _call_in(tenant, "inbound", "conversing")

    with pytest.raises(Conflict) as exc:
        call_transition(call=call, to_status="queued", at=AT)

    assert exc.value.code == "invalid_call_transition"
    call.refresh_from_db()
    assert call.status == "conversing"
    assert CallEvent.objects.dangerously_unscoped().count() == 0
