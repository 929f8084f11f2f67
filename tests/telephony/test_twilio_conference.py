"""A conference on a Twilio call, the agent staying on the line (docs/telephony.md#twilio), through the real
ASGI app: the agent (or the API) asks for the supervisor, our side dials them through the SDK at the fake
Twilio, which answers (signed status callback) and connects the supervisor's media stream; the bridge mixes
the three. Each party speaks its own tone (caller 300 Hz, supervisor 1200 Hz, the agent's 440 Hz voice), so
who heard whom is read off the audio. The supervisor's stream lands in the call's process (the registry) or,
with the registry made to miss, is relayed through the channel layer as from another process."""

import asyncio
import collections
import functools
import logging
import re
import time
import wave
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from calls.models import Call, CallEvent, Recording, TranscriptTurn
from telephony import services
from telephony.carriers.twilio import conference, signature
from telephony.carriers.twilio.consumer import TwilioStreamConsumer
from telephony.models import PhoneNumber
from tenants.services import api_key_create
from tests.telephony.fake_twilio import FRAME_BYTES, FakeTwilio, StreamCaller, new_call_sid
from tests.telephony.test_twilio_stream import (  # noqa: F401 (fixtures)
    OUR_NUMBER,
    answered,
    call_where,
    closed,
    fake_engines,
    fake_twilio,
    number,
    ring,
    server,
    wait_for_call,
    wait_for_recording,
)
from tests.voice.session_fakes import Reply, last_tool_output, last_user_text
from tests.voice.session_support import fake_models

pytestmark = pytest.mark.slow  # a live server, two media streams and an agent session per test

SUPERVISOR = "+15550004444"
TARGETS = [{"name": "Supervisor", "destination": SUPERVISOR, "type": "conference", "description": "Duty manager"}]
CALLER_HZ, SUPERVISOR_HZ, AGENT_HZ = 300, 1200, 440
TIMEOUT = 30.0  # seconds no load reaches: nothing asserts on how long anything took


def respond(chat_ctx) -> Reply:
    if last_tool_output(chat_ctx) is not None:
        return Reply(text="Connecting.")
    heard = last_user_text(chat_ctx).lower()
    if "supervisor please" in heard:
        return Reply(text="One moment.", tool="transfer_call", arguments={"target": "Supervisor"})
    return Reply(text=f"Noted, {heard}.")


@pytest.fixture
def lines(monkeypatch):
    """Set what the scripted STT hears, one line per speech segment, whoever speaks it."""

    def set_lines(*heard: str) -> None:
        options = {
            **TwilioStreamConsumer.bridge_options,
            "models_factory": functools.partial(fake_models, respond, heard),
        }
        monkeypatch.setattr(TwilioStreamConsumer, "bridge_options", options)

    return set_lines


@dataclass
class Twilio:
    server: object
    fake: FakeTwilio
    number: PhoneNumber


@pytest.fixture
def twilio(server, fake_twilio, number, settings):  # noqa: F811
    """The live server, the fake Twilio, this tenant's number; the supervisor's stream and callbacks come back here."""
    settings.TWILIO_WEBHOOK_BASE_URL = server.url
    return Twilio(server, fake_twilio, number)


@pytest.fixture(params=["local", "relayed"])
def route(request, monkeypatch):
    """Where the supervisor's stream lands: the call's own process, or (the registry missing) another one."""
    if request.param == "relayed":
        monkeypatch.setattr(conference, "local_host", lambda call_id: None)
    return request.param


def with_supervisor_target(ours: PhoneNumber) -> None:
    ours.agent.transfer_targets = TARGETS
    ours.agent.save()


class Line:
    """Twilio sends a media frame every 20 ms whether anyone speaks: one stream's frames, silence unless `say`."""

    def __init__(self, stream: StreamCaller):
        self.stream = stream
        self.pending: collections.deque[np.ndarray] = collections.deque()
        self.task = asyncio.create_task(self._run())

    def say(self, samples: np.ndarray) -> None:
        self.pending.extend(samples[i : i + FRAME_BYTES] for i in range(0, len(samples), FRAME_BYTES))

    async def _run(self) -> None:
        while not self.stream.closed.is_set():
            await self.stream.play(self.pending.popleft() if self.pending else np.zeros(FRAME_BYTES, dtype=np.int16))

    async def hang_up(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.stream.stop()


def tone(freq: float, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def tone_heard(samples: np.ndarray, freq: float, rate: int = 8000) -> bool:
    """Whether some 50 ms of `samples` is mostly the `freq` tone (a party heard, not a trace of it)."""
    size = rate // 20
    for start in range(0, len(samples) - size, size):
        window = samples[start : start + size].astype(float)
        energy = float(np.dot(window, window))
        if energy < size * 1000.0**2:  # quieter than -30 dB: nobody speaking
            continue
        t = np.arange(size) / rate
        component = abs(np.dot(window, np.exp(-2j * np.pi * freq * t))) ** 2 * 2 / size
        if component > 0.5 * energy:
            return True
    return False


async def until(condition, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (found := await condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)
    return found


@database_sync_to_async
def stored(call_id, event_type: str) -> list[dict]:
    rows = CallEvent.objects.dangerously_unscoped().filter(call_id=call_id, event_type=event_type)
    return list(rows.order_by("sequence").values_list("payload", flat=True))


@database_sync_to_async
def turn(call_id, speaker: str, text: str) -> bool:
    return TranscriptTurn.objects.dangerously_unscoped().filter(call_id=call_id, speaker=speaker, text=text).exists()


@database_sync_to_async
def turn_with(call_id, speaker: str, wanted: set[str]) -> bool:
    """Whether one of the speaker's turns has every word of `wanted` (a transcription, not a script)."""
    texts = TranscriptTurn.objects.dangerously_unscoped().filter(call_id=call_id, speaker=speaker)
    return any(wanted <= set(re.findall(r"[a-z]+", text.lower())) for text in texts.values_list("text", flat=True))


async def heard_grows(stream: StreamCaller, seconds: float, timeout: float = TIMEOUT) -> None:
    """Wait until `stream` has been sent `seconds` more audio."""
    start = stream.heard_seconds
    await until(_async(lambda: stream.heard_seconds >= start + seconds), "more audio", timeout)


def _async(check):
    async def condition():
        return check()

    return condition


async def dialled(fake) -> str:
    """The supervisor's CallSid once our side has dialled them and registered the leg."""

    async def found():
        sids = [sid for sid, call in fake.calls.items() if call["form"].get("To") == SUPERVISOR]
        return sids[0] if sids and await database_sync_to_async(services.external_call_resolve)(sids[0]) else None

    return await until(found, "the supervisor dialled")


async def conversing_call(live, timeout: float = TIMEOUT) -> tuple[StreamCaller, Line, Call]:
    caller, call_sid = await answered(live)
    line = Line(caller)
    await heard_grows(caller, 0.2, timeout)  # the greeting
    call = await wait_for_call(external_call_id=call_sid, status="conversing", timeout=timeout)
    return caller, line, call


async def merged(fake, call: Call) -> tuple[str, StreamCaller, Line]:
    consult = await dialled(fake)
    supervisor = await fake.pick_up(consult)
    await until(lambda: stored(call.pk, "call.merged"), "call.merged")
    return consult, supervisor, Line(supervisor)


def events_of(call) -> list[str]:
    rows = CallEvent.objects.dangerously_unscoped().filter(call=call).order_by("sequence")
    return list(rows.values_list("event_type", flat=True))


def recorded(call) -> np.ndarray:
    recording = Recording.objects.dangerously_unscoped().get(call=call)
    with recording.file.open("rb") as file, wave.open(file) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def api_transfer(live, key: str, call_id, target: str = SUPERVISOR):
    async def post():
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{live.url}/v1/calls/{call_id}/transfer",
                json={"type": "conference", "target": target},
                headers={"X-Api-Key": key},
                timeout=10,
            )
        assert response.status_code == 202, response.text

    return post()


async def intrude(url: str, call_sid: str, token: str) -> int:
    intruder = StreamCaller(url, call_sid=call_sid, parameters={"token": token})
    await intruder.connect()
    return await closed(intruder)


def test_the_supervisor_joins_the_caller_and_the_agent_and_everyone_hears_the_others(twilio, lines, route):
    with_supervisor_target(twilio.number)
    lines("supervisor please", "the supervisor speaks", "the caller speaks", "the caller again")

    async def scenario():
        caller, caller_line, call = await conversing_call(twilio.server)
        caller_line.say(tone(CALLER_HZ))  # "supervisor please": the agent's transfer tool, a conference
        consult, supervisor, supervisor_line = await merged(twilio.fake, call)
        supervisor_line.say(tone(SUPERVISOR_HZ))
        await until(lambda: turn(call.pk, "caller", "the supervisor speaks"), "the agent heard the supervisor")
        await until(lambda: turn(call.pk, "agent", "Noted, the supervisor speaks."), "the agent answered")
        await until(_async(lambda: tone_heard(supervisor.heard_samples(), AGENT_HZ)), "the supervisor heard the agent")
        caller_line.say(tone(CALLER_HZ))
        await until(lambda: turn(call.pk, "agent", "Noted, the caller speaks."), "the agent heard the caller")
        await until(
            _async(lambda: tone_heard(supervisor.heard_samples(), CALLER_HZ)), "the supervisor heard the caller"
        )
        heard_by_supervisor = supervisor.heard_samples()
        await supervisor_line.hang_up()  # the supervisor leaves ...
        await until(lambda: stored(call.pk, "call.resumed"), "the supervisor left")
        caller_line.say(tone(CALLER_HZ))  # ... and the call goes on
        await until(lambda: turn(call.pk, "agent", "Noted, the caller again."), "the call went on")
        await caller_line.hang_up()
        ended = await wait_for_call(pk=call.pk, status="ended")
        await wait_for_recording(ended)
        return ended, consult, caller.heard_samples(), heard_by_supervisor

    call, consult, heard_by_caller, heard_by_supervisor = async_to_sync(scenario)()
    assert tone_heard(heard_by_caller, SUPERVISOR_HZ) and tone_heard(heard_by_caller, AGENT_HZ)
    assert tone_heard(heard_by_supervisor, CALLER_HZ) and tone_heard(heard_by_supervisor, AGENT_HZ)
    assert not tone_heard(heard_by_caller, CALLER_HZ) and not tone_heard(heard_by_supervisor, SUPERVISOR_HZ)
    samples, rate = recorded(call)
    assert [hz for hz in (CALLER_HZ, SUPERVISOR_HZ, AGENT_HZ) if tone_heard(samples, hz, rate)] == [300, 1200, 440]
    kinds = events_of(call)
    assert kinds.index("call.transfer_requested") < kinds.index("call.merged") < kinds.index("call.resumed")
    events = CallEvent.objects.dangerously_unscoped().filter(call=call)
    assert events.get(event_type="call.transfer_requested").payload["type"] == "conference"
    merge = events.get(event_type="call.merged").payload
    assert merge == {"call_id": str(call.pk), "refer_id": consult, "target": SUPERVISOR}
    left = events.get(event_type="call.resumed").payload
    assert left == {"call_id": str(call.pk), "reason": "supervisor_left", "refer_id": consult}
    dial = twilio.fake.calls[consult]["form"]
    status_url = f"{twilio.server.url}/carriers/twilio/status"
    assert (dial["To"], dial["From"], dial["StatusCallback"]) == (SUPERVISOR, OUR_NUMBER, status_url)
    url, parameters = twilio.fake.stream_of(consult)
    assert url == f"ws://127.0.0.1:{twilio.server.port}/ws/v1/carriers/twilio/stream"
    claims = {"call": str(call.pk), "tenant": str(call.tenant_id), "sid": "", "amd": False, "consult": True}
    assert signature.stream_claims(parameters["token"]) == claims
    assert twilio.fake.calls[consult]["updates"] == []  # they hung up themselves: nothing to hang up
    assert (call.status, call.end_reason) == ("ended", Call.EndReason.CALLER_HANGUP)


def test_the_caller_hanging_up_hangs_up_the_supervisor_at_twilio(twilio, lines, route, caplog):
    caplog.set_level(logging.INFO, logger="telephony.carriers.twilio.consumer")
    lines("hello there")
    key = api_key_create(tenant=twilio.number.tenant, name="conference", scopes=["read", "write"]).secret

    async def scenario():
        caller, caller_line, call = await conversing_call(twilio.server)
        await api_transfer(twilio.server, key, call.pk)
        consult, supervisor, supervisor_line = await merged(twilio.fake, call)
        supervisor_line.say(tone(SUPERVISOR_HZ, 0.3))
        await until(_async(lambda: tone_heard(caller.heard_samples(), SUPERVISOR_HZ)), "the caller heard them")
        await caller_line.hang_up()
        ended = await wait_for_call(pk=call.pk, status="ended")
        await asyncio.wait_for(supervisor.closed.wait(), TIMEOUT)  # their stream closed by us
        supervisor_line.task.cancel()
        return ended, consult, supervisor.socket.close_code

    call, consult, close_code = async_to_sync(scenario)()
    assert twilio.fake.calls[consult]["updates"] == [{"Status": "completed"}]  # hung up through the REST API
    assert close_code == 1000
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
    [attached] = [r.getMessage() for r in caplog.records if f"consult leg {consult} of call" in r.getMessage()]
    assert attached.endswith(", relayed") == (route == "relayed")  # the registry missed: through the channel layer
    transfer = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="call.transfer_requested").payload
    assert (transfer["type"], transfer["target"], transfer["reason"]) == ("conference", SUPERVISOR, "api_request")
    assert "call.merged" in events_of(call) and "call.resumed" not in events_of(call)


def test_a_supervisor_who_does_not_answer_fails_the_transfer_and_the_caller_stays_with_the_agent(twilio, lines):
    lines("are you still there")
    key = api_key_create(tenant=twilio.number.tenant, name="conference", scopes=["read", "write"]).secret

    async def scenario():
        _caller, caller_line, call = await conversing_call(twilio.server)
        await api_transfer(twilio.server, key, call.pk)
        consult = await dialled(twilio.fake)
        response = await twilio.fake.report_status(consult, "no-answer")
        assert response.status_code == 204
        failed = await until(lambda: stored(call.pk, "call.transfer_failed"), "call.transfer_failed")
        await wait_for_call(pk=call.pk, status="conversing")
        caller_line.say(tone(CALLER_HZ))
        await until(lambda: turn(call.pk, "agent", "Noted, are you still there."), "the agent went on")
        await caller_line.hang_up()
        return await wait_for_call(pk=call.pk, status="ended"), consult, failed

    call, consult, [failed] = async_to_sync(scenario)()
    assert (failed["transfer_type"], failed["target"]) == ("conference", SUPERVISOR)
    assert failed["reason"] == f"{SUPERVISOR} did not answer (no-answer)"
    assert twilio.fake.calls[consult]["updates"] == [{"Status": "completed"}]  # hung up once, not again at the end
    assert "call.merged" not in events_of(call)
    assert call.end_reason == Call.EndReason.CALLER_HANGUP


def test_a_consult_stream_that_does_not_prove_its_leg_is_refused_and_the_supervisor_still_joins(twilio, lines, route):
    with_supervisor_target(twilio.number)
    lines("supervisor please")

    async def scenario():
        _caller, caller_line, call = await conversing_call(twilio.server)
        other_sid = new_call_sid()
        _, other_calls_token = await ring(twilio.server, other_sid)
        other_call = await call_where(external_call_id=other_sid)
        caller_line.say(tone(CALLER_HZ))
        consult = await dialled(twilio.fake)
        url, parameters = twilio.fake.stream_of(consult)
        token = parameters["token"]
        consult_of_other = signature.stream_token(
            call_id=other_call.pk, tenant_id=other_call.tenant_id, call_sid="", consult=True
        )
        codes = {
            "forged": await intrude(url, consult, token[:-4] + "AAAA"),
            "another call's consult token": await intrude(url, consult, consult_of_other),
            "another call's own token": await intrude(url, consult, other_calls_token),
            "a CallSid never dialled": await intrude(url, new_call_sid(), token),
        }
        untouched = twilio.fake.calls[consult]["updates"] == []
        await merged(twilio.fake, call)  # the real supervisor
        codes["a second stream for the supervisor"] = await intrude(url, consult, token)
        await caller_line.hang_up()
        return codes, untouched, await wait_for_call(pk=call.pk, status="ended"), other_sid

    codes, untouched, call, other_sid = async_to_sync(scenario)()
    assert codes == {
        "forged": 1008,
        "another call's consult token": 1008,
        "another call's own token": 1008,
        "a CallSid never dialled": 1008,
        "a second stream for the supervisor": 1008,
    }
    assert untouched  # nothing was hung up or changed by the refused streams
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="call.merged").count() == 1
    assert Call.objects.dangerously_unscoped().get(external_call_id=other_sid).status == "ringing"  # untouched


def test_another_tenants_consult_token_cannot_attach_to_this_tenants_call(twilio, lines):
    from tests import factories
    from tests.voice.session_support import make_agent

    with_supervisor_target(twilio.number)
    other = factories.TenantFactory(name="Other Dental", slug="other-dental")
    their_agent = make_agent(other, name="Their receptionist", tools=[])
    their_call = factories.CallFactory(
        tenant=other, agent=their_agent, status="conversing", external_call_id=new_call_sid()
    )
    lines("supervisor please")

    async def scenario():
        _caller, caller_line, call = await conversing_call(twilio.server)
        caller_line.say(tone(CALLER_HZ))
        consult = await dialled(twilio.fake)
        url, _ = twilio.fake.stream_of(consult)
        theirs = signature.stream_token(call_id=their_call.pk, tenant_id=other.pk, call_sid="", consult=True)
        ours_as_theirs = signature.stream_token(call_id=call.pk, tenant_id=other.pk, call_sid="", consult=True)
        codes = [await intrude(url, consult, theirs), await intrude(url, consult, ours_as_theirs)]
        await merged(twilio.fake, call)  # this tenant's own supervisor still joins
        await caller_line.hang_up()
        return codes, await wait_for_call(pk=call.pk, status="ended")

    codes, call = async_to_sync(scenario)()
    assert codes == [1008, 1008]
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="call.merged").count() == 1
    their_call.refresh_from_db()
    assert their_call.status == "conversing"
    assert not CallEvent.objects.dangerously_unscoped().filter(call=their_call).exists()


@pytest.mark.parametrize("host", ["nowhere", "a process that never answers"])
def test_a_consult_stream_whose_call_runs_in_no_process_that_answers_is_refused(twilio, host, monkeypatch):
    from django.core.cache import cache

    from telephony.carriers.twilio import consumer
    from tests import factories

    monkeypatch.setattr(consumer, "ATTACH_TIMEOUT", 0.5)  # a wait nothing will end: short, to keep the test quick
    ours = twilio.number
    call = factories.CallFactory(tenant=ours.tenant, agent=ours.agent, status="conversing", external_call_id="CA1")
    consult = new_call_sid()
    services.consult_leg_register(external_id=consult, call_id=call.pk, tenant_id=call.tenant_id)
    if host != "nowhere":  # the cache names a consumer channel that nobody reads any more (a process gone)
        cache.set(conference.HOST_KEY.format(call_id=call.pk), "specific.gone!channel", 60)
    token = signature.stream_token(call_id=call.pk, tenant_id=call.tenant_id, call_sid="", consult=True)

    code = async_to_sync(intrude)(f"ws://127.0.0.1:{twilio.server.port}{signature.STREAM_PATH}", consult, token)

    assert code == 1008
    call.refresh_from_db()
    assert call.status == "conversing"
    assert not CallEvent.objects.dangerously_unscoped().filter(call=call).exists()
