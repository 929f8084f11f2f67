"""A Deepgram live-transcription server (WebSocket `/v1/listen`), as the plugin speaks to it.

Protocol (Deepgram's listen v1 API, field names as in deepgram-sdk's `ListenV1Results`,
`ListenV1Metadata`, `ListenV1SpeechStarted`): the client opens the socket with its options in
the query string and `Authorization: Token <key>`, sends binary linear16 audio and text control
messages (`KeepAlive`, `Finalize`, `CloseStream`); the server answers with JSON messages:
`SpeechStarted`, `Results` (interim `is_final: false`, then final `is_final: true` with
`speech_final: true` at the end of an utterance) and, when the stream closes, `Metadata`.

This fake sends one interim result once it has heard `interim_after_s` of audio, the final result
when the client sends `Finalize`, and `Metadata` then a close on `CloseStream`.
"""

import json
import uuid

from aiohttp import WSMsgType, web

from tests.voice.fakes.base import LocalServer

MODEL_INFO = {"name": "2-general-nova", "version": "2024-01-09.29447", "arch": "nova-2"}


class FakeDeepgram(LocalServer):
    def __init__(
        self,
        *,
        interim: str = "I would like to",
        final: str = "I would like to book an appointment.",
        interim_after_s: float = 0.3,
        handshake_status: int | None = None,
    ) -> None:
        super().__init__()
        self.interim, self.final, self.interim_after_s = interim, final, interim_after_s
        self.handshake_status = handshake_status
        self.request_id = str(uuid.uuid4())
        self.query: dict[str, str] = {}
        self.headers: dict[str, str] = {}
        self.control: list[str] = []  # control message types in arrival order
        self.audio_bytes = 0
        self.finalized_bytes = 0  # audio already covered by a final result
        self.connections = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self.listen)

    @property
    def listen_url(self) -> str:
        return f"{self.url}/v1/listen"

    async def listen(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        if self.handshake_status:
            return web.json_response({"err_code": "UNAVAILABLE"}, status=self.handshake_status)
        self.query = dict(request.query)
        self.headers = {k.lower(): v for k, v in request.headers.items()}
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sample_rate = int(request.query.get("sample_rate", "16000"))
        sent_interim = False
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                self.audio_bytes += len(msg.data)
                if not sent_interim and self.audio_bytes >= self.interim_after_s * sample_rate * 2:
                    sent_interim = True
                    await ws.send_json({"type": "SpeechStarted", "channel": [0], "timestamp": 0.0})
                    await ws.send_json(self._results(self.interim, is_final=False, seconds=self.interim_after_s))
            elif msg.type == WSMsgType.TEXT and await self._control(
                ws, json.loads(msg.data)["type"], self.audio_bytes / (2 * sample_rate)
            ):
                break
        return ws

    async def _control(self, ws: web.WebSocketResponse, kind: str, seconds: float) -> bool:
        """Handle one control message; True when the stream is over."""
        self.control.append(kind)
        if kind == "Finalize":
            # Like Deepgram, a Finalize with no new audio since the last one yields an empty result.
            transcript = self.final if self.audio_bytes > self.finalized_bytes else ""
            self.finalized_bytes = self.audio_bytes
            await ws.send_json(self._results(transcript, is_final=True, seconds=seconds, from_finalize=True))
        elif kind == "CloseStream":
            await ws.send_json(self._metadata(seconds))
            await ws.close()
            return True
        return False  # KeepAlive: nothing to say

    def _results(self, transcript: str, *, is_final: bool, seconds: float, from_finalize: bool = False) -> dict:
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": seconds,
            "start": 0.0,
            "is_final": is_final,
            "speech_final": is_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [{"transcript": transcript, "confidence": 0.97, "words": _words(transcript, seconds)}]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": MODEL_INFO,
                "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "nova-2")),
            },
        }

    def _metadata(self, seconds: float) -> dict:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0" * 64,
            "created": "2026-11-19T10:00:00.000Z",
            "duration": seconds,
            "channels": 1,
            "models": [MODEL_INFO["arch"]],
            "model_info": {MODEL_INFO["arch"]: MODEL_INFO},
        }


def _words(transcript: str, seconds: float) -> list[dict]:
    spoken = transcript.split()
    step = seconds / max(len(spoken), 1)
    return [
        {
            "word": w.strip(".,?!").lower(),
            "punctuated_word": w,
            "start": round(i * step, 3),
            "end": round((i + 1) * step, 3),
            "confidence": 0.97,
        }
        for i, w in enumerate(spoken)
    ]
