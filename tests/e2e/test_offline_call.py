"""A whole call on the offline engines, checked by ear: piper speaks the caller's lines, the agent's
reply audio is written out, and the offline Whisper transcribes it back."""

import asyncio
import io
import re
import time
import wave

import numpy as np
import pytest
from django.core.management import call_command
from livekit import rtc

from calls.models import Call, TranscriptTurn
from tests import factories
from tests.voice.fakes.base import closed_port_url
from tests.voice.session_support import make_agent
from voice.engines.whisper_stt import get_model, to_whisper_input
from voice.management.commands import simulate_call

pytestmark = pytest.mark.e2e  # whole calls through the offline engines (`make test-fast` skips them)


@pytest.fixture(scope="module")
def whisper():
    return get_model()  # loaded once for the module (the engines share it too)


def transcribe(whisper, path) -> str:
    with wave.open(str(path)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        frame = rtc.AudioFrame(pcm.tobytes(), wav.getframerate(), 1, len(pcm))
    segments, _ = whisper.transcribe(to_whisper_input([frame]), language="en", beam_size=1)
    return " ".join(s.text for s in segments).lower()


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture
def demo_agent(transactional_db):
    tenant = factories.TenantFactory(name="Demo Dental", slug="demo-dental")
    return make_agent(tenant, name="Appointment Scheduler")


def simulate(tmp_path, *lines) -> tuple[str, str]:
    out, wav = io.StringIO(), tmp_path / "agent.wav"
    say = [arg for line in lines for arg in ("--say", line)]
    call_command("simulate_call", "--agent", "Appointment Scheduler", "--fast", "--out", str(wav), *say, stdout=out)
    return out.getvalue(), wav


def test_offline_engines_greet_and_answer_from_the_faq(demo_agent, whisper, tmp_path):
    printed, wav = simulate(tmp_path, "When are you open?")

    assert (
        "Engines: STT offline-whisper (offline), LLM offline-responder (offline), TTS offline-piper (offline)"
        in printed
    )
    heard = transcribe(whisper, wav)
    assert {"thank", "calling", "help"} <= words(heard)  # the greeting
    assert {"monday", "friday"} <= words(heard)  # the FAQ answer
    caller = TranscriptTurn.objects.dangerously_unscoped().get(speaker="caller")
    assert {"when", "open"} <= words(caller.text)  # Whisper heard piper's question
    assert caller.metadata["stt_provider"] == "offline-whisper"
    answer = TranscriptTurn.objects.dangerously_unscoped().get(turn_number=3)
    assert answer.text == "Monday to Friday, 8 AM to 5 PM."
    assert {"e2e_ms", "llm_ttft_ms", "tts_ttfb_ms"} <= set(answer.metadata)


def test_every_primary_provider_down_the_offline_chain_carries_the_call(demo_agent, whisper, tmp_path, settings):
    down = closed_port_url()
    settings.DEEPGRAM_API_KEY, settings.DEEPGRAM_BASE_URL = "dg-test-key", down
    settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL = "fake-ant-test-key", down
    settings.CHATTERBOX_URL = down
    pipeline = {section: dict(values) for section, values in settings.VOICE_PIPELINE_DEFAULTS.items()}
    pipeline["stt"]["provider"], pipeline["llm"]["provider"], pipeline["tts"]["provider"] = (
        "deepgram",
        "anthropic",
        "chatterbox",
    )
    settings.VOICE_PIPELINE_DEFAULTS = pipeline

    printed, wav = simulate(tmp_path, "When are you open?")

    assert "Engines: STT deepgram, LLM anthropic, TTS chatterbox" in printed  # the configured primaries
    assert {"monday", "friday"} <= words(transcribe(whisper, wav))  # Whisper, the responder and piper answered
    assert Call.objects.dangerously_unscoped().get().end_reason == "caller_hangup"
    caller = TranscriptTurn.objects.dangerously_unscoped().get(speaker="caller")
    assert {"when", "open"} <= words(caller.text)


def test_a_busy_event_loop_does_not_garble_the_agents_audio(demo_agent, whisper, tmp_path, monkeypatch):
    # A loaded machine holds the event loop up (here: 120 ms of every 270 ms, on purpose). The playout
    # then hands over the frames it owes at once; laid on the timeline by arrival they overwrote each
    # other, and Whisper heard "when you're friday, am to fpm".
    run = simulate_call.Simulation.run

    async def run_on_a_busy_loop(simulation):
        async def hold_the_loop():
            while True:
                await asyncio.sleep(0.15)
                time.sleep(0.12)

        busy = asyncio.create_task(hold_the_loop())
        try:
            return await run(simulation)
        finally:
            busy.cancel()

    monkeypatch.setattr(simulate_call.Simulation, "run", run_on_a_busy_loop)

    printed, wav = simulate(tmp_path, "When are you open?")

    heard = words(transcribe(whisper, wav))
    assert {"thank", "calling", "help"} <= heard, printed
    assert {"monday", "friday"} <= heard, printed
