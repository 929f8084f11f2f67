"""Benchmark of the integration gateway's overhead against a bare httpx.AsyncClient.

    .venv/bin/python bench/gateway.py [--requests 2000] [--concurrency 50] [--redis-url URL] [--database-url URL]

Starts a minimal keep-alive HTTP server (asyncio, its own process) on a free port of 127.0.0.1 that
answers every POST with a small JSON body, then measures, for the same request:

- latency, one request at a time: p50 and p99 in microseconds for a bare httpx.AsyncClient and for
  Gateway.request, and the gateway's added p50 (absolute and as a ratio);
- throughput: requests/s with `--concurrency` requests in flight.

Gateway scenarios: in-process state and Redis state (`--redis-url`, default redis://127.0.0.1:6379/12,
keys under a throwaway prefix, deleted at the end), each with the audit row off and on. The service is
realistic: `Authorization: Bearer ${TOKEN}` resolved per call, a circuit breaker, a service and a
per-call rate limit (set high enough never to throttle), logging policy defaults (no payloads).

The audit rows go to PostgreSQL (`DATABASE_URL` or `--database-url`, default
postgres://postgres@127.0.0.1:5432/voiceapp_bench_gateway, created and migrated if missing) or, with
`--database-url sqlite`, to a temporary SQLite file. It asserts nothing about time.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import receiver  # bench/receiver.py: the local HTTP server (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BODY = json.dumps({"ok": True, "ticket": "T-1001"}).encode()


# --- Django, the database, Redis --------------------------------------------------------------------------


def setup_django(database_url: str, *, prefix: str = "gw-bench-") -> None:
    """Django on `database_url` ("sqlite": a new file), migrated, without Redis (bench/knowledge.py too)."""
    if database_url == "sqlite":
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix=prefix)}/bench.sqlite3"
    elif database_url.startswith("postgres"):
        sys.path.insert(0, str(ROOT / "bench"))
        from api import prepare_database  # the API benchmark's: create the database if it is missing

        prepare_database(database_url)
    os.environ.update(DJANGO_SETTINGS_MODULE="voiceapp.settings", DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"database: {database_url.split('@')[-1]}")


def make_tenant():
    from tenants.models import Tenant

    return Tenant.objects.create(name="Gateway bench", slug=f"gw-bench-{uuid.uuid4().hex[:8]}")


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def delete_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


# --- measurement ------------------------------------------------------------------------------------------


class Resolver:
    blocking = True  # like the vault: resolved in a worker thread (--inline-secrets: on the loop)

    def resolve(self, name, field=None):
        return "bench-token-0123456789"


def service_for(url: str):
    from integrations.config import parse_service

    return parse_service(
        "bench",
        {
            "url": url,
            "headers": {"Authorization": "Bearer ${TOKEN}"},
            "timeout": "5s",
            "rate_limit": {"requests_per_second": 100_000, "burst": 100_000, "per_call_rps": 100_000},
            "circuit_breaker": {"threshold": 5, "timeout": "30s"},
        },
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latencies(send, count: int) -> list[float]:
    for _ in range(min(200, count)):  # warm-up: connections, scripts, caches
        await send()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await send()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def throughput(send, count: int, concurrency: int) -> float:
    remaining = count

    async def worker():
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def bare_sender(url: str):
    import httpx

    client = httpx.AsyncClient()
    headers = {"Authorization": "Bearer bench-token-0123456789"}

    async def send():
        response = await client.post(url, json={"caller": "+15550100"}, headers=headers, timeout=5.0)
        response.json()

    return client, send


def gateway_sender(gateway, service, tenant_id):
    resolver = Resolver()

    async def send():
        response = await gateway.request(
            service, tenant_id=tenant_id, resolver=resolver, json={"caller": "+15550100"}, call_session_id="bench-call"
        )
        response.json()

    return send


# --- scenarios --------------------------------------------------------------------------------------------


async def run_scenarios(args, url: str, tenant_id, redis_url: str | None, prefix: str) -> list[tuple]:
    from integrations.gateway.client import Gateway

    client, bare = await bare_sender(url)
    rows = [
        (
            "bare httpx.AsyncClient",
            await latencies(bare, args.requests),
            await throughput(bare, args.requests * 2, args.concurrency),
        )
    ]
    await client.aclose()
    service = service_for(url)
    states = [("in-process", "")] + ([("Redis", redis_url)] if redis_url else [])
    for state, state_url in states:
        for audit in (False, True):
            async with Gateway(redis_url=state_url, key_prefix=prefix, audit=audit) as gateway:
                send = gateway_sender(gateway, service, tenant_id)
                name = f"gateway, {state} state, audit {'on' if audit else 'off'}"
                count = args.requests if not audit else max(200, args.requests // 2)
                rows.append((name, await latencies(send, count), await throughput(send, count * 2, args.concurrency)))
    return rows


def report(rows: list[tuple]) -> None:
    base_p50 = percentile(rows[0][1], 0.5)
    print(f"\n{'scenario':<42} {'p50 µs':>8} {'p99 µs':>8} {'added p50 µs':>13} {'p50 ratio':>9} {'requests/s':>11}")
    for name, samples, rate in rows:
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        added = "" if name.startswith("bare") else f"{p50 - base_p50:13.0f}"
        print(f"{name:<42} {p50:8.0f} {p99:8.0f} {added:>13} {p50 / base_p50:9.2f} {rate:11.0f}")
    print(
        "\nadded p50: the gateway's p50 minus the bare client's, one request at a time. "
        "requests/s: with the given concurrency, one event loop."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per latency scenario")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--inline-secrets", action="store_true", help="a resolver with blocking=False: no thread hop for ${TOKEN}"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="'' to skip the Redis scenarios")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voiceapp_bench_gateway"),
        help="PostgreSQL URL, or 'sqlite' for a temporary SQLite file",
    )
    args = parser.parse_args()
    Resolver.blocking = not args.inline_secrets
    setup_django(args.database_url)
    redis_url = args.redis_url if args.redis_url and redis_reachable(args.redis_url) else None
    if args.redis_url and not redis_url:
        print(f"Redis not reachable at {args.redis_url}: Redis scenarios skipped")
    prefix = f"gwbench-{uuid.uuid4().hex[:8]}"
    backend, url = receiver.start(BODY)
    try:
        tenant = make_tenant()
        print(f"backend: {url} (asyncio, separate process); cores: {os.cpu_count()}; python {sys.version.split()[0]}")
        print(
            f"secrets: resolved {'on the event loop' if args.inline_secrets else 'in a worker thread (as for the vault)'}"
        )
        report(asyncio.run(run_scenarios(args, url, tenant.id, redis_url, prefix)))
    finally:
        os.killpg(backend.pid, signal.SIGTERM)
        if redis_url:
            delete_keys(redis_url, prefix)


if __name__ == "__main__":
    main()
