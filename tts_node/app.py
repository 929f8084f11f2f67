"""The node's HTTP API (docs/tts-node.md#api), a small Starlette app served by uvicorn.

POST /synthesize            {"text", "voice_id", "options": {"exaggeration", "cfg_weight", "streaming"}}:
                            a whole WAV, or a chunked WAV stream when options.streaming is true
POST /synthesize/stream     the same body, always streamed: WAV header, then PCM16 chunks of
                            TTS_CHUNK_MS as they are generated (`Accept: audio/pcm`: no header)
GET  /voices, /voices/{id}  built-in and cloned voices
POST /voices                multipart: `reference_audio` (WAV/FLAC/OGG) and optional `name`
DELETE /voices/{id}         forget a cloned voice
GET  /health, /metrics      probes and Prometheus; the only routes open without the token

Every other route needs `Authorization: Bearer <TTS_API_TOKEN>` when a token is set (the platform
sends CHATTERBOX_API_TOKEN). Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status.
"""

import asyncio
import contextlib
import hmac
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tts_node import text as text_prep
from tts_node.audio import read_reference, wav_header
from tts_node.engines import Engine, SynthesisOptions, build_engine
from tts_node.errors import (
    BadRequest,
    NodeError,
    NotReady,
    PayloadTooLarge,
    SynthesisFailed,
    Unauthorized,
)
from tts_node.metrics import NodeMetrics
from tts_node.scheduler import Job, Scheduler
from tts_node.settings import Settings, load_settings
from tts_node.voices import VoiceStore

log = logging.getLogger("tts_node")
TAGS_ONLY_PAUSE_S = 0.1  # text of tags alone ('[laugh]') on an engine without tags: a short pause


@dataclass
class SynthesisRequest:
    sentences: list[str]
    voice_id: str
    options: SynthesisOptions
    streaming: bool
    raw_pcm: bool


class Node:
    """Everything a request needs: settings, engine, scheduler, voices, metrics."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = NodeMetrics()
        self.scheduler = Scheduler(
            max_active=settings.max_active, queue_size=settings.queue_size, worker_context=engine.worker_context
        )
        self.scheduler.on_job_done = self._observe
        self.voices = VoiceStore(
            settings.voices_dir, engine, builtin_ids=settings.builtin_voice_ids, cache_size=settings.voice_cache_size
        )
        self.metrics.bind(
            waiting=lambda: self.scheduler.waiting, active=lambda: self.scheduler.active, memory=self._memory
        )
        self._loading = None

    def start(self) -> None:
        self.scheduler.start()
        self._loading = self.scheduler.call(self.engine.load)

    def stop(self) -> None:
        self.scheduler.stop()

    async def ready(self) -> None:
        """Wait for the model; NotReady if it failed to load."""
        try:
            await asyncio.wrap_future(self._loading)
        except Exception as exc:
            raise NotReady(f"The TTS model failed to load: {exc}") from exc

    @property
    def load_error(self) -> str | None:
        if self._loading is None or not self._loading.done() or self._loading.exception() is None:
            return None
        return str(self._loading.exception())

    @property
    def output_rate(self) -> int:
        return self.settings.sample_rate or self.engine.sample_rate

    def _memory(self) -> dict | None:
        return self.engine.memory() if self.engine.loaded else None

    def _observe(self, job: Job) -> None:
        stats = job.stats
        if stats.time_to_first_audio is not None:
            self.metrics.time_to_first_audio.observe(stats.time_to_first_audio)
        if stats.finished_at and stats.started_at and stats.audio_seconds > 0:
            self.metrics.real_time_factor.observe((stats.finished_at - stats.started_at) / stats.audio_seconds)
            self.metrics.audio_seconds.inc(stats.audio_seconds)


def _node(request: Request) -> Node:
    return request.app.state.node


def _authorize(request: Request) -> None:
    token = _node(request).settings.api_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized(
            "A valid 'Authorization: Bearer <token>' header is required.", headers={"WWW-Authenticate": "Bearer"}
        )


# --- synthesis -----------------------------------------------------------------------------------
def _number(options: dict, name: str, default: float, low: float, high: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"options.{name} must be a number within {low}-{high}.", code="invalid_option")
    return float(value)


def _parse_options(body: dict, settings: Settings) -> tuple[SynthesisOptions, bool]:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequest("options must be an object.", code="invalid_option")
    streaming = options.get("streaming", False)
    language = options.get("language", "en")
    if not isinstance(streaming, bool) or not isinstance(language, str):
        raise BadRequest("options.streaming must be a boolean and options.language a string.", code="invalid_option")
    parsed = SynthesisOptions(
        exaggeration=_number(options, "exaggeration", settings.default_exaggeration, 0.25, 2.0),
        cfg_weight=_number(options, "cfg_weight", settings.default_cfg_weight, 0.0, 1.0),
        language=language,
    )
    return parsed, streaming


def _parse_text(body: dict, settings: Settings) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("text is required and must not be empty.", code="text_empty")
    if len(text) > settings.max_text_chars:
        raise BadRequest(
            f"text is {len(text)} characters; the limit is {settings.max_text_chars}.", code="text_too_long"
        )
    return text


async def _synthesis_request(request: Request) -> SynthesisRequest:
    _authorize(request)
    node = _node(request)
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest("The body must be JSON.", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    text = _parse_text(body, node.settings)
    voice_id = body.get("voice_id") or node.settings.builtin_voice_ids[0]
    if not isinstance(voice_id, str):
        raise BadRequest("voice_id must be a string.", code="invalid_voice_id")
    node.voices.get(voice_id)  # 404 for an unknown voice, before any work
    options, streaming = _parse_options(body, node.settings)
    await node.ready()
    sentences = text_prep.prepare(text, supports_tags=node.engine.supports_tags)
    raw_pcm = "audio/pcm" in request.headers.get("accept", "") and "audio/wav" not in request.headers.get("accept", "")
    return SynthesisRequest(sentences, voice_id, options, streaming, raw_pcm)


def _steps(node: Node, req: SynthesisRequest):
    """The job's generator: the voice's conditionals first (cached), then the engine's audio."""
    if not req.sentences:
        yield np.zeros(int(node.engine.sample_rate * TAGS_ONLY_PAUSE_S), dtype=np.float32)
        return
    voice = node.voices.conditionals(req.voice_id)
    yield None
    yield from node.engine.stream(req.sentences, voice, req.options)


def _submit(node: Node, req: SynthesisRequest) -> Job:
    settings = node.settings
    job = Job(
        _steps(node, req),
        source_rate=node.engine.sample_rate,
        output_rate=node.output_rate,
        chunk_ms=settings.chunk_ms,
        buffer_chunks=settings.buffer_chunks,
    )
    return node.scheduler.submit(job, retry_after_s=settings.retry_after_s)


async def _first_chunk(job: Job, chunks) -> bytes:
    """Wait for the first audio, so a failure before it is still a clean JSON error."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return b""
    except Exception as exc:
        job.cancel()
        raise SynthesisFailed(f"Synthesis failed: {exc}") from exc


async def _stream(node: Node, job: Job, raw_pcm: bool) -> Response:
    chunks = job.chunks()
    first = await _first_chunk(job, chunks)
    rate = node.output_rate

    async def body():
        try:
            yield first if raw_pcm else wav_header(rate) + first
            async for chunk in chunks:
                yield chunk
        finally:
            job.cancel()  # the client left early, or we are done: free the slot either way

    media_type = f"audio/pcm;rate={rate}" if raw_pcm else "audio/wav"
    return StreamingResponse(body(), media_type=media_type, headers={"X-Sample-Rate": str(rate)})


async def _whole(node: Node, job: Job) -> Response:
    chunks = job.chunks()
    pcm = [await _first_chunk(job, chunks)]
    try:
        pcm += [chunk async for chunk in chunks]
    except Exception as exc:
        raise SynthesisFailed(f"Synthesis failed: {exc}") from exc
    data = b"".join(pcm)
    rate = node.output_rate
    return Response(
        wav_header(rate, data_bytes=len(data)) + data, media_type="audio/wav", headers={"X-Sample-Rate": str(rate)}
    )


async def synthesize(request: Request) -> Response:
    req = await _synthesis_request(request)
    node = _node(request)
    job = _submit(node, req)
    return await (_stream(node, job, req.raw_pcm) if req.streaming else _whole(node, job))


async def synthesize_stream(request: Request) -> Response:
    req = await _synthesis_request(request)
    node = _node(request)
    return await _stream(node, _submit(node, req), req.raw_pcm)


# --- voices --------------------------------------------------------------------------------------
async def voice_list(request: Request) -> Response:
    _authorize(request)
    node = _node(request)
    return JSONResponse({"voices": [v.as_json(node.engine) for v in node.voices.all()]})


async def voice_detail(request: Request) -> Response:
    _authorize(request)
    node = _node(request)
    return JSONResponse(node.voices.get(request.path_params["voice_id"]).as_json(node.engine))


async def voice_delete(request: Request) -> Response:
    _authorize(request)
    _node(request).voices.delete(request.path_params["voice_id"])
    return Response(status_code=204)


async def _reference_upload(request: Request, settings: Settings) -> tuple[bytes, str]:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.reference_max_bytes + 64 * 1024:
        raise PayloadTooLarge(
            f"The upload is over {settings.reference_max_bytes} bytes.", code="reference_audio_too_large"
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("Upload the reference audio as multipart/form-data.", code="multipart_required")
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=settings.reference_max_bytes)
    except MultiPartException as exc:
        raise BadRequest(f"Bad multipart body: {exc.message}", code="invalid_multipart") from exc
    upload = form.get("reference_audio")
    if not isinstance(upload, UploadFile):
        raise BadRequest("The form needs a 'reference_audio' file.", code="reference_audio_missing")
    name = form.get("name")
    return await upload.read(), name if isinstance(name, str) else ""


async def voice_create(request: Request) -> Response:
    _authorize(request)
    node = _node(request)
    settings = node.settings
    data, name = await _reference_upload(request, settings)
    reference = await run_in_threadpool(
        read_reference,
        data,
        min_s=settings.reference_min_s,
        max_s=settings.reference_max_s,
        min_rate=settings.reference_min_rate,
    )
    await node.ready()
    info = node.voices.save(reference, name=name[:100])
    path = node.voices.reference_path(info.id)
    try:
        conds = await asyncio.wrap_future(node.scheduler.call(lambda: node.engine.prepare_voice(path)))
    except Exception as exc:
        node.voices.delete(info.id)
        log.warning("voice conditionals failed for an upload: %s", exc)
        raise BadRequest(
            f"The engine could not build a voice from this recording: {exc}", code="reference_audio_rejected"
        ) from exc
    node.voices.remember(info.id, conds)
    return JSONResponse(info.as_json(node.engine), status_code=201)


# --- probes --------------------------------------------------------------------------------------
async def health(request: Request) -> Response:
    node = _node(request)
    engine = node.engine
    error = node.load_error
    status = "ok" if engine.loaded else ("error" if error else "loading")
    body: dict[str, Any] = {
        "status": status,
        "engine": engine.name,
        "model": engine.model,
        "model_loaded": engine.loaded,
        "device": engine.device,
        "sample_rate": node.output_rate if engine.loaded else None,
        "gpu_memory": node._memory(),
        "active": node.scheduler.active,
        "queued": node.scheduler.waiting,
        "capacity": node.scheduler.capacity,
        "voices_cached": len(node.voices.cached_ids()),
    }
    if error:
        body["error"] = error
    return JSONResponse(body, status_code=200 if engine.loaded else 503)


async def metrics(request: Request) -> Response:
    return Response(_node(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


# --- wiring --------------------------------------------------------------------------------------
async def _node_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NodeError)
    return JSONResponse(exc.as_json(), status_code=exc.status_code, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {"error": {"code": "not_found" if exc.status_code == 404 else "http_error", "message": exc.detail}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class RequestCounter:
    """Counts every response by endpoint (ids folded) and status."""

    def __init__(self, app, metrics: NodeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        endpoint = "/voices/{id}" if path.startswith("/voices/") else path

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(endpoint=endpoint, status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    """The ASGI app; the model loads on the inference thread as the app starts."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = settings or load_settings()
    node = Node(settings, engine or build_engine(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        node.start()
        try:
            yield
        finally:
            node.stop()

    routes = [
        Route("/synthesize", synthesize, methods=["POST"]),
        Route("/synthesize/stream", synthesize_stream, methods=["POST"]),
        Route("/voices", voice_list, methods=["GET"]),
        Route("/voices", voice_create, methods=["POST"]),
        Route("/voices/{voice_id}", voice_detail, methods=["GET"]),
        Route("/voices/{voice_id}", voice_delete, methods=["DELETE"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={NodeError: _node_error, HTTPException: _http_error},
    )
    app.state.node = node
    app.add_middleware(RequestCounter, metrics=node.metrics)
    return app
