"""Rate limits: token buckets per service and per call session, queueing, and sharing across processes."""

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from integrations.gateway import GatewayRateLimited
from integrations.gateway.ratelimit import Bucket, LocalRateLimiter
from tests.gateway.conftest import REDIS_URL, make_service
from tests.gateway.server import Reply

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_bucket_allows_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    bucket = Bucket("k", rate=2.0, burst=3, queue_depth=0)
    assert [(await limiter.reserve([bucket])).granted for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token at 2/s
    assert [(await limiter.reserve([bucket])).granted for _ in range(2)] == [True, False]


async def test_requests_queue_up_to_queue_depth_each_waiting_for_its_token():
    limiter = LocalRateLimiter(Clock())
    bucket = Bucket("k", rate=10.0, burst=1, queue_depth=2)
    reservations = [await limiter.reserve([bucket]) for _ in range(4)]
    assert [r.granted for r in reservations] == [True, True, True, False]
    assert [r.wait for r in reservations[:3]] == pytest.approx([0.0, 0.1, 0.2])
    assert reservations[3].refused == bucket


async def test_a_refused_request_takes_nothing_from_the_other_bucket():
    limiter = LocalRateLimiter(Clock())
    service = Bucket("svc", rate=1.0, burst=5, queue_depth=0)
    session = Bucket("call", rate=1.0, burst=1, queue_depth=0)
    assert (await limiter.reserve([service, session])).granted
    assert (await limiter.reserve([service, session])).refused == session
    assert [(await limiter.reserve([service])).granted for _ in range(5)] == [True] * 4 + [False]


async def test_a_cancelled_waiter_gives_its_token_back():
    limiter = LocalRateLimiter(Clock())
    bucket = Bucket("k", rate=1.0, burst=1, queue_depth=1)
    await limiter.reserve([bucket])
    await limiter.reserve([bucket])  # waits 1 s for its token
    assert not (await limiter.reserve([bucket])).granted
    await limiter.cancel([bucket])
    assert (await limiter.reserve([bucket])).granted


def rate_limited(service: str, tenant: str) -> float:
    return REGISTRY.get_sample_value("vg_integration_rate_limited_total", {"tenant": tenant, "service": service}) or 0


async def test_a_full_queue_fails_with_rate_limited(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    service = make_service(server.url, rate_limit={"requests_per_second": 10, "burst": 1, "queue_depth": 1})
    results = await asyncio.gather(
        *(gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r") for _ in range(3)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], GatewayRateLimited)
    assert (errors[0].status_code, errors[0].code) == (429, "rate_limited")
    assert len(server.hits("/r")) == 2
    assert rate_limited("backend", tenant_id) == 1


async def test_queued_requests_wait_for_their_tokens(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    service = make_service(server.url, rate_limit={"requests_per_second": 20, "burst": 1, "queue_depth": 5})
    started = time.monotonic()
    await asyncio.gather(
        *(gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r") for _ in range(3))
    )
    assert time.monotonic() - started >= 0.095  # the third waited two tokens at 20/s
    assert len(server.hits("/r")) == 3


async def test_per_call_limits_are_independent_per_call_session(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    service = make_service(server.url, rate_limit={"per_call_rps": 1, "queue_depth": 0})

    async def send(session):
        return await gateway.request(
            service, tenant_id=tenant_id, resolver=resolver, path="/r", call_session_id=session
        )

    await send("call-a")
    with pytest.raises(GatewayRateLimited, match="call session"):
        await send("call-a")
    assert (await send("call-b")).status_code == 200
    assert len(server.hits("/r")) == 2


def run_workers(prefix: str, count: int, rate: float, burst: int, depth: int) -> list[dict]:
    start_at = time.time() + 1.0
    args = [REDIS_URL, f"{prefix}:t:svc:rl", str(start_at), str(count), str(rate), str(burst), str(depth)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.ratelimit_worker", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=20)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    return [json.loads(output) for output in outputs]


def test_two_processes_share_one_bucket_in_redis(redis_prefix):
    results = run_workers(redis_prefix, count=5, rate=0.01, burst=6, depth=0)
    assert sum(r["granted"] for r in results) == 6  # not 10: the burst is shared


def test_two_processes_queue_in_one_line_in_redis(redis_prefix):
    results = run_workers(redis_prefix, count=4, rate=20, burst=2, depth=10)
    assert [r["granted"] for r in results] == [4, 4]
    # Eight requests on one bucket: the last waits (8 - 2) / 20 = 0.3 s. Separate buckets would take 0.1 s.
    assert max(r["finished"] for r in results) >= 0.27
