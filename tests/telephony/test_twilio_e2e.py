"""A Twilio call end to end on the offline engines (Whisper, the local responder, piper): the fake Twilio
signs the voice webhook, opens the stream and speaks a piper question in mu-law; what the caller heard back
over the 8 kHz line is transcribed by Whisper and checked."""

import asyncio
import wave

import av
import numpy as np
import pytest
from asgiref.sync import async_to_sync

from calls.models import Call, CallEvent, Recording, TranscriptTurn
from integrations import services as credential_services
from telephony.models import PhoneNumber
from tests import factories
from tests.e2e.test_offline_call import transcribe, whisper, words  # noqa: F401 (the `whisper` fixture)
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.telephony.peer import speech_wav, write_wav
from tests.telephony.test_twilio_stream import (
    CALLER,
    OUR_NUMBER,
    answered,
    wait_for_call,
    wait_for_recording,
    wait_heard,
    wait_quiet,
)
from tests.voice.session_support import make_agent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # Whisper, piper and a live server: `make test-fast` skips it

GREETING = "Thank you for calling Acme Dental. How can I help?"


def at_8k(path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        rate, pcm = wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
    return np.concatenate([p.to_ndarray().reshape(-1)[: p.samples] for p in resampler.resample(frame)])


@pytest.fixture
def server(asgi_server, settings):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    credential_services.credential_create(tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False)
    agent = make_agent(tenant, name="Receptionist", greeting=GREETING, tools=[])
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164=OUR_NUMBER, provider=PhoneNumber.Provider.TWILIO)
    fake = FakeTwilio().start()
    settings.TWILIO_API_BASE_URL = fake.url
    yield asgi_server
    fake.stop()


def test_a_twilio_caller_hears_the_greeting_asks_and_hears_the_answer(server, whisper, tmp_path):  # noqa: F811
    question = at_8k(speech_wav("When are you open?"))

    async def scenario():
        caller, call_sid = await answered(server)
        await wait_heard(caller, 1.5, timeout=60)  # the greeting starts ...
        await wait_quiet(caller, quiet=1.5, timeout=60)  # ... and ends
        greeting = caller.heard_seconds
        await caller.play(question)
        await caller.silence(0.5)
        await wait_heard(caller, greeting + 1.0, timeout=90)  # the answer
        await wait_quiet(caller, quiet=1.5, timeout=90)
        await caller.stop()
        call = await wait_for_call(external_call_id=call_sid, status="ended", timeout=30)
        await wait_for_recording(call)
        await asyncio.sleep(0)
        return call, caller.heard_samples()

    call, heard = async_to_sync(scenario)()
    text = transcribe(whisper, write_wav(tmp_path / "heard.wav", heard, 8000))
    assert {"thank", "calling", "help"} <= words(text)  # the greeting, over 8 kHz mu-law both ways
    assert {"monday", "friday"} <= words(text)  # the FAQ answer to the caller's question
    assert (call.direction, call.from_number, call.end_reason) == ("inbound", CALLER, Call.EndReason.CALLER_HANGUP)
    turns = list(TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("turn_number"))
    assert [t.speaker for t in turns[:3]] == ["agent", "caller", "agent"]
    assert {"when", "open"} <= words(turns[1].text)
    assert turns[2].text == "Monday to Friday, 8 AM to 5 PM."
    kinds = list(CallEvent.objects.dangerously_unscoped().filter(call=call).values_list("event_type", flat=True))
    assert kinds[-1] == "call.ended" and "transcript.turn" in kinds
    assert Recording.objects.dangerously_unscoped().get(call=call).duration_seconds > 3
