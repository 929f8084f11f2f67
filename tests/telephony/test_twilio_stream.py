"""A Twilio call through the real ASGI app under Uvicorn: the fake Twilio signs the voice webhook, opens
the <Stream> URL from our TwiML with the `websockets` client and plays a caller's mu-law into it; the agent
runs on the scripted engines of the runtime tests. Hostile stream input ends only its own stream."""

import asyncio
import base64
import functools
import json
import time
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from calls.models import Call, CallEvent, Recording, ToolCall, TranscriptTurn
from integrations import services as credential_services
from telephony.carriers.twilio import consumer as stream_consumer
from telephony.carriers.twilio.consumer import TwilioStreamConsumer
from telephony.carriers.twilio.stream import mulaw_decode, mulaw_encode
from telephony.models import PhoneNumber
from tests import factories
from tests.telephony.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    StreamCaller,
    new_call_sid,
    signed_form,
    voice_params,
)
from tests.voice.session_fakes import Reply, last_tool_output, last_user_text
from tests.voice.session_support import FAST_TURNS, fake_models, make_agent

pytestmark = pytest.mark.slow  # a live server, a websocket and an agent session per test

OUR_NUMBER, CALLER = "+15559876543", "+15551234567"
GREETING = "Hello from Acme."


def respond(chat_ctx) -> Reply:
    if last_tool_output(chat_ctx) is not None and "digits" in last_tool_output(chat_ctx).output:
        return Reply(text="Done.")
    heard = last_user_text(chat_ctx).lower()
    if "menu" in heard:
        return Reply(text="Pressing one and two.", tool="send_digits", arguments={"digits": "12"})
    if "billing" in heard or "front desk" in heard:
        target = "Billing" if "billing" in heard else "Front desk"
        return Reply(text="One moment.", tool="transfer_call", arguments={"target": target})
    if "pressed" in heard:
        return Reply(text=f"You pressed {heard.split('pressed ')[1].split()[0]}.")
    return Reply(text="Monday to Friday.")


def models(lines=()):
    return fake_models(respond, list(lines))


@pytest.fixture(autouse=True)
def fake_engines(monkeypatch):
    options = {
        "models_factory": functools.partial(models, ("when are you open",)),
        "turn_handling": FAST_TURNS,
        "session_options": {"session_close_transcript_timeout": 0.1},
    }
    monkeypatch.setattr(TwilioStreamConsumer, "bridge_options", options)


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio().start()
    settings.TWILIO_API_BASE_URL = fake.url  # the bridge hangs up and transfers through the SDK: here
    yield fake
    fake.stop()


@pytest.fixture
def server(asgi_server, number, fake_twilio):
    return asgi_server


@pytest.fixture
def number(transactional_db):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    credential_services.credential_create(tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False)
    agent = make_agent(tenant, name="Receptionist", greeting=GREETING, tools=[])
    return factories.PhoneNumberFactory(
        tenant=tenant, agent=agent, e164=OUR_NUMBER, provider=PhoneNumber.Provider.TWILIO
    )


async def ring(server, call_sid: str) -> tuple[str, str]:
    """Twilio's voice webhook for a call to our number: (the stream URL, the token parameter) of our TwiML."""
    url = f"{server.url}/carriers/twilio/voice"
    form = signed_form(url, voice_params(call_sid=call_sid, to=OUR_NUMBER, from_=CALLER))
    async with httpx.AsyncClient() as client:
        response = await client.post(url, data=form["data"], headers=form["headers"], timeout=10)
    assert response.status_code == 200, response.text
    stream = ElementTree.fromstring(response.text).find("Connect/Stream")  # noqa: S314 (our own answer)
    return stream.get("url"), stream.find("Parameter").get("value")


async def answered(server, **connect) -> tuple[StreamCaller, str]:
    call_sid = new_call_sid()
    url, token = await ring(server, call_sid)
    caller = StreamCaller(url, call_sid=call_sid, parameters={"token": token})
    await caller.connect(**connect)
    return caller, call_sid


async def wait_heard(caller: StreamCaller, seconds: float, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while caller.heard_seconds < seconds:
        assert time.monotonic() < deadline, f"heard only {caller.heard_seconds:.2f} s"
        await caller.silence(0.1)


async def wait_quiet(caller: StreamCaller, quiet: float = 1.0, timeout: float = 30.0) -> None:
    deadline, last, since = time.monotonic() + timeout, caller.heard_seconds, time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the agent never stopped talking"
        await caller.silence(0.1)
        if caller.heard_seconds != last:
            last, since = caller.heard_seconds, time.monotonic()


@database_sync_to_async
def recording_count(call) -> int:
    return Recording.objects.dangerously_unscoped().filter(call=call).count()


async def wait_for_recording(call, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await recording_count(call):
        assert time.monotonic() < deadline, "no recording"
        await asyncio.sleep(0.1)


def tone(seconds: float, freq: float = 300.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@database_sync_to_async
def call_where(**lookup):
    return Call.objects.dangerously_unscoped().filter(**lookup).first()


async def wait_for_call(timeout: float = 20.0, **lookup) -> Call:
    deadline = time.monotonic() + timeout
    while (call := await call_where(**lookup)) is None:
        assert time.monotonic() < deadline, f"no call with {lookup}"
        await asyncio.sleep(0.1)
    return call


def test_a_twilio_caller_is_greeted_answered_and_hangs_up(server):
    async def scenario():
        caller, call_sid = await answered(server)
        await wait_heard(caller, 0.2)  # the greeting (tones, 20 ms mu-law frames)
        await wait_quiet(caller)
        greeting = caller.heard_seconds
        await caller.play(tone(0.6))
        await caller.silence(0.4)
        await wait_heard(caller, greeting + 0.2)  # the answer
        await wait_quiet(caller)
        await caller.stop()
        call = await wait_for_call(external_call_id=call_sid, status="ended")
        await wait_for_recording(call)  # stored as the bridge cleans up, just after the call ends
        return caller, call

    caller, call = async_to_sync(scenario)()
    assert (call.direction, call.from_number, call.to_number, call.end_reason) == (
        "inbound", CALLER, OUR_NUMBER, Call.EndReason.CALLER_HANGUP,
    )  # fmt: skip
    turns = list(TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("turn_number"))
    assert [(t.speaker, t.text) for t in turns[:3]] == [
        ("agent", GREETING), ("caller", "when are you open"), ("agent", "Monday to Friday."),
    ]  # fmt: skip
    kinds = list(CallEvent.objects.dangerously_unscoped().filter(call=call).values_list("event_type", flat=True))
    assert kinds.index("call.ringing") < kinds.index("call.connected") < kinds.index("agent.joined")
    assert kinds[-1] == "call.ended"
    assert Recording.objects.dangerously_unscoped().filter(call=call).count() == 1
    media = caller.events("media")
    assert all(m["streamSid"] == caller.stream_sid for m in media)
    assert {len(base64.b64decode(m["media"]["payload"])) for m in media} == {160}  # 20 ms frames
    assert caller.events("mark")  # a mark after each reply, which Twilio echoes once played
    assert np.abs(caller.heard_samples()).max() > 3000  # the agent's tones, not silence


def test_the_mulaw_tables_match_the_g711_reference():
    from tests.telephony.fake_twilio import mulaw_decode as reference_decode

    samples = np.arange(-32768, 32768, dtype=np.int16)

    assert np.array_equal(mulaw_decode(bytes(range(256))), reference_decode(bytes(range(256))))
    decoded = mulaw_decode(mulaw_encode(samples)).astype(np.int32)
    error = np.abs(decoded - samples.astype(np.int32))
    assert error.max() <= 1024  # mu-law's largest step, at full scale
    assert error[np.abs(samples.astype(np.int32)) < 100].max() <= 8  # and fine near zero


def test_the_caller_presses_a_key_and_the_agent_is_told(server):
    async def scenario():
        caller, call_sid = await answered(server)
        await wait_heard(caller, 0.2)
        await wait_quiet(caller)
        greeting = caller.heard_seconds
        await caller.dtmf("2")
        await wait_heard(caller, greeting + 0.2)  # the agent's answer to the key
        await wait_quiet(caller)
        await caller.stop()
        return await wait_for_call(external_call_id=call_sid, status="ended")

    call = async_to_sync(scenario)()
    texts = list(
        TranscriptTurn.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("turn_number")
        .values_list("speaker", "text")
    )
    assert ("agent", "You pressed 2.") in texts


async def open_stream(server, call_sid: str, token: str) -> StreamCaller:
    url = f"ws://127.0.0.1:{server.port}/ws/v1/carriers/twilio/stream"
    caller = StreamCaller(url, call_sid=call_sid, parameters={"token": token})
    return caller


async def closed(caller: StreamCaller) -> int:
    await asyncio.wait_for(caller.closed.wait(), 20)
    return caller.socket.close_code


HOSTILE = {
    "malformed-json": lambda caller: caller.send_raw("{not json"),
    "not-an-event": lambda caller: caller.send_raw(json.dumps(["media"])),
    "oversized": lambda caller: caller.send_raw(json.dumps({"event": "media", "x": "a" * 20_000})),
    "binary": lambda caller: caller.socket.send(b"\x00\x01"),
    "media-before-start": lambda caller: caller.play(tone(0.02)),
}


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_hostile_input_before_start_ends_that_stream_and_creates_nothing(server, attack):
    async def scenario():
        import websockets

        caller = await open_stream(server, new_call_sid(), "forged")
        caller.socket = await websockets.connect(caller.url, open_timeout=10)
        caller._reader = asyncio.create_task(caller._read())
        await HOSTILE[attack](caller)
        return await closed(caller)

    assert async_to_sync(scenario)() == 1008
    assert Call.objects.dangerously_unscoped().count() == 0


@pytest.mark.parametrize(
    "start",
    ["forged-token", "another-calls-token", "wrong-format"],
)
def test_a_start_that_does_not_prove_its_call_is_refused_and_the_call_keeps_ringing(server, start):
    async def scenario():
        call_sid = new_call_sid()
        url, token = await ring(server, call_sid)
        other_sid = new_call_sid()
        _, other_token = await ring(server, other_sid)
        tokens = {"forged-token": token[:-4] + "AAAA", "another-calls-token": other_token, "wrong-format": token}
        caller = StreamCaller(url, call_sid=call_sid, parameters={"token": tokens[start]})
        fmt = {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1} if start == "wrong-format" else None
        await caller.connect(media_format=fmt)
        return await closed(caller), call_sid

    code, call_sid = async_to_sync(scenario)()
    assert code == 1008
    call = Call.objects.dangerously_unscoped().get(external_call_id=call_sid)
    assert call.status == "ringing"  # never connected: no agent heard anything


def test_a_second_stream_for_a_call_already_bridged_is_refused(server):
    async def scenario():
        caller, call_sid = await answered(server)
        await wait_heard(caller, 0.1)
        intruder = StreamCaller(caller.url, call_sid=call_sid, parameters=caller.parameters)
        await intruder.connect()
        code = await closed(intruder)
        await caller.silence(0.2)
        alive = not caller.closed.is_set()
        await caller.stop()
        return code, alive

    assert async_to_sync(scenario)() == (1008, True)


def test_a_flood_or_bad_media_ends_that_call_only_and_unknown_events_are_ignored(server, fake_twilio, monkeypatch):
    monkeypatch.setattr(stream_consumer, "MAX_MESSAGES_PER_SECOND", 100)
    monkeypatch.setattr(TwilioStreamConsumer, "clock", staticmethod(lambda: 0.0))  # one window: no timing involved

    async def scenario():
        good, good_sid = await answered(server)
        flood, flood_sid = await answered(server)
        bad, bad_sid = await answered(server)
        await good.send({"event": "surprise", "surprise": {}})  # ignored, with a log line
        await bad.send({"event": "media", "media": {"track": "inbound", "payload": "!!not base64!!"}})
        for _ in range(120):
            await flood.send({"event": "mark", "mark": {"name": "x"}})
        codes = (await closed(flood), await closed(bad))
        await wait_heard(good, 0.2)  # the good call goes on
        alive = not good.closed.is_set()
        await good.stop()
        ended = [await wait_for_call(external_call_id=sid, status="ended") for sid in (good_sid, flood_sid, bad_sid)]
        return codes, alive, ended

    codes, alive, (good, flood, bad) = async_to_sync(scenario)()
    assert codes == (1008, 1008) and alive
    assert good.end_reason == Call.EndReason.CALLER_HANGUP
    assert {flood.end_reason, bad.end_reason} == {Call.EndReason.AGENT_HANGUP}
    hung_up = {r.path.rsplit("/", 1)[-1] for r in fake_twilio.requests if r.form == {"Status": "completed"}}
    assert hung_up == {f"{flood.external_call_id}.json", f"{bad.external_call_id}.json"}  # through the REST API


def test_an_outbound_call_picked_up_by_a_person_gets_the_agent(server, number, fake_twilio, settings):
    from calls.services import call_initiate

    settings.TWILIO_WEBHOOK_BASE_URL = server.url
    call = factories.CallFactory(
        tenant=number.tenant, agent=number.agent, phone_number=number, direction="outbound",
        status="initial", from_number=OUR_NUMBER, to_number="+15557654321",
    )  # fmt: skip
    call = call_initiate(call=call)
    answer_url = fake_twilio.calls[call.external_call_id]["form"]["Url"]

    async def scenario():
        params = {"AccountSid": ACCOUNT_SID, "CallSid": call.external_call_id, "AnsweredBy": "human"}
        form = signed_form(answer_url, params)
        async with httpx.AsyncClient() as client:
            response = await client.post(answer_url, data=form["data"], headers=form["headers"], timeout=10)
        stream = ElementTree.fromstring(response.text).find("Connect/Stream")  # noqa: S314 (our own answer)
        callee = StreamCaller(
            stream.get("url"),
            call_sid=call.external_call_id,
            parameters={"token": stream.find("Parameter").get("value")},
        )
        await callee.connect()
        await wait_heard(callee, 0.2)  # the agent speaks first: no answering-machine wait for a person
        await wait_quiet(callee)
        await callee.stop()
        return await wait_for_call(pk=call.pk, status="ended")

    ended = async_to_sync(scenario)()
    assert (ended.end_reason, ended.metadata["twilio_answered_by"], "amd" in ended.metadata) == (
        Call.EndReason.CALLER_HANGUP, "human", False,
    )  # fmt: skip
    turns = TranscriptTurn.objects.dangerously_unscoped().filter(call=ended).order_by("turn_number")
    assert turns.first().text == GREETING


TRANSFER_TARGETS = [
    {"name": "Billing", "destination": "+15550002222", "type": "blind", "description": "Invoices"},
    {"name": "Front desk", "destination": "+15550003333", "type": "warm", "description": "Reception"},
]


def transfer_call(server, fake_twilio, monkeypatch, line: str, *, known_to_twilio: bool = True):
    options = {**TwilioStreamConsumer.bridge_options, "models_factory": functools.partial(models, (line,))}
    monkeypatch.setattr(TwilioStreamConsumer, "bridge_options", options)

    async def scenario():
        call_sid = new_call_sid()
        if known_to_twilio:
            fake_twilio.add_inbound(call_sid, to=OUR_NUMBER, from_=CALLER)
        url, token = await ring(server, call_sid)
        caller = StreamCaller(url, call_sid=call_sid, parameters={"token": token})
        await caller.connect()
        await wait_heard(caller, 0.2)
        await wait_quiet(caller)
        await caller.play(tone(0.6))
        await caller.silence(0.4)
        await wait_quiet(caller, quiet=1.5)
        if not caller.closed.is_set():
            await caller.stop()
        return call_sid, await wait_for_call(external_call_id=call_sid, status="ended")

    return async_to_sync(scenario)()


def events_of(call) -> list[tuple[str, dict]]:
    return list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("sequence")
        .values_list("event_type", "payload")
    )


def test_a_blind_transfer_replaces_the_calls_twiml_with_a_dial(server, number, fake_twilio, monkeypatch):
    number.agent.transfer_targets = TRANSFER_TARGETS
    number.agent.save()
    call_sid, call = transfer_call(server, fake_twilio, monkeypatch, "billing please")
    [update] = fake_twilio.calls[call_sid]["updates"]
    assert update == {
        "Twiml": '<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="+15559876543">+15550002222</Dial></Response>'
    }
    assert call.end_reason == Call.EndReason.TRANSFERRED
    transferred = [payload for kind, payload in events_of(call) if kind == "call.transferred"]
    assert transferred == [{"call_id": str(call.pk), "transferred_to": "+15550002222"}]


def test_a_transfer_twilio_refuses_returns_the_caller_to_the_agent(server, number, fake_twilio, monkeypatch):
    number.agent.transfer_targets = TRANSFER_TARGETS
    number.agent.save()
    _, call = transfer_call(server, fake_twilio, monkeypatch, "billing please", known_to_twilio=False)
    kinds = [kind for kind, _ in events_of(call)]
    assert "call.transfer_failed" in kinds and "call.transferred" not in kinds
    assert call.end_reason == Call.EndReason.CALLER_HANGUP  # the caller stayed with the agent, then hung up
    texts = (
        TranscriptTurn.objects.dangerously_unscoped().filter(call=call, speaker="agent").values_list("text", flat=True)
    )
    assert any("couldn't connect you" in text for text in texts)


async def consult_of(fake_twilio, target: str, timeout: float = 20.0) -> str:
    """The CallSid of the transfer target's leg once our side has dialled it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [sid for sid, call in fake_twilio.calls.items() if call["form"].get("To") == target]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"{target} was never dialled"
        await asyncio.sleep(0.05)


def warm_transfer(server, fake_twilio, monkeypatch, settings, consult_status: str):
    settings.TWILIO_WEBHOOK_BASE_URL = server.url  # the target leg's status callback comes back here
    options = {**TwilioStreamConsumer.bridge_options, "models_factory": functools.partial(models, ("front desk",))}
    monkeypatch.setattr(TwilioStreamConsumer, "bridge_options", options)

    async def scenario():
        call_sid = new_call_sid()
        fake_twilio.add_inbound(call_sid, to=OUR_NUMBER, from_=CALLER)
        url, token = await ring(server, call_sid)
        caller = StreamCaller(url, call_sid=call_sid, parameters={"token": token})
        await caller.connect()
        await wait_heard(caller, 0.2)
        await wait_quiet(caller)
        await caller.play(tone(0.6))
        await caller.silence(0.4)
        consult = await consult_of(fake_twilio, "+15550003333")
        status_url = f"{server.url}/carriers/twilio/status"
        params = {"AccountSid": ACCOUNT_SID, "CallSid": consult, "CallStatus": consult_status}
        form = signed_form(status_url, params)
        async with httpx.AsyncClient() as client:
            response = await client.post(status_url, data=form["data"], headers=form["headers"], timeout=10)
        assert response.status_code == 204
        await wait_quiet(caller, quiet=1.5)
        if not caller.closed.is_set():
            await caller.stop()
        return call_sid, consult, await wait_for_call(external_call_id=call_sid, status="ended")

    return async_to_sync(scenario)()


CONFERENCE = '<Dial><Conference beep="false" endConferenceOnExit="true">transfer-{}</Conference></Dial></Response>'


def test_a_warm_transfer_briefs_the_target_then_joins_the_caller_in_a_conference(
    server, number, fake_twilio, monkeypatch, settings
):
    number.agent.transfer_targets = TRANSFER_TARGETS
    number.agent.save()
    call_sid, consult, call = warm_transfer(server, fake_twilio, monkeypatch, settings, "in-progress")
    target = fake_twilio.calls[consult]["form"]
    assert (target["To"], target["From"], target["StatusCallback"]) == (
        "+15550003333", OUR_NUMBER, f"{server.url}/carriers/twilio/status",
    )  # fmt: skip
    assert target["Twiml"].startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello, this is Receptionist'
    )
    assert target["Twiml"].endswith(CONFERENCE.format(call.pk))
    [update] = fake_twilio.calls[call_sid]["updates"]
    assert update["Twiml"].endswith("<Response>" + CONFERENCE.format(call.pk))
    assert call.end_reason == Call.EndReason.TRANSFERRED
    kinds = [kind for kind, _ in events_of(call)]
    assert kinds.index("call.held") < kinds.index("call.transferred")


def test_a_warm_transfer_target_who_does_not_answer_returns_the_caller_to_the_agent(
    server, number, fake_twilio, monkeypatch, settings
):
    number.agent.transfer_targets = TRANSFER_TARGETS
    number.agent.save()
    call_sid, consult, call = warm_transfer(server, fake_twilio, monkeypatch, settings, "no-answer")
    assert fake_twilio.calls[call_sid]["updates"] == []  # the caller never left the agent
    failed = [payload for kind, payload in events_of(call) if kind == "call.transfer_failed"]
    assert [(p["transfer_type"], p["target"]) for p in failed] == [("warm", "+15550003333")]
    assert "did not answer" in failed[0]["reason"]
    assert fake_twilio.calls[consult]["updates"] == [{"Status": "completed"}]  # the target's leg hung up
    kinds = [kind for kind, _ in events_of(call)]
    assert kinds.index("call.held") < kinds.index("call.resumed")
    assert call.end_reason == Call.EndReason.CALLER_HANGUP


def dtmf_heard(samples: np.ndarray, rate: int = 8000) -> str:
    """The keys in `samples`, by the Goertzel power of the eight DTMF frequencies in 50 ms windows."""
    from telephony.media.dtmf import COLUMNS, FREQUENCIES, ROWS

    keys, previous, size = [], "", int(rate * 0.05)
    for start in range(0, len(samples) - size, size):
        window = samples[start : start + size].astype(float)
        power = {f: abs(np.dot(window, np.exp(-2j * np.pi * f * np.arange(size) / rate))) for f in ROWS + COLUMNS}
        row, column = max(ROWS, key=power.get), max(COLUMNS, key=power.get)
        loud = power[row] > 0.1 * size * 32767 * 0.25 and power[column] > 0.1 * size * 32767 * 0.25
        others = sorted(power.values())[-3]
        key = (
            next((k for k, pair in FREQUENCIES.items() if pair == (row, column)), "")
            if loud and others < 0.3 * min(power[row], power[column])
            else ""
        )
        if key and key != previous:
            keys.append(key)
        previous = key
    return "".join(keys)


def test_the_agent_presses_keys_on_the_line(server, number, monkeypatch):
    options = {**TwilioStreamConsumer.bridge_options, "models_factory": functools.partial(models, ("main menu",))}
    monkeypatch.setattr(TwilioStreamConsumer, "bridge_options", options)

    async def scenario():
        caller, call_sid = await answered(server)
        await wait_heard(caller, 0.2)
        await wait_quiet(caller)
        before = len(caller.heard)
        await caller.play(tone(0.6))
        await caller.silence(0.4)
        await wait_quiet(caller, quiet=1.5)
        await caller.stop()
        call = await wait_for_call(external_call_id=call_sid, status="ended")
        return mulaw_decode(bytes(caller.heard[before:])), call

    heard, call = async_to_sync(scenario)()
    assert dtmf_heard(heard) == "12"
    [tool] = ToolCall.objects.dangerously_unscoped().filter(call=call, tool_name="send_digits")
    assert (tool.arguments, tool.status) == ({"digits": "12"}, "succeeded")


def test_a_stream_for_a_call_that_has_ended_is_refused(server):
    from calls.services import call_end

    async def scenario():
        call_sid = new_call_sid()
        url, token = await ring(server, call_sid)
        call = await call_where(external_call_id=call_sid)
        await database_sync_to_async(call_end)(call_id=call.pk, tenant_id=call.tenant_id, reason="error")
        caller = StreamCaller(url, call_sid=call_sid, parameters={"token": token})
        await caller.connect()
        return await closed(caller), call_sid

    code, call_sid = async_to_sync(scenario)()
    assert code == 1008
    call = Call.objects.dangerously_unscoped().get(external_call_id=call_sid)
    assert (call.status, call.end_reason) == ("ended", "error")  # untouched: no agent was started for it


def test_twilios_completed_status_callback_ends_a_call_whose_stream_is_still_open(server):
    async def scenario():
        caller, call_sid = await answered(server)
        await wait_heard(caller, 0.2)
        url = f"{server.url}/carriers/twilio/status"
        form = signed_form(url, {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": "completed"})
        async with httpx.AsyncClient() as client:
            response = await client.post(url, data=form["data"], headers=form["headers"], timeout=10)
        call = await wait_for_call(external_call_id=call_sid, status="ended")
        await asyncio.wait_for(caller.closed.wait(), 20)  # and we closed the stream
        return response.status_code, call

    status, call = async_to_sync(scenario)()
    assert (status, call.end_reason) == (204, Call.EndReason.CALLER_HANGUP)


def test_another_tenants_stream_token_cannot_carry_this_tenants_call(server):
    other = factories.TenantFactory(name="Other Dental", slug="other-dental")
    factories.SubscriptionFactory(tenant=other)
    theirs = {"account_sid": "AC" + "cd" * 16, "auth_token": "c" * 32}
    credential_services.credential_create(tenant=other, name="TWILIO", provider="twilio", secret=theirs, verify=False)
    agent = make_agent(other, name="Their receptionist", tools=[])
    factories.PhoneNumberFactory(tenant=other, agent=agent, e164="+15550009999", provider=PhoneNumber.Provider.TWILIO)

    async def scenario():
        ours_sid, their_sid = new_call_sid(), new_call_sid()
        url, _ = await ring(server, ours_sid)
        voice = f"{server.url}/carriers/twilio/voice"
        params = voice_params(call_sid=their_sid, to="+15550009999", from_=CALLER, account_sid=theirs["account_sid"])
        form = signed_form(voice, params, theirs["auth_token"])
        async with httpx.AsyncClient() as client:
            response = await client.post(voice, data=form["data"], headers=form["headers"], timeout=10)
        their_token = ElementTree.fromstring(response.text).find("Connect/Stream/Parameter").get("value")  # noqa: S314
        intruder = StreamCaller(url, call_sid=ours_sid, parameters={"token": their_token})
        await intruder.connect()
        return await closed(intruder), ours_sid, their_sid

    code, ours_sid, their_sid = async_to_sync(scenario)()
    assert code == 1008
    calls = Call.objects.dangerously_unscoped()
    assert calls.get(external_call_id=ours_sid).status == "ringing"  # this tenant's agent never started
    assert calls.get(external_call_id=their_sid).status == "ringing"  # nor theirs
