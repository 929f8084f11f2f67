"""Answering-machine detection on real audio: piper speaks the callee, Silero and the beep check
listen, and the offline Whisper reads the first words when a transcript is asked for.

Frames come from an async generator as fast as the detector takes them (no sleeps), so the
detector must decide on audio time. The main scenarios run at the bridge's 48 kHz and at 16 and
8 kHz (piper's 22.05 kHz audio resampled). Piper loads once per module (about 2 s).
"""

import asyncio
import math
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from piper import SynthesisConfig

from telephony.amd import (
    AMDError,
    BeepDetector,
    Detection,
    GreetingEnd,
    Reason,
    Verdict,
    detect,
    is_voicemail_text,
    tone_frequency,
    wait_for_greeting_end,
)
from tests.voice.fakes.audio import frames_from_pcm
from voice.engines.piper_tts import PIPER_RATE, get_voice
from voice.engines.whisper_stt import OfflineWhisperSTT, get_model

RATES = [48000, 16000, 8000]
LINES = {
    "hello": "Hello?",
    "sam": "Hi, this is Sam.",
    "greeting": "Hi, you've reached Dana. I can't take your call right now, please leave a message after the tone.",
    "leave": "Please leave a message",
}
LEAD_IN = 0.3  # the callee picks up, then speaks
AUDIO = Path(__file__).parent / "audio"


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    """Piper's audio (22.05 kHz int16) of each line, plus a slower 'sam' and a faster greeting."""
    voice = get_voice()
    spoken = {name: _synthesize(voice, text) for name, text in LINES.items()}
    spoken["sam_slow"] = _synthesize(voice, LINES["sam"], SynthesisConfig(length_scale=1.3))
    spoken["greeting_fast"] = _synthesize(voice, LINES["greeting"], SynthesisConfig(length_scale=0.8))
    return spoken


def _synthesize(voice, text: str, syn_config: SynthesisConfig | None = None) -> np.ndarray:
    return np.concatenate([chunk.audio_int16_array for chunk in voice.synthesize(text, syn_config=syn_config)])


def at_rate(pcm: np.ndarray, rate: int, *, source_rate: int = PIPER_RATE) -> np.ndarray:
    resampler = rtc.AudioResampler(source_rate, rate, quality=rtc.AudioResamplerQuality.HIGH)
    frames = resampler.push(rtc.AudioFrame(pcm.tobytes(), source_rate, 1, len(pcm))) + resampler.flush()
    return np.frombuffer(rtc.combine_audio_frames(frames).data, dtype=np.int16)


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def tone(seconds: float, rate: int, freq: float = 1000.0, amplitude: float = 6000.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * math.pi * freq * t)).astype(np.int16)


def seconds(pcm: np.ndarray, rate: int) -> float:
    return len(pcm) / rate


class Line:
    """The callee's side of the call: 20 ms frames from an async generator, counting what was taken."""

    def __init__(self, rate: int, *parts: np.ndarray) -> None:
        self.frames = frames_from_pcm(np.concatenate(parts), rate)
        self.taken = 0
        self.audio = self._play()

    async def _play(self) -> AsyncIterator[rtc.AudioFrame]:
        for frame in self.frames:
            self.taken += 1
            yield frame

    @property
    def taken_seconds(self) -> float:
        return self.taken * 0.02

    @property
    def left_seconds(self) -> float:
        return (len(self.frames) - self.taken) * 0.02


async def whisper(frame: rtc.AudioFrame) -> str:
    """The transcriber the bridge passes: the project's offline Whisper STT."""
    event = await OfflineWhisperSTT().recognize([frame])
    return event.alternatives[0].text


def assert_no_tasks_left() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.parametrize("rate", RATES)
async def test_hello_then_a_pause_is_a_person(speech, rate):
    hello = at_rate(speech["hello"], rate)
    line = Line(rate, silence(LEAD_IN, rate), hello, silence(2.0, rate))

    result = await detect(line.audio)

    assert (result.verdict, result.reason) == (Verdict.HUMAN, Reason.SHORT_GREETING)
    assert 0.2 < result.speech_seconds < seconds(hello, rate) + 0.1
    # Decided once the 0.7 s pause after the word was heard, not at the end of the audio.
    assert result.listened_seconds == pytest.approx(LEAD_IN + seconds(hello, rate) + 0.7, abs=0.2)
    assert line.taken_seconds == pytest.approx(result.listened_seconds, abs=0.1)
    assert line.left_seconds > 1.0  # the rest is left for the agent
    assert result.transcript == ""
    assert_no_tasks_left()


@pytest.mark.parametrize("rate", [16000, 48000])
async def test_hello_said_the_moment_the_callee_picks_up_is_a_person(rate):
    # What the bridge's detector got from the outbound-call test's callee: piper's "Hello?" through
    # Opus, starting 30 ms into the leg. Silero starts from a blank state: unprimed, it scored this
    # "Hello?" about 0.5 throughout and the callee was taken for silence.
    with wave.open(str(AUDIO / "hello_at_pickup.wav")) as wav:
        hello = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    hello = hello if rate == 16000 else at_rate(hello, rate, source_rate=16000)
    line = Line(rate, hello, silence(2.0, rate))

    result = await detect(line.audio)

    assert (result.verdict, result.reason) == (Verdict.HUMAN, Reason.SHORT_GREETING)
    # Audio time is the callee's own: the priming silence is not counted as heard.
    assert result.listened_seconds == pytest.approx(0.55 + 0.7, abs=0.2)
    assert line.taken_seconds == pytest.approx(result.listened_seconds, abs=0.1)


@pytest.mark.parametrize("rate", RATES)
async def test_a_short_introduction_is_a_person(speech, rate):
    line = Line(rate, silence(LEAD_IN, rate), at_rate(speech["sam"], rate), silence(2.0, rate))

    result = await detect(line.audio)

    assert (result.verdict, result.reason) == (Verdict.HUMAN, Reason.SHORT_GREETING)
    assert 1.0 < result.speech_seconds < 2.0


@pytest.mark.parametrize("rate", RATES)
async def test_voicemail_greeting_then_beep(speech, rate):
    greeting = at_rate(speech["greeting"], rate)
    line = Line(rate, silence(LEAD_IN, rate), greeting, silence(0.4, rate), tone(0.5, rate), silence(3.0, rate))

    result = await detect(line.audio)

    assert (result.verdict, result.reason) == (Verdict.MACHINE, Reason.LONG_GREETING)
    assert result.speech_seconds >= 2.4  # settings.AMD machine_speech_seconds
    assert result.listened_seconds < LEAD_IN + seconds(greeting, rate)  # decided while the greeting went on

    assert await wait_for_greeting_end(line.audio) == GreetingEnd.BEEP
    # Returned as the tone stopped: the message starts right after the beep.
    assert line.left_seconds == pytest.approx(3.0, abs=0.1)
    assert_no_tasks_left()


@pytest.mark.parametrize("rate", RATES)
async def test_voicemail_greeting_without_beep_ends_in_silence(speech, rate):
    greeting = at_rate(speech["greeting"], rate)
    line = Line(rate, silence(LEAD_IN, rate), greeting, silence(4.0, rate))

    assert (await detect(line.audio)).verdict == Verdict.MACHINE
    assert await wait_for_greeting_end(line.audio) == GreetingEnd.SILENCE
    # Not at the commas inside the greeting: 1.5 s after it ended.
    assert line.taken_seconds == pytest.approx(LEAD_IN + seconds(greeting, rate) + 1.5, abs=0.25)


@pytest.mark.parametrize(("name", "verdict"), [("sam_slow", Verdict.HUMAN), ("greeting_fast", Verdict.MACHINE)])
async def test_slower_and_faster_speech_at_phone_rate(speech, name, verdict):
    line = Line(8000, silence(LEAD_IN, 8000), at_rate(speech[name], 8000), silence(2.0, 8000))
    assert (await detect(line.audio)).verdict == verdict


async def test_stereo_frames_are_heard_as_mono(speech):
    mono = np.concatenate([silence(LEAD_IN, 48000), at_rate(speech["hello"], 48000), silence(2.0, 48000)])
    mono = mono[: len(mono) - len(mono) % 960]
    stereo = np.repeat(mono, 2)
    frames = [rtc.AudioFrame(stereo[i : i + 1920].tobytes(), 48000, 2, 960) for i in range(0, len(stereo), 1920)]

    async def audio():
        for frame in frames:
            yield frame

    assert (await detect(audio())).verdict == Verdict.HUMAN


async def test_a_short_greeting_then_a_beep_is_a_machine(speech):
    # Without a transcript "Please leave a message" is as short as "Hello?": the beep in the pause decides.
    rate = 16000
    leave = at_rate(speech["leave"], rate)
    line = Line(rate, silence(LEAD_IN, rate), leave, silence(0.3, rate), tone(0.5, rate), silence(2.0, rate))

    result = await detect(line.audio)

    assert (result.verdict, result.reason) == (Verdict.MACHINE, Reason.BEEP)
    assert line.left_seconds == pytest.approx(2.0, abs=0.1)  # returned as the beep ended


async def test_silence_only_is_undecided_after_max_seconds():
    line = Line(48000, silence(4.0, 48000))

    result = await detect(line.audio, config={"max_seconds": 1.5})

    assert result == Detection(Verdict.UNDECIDED, Reason.SILENCE, 0.0, result.listened_seconds)
    assert 1.5 <= result.listened_seconds < 1.55
    assert line.taken_seconds == pytest.approx(1.5, abs=0.06)


async def test_callee_hangs_up_mid_greeting(speech):
    rate = 48000
    greeting = at_rate(speech["greeting"], rate)
    line = Line(rate, silence(LEAD_IN, rate), greeting[: rate * 1])

    result = await detect(line.audio)

    assert (result.verdict, result.reason) == (Verdict.UNDECIDED, Reason.ENDED)
    assert result.listened_seconds == pytest.approx(1.3, abs=0.05)
    assert await wait_for_greeting_end(line.audio) == GreetingEnd.ENDED
    assert_no_tasks_left()


async def test_cancelled_mid_call_leaves_no_tasks(speech):
    rate = 48000
    frames = frames_from_pcm(np.concatenate([silence(LEAD_IN, rate), at_rate(speech["greeting"], rate)[:rate]]), rate)
    all_sent = asyncio.Event()

    async def stalls():
        for frame in frames:
            yield frame
        all_sent.set()
        await asyncio.Event().wait()  # the PBX stops sending audio but does not hang up

    listening = asyncio.create_task(detect(stalls()))
    await all_sent.wait()
    listening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listening
    assert_no_tasks_left()


async def test_greeting_longer_than_max_greeting_seconds_times_out(speech):
    rate = 16000
    line = Line(rate, silence(LEAD_IN, rate), at_rate(speech["greeting"], rate))
    assert (await detect(line.audio)).verdict == Verdict.MACHINE

    assert await wait_for_greeting_end(line.audio, config={"max_greeting_seconds": 1.0}) == GreetingEnd.TIMEOUT
    assert line.left_seconds > 0.5  # the greeting was still going


@pytest.fixture(scope="module")
def whisper_model():
    return get_model()  # loaded once for the module


@pytest.mark.parametrize("rate", [48000, 8000])
async def test_transcript_of_a_short_greeting_finds_the_voicemail(speech, whisper_model, rate):
    line = Line(rate, silence(LEAD_IN, rate), at_rate(speech["leave"], rate), silence(2.0, rate))

    result = await detect(line.audio, transcribe=whisper, config={"transcribe_timeout_seconds": 60})

    assert (result.verdict, result.reason) == (Verdict.MACHINE, Reason.TRANSCRIPT)
    assert "leave a message" in result.transcript.lower()


async def test_transcript_of_hello_keeps_the_person(speech, whisper_model):
    line = Line(48000, silence(LEAD_IN, 48000), at_rate(speech["hello"], 48000), silence(2.0, 48000))

    result = await detect(line.audio, transcribe=whisper, config={"transcribe_timeout_seconds": 60})

    assert (result.verdict, result.reason) == (Verdict.HUMAN, Reason.SHORT_GREETING)
    assert "hello" in result.transcript.lower()


async def test_a_failing_transcriber_leaves_the_timing_verdict(speech):
    async def broken(frame: rtc.AudioFrame) -> str:
        raise ConnectionError("stt down")

    line = Line(16000, silence(LEAD_IN, 16000), at_rate(speech["leave"], 16000), silence(2.0, 16000))

    result = await detect(line.audio, transcribe=broken)

    assert (result.verdict, result.reason, result.transcript) == (Verdict.HUMAN, Reason.SHORT_GREETING, "")


async def test_a_hanging_transcriber_is_cut_off(speech):
    async def hangs(frame: rtc.AudioFrame) -> str:
        await asyncio.Event().wait()
        return "never"

    line = Line(16000, silence(LEAD_IN, 16000), at_rate(speech["hello"], 16000), silence(2.0, 16000))

    result = await detect(line.audio, transcribe=hangs, config={"transcribe_timeout_seconds": 0.05})

    assert (result.verdict, result.reason) == (Verdict.HUMAN, Reason.SHORT_GREETING)
    assert_no_tasks_left()


@pytest.mark.parametrize(
    ("text", "voicemail"),
    [
        ("Please leave a message after the beep.", True),
        ("Sorry, I can’t take your call right now.", True),
        ("The person you are calling is not available.", True),
        ("You have reached the voicemail of Dana Smith.", True),
        ("This mailbox is full.", True),
        ("Record your message at the tone.", True),
        ("Hello?", False),
        ("Hi, this is Sam, who's calling?", False),
        ("Yeah, you've reached Dana, go ahead.", False),
    ],
)
def test_voicemail_phrases(text, voicemail):
    assert is_voicemail_text(text) is voicemail


@pytest.mark.parametrize("freq", [440.0, 1000.0, 1800.0])
def test_a_steady_tone_is_a_beep_and_ends_with_it(freq):
    detector = BeepDetector(min_seconds=0.15)
    audio = np.concatenate([tone(0.4, 16000, freq, amplitude=3000), silence(0.2, 16000)])
    states = [detector.push(audio[i : i + 512]).value for i in range(0, len(audio) - 511, 512)]

    assert states[:4] == ["none"] * 4  # under 150 ms
    assert "sounding" in states
    assert states[-1] == "ended"
    assert detector.frequency == pytest.approx(freq, abs=10)


def test_speech_a_short_blip_and_a_sweep_are_not_beeps(speech):
    rate = 16000
    sweep_t = np.arange(rate // 2) / rate
    sweep = (6000 * np.sin(2 * math.pi * (500 * sweep_t + 1000 * sweep_t**2))).astype(np.int16)  # 500 -> 1500 Hz
    for audio in (at_rate(speech["greeting"], rate), tone(0.1, rate), sweep):
        detector = BeepDetector(min_seconds=0.15)
        states = {detector.push(audio[i : i + 512]).value for i in range(0, len(audio) - 511, 512)}
        assert states == {"none"}
    assert tone_frequency(tone(0.032, rate, amplitude=50)) is None  # line noise level


async def test_bad_settings_are_refused_with_the_field():
    with pytest.raises(AMDError) as info:
        await detect(Line(16000, silence(1.0, 16000)).audio, config={"max_seconds": "soon", "vad_threshold": 1.5})
    assert info.value.code == "amd_invalid_config"
    assert info.value.fields == {"max_seconds": "must be a positive number", "vad_threshold": "must be below 1"}


async def test_not_an_async_iterator_is_refused():
    with pytest.raises(AMDError) as info:
        await detect([rtc.AudioFrame.create(16000, 1, 320)])
    assert info.value.code == "amd_bad_input"


async def test_not_audio_frames_are_refused_without_leaking_tasks():
    async def raw_bytes():
        yield b"\0" * 640

    with pytest.raises(AMDError) as info:
        await detect(raw_bytes())
    assert info.value.code == "amd_bad_frame"
    assert_no_tasks_left()


async def test_disabled_reads_nothing(settings):
    settings.AMD = {**settings.AMD, "enabled": False}
    line = Line(16000, silence(1.0, 16000))

    result = await detect(line.audio)

    assert result == Detection(Verdict.UNDECIDED, Reason.DISABLED, 0.0, 0.0)
    assert line.taken == 0
