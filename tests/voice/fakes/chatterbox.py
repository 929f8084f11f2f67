"""The Chatterbox TTS node's streaming endpoint (docs/tts-node.md#api): `POST /synthesize/stream`.

Answers with `Transfer-Encoding: chunked`, `Content-Type: audio/wav`: a streaming WAV header
(data size left at 0xFFFFFFFF, since the length is unknown when it is sent), then PCM16 mono
chunks with a pause between them, as a GPU generating speech would. It records each request and
when it finished writing, so a test can see audio arrive before the node was done.
"""

import asyncio
import math
import struct
import time

from aiohttp import web

from tests.voice.fakes.base import LocalServer


def wav_header(sample_rate: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


def tone(sample_rate: int, seconds: float, *, freq: float = 220.0) -> bytes:
    n = int(sample_rate * seconds)
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / sample_rate))) for i in range(n))


class FakeChatterbox(LocalServer):
    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        chunks: int = 6,
        chunk_s: float = 0.1,
        delay_s: float = 0.08,
        status: int = 200,
    ) -> None:
        super().__init__()
        self.sample_rate, self.chunks, self.chunk_s, self.delay_s = sample_rate, chunks, chunk_s, delay_s
        self.status = status
        self.requests: list[dict] = []
        self.finished_at: list[float] = []  # time.monotonic() when each response was complete

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/synthesize/stream", self.synthesize)

    @property
    def audio_seconds(self) -> float:
        return self.chunks * self.chunk_s

    async def synthesize(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            {"body": await request.json(), "headers": {k.lower(): v for k, v in request.headers.items()}}
        )
        if self.status != 200:
            return web.json_response({"detail": "model loading"}, status=self.status)
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(wav_header(self.sample_rate))
        chunk = tone(self.sample_rate, self.chunk_s)
        for _ in range(self.chunks):
            await asyncio.sleep(self.delay_s)
            await response.write(chunk)
        await response.write_eof()
        self.finished_at.append(time.monotonic())
        return response
