"""Liveness (/health) and readiness (/ready: database, cache, channel layer) probes."""

import logging
import time
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"ready-probe:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("the cache did not return the value just written")
    cache.delete(key)


def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")

    async def round_trip():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "ready.probe"})
        return await layer.receive(channel)

    if async_to_sync(round_trip)().get("type") != "ready.probe":
        raise RuntimeError("the channel layer returned a different message")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
}


@never_cache
@require_GET
def health(request):
    """Liveness: the process answers. Dependencies are /ready's job."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request):
    """Readiness: every dependency answers; otherwise 503 naming the ones that failed."""
    results = {name: _run_check(name, check) for name, check in CHECKS.items()}
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": results}
    return JsonResponse(body, status=503 if failing else 200)


def _run_check(name: str, check: Callable[[], None]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # a probe reports any failure, it never raises
        logger.warning("readiness check %s failed: %s", name, exc.__class__.__name__)
        return {"ok": False, "error": f"{exc.__class__.__name__}: {_first_line(exc)}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _first_line(exc: Exception) -> str:
    # Connection errors may embed a DSN; keep only the first line and never credentials.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text.split("@")[-1][:200]
