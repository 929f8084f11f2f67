"""`manage.py simulate_call`: a whole call from the command line, stored like a real one."""

import io
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from livekit import rtc

from calls.models import Call, CallEvent, TranscriptTurn
from tests import factories
from tests.voice.session_fakes import Reply, last_user_text, silence, tone
from tests.voice.session_support import fake_models, make_agent
from voice import session as runtime_session
from voice.management.commands import simulate_call


def write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def answer(chat_ctx):
    said = last_user_text(chat_ctx)
    return Reply("We are open Monday to Friday." if "open" in said else "Happy to help.")


@pytest.fixture
def demo(transactional_db, monkeypatch):
    tenant = factories.TenantFactory(name="Demo Dental", slug="demo-dental")
    agent = make_agent(tenant, name="Appointment Scheduler")
    # Scripted engines instead of Whisper / responder / piper: the command and the call are under test here.
    monkeypatch.setattr(
        runtime_session, "build_models", lambda profile: fake_models(answer, ["When are you open?", "Thanks"])
    )
    return agent


def simulate(*args) -> str:
    out = io.StringIO()
    call_command("simulate_call", *args, stdout=out)
    return out.getvalue()


def test_a_call_from_wav_files(demo, tmp_path):
    lines = [tmp_path / "q1.wav", tmp_path / "q2.wav"]
    for path in lines:
        write_wav(path, np.concatenate([tone(0.6), silence(0.2)]))
    out_wav = tmp_path / "agent.wav"

    printed = simulate(
        "--agent",
        "Appointment Scheduler",
        "--tenant",
        "demo-dental",
        "--fast",
        "--out",
        str(out_wav),
        "--caller-wav",
        *map(str, lines),
    )

    assert "Calling 'Appointment Scheduler' of Demo Dental (demo-dental)" in printed
    assert "Agent   Thank you for calling. How can I help?" in printed
    assert "Caller  When are you open?" in printed
    assert "Agent   We are open Monday to Friday." in printed
    assert "Call ended: you hung up (caller_hangup)." in printed
    assert "States:  ringing -> connected -> conversing -> ended" in printed
    call = Call.objects.dangerously_unscoped().get()
    assert (call.direction, call.status, call.end_reason, call.metadata) == (
        "inbound",
        "ended",
        "caller_hangup",
        {"simulated": True},
    )
    texts = list(
        TranscriptTurn.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("turn_number")
        .values_list("text", flat=True)
    )
    assert texts == [
        "Thank you for calling. How can I help?",
        "When are you open?",
        "We are open Monday to Friday.",
        "Thanks",
        "Happy to help.",
    ]
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="agent.joined").count() == 1
    with wave.open(str(out_wav)) as wav:
        assert wav.getframerate() == 24000 and wav.getnframes() > 24000  # the agent spoke for over a second
    assert f"Audio:   {out_wav}" in printed


def test_unknown_agent(demo):
    with pytest.raises(CommandError, match="No agent 'Nobody'"):
        simulate("--agent", "Nobody")


def test_same_name_in_two_tenants_needs_the_tenant(demo):
    make_agent(factories.TenantFactory(slug="globex"), name="Appointment Scheduler")
    with pytest.raises(CommandError, match=r"Several tenants have an agent 'Appointment Scheduler': .*Add --tenant"):
        simulate("--agent", "Appointment Scheduler")


def test_another_tenants_agent_id_is_refused(demo):
    other = make_agent(factories.TenantFactory(slug="globex"), name="Night line")
    with pytest.raises(CommandError, match="No agent"):
        simulate("--agent", str(other.pk), "--tenant", "demo-dental")
    assert not Call.objects.dangerously_unscoped().exists()


def test_unreadable_wav(demo, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with pytest.raises(CommandError, match="Cannot read"):
        simulate("--agent", "Appointment Scheduler", "--caller-wav", str(bad))


@pytest.mark.slow
@pytest.mark.e2e
def test_caller_wav_alone_runs_the_readme_call_in_a_fresh_process(tmp_path):
    """`simulate_call --caller-wav a.wav` with no --say, as docs/voice-pipeline.md documents it, in a process of its own.

    The engines' plugins register themselves on import and only on the main thread; without --say
    nothing imported them before the call ran in async_to_sync's worker thread, and the command died
    with "Plugins must be registered on the main thread". In this test process they are long
    imported, so only a fresh process shows it.
    """
    from tests.telephony.peer import speech_wav

    question = speech_wav("When are you open?", tmp_path / "a.wav")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings_test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
    for setup in (["migrate", "-v", "0"], ["seed_demo", "--force"]):
        subprocess.run(manage + setup, env=env, check=True, capture_output=True, timeout=600)

    done = subprocess.run(
        [*manage, "simulate_call", "--agent", "Appointment Scheduler", "--fast", "--caller-wav", str(question)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "Engines: STT offline-whisper (offline), LLM offline-responder (offline), TTS offline-piper (offline)" in (
        done.stdout
    )
    assert re.search(r"Caller  When are you open", done.stdout), done.stdout
    assert "Call ended: you hung up (caller_hangup)." in done.stdout


class StepClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def agent_frame(value: int, samples: int = 480) -> rtc.AudioFrame:
    return rtc.AudioFrame(np.full(samples, value, dtype=np.int16).tobytes(), 24000, 1, samples)


def test_agent_audio_handed_over_late_and_at_once_is_kept_whole_on_the_timeline():
    # A busy loop lets the playout fall behind; it then hands the frames it owes over in one go.
    # Placed by the time they arrived, they all went to one spot and overwrote each other, and
    # Whisper heard pieces of the reply.
    clock = StepClock()
    track = simulate_call.AgentTrack(speed=3.0, clock=clock)
    clock.now += 1.0  # the reply starts 3 s into the call's timeline (--fast)
    for n in range(10):
        clock.now += 0.02 / 3
        track.sink(agent_frame(n + 1))
    for n in range(10, 40):  # the loop was held up: 30 frames at the same instant
        track.sink(agent_frame(n + 1))
    clock.now += 2.0  # a pause, then the next reply
    track.sink(agent_frame(99))

    audio = track.render()
    start = int(np.flatnonzero(audio)[0])
    assert start == pytest.approx(3 * 24000, abs=1)
    assert list(audio[start : start + 40 * 480 : 480]) == list(range(1, 41))  # every frame, in order, end to end
    assert (audio[start : start + 40 * 480] > 0).all()
    assert not audio[start + 40 * 480 : -480].any()  # then silence: the pause
    assert list(audio[-480:]) == [99] * 480
    assert track.spoken_seconds == pytest.approx(41 * 0.02)
