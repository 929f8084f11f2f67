"""A whole call through the session on scripted engines: greeting, turns, storage, events, end."""

import pytest

from calls.models import Call, CallEvent, TranscriptTurn
from calls.state_machine import CallStatus
from tests.voice.session_fakes import Reply, ScriptedLLM, last_user_text
from tests.voice.session_support import Caller, agent_fixture, call_fixture, fake_models, run  # noqa: F401


def receptionist(chat_ctx):
    said = last_user_text(chat_ctx).lower()
    if "open" in said:
        return Reply("We are open Monday to Friday, 8 AM to 5 PM.")
    return Reply("Sorry, could you say that again?")


async def greeting_and_one_question(call, **models):
    caller = Caller()
    await caller.connect(call, fake_models(receptionist, ["When are you open?"], **models))
    await caller.wait_for_agent(1)
    await caller.say()
    await caller.wait_for_agent(2)
    return caller, await caller.hang_up()


def test_greets_answers_and_stores_every_turn(call):
    caller, outcome = run(greeting_and_one_question, call)

    assert outcome.reason == Call.EndReason.CALLER_HANGUP
    turns = list(TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("turn_number"))
    assert [(t.turn_number, t.speaker, t.text) for t in turns] == [
        (1, "agent", "Thank you for calling. How can I help?"),
        (2, "caller", "When are you open?"),
        (3, "agent", "We are open Monday to Friday, 8 AM to 5 PM."),
    ]
    assert not any(t.interrupted for t in turns)
    assert turns[1].confidence == pytest.approx(0.9)
    assert set(turns[1].metadata) >= {"stt_ms", "end_of_turn_ms", "stt_provider"}
    assert set(turns[2].metadata) >= {"llm_ttft_ms", "tts_ttfb_ms", "e2e_ms", "llm_provider", "llm_model"}
    # The knowledge put before that answer, by its source (the call page shows it).
    assert turns[2].metadata["knowledge"][0]["label"].startswith("Practice FAQ")
    assert "knowledge" not in turns[0].metadata  # the greeting had none
    assert turns[2].started_at < turns[2].ended_at

    call.refresh_from_db()
    assert call.status == CallStatus.ENDED
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    kinds = list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )
    assert kinds == [
        "call.ringing",
        "call.connected",
        "agent.joined",
        "call.status_changed",  # connected -> conversing
        "transcript.turn",
        "transcript.turn",
        "transcript.turn",
        "call.ended",
    ]
    payload = (
        CallEvent.objects.dangerously_unscoped()
        .get(call=call, event_type="transcript.turn", payload__turn_number=2)
        .payload
    )
    assert payload["speaker"] == "caller" and payload["text"] == "When are you open?"
    assert caller.played, "the agent's audio reached the phone leg"


async def greeting_only(call):
    caller = Caller(speed=1.0)
    await caller.connect(call, fake_models(receptionist, []))
    await caller.wait_for_agent(1)
    await caller.hang_up()
    return caller


def test_agent_audio_is_paced_in_real_time(call):
    caller = run(greeting_only, call)

    times = [t for t, _ in caller.played]
    audio = sum(f.duration for _, f in caller.played)
    assert audio > 0.5
    # 20 ms packets handed over as they fall due, not all at once
    assert max(f.duration for _, f in caller.played) == pytest.approx(0.02)
    assert times[-1] - times[0] == pytest.approx(audio - 0.02, abs=0.1)


def test_the_llm_sees_the_prompt_caller_context_and_knowledge(call):
    llm = ScriptedLLM(receptionist)
    run(greeting_and_one_question, call, llm=llm)

    system = [m.text_content for m in llm.contexts[-1].messages() if m.role == "system"]
    assert "You are a helpful receptionist." in system[0]
    assert "Caller's number: +15557654321" in system[0]
    assert any("Q: When are you open? A: Monday to Friday" in s for s in system[1:])
