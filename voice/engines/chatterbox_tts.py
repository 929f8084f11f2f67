"""Client of the Chatterbox TTS node (docs/tts-node.md#api): the wire format lives here and nowhere else.

POST {CHATTERBOX_URL}/synthesize/stream with
    {"text", "voice_id", "options": {"exaggeration", "cfg_weight", "streaming": true}}
and an `Authorization: Bearer <CHATTERBOX_API_TOKEN>` header when a token is set. The node answers
with a chunked `audio/wav` body: a WAV header, then PCM16 mono as it is generated. Frames are
emitted as the chunks arrive, at the sample rate the header names (resampled to the rate this
TTS declared, when they differ). Paralinguistic tags such as `[laugh]` are sent untouched: the
node renders them.
"""

import struct
import uuid
from dataclasses import dataclass

import aiohttp
from livekit import rtc
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from agents.engines import CHATTERBOX
from voice.engines.breaker import breaker_for
from voice.engines.guarded import GuardedTTS
from voice.engines.spoken import spoken

SYNTHESIZE_PATH = "/synthesize/stream"
DEFAULT_SAMPLE_RATE = 24000
PCM_TYPES = ("audio/pcm", "audio/l16", "audio/raw")


@dataclass(frozen=True)
class ChatterboxOptions:
    base_url: str
    voice_id: str
    token: str = ""
    exaggeration: float = 0.5
    cfg_weight: float = 0.5
    model: str = ""  # reported, not sent: the node serves the model it was started with
    sample_rate: int = DEFAULT_SAMPLE_RATE

    def request_body(self, text: str) -> dict:
        options = {"exaggeration": self.exaggeration, "cfg_weight": self.cfg_weight, "streaming": True}
        return {"text": text, "voice_id": self.voice_id, "options": options}

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "audio/wav"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def build(config: dict, *, secrets: dict, voice: dict | None = None, **_context) -> list[GuardedTTS]:
    """The registry's builder: the node behind the breaker of its URL, speaking the agent's voice (data:
    {"provider_voice_id", "exaggeration", "cfg_weight"}) or the section's default voice."""
    voice = voice or {}
    url = secrets["chatterbox_url"]
    options = ChatterboxOptions(
        base_url=url,
        token=secrets.get("chatterbox_token") or "",
        voice_id=voice.get("provider_voice_id") or config.get("default_voice_id") or "default_female_1",
        exaggeration=float(voice.get("exaggeration", config.get("exaggeration", 0.5))),
        cfg_weight=float(voice.get("cfg_weight", config.get("cfg_weight", 0.5))),
        model=config["model"],
        sample_rate=int(config.get("sample_rate", DEFAULT_SAMPLE_RATE)),
    )
    return [GuardedTTS(ChatterboxTTS(options), breaker=breaker_for(CHATTERBOX, url), label=CHATTERBOX)]


class ChatterboxTTS(tts.TTS):
    def __init__(self, options: ChatterboxOptions, *, http_session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=options.sample_rate, num_channels=1
        )
        self._opts = options
        self._session = http_session
        self._owned_session: aiohttp.ClientSession | None = None

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return CHATTERBOX

    @property
    def options(self) -> ChatterboxOptions:
        return self._opts

    def _ensure_session(self) -> aiohttp.ClientSession:
        # The job context's shared session when there is one; our own in the media worker and tests.
        if self._session is None or self._session.closed:
            try:
                self._session = utils.http_context.http_session()
            except RuntimeError:
                self._session = self._owned_session = aiohttp.ClientSession()
        return self._session

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return ChatterboxChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    async def aclose(self) -> None:
        if self._owned_session is not None:
            await self._owned_session.close()
            self._owned_session = None


class ChatterboxChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        assert isinstance(self._tts, ChatterboxTTS)
        opts = self._tts.options
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._conn_options.timeout, sock_read=30)
        try:
            async with self._tts._ensure_session().post(
                opts.base_url.rstrip("/") + SYNTHESIZE_PATH,
                json=opts.request_body(spoken(self._input_text)),  # "9:00 AM" as "nine AM", not a guess
                headers=opts.headers(),
                timeout=timeout,
            ) as resp:
                if resp.status >= 400:
                    body = (await resp.text())[:500]
                    raise APIStatusError("chatterbox node refused", status_code=resp.status, body=body)
                await self._relay(resp, output_emitter)
        except TimeoutError as exc:
            raise APITimeoutError("chatterbox node timed out") from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"chatterbox node unreachable ({type(exc).__name__})") from exc

    async def _relay(self, resp: aiohttp.ClientResponse, output_emitter: tts.AudioEmitter) -> None:
        raw_pcm = resp.content_type.lower() in PCM_TYPES
        reader = WavStreamReader(sample_rate=self._tts.sample_rate if raw_pcm else None)
        sink: PcmSink | None = None
        async for data in resp.content.iter_any():
            pcm = reader.feed(data)
            if sink is None and reader.sample_rate:
                sink = PcmSink(output_emitter, reader.sample_rate, self._tts.sample_rate)
            if sink is not None and pcm:
                sink.push(pcm)
        if sink is None:
            raise APIError("chatterbox node sent no WAV header", retryable=False)
        sink.flush()


class WavStreamReader:
    """Reads a WAV stream as it arrives: the header first, then PCM16 bytes (whole samples only).

    A streaming WAV header carries no true length (the data size is a placeholder), so sizes are
    ignored and everything after the 'data' chunk header is audio.
    """

    def __init__(self, *, sample_rate: int | None = None) -> None:
        self._buffer = bytearray()
        self.sample_rate = sample_rate  # known up front for a raw PCM stream
        self._in_data = sample_rate is not None

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if not self._in_data and not self._parse_header():
            return b""
        usable = len(self._buffer) - len(self._buffer) % 2
        pcm, self._buffer = bytes(self._buffer[:usable]), self._buffer[usable:]
        return pcm

    def _parse_header(self) -> bool:
        buf = self._buffer
        if len(buf) < 12:
            return False
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise APIError("chatterbox node did not send a WAV stream", retryable=False)
        pos = 12
        while len(buf) >= pos + 8:
            chunk_id, size = bytes(buf[pos : pos + 4]), struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
            if chunk_id == b"data":
                del buf[: pos + 8]
                self._in_data = True
                return True
            if len(buf) < pos + 8 + size:
                return False
            if chunk_id == b"fmt ":
                self._read_format(bytes(buf[pos + 8 : pos + 8 + size]))
            pos += 8 + size + size % 2  # chunks are word-aligned
        return False

    def _read_format(self, fmt: bytes) -> None:
        audio_format, channels, rate = struct.unpack("<HHI", fmt[:8])
        bits = struct.unpack("<H", fmt[14:16])[0]
        if audio_format not in (1, 0xFFFE) or channels != 1 or bits != 16:
            raise APIError(f"unsupported WAV: format {audio_format}, {channels} ch, {bits} bit", retryable=False)
        self.sample_rate = rate


class PcmSink:
    """Pushes PCM16 mono into the emitter at the rate the TTS declared, resampling if needed."""

    def __init__(self, emitter: tts.AudioEmitter, source_rate: int, target_rate: int) -> None:
        self._emitter = emitter
        self._source_rate = source_rate
        self._resampler = rtc.AudioResampler(source_rate, target_rate) if source_rate != target_rate else None
        emitter.initialize(request_id=uuid.uuid4().hex, sample_rate=target_rate, num_channels=1, mime_type="audio/pcm")

    def push(self, pcm: bytes) -> None:
        if self._resampler is None:
            self._emitter.push(pcm)
            return
        frame = rtc.AudioFrame(pcm, self._source_rate, 1, len(pcm) // 2)
        for out in self._resampler.push(frame):
            self._emitter.push_frame(out)

    def flush(self) -> None:
        if self._resampler is not None:
            for out in self._resampler.flush():
                self._emitter.push_frame(out)
