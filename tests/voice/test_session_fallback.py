"""Degradation inside a live call: a failed provider's chain takes over, and when a whole stage is down
the caller hears the last-resort line and is handed to a person (docs/voice-pipeline.md#when-a-whole-stage-is-down)."""

import asyncio

from calls.models import Call, CallEvent, TranscriptTurn
from calls.state_machine import CallStatus
from tests import factories
from tests.voice.fakes.base import closed_port_url
from tests.voice.session_fakes import Reply, ScriptedLLM, ScriptedSTT, ToneTTS
from tests.voice.session_support import (  # noqa: F401
    Caller,
    agent_fixture,
    call_fixture,
    connected_call,
    fake_models,
    make_agent,
    run,
)
from voice import engines

LLM_CONFIG = {"provider": "anthropic", "model": "claude-sonnet-4-20250514", "temperature": 0.7, "max_tokens": 200}


async def one_question(call, models, *, replies=2, ends=False):
    """Greeting, one question, `replies` agent turns in all; `ends`: the session ends by itself after them
    (waited for, however busy the machine: it may still be closing when the last turn is stored)."""
    caller = Caller()
    await caller.connect(call, models)
    await caller.wait_for_agent(1)
    await caller.say()
    await caller.wait_for_agent(replies)
    if ends:
        outcome = await asyncio.wait_for(caller.session.wait(), 60)
    else:
        outcome = await caller.session.wait() if caller.session.done else None
    await caller.hang_up()
    return caller, outcome


def agent_texts(call) -> list[str]:
    turns = TranscriptTurn.objects.dangerously_unscoped().filter(call=call, speaker="agent").order_by("turn_number")
    return list(turns.values_list("text", flat=True))


def test_unreachable_claude_the_local_responder_answers(call):
    secrets = {"anthropic_api_key": "fake-ant-test", "anthropic_base_url": closed_port_url()}
    knowledge = [{"title": "Practice FAQ", "content": "Q: When are you open? A: Monday to Friday, 8 AM to 5 PM."}]
    chain = engines.build_llm(LLM_CONFIG, secrets=secrets, knowledge=knowledge, agent_profile={"name": "Scheduler"})
    models = fake_models(None, ["When are you open?"], llm=chain)
    run(one_question, call, models)

    assert agent_texts(call)[1] == "Monday to Friday, 8 AM to 5 PM."
    answer = TranscriptTurn.objects.dangerously_unscoped().get(call=call, turn_number=3)
    assert answer.metadata["llm_provider"] in {"anthropic", "offline-responder"}  # the chain as a whole


def test_every_llm_down_the_caller_is_handed_to_a_person(call):
    models = fake_models(None, ["When are you open?"], llm=ScriptedLLM(lambda ctx: Reply("never"), fail=True))
    _caller, outcome = run(one_question, call, models, ends=True)

    assert agent_texts(call)[-1] == "I apologize, let me transfer you to someone who can help."
    assert outcome.reason == Call.EndReason.TRANSFERRED
    call.refresh_from_db()
    assert call.status == CallStatus.TRANSFERRING
    requested = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.transfer_requested").payload
    assert (requested["target"], requested["transfer_type"]) == ("ext:1001", "warm")


def test_every_stt_down_the_caller_is_told_and_handed_over(call):
    models = fake_models(lambda ctx: Reply("never"), [], stt=ScriptedSTT([], fail=True))
    _caller, outcome = run(one_question, call, models, ends=True)

    assert agent_texts(call)[-1] == "I'm having trouble hearing you. Please hold for an agent."
    assert outcome.reason == Call.EndReason.TRANSFERRED


def test_every_tts_down_the_transfer_happens_without_words(call):
    models = fake_models(lambda ctx: Reply("Hello"), ["Hi"], tts=ToneTTS(fail=True))
    caller = Caller()

    async def scenario():
        await caller.connect(call, models)
        return await caller.session.wait(), await caller.session.aclose()

    outcome, _ = run(scenario)
    assert outcome.reason == Call.EndReason.TRANSFERRED
    assert caller.played == []


def test_nobody_to_hand_over_to_ends_the_call(transactional_db):
    tenant = factories.TenantFactory()
    agent = make_agent(tenant)
    agent.transfer_targets = []
    agent.save(update_fields=["transfer_targets"])
    call = connected_call(agent)
    models = fake_models(None, ["When are you open?"], llm=ScriptedLLM(lambda ctx: Reply("never"), fail=True))
    _caller, outcome = run(one_question, call, models, ends=True)

    assert agent_texts(call)[-1] == "I'm sorry, we are having technical difficulties. Please call back a little later."
    assert outcome.reason == Call.EndReason.ERROR
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "error")
