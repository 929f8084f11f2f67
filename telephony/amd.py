"""Answering-machine detection (AMD) for outbound calls: did a person or a voicemail greeting answer?

When an outbound call connects, the bridge listens before the agent speaks. People answer with a
word or two and then wait ("Hello?" ... pause); a recorded greeting talks on without a real pause,
says "leave a message", and ends in a record tone. `detect()` turns those cues into a verdict as
soon as one is certain; after a MACHINE verdict, `wait_for_greeting_end()` tells when the greeting
is over, which is the moment to start the voicemail message.

Decisions run on audio time (samples heard), never the wall clock, so the answer is the same
whether frames arrive in real time or as fast as a test can push them. Frames are read in lockstep
with the VAD: nothing past the frame that settled the verdict is taken from the caller's iterator,
so the rest is left for the next listener (the agent, or `wait_for_greeting_end`).

Voice activity comes from the stack's Silero VAD stream, run with `min_silence_duration` set to
the pause that counts, so its END_OF_SPEECH means "a real pause". The record tone is found by a
hand-written spectral check (no installed library detects single tones): a 32 ms block whose
energy sits in one narrow peak between 350 and 2500 Hz, at a steady frequency, for at least
`min_beep_seconds`.
"""

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, fields
from enum import Enum, StrEnum
from typing import TypeVar

import numpy as np
from django.conf import settings
from livekit import rtc
from livekit.agents.vad import VADEvent, VADEventType, VADStream

from core.errors import ApplicationError
from voice.engines import build_vad

logger = logging.getLogger(__name__)
T = TypeVar("T")

VAD_RATE = 16000  # everything is resampled to Silero's rate, so one clock serves the VAD and the tone check
VAD_WINDOW = 512  # samples Silero scores at a time at 16 kHz (32 ms)
MIN_SPEECH_MS = 100  # a click or a breath is shorter
# Silero scores the first windows of a stream from a blank state: a "Hello?" that starts within the first
# few milliseconds of the leg (the callee speaks as they pick up) can stay near 0.5 and never start
# speech. Every listener is primed with this much silence first; it is not counted as audio heard.
PRIME_SECONDS = 0.2
DEACTIVATION_GAP = 0.15  # Silero keeps speaking until the probability falls this far below the threshold

TONE_BAND_HZ = (350.0, 2500.0)
TONE_FFT_SIZE = 2048  # zero-padded: 7.8 Hz bins for a 512-sample block
TONE_PEAK_HZ = 70.0  # a pure tone's Hann main lobe over 32 ms is about +-62 Hz wide
TONE_PURITY = 0.9  # share of the energy in that peak; piper's vowels peak below 0.75
TONE_MIN_RMS = 150.0  # about -47 dBFS: quieter tones are line noise
TONE_DRIFT = 0.03  # a record tone holds its pitch within 3% (20 Hz at least: the peak bin jitters)
TONE_DRIFT_MIN_HZ = 20.0
MAX_BEEP_SECONDS = 3.0  # a longer tone is reported when it reaches this, not held forever


class Verdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNDECIDED = "undecided"  # silence, time out or hang-up: the bridge treats the callee as a person


class Reason(StrEnum):
    SHORT_GREETING = "short_greeting"  # a short utterance, then a pause
    LONG_GREETING = "long_greeting"  # one long stretch of speech without a real pause
    BEEP = "beep"  # a record tone (it has already ended: speak the message now)
    TRANSCRIPT = "transcript"  # the first utterance says voicemail
    SILENCE = "silence"  # nobody spoke within max_seconds
    TIMEOUT = "timeout"  # speech was still going, undecided, at max_seconds
    ENDED = "ended"  # the audio ended (the callee hung up)
    DISABLED = "disabled"  # settings.AMD["enabled"] is off


class GreetingEnd(StrEnum):
    BEEP = "beep"
    SILENCE = "silence"
    TIMEOUT = "timeout"
    ENDED = "ended"  # the audio ended before the greeting did


VERDICTS = {
    Reason.SHORT_GREETING: Verdict.HUMAN,
    Reason.LONG_GREETING: Verdict.MACHINE,
    Reason.BEEP: Verdict.MACHINE,
    Reason.TRANSCRIPT: Verdict.MACHINE,
}

VOICEMAIL_RE = re.compile(
    r"leave (?:a|your|me a|us a) (?:brief |short |detailed )?message"
    r"|record your message|not available|unavailable|voice ?mail|mailbox"
    r"|after the (?:tone|beep)|at the (?:tone|beep)"
    r"|(?:can't|cannot|can not|unable to) (?:take|answer|get to) (?:your|the|my) (?:call|phone)"
)


@dataclass(frozen=True)
class Detection:
    """The verdict, why (a `Reason`), how much speech was heard and how much audio was read."""

    verdict: Verdict
    reason: str
    speech_seconds: float
    listened_seconds: float
    transcript: str = ""


@dataclass(frozen=True)
class AMDConfig:
    enabled: bool
    max_seconds: float
    machine_speech_seconds: float
    human_silence_seconds: float
    max_greeting_seconds: float
    greeting_silence_seconds: float
    min_beep_seconds: float
    vad_threshold: float
    transcribe_timeout_seconds: float


class AMDError(ApplicationError):
    code = "amd_invalid_input"


def resolve_config(config: dict | None = None) -> AMDConfig:
    """settings.AMD with `config`'s keys over it, checked: every duration a positive number."""
    if config is not None and not isinstance(config, dict):
        raise AMDError(f"AMD settings must be a dict, got {type(config).__name__}.", code="amd_invalid_config")
    merged = {**settings.AMD, **(config or {})}
    values: dict = {"enabled": merged.get("enabled", True)}
    errors = {} if isinstance(values["enabled"], bool) else {"enabled": "must be true or false"}
    for name in (f.name for f in fields(AMDConfig) if f.name != "enabled"):
        number = _positive_number(merged.get(name))
        if number is None:
            errors[name] = "must be a positive number"
        values[name] = number
    if "vad_threshold" not in errors and values["vad_threshold"] >= 1:
        errors["vad_threshold"] = "must be below 1"
    if errors:
        raise AMDError("Invalid answering-machine detection settings.", code="amd_invalid_config", fields=errors)
    return AMDConfig(**values)


def _positive_number(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def is_voicemail_text(text: str) -> bool:
    """Whether a transcript reads like a voicemail greeting ("... leave a message after the tone")."""
    normal = " ".join(re.sub(r"[^a-z' ]", " ", text.lower().replace("’", "'")).split())
    return VOICEMAIL_RE.search(normal) is not None


def prewarm(config: dict | None = None) -> None:
    """Load Silero for AMD's settings now (blocking, about 0.2 s) rather than on the first call."""
    cfg = resolve_config(config)
    for silence in (cfg.human_silence_seconds, cfg.greeting_silence_seconds):
        build_vad(_vad_settings(cfg, silence))


async def detect(
    frames: AsyncIterator[rtc.AudioFrame],
    *,
    transcribe: Callable[[rtc.AudioFrame], Awaitable[str]] | None = None,
    config: dict | None = None,
) -> Detection:
    """Listen to the callee's first words (at most max_seconds of audio) and classify the answer."""
    cfg = resolve_config(config)
    _check_iterator(frames)
    if not cfg.enabled:
        return Detection(Verdict.UNDECIDED, Reason.DISABLED, 0.0, 0.0)
    listener = await _Listener.open(cfg, min_silence=cfg.human_silence_seconds)
    try:
        reason = await listener.listen(frames, lambda heard: _judge(heard, cfg)) or Reason.ENDED
    finally:
        await listener.aclose()
    heard = listener.heard
    if reason is Reason.SHORT_GREETING and transcribe is not None and heard.last_utterance is not None:
        detection = await _by_transcript(transcribe, heard, cfg)
    else:
        detection = _detection(reason, heard)
    logger.info(
        "amd verdict=%s reason=%s speech=%.2fs listened=%.2fs",
        detection.verdict,
        detection.reason,
        detection.speech_seconds,
        detection.listened_seconds,
    )
    return detection


async def wait_for_greeting_end(frames: AsyncIterator[rtc.AudioFrame], *, config: dict | None = None) -> str:
    """After MACHINE: "beep" once the record tone has ended, "silence" after greeting_silence_seconds
    without speech, "timeout" after max_greeting_seconds of audio, "ended" if the audio stops first."""
    cfg = resolve_config(config)
    _check_iterator(frames)
    listener = await _Listener.open(cfg, min_silence=cfg.greeting_silence_seconds)
    try:
        outcome = await listener.listen(frames, lambda heard: _greeting_over(heard, cfg)) or GreetingEnd.ENDED
    finally:
        await listener.aclose()
    logger.info("amd greeting end=%s after %.2fs", outcome, listener.heard.seconds)
    return outcome


def _judge(heard: "_Heard", cfg: AMDConfig) -> Reason | None:
    if heard.tone is _Tone.ENDED:
        return Reason.BEEP
    if heard.tone is _Tone.SOUNDING:
        return None  # a record tone is playing: wait for it to end
    if heard.speaking and heard.current_speech >= cfg.machine_speech_seconds:
        return Reason.LONG_GREETING
    if heard.utterances:
        return Reason.SHORT_GREETING  # the first utterance ended in a real pause before it grew long
    if heard.seconds >= cfg.max_seconds:
        return Reason.TIMEOUT if heard.speaking else Reason.SILENCE
    return None


def _greeting_over(heard: "_Heard", cfg: AMDConfig) -> GreetingEnd | None:
    if heard.tone is _Tone.ENDED:
        return GreetingEnd.BEEP
    if heard.tone is _Tone.SOUNDING:
        return None
    if not heard.speaking and heard.seconds - heard.last_voiced >= cfg.greeting_silence_seconds:
        return GreetingEnd.SILENCE
    if heard.seconds >= cfg.max_greeting_seconds:
        return GreetingEnd.TIMEOUT
    return None


async def _by_transcript(
    transcribe: Callable[[rtc.AudioFrame], Awaitable[str]], heard: "_Heard", cfg: AMDConfig
) -> Detection:
    assert heard.last_utterance is not None
    try:
        text = await asyncio.wait_for(transcribe(heard.last_utterance), cfg.transcribe_timeout_seconds)
    except Exception as exc:  # an STT outage or timeout must not stop the call: the timing cues decide
        logger.warning("amd transcription failed (%s); deciding on timing alone", type(exc).__name__)
        return _detection(Reason.SHORT_GREETING, heard)
    text = text.strip() if isinstance(text, str) else ""
    reason = Reason.TRANSCRIPT if is_voicemail_text(text) else Reason.SHORT_GREETING
    return _detection(reason, heard, transcript=text)


def _detection(reason: Reason, heard: "_Heard", transcript: str = "") -> Detection:
    return Detection(
        verdict=VERDICTS.get(reason, Verdict.UNDECIDED),
        reason=reason.value,
        speech_seconds=round(heard.speech_seconds + heard.current_speech, 3),
        listened_seconds=round(heard.seconds, 3),
        transcript=transcript,
    )


def _check_iterator(frames: object) -> None:
    if not hasattr(frames, "__anext__"):
        raise AMDError(
            f"AMD needs an async iterator of rtc.AudioFrame, got {type(frames).__name__}.", code="amd_bad_input"
        )


def _vad_settings(cfg: AMDConfig, min_silence: float) -> dict:
    return {
        "threshold": cfg.vad_threshold,
        "min_speech_duration_ms": MIN_SPEECH_MS,
        "min_silence_duration_ms": round(min_silence * 1000),
    }


class _Tone(Enum):
    NONE = "none"
    SOUNDING = "sounding"  # a steady tone has lasted min_beep_seconds and goes on
    ENDED = "ended"  # that tone has stopped (or reached MAX_BEEP_SECONDS)


def tone_frequency(block: np.ndarray, sample_rate: int = VAD_RATE) -> float | None:
    """The frequency of a block that is one pure tone in the record-tone band, else None."""
    samples = block.astype(np.float64)
    if samples.size == 0 or np.sqrt(np.mean(samples**2)) < TONE_MIN_RMS:
        return None
    power = np.abs(np.fft.rfft(samples * np.hanning(samples.size), n=TONE_FFT_SIZE)) ** 2
    freqs = np.fft.rfftfreq(TONE_FFT_SIZE, 1 / sample_rate)
    in_band = (freqs >= TONE_BAND_HZ[0]) & (freqs <= TONE_BAND_HZ[1])
    peak = int(np.argmax(np.where(in_band, power, 0.0)))
    near = np.abs(freqs - freqs[peak]) <= TONE_PEAK_HZ
    audible = freqs >= 100
    if power[near].sum() < TONE_PURITY * power[audible].sum():
        return None
    return float(freqs[peak])


class BeepDetector:
    """Follows a run of tonal blocks at one steady frequency (hand-written: see the module docstring)."""

    def __init__(self, *, min_seconds: float, sample_rate: int = VAD_RATE) -> None:
        self.min_seconds = min_seconds
        self.sample_rate = sample_rate
        self.state = _Tone.NONE
        self.frequency: float | None = None
        self._run = 0.0

    def push(self, block: np.ndarray) -> _Tone:
        if self.state is _Tone.ENDED:
            return self.state
        freq = tone_frequency(block, self.sample_rate)
        steady = freq is not None and self.frequency is not None and abs(freq - self.frequency) <= self._drift()
        if self.state is _Tone.SOUNDING and (not steady or self._run >= MAX_BEEP_SECONDS):
            self.state = _Tone.ENDED
            return self.state
        if steady:
            self._run += block.size / self.sample_rate
        else:
            self.frequency, self._run = freq, (block.size / self.sample_rate if freq is not None else 0.0)
        if self._run >= self.min_seconds:
            self.state = _Tone.SOUNDING
        return self.state

    def _drift(self) -> float:
        return max(TONE_DRIFT_MIN_HZ, TONE_DRIFT * (self.frequency or 0.0))


@dataclass
class _Heard:
    """What the listener knows so far, in audio seconds since it started."""

    seconds: float = 0.0
    speaking: bool = False  # Silero's state: in a stretch of speech not yet ended by a real pause
    speech_started: float = 0.0
    last_voiced: float = 0.0  # end of the last window Silero scored as speech
    speech_seconds: float = 0.0  # stretches already ended
    utterances: int = 0  # stretches ended by a real pause
    last_utterance: rtc.AudioFrame | None = None
    tone: _Tone = _Tone.NONE

    @property
    def current_speech(self) -> float:
        """The stretch of speech going on, up to its last voiced window (trailing quiet excluded)."""
        return max(0.0, self.last_voiced - self.speech_started) if self.speaking else 0.0


class _Listener:
    """Silero VAD and the beep check over one stream of frames, any rate, on one 16 kHz clock."""

    def __init__(self, stream: VADStream, cfg: AMDConfig) -> None:
        self._stream = stream
        self._threshold = cfg.vad_threshold
        self._beep = BeepDetector(min_seconds=cfg.min_beep_seconds)
        self._resampler: rtc.AudioResampler | None = None
        self._input_rate = 0
        self._pushed = 0
        self._scored = 0
        self._primed = 0.0  # seconds of priming silence at the start of the stream (not heard audio)
        self.heard = _Heard()

    @classmethod
    async def open(cls, cfg: AMDConfig, *, min_silence: float) -> "_Listener":
        # Loading Silero blocks for a moment the first time (then it is cached): off the event loop.
        vad = await asyncio.to_thread(build_vad, _vad_settings(cfg, min_silence))
        listener = cls(vad.stream(), cfg)
        await listener._prime()
        return listener

    async def _prime(self) -> None:
        """Warm Silero's state on silence (whole windows), so the callee's first word is scored fairly."""
        windows = math.ceil(PRIME_SECONDS * VAD_RATE / VAD_WINDOW)
        silence = np.zeros(windows * VAD_WINDOW, dtype=np.int16)
        await self._push_pcm(silence)  # silence raises no speech event; the beep check sees no tone
        self._primed = silence.size / VAD_RATE

    async def listen(self, frames: AsyncIterator[rtc.AudioFrame], decide: Callable[[_Heard], T | None]) -> T | None:
        """Feed frames until `decide` returns an outcome after some VAD event; None if the frames end."""
        async for frame in frames:
            for event in await self._push(frame):
                self._apply(event)
                if (outcome := decide(self.heard)) is not None:
                    return outcome
        return None

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def _push(self, frame: rtc.AudioFrame) -> list[VADEvent]:
        """Push one frame and wait until Silero has scored every full window of it (lockstep)."""
        return await self._push_pcm(self._to_vad_rate(frame))

    async def _push_pcm(self, pcm: np.ndarray) -> list[VADEvent]:
        if pcm.size:
            self._stream.push_frame(rtc.AudioFrame(pcm.tobytes(), VAD_RATE, 1, pcm.size))
            self._pushed += pcm.size
        events = []
        while self._scored < self._pushed // VAD_WINDOW:
            try:
                event = await anext(self._stream)
            except StopAsyncIteration:
                raise AMDError("The voice activity detector stopped.", code="amd_vad_failed") from None
            self._scored += event.type is VADEventType.INFERENCE_DONE
            events.append(event)
        return events

    def _apply(self, event: VADEvent) -> None:
        heard = self.heard
        at = event.timestamp - self._primed  # audio time of the callee's own frames
        if event.type is VADEventType.INFERENCE_DONE:
            heard.seconds = at
            # Silero's own hysteresis: once speaking, it stays so down to threshold - 0.15.
            floor = self._threshold - DEACTIVATION_GAP if heard.speaking else self._threshold
            if event.probability >= floor:
                heard.last_voiced = at
            for window in event.frames:
                heard.tone = self._beep.push(np.frombuffer(window.data, dtype=np.int16))
        elif event.type is VADEventType.START_OF_SPEECH:
            heard.speaking = True
            heard.speech_started = at - event.speech_duration
        elif event.type is VADEventType.END_OF_SPEECH:
            heard.speaking = False
            heard.utterances += 1
            heard.speech_seconds += event.speech_duration
            heard.last_utterance = rtc.combine_audio_frames(event.frames) if event.frames else None

    def _to_vad_rate(self, frame: object) -> np.ndarray:
        if not isinstance(frame, rtc.AudioFrame):
            raise AMDError(f"AMD expects rtc.AudioFrame, got {type(frame).__name__}.", code="amd_bad_frame")
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        if frame.sample_rate == VAD_RATE or pcm.size == 0:
            return pcm
        if frame.sample_rate != self._input_rate:  # the first frame, or the codec was renegotiated
            self._input_rate = frame.sample_rate
            self._resampler = rtc.AudioResampler(frame.sample_rate, VAD_RATE, quality=rtc.AudioResamplerQuality.QUICK)
        assert self._resampler is not None
        out = self._resampler.push(rtc.AudioFrame(pcm.tobytes(), frame.sample_rate, 1, pcm.size))
        return np.frombuffer(rtc.combine_audio_frames(out).data, dtype=np.int16) if out else np.zeros(0, np.int16)
