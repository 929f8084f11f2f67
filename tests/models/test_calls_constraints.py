"""Calls app: database constraints of calls, turns, events, tool calls and recordings; Call.clean()."""

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction

from calls.models import Call, CallEvent, Recording, TranscriptTurn
from tests import factories
from tests.models.constraints import assert_check_constraint, unique_violation

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _call(t, **kwargs):
    return factories.CallFactory(tenant=t, started_at=T0, **kwargs)


CHECK_CASES = [
    pytest.param(
        "call_direction_valid",
        _call,
        {"direction": "sideways"},
        {"direction": "outbound"},
        id="call_direction_valid",
    ),
    pytest.param("call_status_valid", _call, {"status": "queued"}, {"status": "conversing"}, id="call_status_valid"),
    pytest.param(
        "call_ringing_is_inbound",
        _call,
        {"status": "ringing", "direction": "outbound"},
        {"status": "ringing", "direction": "inbound"},
        id="call_ringing_is_inbound",
    ),
    pytest.param(
        "call_dialing_is_outbound",
        _call,
        {"status": "dialing", "direction": "inbound"},
        {"status": "dialing", "direction": "outbound"},
        id="call_dialing_is_outbound",
    ),
    pytest.param(
        "call_ended_has_end_time_and_duration",
        _call,
        {"status": "ended", "duration_seconds": 0},
        {"status": "ended", "duration_seconds": 0, "ended_at": T0},
        id="call_ended_has_end_time_and_duration-no-ended_at",
    ),
    pytest.param(
        "call_ended_has_end_time_and_duration",
        _call,
        {"status": "ended", "ended_at": T0 + 60 * SECOND},
        {"status": "ended", "ended_at": T0 + 60 * SECOND, "duration_seconds": 60},
        id="call_ended_has_end_time_and_duration-no-duration",
    ),
    pytest.param(
        "call_answered_after_start",
        _call,
        {"answered_at": T0 - SECOND},
        {"answered_at": T0},
        id="call_answered_after_start",
    ),
    pytest.param(
        "call_ended_after_start",
        _call,
        {"ended_at": T0 - SECOND},
        {"ended_at": T0},
        id="call_ended_after_start",
    ),
    pytest.param(
        "turn_number_positive",
        lambda t: factories.TranscriptTurnFactory(call__tenant=t, turn_number=1),
        {"turn_number": 0},
        {"turn_number": 2},
        id="turn_number_positive",
    ),
    pytest.param(
        "turn_speaker_valid",
        lambda t: factories.TranscriptTurnFactory(call__tenant=t),
        {"speaker": "robot"},
        {"speaker": "system"},
        id="turn_speaker_valid",
    ),
    pytest.param(
        "turn_confidence_range",
        lambda t: factories.TranscriptTurnFactory(call__tenant=t),
        {"confidence": 1.01},
        {"confidence": 1.0},
        id="turn_confidence_range-high",
    ),
    pytest.param(
        "turn_confidence_range",
        lambda t: factories.TranscriptTurnFactory(call__tenant=t),
        {"confidence": -0.01},
        {"confidence": 0.0},
        id="turn_confidence_range-low",
    ),
    pytest.param(
        "turn_ends_after_start",
        lambda t: factories.TranscriptTurnFactory(call__tenant=t, started_at=T0),
        {"ended_at": T0 - SECOND},
        {"ended_at": T0},
        id="turn_ends_after_start",
    ),
    pytest.param(
        "event_sequence_positive",
        lambda t: factories.CallEventFactory(call__tenant=t, sequence=1),
        {"sequence": 0},
        {"sequence": 2},
        id="event_sequence_positive",
    ),
    pytest.param(
        "toolcall_status_valid",
        lambda t: factories.ToolCallFactory(call__tenant=t),
        {"status": "running"},
        {"status": "timed_out"},
        id="toolcall_status_valid",
    ),
    pytest.param(
        "toolcall_ends_after_start",
        lambda t: factories.ToolCallFactory(call__tenant=t, started_at=T0),
        {"ended_at": T0 - SECOND},
        {"ended_at": T0 + SECOND},
        id="toolcall_ends_after_start",
    ),
    pytest.param(
        "recording_channels_valid",
        lambda t: factories.RecordingFactory(call__tenant=t),
        {"channels": 3},
        {"channels": 2},
        id="recording_channels_valid",
    ),
]

UNIQUE_CONSTRAINTS_TESTED = {
    "call_unique_external_call_id",
    "turn_unique_call_turn_number",
    "event_unique_call_sequence",
    "recording_one_per_call",
}


def test_every_constraint_of_the_app_has_a_test():
    models = list(apps.get_app_config("calls").get_models())
    declared = {c.name for m in models for c in m._meta.constraints}
    assert declared == {p.values[0] for p in CHECK_CASES} | UNIQUE_CONSTRAINTS_TESTED
    assert [f.name for m in models for f in m._meta.fields if f.unique and not f.primary_key] == []


@pytest.mark.parametrize(("constraint", "make", "bad", "good"), CHECK_CASES)
def test_check_constraint(tenant, constraint, make, bad, good):
    assert_check_constraint(tenant, constraint, make, bad, good)


def test_external_call_id_unique_when_set_many_nulls_allowed(tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant)
    for _ in range(3):
        Call.objects.create(tenant=tenant, agent=agent, direction="inbound", external_call_id=None)
    Call.objects.create(tenant=tenant, agent=agent, direction="inbound", external_call_id="goto-1")

    with unique_violation("call_unique_external_call_id"), transaction.atomic():
        _call(other_tenant, external_call_id="goto-1")

    _call(other_tenant, external_call_id="goto-2")
    assert Call.objects.dangerously_unscoped().filter(external_call_id__isnull=True).count() == 3
    assert sorted(
        Call.objects.dangerously_unscoped().exclude(external_call_id=None).values_list("external_call_id", flat=True)
    ) == [
        "goto-1",
        "goto-2",
    ]


def test_turn_number_unique_per_call(tenant):
    turn = factories.TranscriptTurnFactory(call__tenant=tenant, turn_number=1)

    with unique_violation("turn_unique_call_turn_number"), transaction.atomic():
        TranscriptTurn.objects.create(
            tenant=tenant, call=turn.call, turn_number=1, speaker="agent", text="Hi", started_at=T0
        )

    TranscriptTurn.objects.create(
        tenant=tenant, call=turn.call, turn_number=2, speaker="agent", text="Hi", started_at=T0
    )
    other_call = _call(tenant)
    TranscriptTurn.objects.create(
        tenant=tenant, call=other_call, turn_number=1, speaker="agent", text="Hi", started_at=T0
    )
    assert sorted(TranscriptTurn.objects.dangerously_unscoped().values_list("call_id", "turn_number")) == sorted(
        [(turn.call_id, 1), (turn.call_id, 2), (other_call.pk, 1)]
    )


def test_event_sequence_unique_per_call(tenant):
    event = factories.CallEventFactory(call__tenant=tenant, sequence=1)

    with unique_violation("event_unique_call_sequence"), transaction.atomic():
        CallEvent.objects.create(tenant=tenant, call=event.call, sequence=1, event_type="call.ended", occurred_at=T0)

    CallEvent.objects.create(tenant=tenant, call=event.call, sequence=2, event_type="call.ended", occurred_at=T0)
    other_call = _call(tenant)
    CallEvent.objects.create(tenant=tenant, call=other_call, sequence=1, event_type="call.ringing", occurred_at=T0)
    assert CallEvent.objects.dangerously_unscoped().count() == 3


def test_one_recording_per_call(tenant):
    recording = factories.RecordingFactory(call__tenant=tenant)

    with unique_violation("recording_one_per_call"), transaction.atomic():
        Recording.objects.create(tenant=tenant, call=recording.call, file="recordings/again.wav")

    Recording.objects.create(tenant=tenant, call=_call(tenant), file="recordings/other.wav")
    assert Recording.objects.dangerously_unscoped().count() == 2


def test_call_clean_refuses_another_tenants_agent(tenant, other_tenant):
    call = factories.CallFactory.build(tenant=tenant, agent=factories.AgentFactory(tenant=other_tenant))

    with pytest.raises(ValidationError) as exc:
        call.full_clean()

    assert exc.value.message_dict == {"agent": ["This agent belongs to another tenant."]}
    factories.CallFactory.build(tenant=tenant, agent=factories.AgentFactory(tenant=tenant)).full_clean()
