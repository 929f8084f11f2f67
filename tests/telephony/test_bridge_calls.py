"""Outbound calls, answering machines and transfers through the bridge, on fake engines.

The PBX is the fake GoTo Connect with a real aiortc peer per web call (the callee, a transfer target, a
supervisor); the agent session runs on the scripted engines of the runtime tests, so each call takes
seconds. What each party heard is checked on the peers; what happened, in the stored call and events.
"""

import asyncio
import functools

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from calls import services as call_services
from calls.models import Call, CallEvent, TranscriptTurn
from telephony import worker as media_worker_module
from telephony.transfers import APOLOGY
from tests import factories
from tests.telephony.bridge_support import phone_system, wait_for_call, wait_quiet
from tests.telephony.fake_goto import not_answered
from tests.telephony.peer import RATE, speech_wav, write_wav
from tests.voice.session_fakes import Reply, last_user_text
from tests.voice.session_support import FAST_TURNS, fake_models, make_agent

OUR_NUMBER, CALLER, CALLEE = "+15559876543", "+15551234567", "+15557654321"
TARGETS = [
    {"name": "Front desk", "destination": "ext:1001", "type": "warm", "description": "Reception"},
    {"name": "Billing", "destination": "+15550002222", "type": "blind", "description": "Invoices"},
]


def respond(chat_ctx) -> Reply:
    heard = last_user_text(chat_ctx).lower()
    if "front desk" in heard:
        return Reply(text="Let me get the front desk.", tool="transfer_call", arguments={"target": "Front desk"})
    return Reply(text="Sure, I can help with that.")


def models(lines=()):
    return fake_models(respond, list(lines))


def fast_bridge(lines=()):
    return {
        "models_factory": functools.partial(models, lines),
        "turn_handling": FAST_TURNS,
        "session_options": {"session_close_transcript_timeout": 0.1},
    }


def tone_wav(path, seconds=0.8, freq=300.0):
    t = np.arange(int(RATE * seconds)) / RATE
    samples = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    silence = np.zeros(int(RATE * 0.6), dtype=np.int16)
    return write_wav(path, np.concatenate([samples, silence]), RATE)


@pytest.fixture
def agent(transactional_db):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    agent = make_agent(
        tenant,
        name="Receptionist",
        greeting="Hello from Acme.",
        tools=[],
        voicemail_message="Hi, this is Acme Dental calling about your appointment. Please call us back.",
    )
    agent.transfer_targets = TARGETS
    agent.save()
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164=OUR_NUMBER)
    return agent


def events_of(call) -> list[str]:
    return list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


@database_sync_to_async
def start_outbound(agent) -> Call:
    return call_services.call_start_outbound(tenant=agent.tenant, agent=agent, to_number=CALLEE)


@database_sync_to_async
def request_transfer(call_id, transfer_type, target, context=""):
    call = Call.objects.dangerously_unscoped().select_related("agent", "tenant").get(pk=call_id)
    return call_services.call_transfer_request(call=call, transfer_type=transfer_type, target=target, context=context)


async def conversing(call_id, timeout=20.0) -> Call:
    return await wait_for_call(pk=call_id, status="conversing", timeout=timeout)


# --- outbound (docs/telephony.md#outbound-calls) ------------------------------------------------------


def test_outbound_call_is_dialled_and_a_person_who_answers_gets_the_agent(agent, settings, capsys):
    hello = speech_wav("Hello?")

    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            call = await start_outbound(agent)
            dialled = await fake.await_request(r"/web-calls/v1/calls$", method="POST")
            external_id = (await wait_for_call(pk=call.pk, external_call_id__isnull=False)).external_call_id
            callee = await pbx.answered(external_id)
            callee.say(hello)
            await conversing(call.pk)
            await callee.wait_heard(0.25, timeout=20)  # the agent's (tone) greeting after "Hello?"
            fake.hangup_remote(external_id)
            return await wait_for_call(pk=call.pk, status="ended"), dialled

    call, dialled = async_to_sync(scenario)()
    body = dialled.json
    assert {k: body[k] for k in ("organizationId", "extensionNumber", "dialString")} == {
        "organizationId": "org-1",
        "extensionNumber": "7001",
        "dialString": CALLEE,
    }
    assert body["sdp"].startswith("v=0") and body["deviceId"] and body["inCallChannelId"].startswith("WebSockets.")
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    assert call.metadata["amd"]["verdict"] == "human"
    kinds = events_of(call)
    assert kinds.index("call.dialing") < kinds.index("call.connected") < kinds.index("agent.joined")
    assert capsys.readouterr().out == ""  # logs are JSON on stderr; nothing prints to stdout


@pytest.mark.parametrize(("status", "end_reason"), [("RINGING", "no_answer"), ("BUSY", "busy")])
def test_outbound_call_not_answered_ends_with_the_pbx_reason(agent, settings, status, end_reason):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, _pbx):
            fake.place_script = lambda call_id, body: not_answered(status)
            call = await start_outbound(agent)
            return await wait_for_call(pk=call.pk, status="ended"), fake

    call, fake = async_to_sync(scenario)()
    assert call.end_reason == end_reason and call.duration_seconds == 0
    assert call.metadata["failure_reason"] == end_reason
    assert fake.requests_to(r"/answer$") == []  # nothing was answered
    assert "call.ended" in events_of(call)


def test_a_ringing_outbound_call_canceled_through_the_api_is_hung_up_at_goto(agent, settings):
    @database_sync_to_async
    def cancel(call_id):
        call = Call.objects.dangerously_unscoped().select_related("tenant").get(pk=call_id)
        return call_services.call_end_request(call=call)

    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, _pbx):
            fake.place_script = lambda call_id, body: [{"state": "STARTING", "remote": "RINGING"}]  # rings on
            call = await start_outbound(agent)
            external_id = (await wait_for_call(pk=call.pk, external_call_id__isnull=False)).external_call_id
            await cancel(call.pk)
            await fake.await_request(rf"/web-calls/v1/calls/{external_id}$", method="DELETE", timeout=20)
            return await wait_for_call(pk=call.pk, status="ended"), fake, external_id

    call, fake, external_id = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.CANCELED
    assert fake.hangups == [external_id]
    assert "agent.joined" not in events_of(call)


def test_a_revoked_grant_stops_the_line_and_new_calls_say_goto_needs_reconnecting(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            line = next(iter(media_worker_module.current().lines.values()))
            pbx.tokens.revoke()  # the tenant's admin removed the app at GoTo: the grant says reconnect
            fake.drop_sockets()  # the next channel cannot be created without a token
            await fake.until(lambda: line.listener.stopped_reason == "goto_reconnect_required", 20, "a stop")
            requests = len(fake.requests)
            call = await start_outbound(agent)
            return await wait_for_call(pk=call.pk, status="ended"), fake, requests

    call, fake, requests = async_to_sync(scenario)()
    assert call.metadata["failure_reason"] == "goto_reconnect_required"
    assert len(fake.requests) == requests  # nothing more was asked of GoTo: no retry loop, no dial


@pytest.mark.slow
def test_outbound_call_answered_by_a_machine_gets_the_voicemail_message(agent, settings, tmp_path):
    greeting = speech_wav(
        "Hi, you've reached Dana. I can't take your call right now. Please leave a message after the tone."
    )
    beep = tmp_path / "beep.wav"
    t = np.arange(int(RATE * 0.5)) / RATE
    write_wav(beep, (0.4 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16), RATE)

    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            call = await start_outbound(agent)
            external_id = (await wait_for_call(pk=call.pk, external_call_id__isnull=False)).external_call_id
            machine = await pbx.answered(external_id)
            machine.say(greeting)
            machine.say(beep)
            ended = await wait_for_call(pk=call.pk, status="ended", timeout=40)
            return ended, machine, fake, external_id

    call, machine, fake, external_id = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.VOICEMAIL
    assert call.metadata["amd"]["verdict"] == "machine"
    assert machine.heard_seconds > 1.0  # the voicemail message was played to the machine
    assert external_id in fake.hangups  # and then we hung up
    assert "agent.joined" not in events_of(call)  # the agent never took the call


# --- transfers (docs/telephony.md#transfers) ----------------------------------------------------------


async def inbound_conversing(fake, pbx):
    external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
    caller = await pbx.answered(external_id)
    call = await wait_for_call(external_call_id=external_id)
    await conversing(call.pk)
    await caller.wait_heard(0.3, timeout=20)
    return call, external_id, caller


def test_blind_transfer_hands_the_caller_over_and_ends_the_call(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            call, external_id, _ = await inbound_conversing(fake, pbx)
            await request_transfer(call.pk, "blind", "Billing")
            ended = await wait_for_call(pk=call.pk, status="ended")
            return ended, fake, external_id

    call, fake, external_id = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.TRANSFERRED
    [request] = fake.requests_to(rf"/{external_id}/blind-transfer$")
    assert request.json == {"dialString": "+15550002222"}
    kinds = events_of(call)
    assert kinds.index("call.transfer_requested") < kinds.index("call.transferred") < kinds.index("call.ended")
    transferred = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.transferred").payload
    assert transferred["transferred_to"] == "+15550002222"
    assert external_id not in fake.hangups  # the PBX keeps the caller; we only leave


def test_the_agent_asks_for_a_warm_transfer_and_briefs_the_target(agent, settings, tmp_path):
    ask = tone_wav(tmp_path / "ask.wav")

    async def scenario():
        async with phone_system(
            settings, agent.tenant_id, **fast_bridge(["Put me through to the front desk please"])
        ) as (fake, pbx):
            call, external_id, caller = await inbound_conversing(fake, pbx)
            caller.say(ask)  # the scripted STT hears the line above
            consult = await fake.await_request(r"/web-calls/v1/calls$", method="POST", timeout=20)
            ended = await wait_for_call(pk=call.pk, status="ended", timeout=30)
            target_id = next(cid for cid in pbx.peers if cid != external_id)
            return ended, fake, external_id, consult, pbx.peers[target_id], target_id

    call, fake, external_id, consult, target, target_id = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.TRANSFERRED
    assert consult.json["dialString"] == "1001"
    assert target.heard_seconds > 0.5  # the agent briefed the target before joining them
    paths = [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake.requests if external_id in r.path]
    assert ("POST", "hold") in paths and ("POST", "warm-transfer") in paths
    [warm] = fake.requests_to(rf"/{external_id}/warm-transfer$")
    assert warm.json == {"referId": target_id}
    kinds = events_of(call)
    for expected in ("call.transfer_requested", "call.held", "call.transferred", "call.ended"):
        assert expected in kinds
    assert CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.transfer_requested").payload[
        "reason"
    ] == ("agent_decision")


def test_a_failed_transfer_returns_the_caller_to_the_agent_with_an_apology(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            fake.transfer_refused = "CONFLICT"  # GoTo answers the transfer with its error body
            call, external_id, caller = await inbound_conversing(fake, pbx)
            heard = caller.heard_seconds
            await request_transfer(call.pk, "blind", "Billing")
            await fake.await_request(rf"/{external_id}/blind-transfer$", timeout=20)
            await conversing(call.pk)  # back with the agent ...
            await caller.wait_heard(heard + 0.5, timeout=20)  # ... who apologises
            await wait_quiet(caller, quiet=0.8)
            fake.hangup_remote(external_id)
            return await wait_for_call(pk=call.pk, status="ended")

    call = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    kinds = events_of(call)
    assert kinds.index("call.transfer_requested") < kinds.index("call.transfer_failed")
    assert "call.transferred" not in kinds
    assert TranscriptTurn.objects.dangerously_unscoped().filter(call=call, speaker="agent", text=APOLOGY).exists()


def test_a_warm_transfer_target_who_is_busy_takes_the_caller_off_hold(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            fake.place_script = lambda call_id, body: not_answered("BUSY")
            call, external_id, _ = await inbound_conversing(fake, pbx)
            await request_transfer(call.pk, "warm", "Front desk", context="Billing question")
            await fake.await_request(rf"/{external_id}/unhold$", method="POST", timeout=40)  # resumed
            await conversing(call.pk)
            fake.hangup_remote(external_id)
            return await wait_for_call(pk=call.pk, status="ended"), fake, external_id

    call, fake, external_id = async_to_sync(scenario)()
    assert fake.requests_to(rf"/{external_id}/warm-transfer$") == []
    kinds = events_of(call)
    assert kinds.index("call.held") < kinds.index("call.transfer_failed")
    assert "call.resumed" in kinds


def test_a_supervisor_is_merged_into_the_call_and_the_agent_stays(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            call, external_id, _ = await inbound_conversing(fake, pbx)
            await request_transfer(call.pk, "conference", "ext:1003")
            await fake.await_request(rf"/{external_id}/merge$", timeout=20)
            await wait_for_call(pk=call.pk, status="conversing")
            await asyncio.sleep(0.3)
            fake.hangup_remote(external_id)
            return await wait_for_call(pk=call.pk, status="ended"), fake

    call, fake = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    [dial] = list(fake.requests_to(r"/web-calls/v1/calls$", method="POST"))
    assert dial.json["dialString"] == "1003"
    kinds = events_of(call)
    assert kinds.index("call.transfer_requested") < kinds.index("call.merged")
    merged = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.merged").payload
    assert merged["target"] == "ext:1003"


def test_an_expired_token_mid_call_is_renewed_and_the_call_goes_on(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, pbx):
            call, _external_id, _ = await inbound_conversing(fake, pbx)
            tokens_before = pbx.tokens.fetches
            fake.expire_tokens()  # REST answers 401 until a new token is fetched
            await request_transfer(call.pk, "blind", "Billing")
            ended = await wait_for_call(pk=call.pk, status="ended")
            return ended, pbx.tokens.fetches, tokens_before

    call, fetches, tokens_before = async_to_sync(scenario)()
    assert call.end_reason == Call.EndReason.TRANSFERRED  # the transfer went through with a new token
    assert fetches == tokens_before + 1


# --- the dialling task --------------------------------------------------------------------------------


def test_the_dial_task_never_dials_another_tenants_call(agent, other_tenant, fake_goto):
    from calls import tasks

    call = call_services.call_create(tenant=agent.tenant, agent=agent, direction="outbound", to_number=CALLEE)
    assert tasks.call_initiate(call_id=str(call.pk), tenant_id=str(other_tenant.pk)) is None
    assert fake_goto.requests_to(r"/web-calls/v1/calls$") == []
    call.refresh_from_db()
    assert call.status == "initial"


def test_a_pbx_refusing_the_dial_ends_the_call_and_says_why(agent, settings):
    from calls import tasks

    @database_sync_to_async
    def dial():
        number = agent.phone_numbers.get(e164=OUR_NUMBER)  # its carrier (GoTo Connect) dials the call
        call = call_services.call_create(
            tenant=agent.tenant,
            agent=agent,
            direction="outbound",
            from_number=OUR_NUMBER,
            to_number=CALLEE,
            phone_number=number,
        )
        return call, tasks.call_initiate(call_id=str(call.pk), tenant_id=str(agent.tenant_id))

    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, _pbx):
            fake.fail_next(r"/web-calls/v1/calls$", 503, method="POST", code="UNAVAILABLE")
            call, status = await dial()
            return call, status, fake

    call, status, fake = async_to_sync(scenario)()
    assert status == "ended"
    assert len(fake.requests_to(r"/web-calls/v1/calls$")) == 1  # a dial is never sent twice
    call.refresh_from_db()
    assert (call.end_reason, call.metadata["failure_reason"]) == ("error", "pbx_unavailable")
    assert events_of(call)[:2] == ["call.dialing", "call.ended"]


def test_an_unusable_sdp_answer_from_goto_hangs_the_placed_call_up_and_ends_ours(agent, settings):
    async def scenario():
        async with phone_system(settings, agent.tenant_id, **fast_bridge()) as (fake, _pbx):
            fake.on_place_call = lambda call_id, body: "v=0\r\nnot an answer\r\n"
            call = await start_outbound(agent)
            ended = await wait_for_call(pk=call.pk, status="ended")
            [placed] = list(fake.calls)
            await fake.await_request(rf"/web-calls/v1/calls/{placed}$", method="DELETE")
            return ended, fake, placed

    call, fake, placed = async_to_sync(scenario)()
    assert (call.end_reason, call.metadata["failure_reason"]) == ("error", "invalid_sdp")
    assert fake.hangups == [placed]


def test_a_dial_with_no_connected_goto_line_ends_the_call_and_says_why(agent, other_tenant, settings):
    """The media worker serves another tenant's GoTo line only: this tenant's call is refused, not placed."""
    from calls import tasks

    @database_sync_to_async
    def dial():
        number = agent.phone_numbers.get(e164=OUR_NUMBER)
        call = call_services.call_create(
            tenant=agent.tenant,
            agent=agent,
            direction="outbound",
            from_number=OUR_NUMBER,
            to_number=CALLEE,
            phone_number=number,
        )
        return call, tasks.call_initiate(call_id=str(call.pk), tenant_id=str(agent.tenant_id))

    async def scenario():
        async with phone_system(settings, other_tenant.pk, **fast_bridge()) as (fake, _pbx):
            call, status = await dial()
            return call, status, fake

    call, status, fake = async_to_sync(scenario)()
    assert status == "ended"
    assert fake.requests_to(r"/web-calls/v1/calls$") == []
    call.refresh_from_db()
    assert call.metadata["failure_reason"] == "goto_not_connected"
