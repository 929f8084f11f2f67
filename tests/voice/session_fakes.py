"""Scripted stand-ins for the speech providers, built on the framework's own base classes.

They let session tests drive turn-taking, tools and barge-in deterministically and fast:
caller "speech" is a tone burst (loud audio), the VAD is an energy detector, the STT returns
the next scripted line for each burst, the LLM answers through a Python function, and the TTS
speaks a tone whose length follows the text.
"""

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, llm, stt, tts, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

RATE = 16000


def tone(seconds: float, *, rate: int = RATE, freq: float = 220.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * math.pi * freq * t) * level * 32767).astype(np.int16)


def speechlike(seconds: float, *, rate: int = RATE) -> np.ndarray:
    """A tone with a syllable-rate envelope (5 Hz), so speaking-rate estimation sees steady speech."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.abs(np.sin(math.pi * 5 * t))
    return (np.sin(2 * math.pi * 440 * t) * envelope * 0.2 * 32767).astype(np.int16)


def silence(seconds: float, *, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def frames_of(samples: np.ndarray, *, rate: int = RATE, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    step = rate * frame_ms // 1000
    return [
        rtc.AudioFrame(samples[i : i + step].tobytes(), rate, 1, len(samples[i : i + step]))
        for i in range(0, len(samples), step)
    ]


# --- VAD ---------------------------------------------------------------------------------------


class EnergyVAD(vad.VAD):
    """Speech = frames louder than `threshold` (RMS, 0-1). Deterministic, no model."""

    def __init__(self, *, min_speech: float = 0.1, min_silence: float = 0.3, threshold: float = 0.05):
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.02))
        self.min_speech, self.min_silence, self.threshold = min_speech, min_silence, threshold

    def stream(self) -> "EnergyVADStream":
        return EnergyVADStream(self)


class EnergyVADStream(vad.VADStream):
    def __init__(self, owner: EnergyVAD):
        self._opts = owner
        super().__init__(owner)

    async def _main_task(self) -> None:
        state = _VADState()
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                state = _VADState()
                continue
            for event in state.push(item, self._opts):
                self._event_ch.send_nowait(event)


@dataclass
class _VADState:
    speaking: bool = False
    speech: float = 0.0  # seconds of speech in the current run
    silence: float = 0.0  # seconds of silence since the last speech
    samples: int = 0
    frames: list = field(default_factory=list)

    def push(self, frame: rtc.AudioFrame, opts: EnergyVAD) -> list[vad.VADEvent]:
        pcm = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768
        loud = bool(pcm.size) and float(np.sqrt(np.mean(pcm**2))) > opts.threshold
        self.samples += frame.samples_per_channel
        if loud:
            self.speech, self.silence = self.speech + frame.duration, 0.0
        else:
            self.silence += frame.duration
        if loud or self.speaking:
            self.frames.append(frame)
        events = [self._event(vad.VADEventType.INFERENCE_DONE, frame, probability=1.0 if loud else 0.0)]
        if not self.speaking and loud and self.speech >= opts.min_speech:
            self.speaking = True
            events.append(self._event(vad.VADEventType.START_OF_SPEECH, frame))
        elif self.speaking and self.silence >= opts.min_silence:
            events.append(self._event(vad.VADEventType.END_OF_SPEECH, frame, frames=self.frames))
            self.speaking, self.speech, self.frames = False, 0.0, []
        elif not self.speaking and not loud:
            self.speech, self.frames = 0.0, []
        return events

    def _event(self, kind, frame, *, probability: float = 0.0, frames=None) -> vad.VADEvent:
        return vad.VADEvent(
            type=kind,
            samples_index=self.samples,
            timestamp=time.time(),
            speech_duration=self.speech,
            silence_duration=self.silence,
            frames=list(frames) if frames is not None else [frame],
            probability=probability,
            speaking=self.speaking or probability > 0,
            raw_accumulated_speech=self.speech if self.silence == 0 else 0.0,
            raw_accumulated_silence=self.silence,
        )


# --- STT ---------------------------------------------------------------------------------------


class ScriptedSTT(stt.STT):
    """Returns the next line of `lines` for every speech segment, after `delay` seconds."""

    def __init__(self, lines: list[str], *, delay: float = 0.05, fail: bool = False):
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.lines, self.delay, self.fail = list(lines), delay, fail
        self.heard: list[str] = []

    @property
    def provider(self) -> str:
        return "scripted"

    async def _recognize_impl(self, buffer, *, language=None, conn_options=None) -> stt.SpeechEvent:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise APIConnectionError("scripted STT is down", retryable=False)
        text = self.lines.pop(0) if self.lines else ""
        self.heard.append(text)
        data = stt.SpeechData(language="en", text=text, confidence=0.9)
        return stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[data])


# --- LLM ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    text: str = ""
    tool: str | None = None
    arguments: dict = field(default_factory=dict)
    more_calls: list[tuple[str, dict]] = field(default_factory=list)  # parallel tool calls

    def tool_calls(self) -> list[tuple[str, dict]]:
        return ([(self.tool, self.arguments)] if self.tool else []) + self.more_calls


Responder = Callable[[llm.ChatContext], Reply]


def last_user_text(chat_ctx: llm.ChatContext) -> str:
    users = [m for m in chat_ctx.messages() if m.role == "user"]
    return (users[-1].text_content or "") if users else ""


def last_tool_output(chat_ctx: llm.ChatContext) -> llm.FunctionCallOutput | None:
    item = chat_ctx.items[-1] if chat_ctx.items else None
    return item if isinstance(item, llm.FunctionCallOutput) else None


class ScriptedLLM(llm.LLM):
    """Answers through `responder(chat_ctx)`; records every context it was given."""

    def __init__(self, responder: Responder, *, ttft: float = 0.05, fail: bool = False, model: str = "scripted"):
        super().__init__()
        self.responder, self.ttft, self.fail, self._model = responder, ttft, fail, model
        self.contexts: list[llm.ChatContext] = []

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "scripted"

    def chat(self, *, chat_ctx, tools=None, conn_options=DEFAULT_API_CONNECT_OPTIONS, **kwargs) -> "ScriptedStream":
        self.contexts.append(chat_ctx.copy())
        return ScriptedStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class ScriptedStream(llm.LLMStream):
    async def _run(self) -> None:
        owner: ScriptedLLM = self._llm  # type: ignore[assignment]
        await asyncio.sleep(owner.ttft)
        if owner.fail:
            raise APIConnectionError("scripted LLM is down", retryable=False)
        reply = owner.responder(self._chat_ctx)
        request_id = uuid.uuid4().hex
        if reply.text:
            for word in _chunks(reply.text):
                self._event_ch.send_nowait(
                    llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=word))
                )
        calls = [
            llm.FunctionToolCall(name=name, arguments=json.dumps(args), call_id=f"call_{uuid.uuid4().hex[:8]}")
            for name, args in reply.tool_calls()
        ]
        if calls:
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", tool_calls=calls))
            )


def _chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


# --- TTS ---------------------------------------------------------------------------------------


class ToneTTS(tts.TTS):
    """Speaks `seconds_per_char` of tone per character after `ttfb` seconds."""

    def __init__(self, *, ttfb: float = 0.03, seconds_per_char: float = 0.02, fail: bool = False):
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=RATE, num_channels=1)
        self.ttfb, self.seconds_per_char, self.fail = ttfb, seconds_per_char, fail
        self.spoken: list[str] = []

    @property
    def provider(self) -> str:
        return "tone"

    def seconds(self, text: str) -> float:
        return max(0.1, len(text) * self.seconds_per_char)

    def synthesize(self, text: str, *, conn_options=DEFAULT_API_CONNECT_OPTIONS) -> "ToneStream":
        return ToneStream(tts=self, input_text=text, conn_options=conn_options)


class ToneStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        owner: ToneTTS = self._tts  # type: ignore[assignment]
        await asyncio.sleep(owner.ttfb)
        if owner.fail:
            raise APIConnectionError("tone TTS is down", retryable=False)
        owner.spoken.append(self.input_text)
        output_emitter.initialize(request_id=uuid.uuid4().hex, sample_rate=RATE, num_channels=1, mime_type="audio/pcm")
        output_emitter.push(speechlike(owner.seconds(self.input_text)).tobytes())
        output_emitter.flush()
