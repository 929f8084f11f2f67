"""The recorder never holds up the audio: a slow database delays the rows, not the caller's audio."""

import itertools
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from livekit.agents.voice.events import UserInputTranscribedEvent

from calls.models import CallEvent, TranscriptTurn
from core import events
from tests.voice.session_fakes import Reply, ToneTTS
from tests.voice.session_support import Caller, agent_fixture, call_fixture, fake_models, run  # noqa: F401
from voice import recorder as runtime_recorder

SLOW_WRITE = 1.0  # seconds per stored turn


def slow(write):
    def slowed(**kwargs):
        time.sleep(SLOW_WRITE)  # in the database thread, as a stalled PostgreSQL would
        return write(**kwargs)

    return slowed


async def two_turns(call, backlog):
    caller = Caller(speed=1.0)
    await caller.connect(
        call, fake_models(lambda ctx: Reply("We are open from eight to five."), ["Hours?"], tts=ToneTTS())
    )
    caller.session.session.on("agent_state_changed", lambda ev: backlog.append(caller.session.recorder.pending))
    await caller.wait_for_agent(1)
    await caller.say()
    await caller.wait_for_agent(2)
    await caller.hang_up()
    return caller


def replies(caller) -> list[list[float]]:
    """The hand-over times of each agent reply's frames (by the reply's own start and stop)."""
    to_wall = time.time() - time.monotonic()
    spans = [(m.metrics["started_speaking_at"], m.metrics["stopped_speaking_at"]) for m in caller.agent_turns()]
    return [[t + to_wall for t, _ in caller.played if a - 0.05 <= t + to_wall <= b + 0.05] for a, b in spans]


def test_slow_database_does_not_delay_audio_frames(call, monkeypatch):
    monkeypatch.setattr(runtime_recorder, "write_turn", slow(runtime_recorder.write_turn))
    backlog = []
    caller = run(two_turns, call, backlog)

    assert max(backlog) >= 1, "the writes were still queued while the agent spoke"
    gaps = sorted(b - a for reply in replies(caller) for a, b in itertools.pairwise(reply))
    # a write on the audio loop would stall a reply for a whole second; a busy test machine, far less
    assert gaps[len(gaps) // 2] == pytest.approx(0.02, abs=0.005)
    assert gaps[-1] < SLOW_WRITE / 2, f"a 20 ms frame waited {gaps[-1] * 1000:.0f} ms"
    # and nothing was lost: every turn is stored once the call is closed
    assert TranscriptTurn.objects.dangerously_unscoped().filter(call=call).count() == 3


def test_a_failed_write_does_not_stop_the_ones_after_it(call, monkeypatch):
    original = runtime_recorder.write_turn
    failures = iter([RuntimeError("database hiccup")])

    def flaky(**kwargs):
        error = next(failures, None)
        if error:
            raise error
        return original(**kwargs)

    monkeypatch.setattr(runtime_recorder, "write_turn", flaky)
    caller = run(two_turns, call, [])

    assert caller.session.recorder.failures == 1
    assert list(
        TranscriptTurn.objects.dangerously_unscoped().filter(call=call).values_list("turn_number", flat=True)
    ) == [2, 3]


def test_interim_caller_text_goes_to_live_viewers_and_is_not_stored(db):
    call_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    layer = get_channel_layer()

    async def scenario():
        viewer = await layer.new_channel()
        await layer.group_add(events.call_group(call_id), viewer)
        recorder = runtime_recorder.CallRecorder(call_id=call_id, tenant_id=tenant_id)
        recorder._on_transcribed(
            UserInputTranscribedEvent(transcript="  ", is_final=False)
        )  # nothing heard: nothing sent
        recorder._on_transcribed(UserInputTranscribedEvent(transcript="when are you", is_final=False))
        return await layer.receive(viewer)

    message = async_to_sync(scenario)()
    assert message["type"] == "bus.event" and message["event"] == "transcript.partial"
    assert message["sequence"] is None
    assert message["data"] == {"call_id": str(call_id), "speaker": "caller", "text": "when are you", "is_final": False}
    assert not CallEvent.objects.dangerously_unscoped().exists()
