"""The call around the conversation: transfer, end_call, limits, usage minutes, tenant scoping."""

import pytest

from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from calls.state_machine import CallStatus
from integrations import vault
from integrations.models import ProviderCredential
from tests import factories
from tests.voice.session_fakes import Reply, last_tool_output, last_user_text
from tests.voice.session_support import (  # noqa: F401
    Caller,
    agent_fixture,
    call_fixture,
    connected_call,
    fake_models,
    make_agent,
    run,
)
from voice import session as runtime_session
from voice.io import CallAudioInput, CallAudioOutput
from voice.session import AgentNotFound, CallNotFound, InProcessMedia, create_call_session, load_profile


def receptionist(chat_ctx):
    output = last_tool_output(chat_ctx)
    if output is not None:
        return Reply("Goodbye!" if output.name == "end_call" else "I'm transferring you now.")
    said = last_user_text(chat_ctx).lower()
    if "person" in said:
        args = {"target": "Front desk", "type": "blind", "context": "Wants to move an appointment"}
        return Reply(tool="transfer_call", arguments=args)
    if "bye" in said:
        return Reply(tool="end_call", arguments={"reason": "caller is done"})
    return Reply("How else can I help?")


async def conversation(call, lines):
    caller = Caller()
    await caller.connect(call, fake_models(receptionist, lines))
    await caller.wait_for_agent(1)
    for _ in lines:
        await caller.say()
    outcome = await caller.session.wait()
    await caller.session.aclose()
    return caller, outcome


def event_types(call) -> list[str]:
    return list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


def test_transfer_call_says_so_then_asks_the_bridge(call):
    _caller, outcome = run(conversation, call, ["Can I speak to a person?"])

    assert outcome.reason == Call.EndReason.TRANSFERRED
    # The bridge acts on the Outcome: the target comes resolved to the destination of "Front desk".
    assert outcome.transfer == {"type": "blind", "target": "ext:1001", "context": "Wants to move an appointment"}
    call.refresh_from_db()
    assert call.status == CallStatus.TRANSFERRING  # the bridge ends it once the PBX has transferred
    last_turn = TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("-turn_number").first()
    assert last_turn.text == "I'm transferring you now."
    assert event_types(call)[-3:] == ["transcript.turn", "call.status_changed", "call.transfer_requested"]
    requested = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.transfer_requested").payload
    assert requested == {
        "call_id": str(call.pk),
        "type": "blind",
        "transfer_type": "blind",
        "target": "ext:1001",
        "context": "Wants to move an appointment",
        "reason": "agent_decision",
    }
    tool_call = ToolCall.objects.dangerously_unscoped().get(call=call)
    assert (tool_call.tool_name, tool_call.status) == ("transfer_call", "succeeded")


def test_end_call_says_goodbye_then_hangs_up(call):
    caller, outcome = run(conversation, call, ["That's all, bye"])

    assert outcome.reason == Call.EndReason.AGENT_HANGUP
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "agent_hangup")
    texts = list(
        TranscriptTurn.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("turn_number")
        .values_list("text", flat=True)
    )
    assert texts[-1] == "Goodbye!"
    assert event_types(call)[-2:] == ["transcript.turn", "call.ended"]
    assert ToolCall.objects.dangerously_unscoped().get(call=call).tool_name == "end_call"
    # the goodbye was played in full before the line went down
    assert (
        caller.played and not TranscriptTurn.objects.dangerously_unscoped().get(call=call, text="Goodbye!").interrupted
    )


async def quiet_call(call):
    caller = Caller()
    await caller.connect(call, fake_models(receptionist, []))
    outcome = await caller.session.wait()
    await caller.session.aclose()
    return outcome


def test_idle_caller_is_hung_up_on(call, settings, monkeypatch):
    monkeypatch.setattr(runtime_session, "WATCHDOG_SECONDS", 0.1)
    settings.CALL_IDLE_TIMEOUT_SECONDS = 1
    outcome = run(quiet_call, call)

    assert outcome.reason == Call.EndReason.IDLE_TIMEOUT
    call.refresh_from_db()
    assert call.end_reason == "idle_timeout"


def test_usage_minutes_and_maximum_duration(call, settings, monkeypatch):
    monkeypatch.setattr(runtime_session, "WATCHDOG_SECONDS", 0.05)
    monkeypatch.setattr(runtime_session, "SECONDS_PER_MINUTE", 0.5)
    settings.CALL_MAX_DURATION_SECONDS = 1.2
    outcome = run(quiet_call, call)

    assert outcome.reason == Call.EndReason.MAX_DURATION
    minutes = CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="usage.minute").order_by("sequence")
    assert [e.payload["minute_count"] for e in minutes] == [1, 2]
    assert minutes[0].payload == {"tenant_id": str(call.tenant_id), "call_id": str(call.pk), "minute_count": 1}


# --- tenant scoping ------------------------------------------------------------------------------


def test_profile_holds_only_the_agents_own_tenant_data(agent):
    other = factories.TenantFactory(slug="globex")
    other_agent = make_agent(other, name="Scheduler")
    factories.KnowledgeDocumentFactory(agent=other_agent, tenant=other, title="Secret", content="Q: x? A: other")
    mine = ProviderCredential(tenant=agent.tenant, name="MY_CLAUDE", provider="anthropic")
    theirs = ProviderCredential(tenant=other, name="THEIR_CLAUDE", provider="anthropic")
    for credential, key in ((mine, "fake-ant-mine-0000"), (theirs, "fake-ant-theirs-000")):
        vault.seal(credential, {"api_key": key})
        credential.save()

    profile = load_profile(tenant=agent.tenant, agent_ref="Scheduler")

    assert profile.agent_id == str(agent.pk)
    assert [d["title"] for d in profile.knowledge] == ["Practice FAQ"]
    assert profile.secrets["anthropic_api_key"] == "fake-ant-mine-0000"
    assert [t["name"] for t in profile.tools] == ["check_availability"]


def test_another_tenants_agent_is_refused(agent):
    other = factories.TenantFactory(slug="globex")
    other_agent = make_agent(other, name="Night line")

    with pytest.raises(AgentNotFound):
        load_profile(tenant=agent.tenant, agent_ref=str(other_agent.pk))
    with pytest.raises(AgentNotFound):
        load_profile(tenant=agent.tenant, agent_ref="Night line")


async def start_for(tenant_id, call_id):
    media = InProcessMedia(CallAudioInput(), CallAudioOutput())
    return await create_call_session(
        tenant_id=tenant_id, call_id=call_id, media=media, models=fake_models(receptionist, [])
    )


def test_a_call_is_found_only_through_its_own_tenant(call):
    other = factories.TenantFactory(slug="globex")

    with pytest.raises(CallNotFound):
        run(start_for, other.pk, call.pk)
    assert TranscriptTurn.objects.dangerously_unscoped().count() == 0
