"""A phone call end to end through the bridge, offline: the fake GoTo Connect rings, a real aiortc
peer is the caller, the media worker answers over WebRTC with the agent on the offline engines
(Whisper, the local responder, piper). What the caller heard is transcribed back and checked."""

import pytest
from asgiref.sync import async_to_sync

from calls.models import Call, CallEvent, Recording, TranscriptTurn
from tests import factories
from tests.e2e.test_offline_call import transcribe, whisper, words  # noqa: F401
from tests.telephony.bridge_support import phone_system, wait_for_call, wait_quiet
from tests.telephony.peer import speech_wav
from tests.voice.session_support import make_agent

pytestmark = pytest.mark.e2e  # a PBX, the media worker and an agent session, end to end (`make test-fast` skips them)

OUR_NUMBER, CALLER = "+15559876543", "+15551234567"
GREETING = "Thank you for calling Acme Dental. How can I help?"


@pytest.fixture
def inbound_agent(transactional_db):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)  # a plan: the tenant may take calls
    agent = make_agent(tenant, name="Receptionist", greeting=GREETING, tools=[])
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164=OUR_NUMBER)
    return agent


@pytest.mark.slow
def test_a_caller_is_answered_greeted_and_helped_then_hangs_up(inbound_agent, settings, whisper, tmp_path):  # noqa: F811
    question = speech_wav("When are you open?")

    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, pbx):
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
            peer = await pbx.answered(external_id)
            await peer.wait_heard(1.5, timeout=30)  # the greeting starts ...
            await wait_quiet(peer)  # ... and ends
            greeting_heard = peer.heard_seconds
            peer.say(question)
            await peer.wait_heard(greeting_heard + 1.0, timeout=60)  # the answer
            await wait_quiet(peer)
            fake.hangup_remote(external_id)
            call = await wait_for_call(external_call_id=external_id, status="ended")
            await pbx.aclose()
            return call, peer.heard_wav(tmp_path / "heard.wav"), fake

    call, heard_wav, fake = async_to_sync(scenario)()

    heard = words(transcribe(whisper, heard_wav))
    assert {"thank", "calling", "help"} <= heard  # the greeting, over Opus both ways
    assert {"monday", "friday"} <= heard  # the FAQ answer to the caller's question
    assert (call.direction, call.from_number, call.to_number) == ("inbound", CALLER, OUR_NUMBER)
    assert call.end_reason == Call.EndReason.CALLER_HANGUP and call.duration_seconds >= 1
    assert call.room_name == f"call-{call.tenant_id}-{call.pk}"
    turns = list(TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("turn_number"))
    assert [t.speaker for t in turns[:3]] == ["agent", "caller", "agent"]
    assert turns[0].text == GREETING
    assert {"when", "open"} <= words(turns[1].text)
    assert turns[2].text == "Monday to Friday, 8 AM to 5 PM."
    kinds = list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )
    for expected in ("call.ringing", "call.connected", "room.ready", "agent.joined", "transcript.turn", "call.ended"):
        assert expected in kinds
    assert kinds.index("call.ringing") < kinds.index("call.connected") < kinds.index("room.ready")
    assert kinds[-1] == "call.ended"
    ended = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.ended").payload
    assert ended["end_reason"] == "caller_hangup" and ended["duration"] == call.duration_seconds
    recording = Recording.objects.dangerously_unscoped().get(call=call)
    assert recording.duration_seconds > 3 and recording.expires_at > call.ended_at
    assert fake.hangups == []  # the caller hung up: nothing for us to hang up


@pytest.mark.slow
def test_the_agent_ending_the_call_hangs_up_at_the_pbx(inbound_agent, settings):
    """Our side ends it (here: the idle timeout): the PBX is told to hang up, call.ended says why."""
    settings.CALL_IDLE_TIMEOUT_SECONDS = 2

    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, pbx):
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
            await pbx.answered(external_id)
            call = await wait_for_call(external_call_id=external_id, status="ended", timeout=40)
            await fake.await_request(rf"/web-calls/v1/calls/{external_id}$", method="DELETE", timeout=20)
            await pbx.aclose()
            return call

    call = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.IDLE_TIMEOUT


def test_unknown_and_unassigned_numbers_are_rejected_and_the_worker_goes_on(inbound_agent, settings, caplog):
    factories.PhoneNumberFactory(tenant=inbound_agent.tenant, agent=None, e164="+15550001111")

    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, _pbx):
            unknown = fake.ring(from_=CALLER, to="+15550009999")
            unassigned = fake.ring(from_=CALLER, to="+15550001111")
            for external_id in (unknown, unassigned):
                await fake.await_request(rf"/web-calls/v1/calls/{external_id}$", method="DELETE", timeout=20)
            # The worker still answers a good call after the two rejections.
            good = fake.ring(from_=CALLER, to=OUR_NUMBER)
            await wait_for_call(external_call_id=good, status="conversing")
            fake.hangup_remote(good)
            await wait_for_call(external_call_id=good, status="ended")
            return unknown, unassigned

    unknown, unassigned = async_to_sync(scenario)()
    assert not Call.objects.dangerously_unscoped().filter(external_call_id__in=[unknown, unassigned]).exists()
    assert "unknown_number" in caplog.text and "unassigned_number" in caplog.text


def test_a_bad_offer_from_the_pbx_ends_that_call_only(inbound_agent, settings):
    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, _pbx):
            fake.on_incoming = lambda call_id: "v=0\r\nthis is not sdp\r\n"
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
            call = await wait_for_call(external_call_id=external_id, status="ended")
            await fake.await_request(rf"/web-calls/v1/calls/{external_id}$", method="DELETE", timeout=20)
            return call

    call = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.ERROR
    assert call.metadata["failure_reason"] == "invalid_sdp"


def test_a_ringing_call_repeated_by_the_pbx_is_answered_once(inbound_agent, settings):
    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, pbx):
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER, repeat=3)
            await pbx.answered(external_id)
            await wait_for_call(external_call_id=external_id, status="conversing")
            fake.hangup_remote(external_id)
            await wait_for_call(external_call_id=external_id, status="ended")
            await pbx.aclose()
            return fake, external_id

    fake, external_id = async_to_sync(scenario)()
    assert len(fake.requests_to(r"/answer$")) == 1
    assert Call.objects.dangerously_unscoped().filter(external_call_id=external_id).count() == 1


def test_a_call_on_one_tenants_goto_line_never_reaches_another_tenants_agent(inbound_agent, settings, caplog):
    """The incoming notification names another tenant's number: that tenant's agent is not rung."""
    other = factories.TenantFactory(slug="other-clinic")
    factories.SubscriptionFactory(tenant=other)
    other_agent = factories.AgentFactory(tenant=other)
    factories.PhoneNumberFactory(tenant=other, agent=other_agent, e164="+15550004444")

    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, _pbx):
            external_id = fake.ring(from_=CALLER, to="+15550004444")
            await fake.await_request(rf"/web-calls/v1/calls/{external_id}$", method="DELETE", timeout=20)
            return fake, external_id

    fake, external_id = async_to_sync(scenario)()
    assert not Call.objects.dangerously_unscoped().filter(tenant=other).exists()
    assert fake.requests_to(rf"/{external_id}/answer$") == []
    assert "unknown_number" in caplog.text


def test_an_inbound_call_is_answered_with_our_offer_when_the_notification_carries_none(inbound_agent, settings):
    """The other reading of the unverified answer step: we offer in POST …/answer, GoTo answers in its response."""

    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, pbx):
            pbx.goto_offers = False
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
            peer = await pbx.answered(external_id)
            await peer.wait_heard(0.3, timeout=30)  # the greeting reaches the caller over the negotiated media
            await wait_for_call(external_call_id=external_id, status="conversing")
            fake.hangup_remote(external_id)
            ended = await wait_for_call(external_call_id=external_id, status="ended")
            await pbx.aclose()
            return ended, fake, external_id

    ended, fake, external_id = async_to_sync(scenario)()
    [answer] = fake.requests_to(rf"/{external_id}/answer$")
    assert answer.json["sdp"].startswith("v=0") and "a=setup:actpass" in answer.json["sdp"]  # an offer
    assert answer.json["inCallChannelId"].startswith("WebSockets.")
    assert ended.end_reason == Call.EndReason.CALLER_HANGUP


def test_an_incoming_notification_naming_no_number_rings_the_lines_one_goto_number(inbound_agent, settings):
    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, pbx):
            external_id = fake.ring(from_=CALLER, to="")
            await pbx.answered(external_id)
            call = await wait_for_call(external_call_id=external_id, status="conversing")
            fake.hangup_remote(external_id)
            await wait_for_call(external_call_id=external_id, status="ended")
            await pbx.aclose()
            return call

    call = async_to_sync(scenario)()
    assert (call.tenant_id, call.to_number, call.agent_id) == (inbound_agent.tenant_id, OUR_NUMBER, inbound_agent.pk)


def test_a_missed_call_state_is_recovered_and_a_repeated_one_handled_once(inbound_agent, settings):
    async def scenario():
        async with phone_system(settings, inbound_agent.tenant_id) as (fake, pbx):
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
            await pbx.answered(external_id)
            await wait_for_call(external_call_id=external_id, status="conversing")
            missed = fake.emit_state(external_id, "ACTIVE", "CONNECTED", deliver=False)  # never reaches us
            fake.calls[external_id].state = "ended"
            last = fake.emit_state(external_id, "ENDING", None, ours=None, repeat=3)  # GoTo repeats it
            call = await wait_for_call(external_call_id=external_id, status="ended")
            await pbx.aclose()
            return call, fake, missed, last

    call, fake, missed, last = async_to_sync(scenario)()
    assert last == missed + 1
    [recovery] = fake.requests_to(r"/conversation-spaces/.+/events$", method="GET")
    assert recovery.query == {"sequenceFrom": str(missed), "sequenceTo": str(missed)}
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="call.ended").count() == 1
