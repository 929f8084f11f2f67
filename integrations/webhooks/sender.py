"""Sends webhook requests through the integration gateway on one long-lived event loop per process.

A Gateway keeps its HTTP connection pool and Redis client for the loop that made it, so each worker
process runs one loop in a daemon thread and reuses them for every delivery (`request_sync` would
build and tear them down per call). A fork gets its own loop: the check is by process id.
"""

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from integrations.config import ServiceConfig
from integrations.gateway.client import Gateway, GatewayResponse


@dataclass
class Sent:
    outcome: GatewayResponse | BaseException
    started_at: datetime
    seconds: float


class _LoopThread:
    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.gateway: Gateway | None = None
        threading.Thread(target=self.loop.run_forever, name="webhook-sender", daemon=True).start()

    async def _gateway(self) -> Gateway:
        if self.gateway is None:
            # Without audit rows: WebhookAttempt is the record of every webhook attempt.
            self.gateway = Gateway(audit=False)
        return self.gateway

    async def _send(self, service: ServiceConfig, deadline: float, kwargs: dict) -> Sent:
        gateway = await self._gateway()
        started_at, clock = datetime.now(UTC), time.perf_counter()
        try:
            async with asyncio.timeout(deadline):  # the whole request, however slowly the body trickles in
                outcome = await gateway.request(service, resolver=None, **kwargs)
        except Exception as exc:  # handed back, not raised: the batch's other requests go on
            outcome = exc
        return Sent(outcome, started_at, time.perf_counter() - clock)

    async def _send_many(self, requests: list, deadline: float) -> list[Sent]:
        return await asyncio.gather(*(self._send(service, deadline, kwargs) for service, kwargs in requests))

    def send_many(self, requests: list, deadline: float) -> list[Sent]:
        return asyncio.run_coroutine_threadsafe(self._send_many(requests, deadline), self.loop).result()


_runner: _LoopThread | None = None
_lock = threading.Lock()


def send_many(requests: list[tuple[ServiceConfig, dict]], *, deadline: float) -> list[Sent]:
    """Gateway.request(service, **kwargs) for each pair, concurrently, each bounded by `deadline` seconds.

    Each result is a Sent: the response, or the exception it raised (TimeoutError past the deadline).
    """
    global _runner
    if not requests:
        return []
    with _lock:
        if _runner is None or _runner.pid != os.getpid():
            _runner = _LoopThread()
        runner = _runner
    return runner.send_many(requests, deadline)
