"""Benchmark of webhook delivery: deliveries per second per worker process, and event-to-first-attempt delay.

    .venv/bin/python bench/webhooks.py [--events 3000] [--rate 50] [--seconds 10] [--workers 1]

What runs, the production way: PostgreSQL (`DATABASE_URL` or `--database-url`, default
postgres://postgres@127.0.0.1:5432/voiceapp_bench_webhooks, created and migrated if missing), Redis as
broker, breaker store and cache (`--redis-url`, default redis://127.0.0.1:6379/13, flushed at start),
`celery -A voiceapp worker -Q webhooks --pool prefork -c N` with DEBUG off, and a minimal keep-alive
receiver (asyncio, its own process) on a free port of 127.0.0.1 that answers 200.

1. Throughput: `--events` events are stored in the outbox with the worker stopped, their tasks queued;
   then the worker starts and drains them. Deliveries/s = events / (last attempt end - first attempt
   start), from the attempt rows, divided by the worker processes.
2. Latency: with the worker running, events are emitted one transaction each at `--rate` per second for
   `--seconds`; the delay is attempt 1's start minus the delivery row's creation (commit, queue, worker
   pick-up, signing), p50 and p99.

It asserts nothing about time.
"""

import argparse
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import receiver  # bench/receiver.py: the local HTTP server (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


# --- environment, Django, the worker --------------------------------------------------------------------


def environment(args) -> dict:
    key = base64.b64encode(os.urandom(32)).decode()
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": HOST,
        "INTEGRATION_CRYPTO_KEY": os.environ.get("INTEGRATION_CRYPTO_KEY") or f"bench:{key}",
        "INTEGRATION_ALLOW_PRIVATE_NETWORKS": "1",  # the receiver is on 127.0.0.1, over plain http
        "WEBHOOK_REQUIRE_HTTPS": "0",
        "LOG_LEVEL": "WARNING",
    }


def setup_django(env: dict, database_url: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from api import prepare_database  # the API benchmark's: create the database if it is missing

    prepare_database(database_url)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def start_worker(env: dict, processes: int) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "celery"), "-A", "voiceapp", "worker", "-Q", "webhooks", "--pool", "prefork",
        "-c", str(processes), "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
        "-n", f"bench-{os.getpid()}@%h",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# --- measurement ----------------------------------------------------------------------------------------


def make_endpoint(url: str):
    from integrations.webhooks import services
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name="Webhook bench", slug=f"wh-bench-{secrets.token_hex(4)}")
    return tenant, services.webhook_endpoint_create(tenant=tenant, url=url, event_types=["*"]).endpoint


def emit(tenant, n: int) -> None:
    from django.db import transaction

    from integrations.webhooks.outbox import webhook_emit

    with transaction.atomic():
        webhook_emit(tenant_id=tenant.pk, event_type="call.ended", data={"call_id": f"bench-{n}", "duration": 127})


def wait_for(endpoint, count: int, timeout: float) -> int:
    from integrations.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count()
        if done >= count:
            break
        time.sleep(0.2)
    return done


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def throughput_phase(args, env, tenant, endpoint) -> float:
    from datetime import timedelta

    from integrations.models import WebhookAttempt

    for n in range(args.events):  # queued with no worker running: the worker starts on a full queue
        emit(tenant, n)
    worker = start_worker(env, args.workers)
    try:
        done = wait_for(endpoint, args.events, timeout=args.events / 20 + 60)
    finally:
        stop(worker)
    attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint).values_list("started_at", "duration_ms")
    first = min(started for started, _ in attempts)
    last = max(started + timedelta(milliseconds=ms) for started, ms in attempts)
    seconds = (last - first).total_seconds()
    print(f"throughput: {done}/{args.events} delivered in {seconds:.2f}s ({attempts.count()} attempts)")
    return done / seconds / args.workers


def latency_phase(args, env, tenant, endpoint) -> tuple[float, float, int]:
    from django.db.models import F

    from integrations.models import WebhookAttempt

    worker = start_worker(env, args.workers)
    try:
        time.sleep(5)  # the worker is up and connected
        total = int(args.rate * args.seconds)
        started = time.monotonic()
        for n in range(total):
            time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
            emit(tenant, n)
        wait_for(endpoint, total, timeout=60)
    finally:
        stop(worker)
    firsts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint, number=1)
    delays = [
        d.total_seconds() * 1000
        for d in firsts.annotate(d=F("started_at") - F("delivery__created_at")).values_list("d", flat=True)
    ]
    return percentile(delays, 0.5), percentile(delays, 0.99), len(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events drained in the throughput phase")
    parser.add_argument("--rate", type=float, default=50, help="events per second in the latency phase")
    parser.add_argument("--seconds", type=float, default=10, help="length of the latency phase")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (celery -c)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voiceapp_bench_webhooks"),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="flushed at start")
    args = parser.parse_args()

    import redis_dbs  # bench/redis_dbs.py (the script's folder is on sys.path)

    redis_dbs.flush(args.redis_url)
    env = environment(args)
    setup_django(env, args.database_url)
    receiver_process, url = receiver.start()
    url += "/hooks"
    try:
        print(f"cores: {os.cpu_count()}, worker processes: {args.workers}, receiver: {url}")
        tenant, endpoint = make_endpoint(url)
        per_process = throughput_phase(args, env, tenant, endpoint)
        tenant, endpoint = make_endpoint(url)
        p50, p99, count = latency_phase(args, env, tenant, endpoint)
    finally:
        stop(receiver_process)
    print()
    print(f"deliveries/s per worker process: {per_process:.0f}")
    print(f"event to first attempt ({count} events at {args.rate:g}/s): p50 {p50:.0f} ms, p99 {p99:.0f} ms")


if __name__ == "__main__":
    main()
