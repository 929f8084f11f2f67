"""Nothing lost: a real Celery worker on Redis, a receiver that fails, times out and resets at random, and
the worker killed with SIGKILL and restarted mid-run.

Afterwards every event's webhook-id has reached the receiver at least once, and once the receiver
de-duplicates by webhook-id exactly N effects exist. Usage too: aggregation sent several times and
redelivered meters each call once, draws credit once and aggregates the same figures.

Runs in CI (`.ci/run` gives the tests Redis and PostgreSQL); bounded to about a minute. It is skipped,
with the reason, only without a broker or with SQLite's in-memory test database, which no second
process can open.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from billing.models import CreditBucket, UsageAggregate, UsageRecord
from calls.services import call_transition
from integrations.models import WebhookDelivery
from integrations.webhooks import delivery, outbox, signing
from tests import factories
from tests.webhooks.receiver import ReceiverServer
from voiceapp.celery import app as celery_app

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

N = 120
DEADLINE_SECONDS = 50
ROOT = Path(__file__).resolve().parents[2]
WORKER_ENV = {
    "CELERY_TASK_ALWAYS_EAGER": "0",
    "DEBUG": "1",
    "INTEGRATION_ALLOW_PRIVATE_NETWORKS": "1",  # the receiver is on 127.0.0.1
    "LOG_LEVEL": "WARNING",
    # The seed's policy in seconds instead of minutes, and enough retries that nothing runs out.
    "WORKER_RETRY_MAX_RETRIES": "40",
    "WORKER_RETRY_BACKOFF_BASE": "1",
    "WORKER_RETRY_BACKOFF_MAX": "2",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "WEBHOOK_DISPATCH_LEASE_SECONDS": "3",
    # The breaker has its own tests; at a 40% failure rate it would mostly make this run wait.
    "WEBHOOK_BREAKER_THRESHOLD": "1000",
}


def _require_services():
    if not settings.REDIS_URL:
        pytest.skip("chaos test needs a broker: REDIS_URL is not set (CI sets it: see .ci/run)")
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"chaos test needs a broker: Redis at {settings.REDIS_URL} does not answer ({exc})")
    if connection.vendor != "postgresql":
        pytest.skip("chaos test needs a database a worker process can open: run it with DATABASE_URL=postgres://…")


def _database_url() -> str:
    db = connection.settings_dict  # after pytest-django's setup: the test database
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A voiceapp worker -Q webhooks,default --pool prefork -c 2` in its own process group."""

    def __init__(self, log: Path):
        self.log, self.process = log, None

    def start(self) -> None:
        env = {**os.environ, **WORKER_ENV, "DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL}
        env["DJANGO_SETTINGS_MODULE"] = "voiceapp.settings"
        command = [
            str(Path(sys.executable).parent / "celery"), "-A", "voiceapp", "worker", "-Q", "webhooks,default",
            "--pool", "prefork", "-c", "2", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
            "-n", f"chaos-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL to the whole group: parent and pool processes die mid-task, acks never sent."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class Chaos:
    """Receiver behaviour: answers at random; an event's effect happens once per webhook-id."""

    def __init__(self, secret: str):
        self.webhook, self.random, self.lock = Webhook(secret), random.Random(7), threading.Lock()
        self.arrived: list[str] = []
        self.effects: dict[str, int] = {}
        self.bad_signatures = 0

    def __call__(self, request):
        try:
            event = self.webhook.verify(request.body, request.headers)
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            return 400
        message_id = request.headers["webhook-id"]
        with self.lock:
            self.arrived.append(message_id)
            roll = self.random.random()
        if roll < 0.15:
            return 500
        if roll < 0.3:
            return "reset"
        if roll < 0.4:
            self._effect(message_id, event)  # processed, but too slowly: the platform will send it again
            return ("sleep", 1.5, 200)
        self._effect(message_id, event)
        return 200

    def _effect(self, message_id: str, event: dict) -> None:
        with self.lock:  # de-duplicated by webhook-id, as docs/webhooks.md tells receivers to do
            self.effects.setdefault(message_id, event["data"]["n"])


def _ended_call_last_hour(tenant, agent, n: int):
    answered = timezone.now() - timedelta(hours=1, seconds=n)
    call = factories.CallFactory(tenant=tenant, agent=agent, started_at=answered)
    call_transition(call=call, to_status="ringing", at=answered)
    call_transition(call=call, to_status="connected", at=answered)
    return call_transition(call=call, to_status="ended", at=answered + timedelta(seconds=30 + n))


def _emit(tenant, n: int) -> str:
    with transaction.atomic():  # on commit the delivery is queued to Redis
        [row] = outbox.webhook_emit(tenant_id=tenant.pk, event_type="call.ended", data={"n": n})
    return row.message_id


def _sweep_until(condition, deadline: float) -> None:
    """What beat does every minute, every half second: queue deliveries that are due or whose task was lost."""
    while not condition() and time.monotonic() < deadline:
        delivery.webhooks_dispatch_due(inline=False)
        time.sleep(0.5)


def test_nothing_is_lost_when_the_worker_is_killed_and_the_receiver_misbehaves(tmp_path, monkeypatch):
    _require_services()
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)  # queue to Redis like the platform does
    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    tenant = factories.TenantFactory(slug="chaos")
    agent = factories.AgentFactory(tenant=tenant)
    credit = factories.CreditBucketFactory(
        tenant=tenant, seconds_total=10_000, seconds_remaining=10_000, valid_from=timezone.now() - timedelta(days=1)
    )
    calls = [_ended_call_last_hour(tenant, agent, n) for n in range(5)]
    UsageRecord.objects.dangerously_unscoped().filter(
        call__in=calls
    ).delete()  # metering at the end was lost: the hourly job must do it
    CreditBucket.objects.dangerously_unscoped().filter(pk=credit.pk).update(seconds_remaining=10_000)
    worker = Worker(tmp_path / "worker.log")
    with ReceiverServer() as server:
        secret = signing.generate_secret()
        factories.WebhookEndpointFactory(tenant=tenant, url=server.url, secret=secret, event_types=["call.ended"])
        chaos = server.receiver.behaviour = Chaos(secret)
        ids: list[str] = []
        try:
            worker.start()
            ids += [_emit(tenant, n) for n in range(N // 2)]
            for _ in range(3):  # the hourly job, re-sent, and each message possibly redelivered
                celery_app.send_task("billing.tasks.aggregate_usage", queue="default")
            _sweep_until(lambda: len(chaos.effects) >= N // 4, deadline)
            pending_at_kill = N - len(chaos.effects)
            worker.kill()
            ids += [_emit(tenant, n) for n in range(N // 2, N)]  # while no worker runs: stored, queued
            celery_app.send_task("billing.tasks.aggregate_usage", queue="default")
            worker.start()
            _sweep_until(lambda: set(chaos.effects) >= set(ids), deadline)
            _sweep_until(
                lambda: not WebhookDelivery.objects.dangerously_unscoped().exclude(status="succeeded").exists(),
                deadline,
            )
        finally:
            worker.kill()
    log = (tmp_path / "worker.log").read_text()[-3000:]
    unfinished = list(
        WebhookDelivery.objects.dangerously_unscoped()
        .exclude(status="succeeded")
        .values("status", "attempts", "last_error")
    )
    log = f"{len(chaos.effects)} effects in {time.monotonic() - started:.1f}s; unfinished: {unfinished}\n{log}"

    assert pending_at_kill > 0, "the worker was killed after everything had arrived"
    assert set(chaos.arrived) >= set(ids), f"{len(set(ids) - set(chaos.arrived))} never arrived\n{log}"
    assert sorted(chaos.effects.values()) == list(range(N)), log  # exactly N effects after de-duplication
    assert chaos.bad_signatures == 0
    assert set(WebhookDelivery.objects.dangerously_unscoped().values_list("status", flat=True)) == {"succeeded"}
    print(f"{N} events, {len(chaos.arrived)} arrivals, {time.monotonic() - started:.1f}s")

    records = UsageRecord.objects.dangerously_unscoped().filter(call__in=calls)
    assert records.count() == 5
    assert CreditBucket.objects.dangerously_unscoped().get(pk=credit.pk).seconds_remaining == 10_000 - sum(
        30 + n for n in range(5)
    )
    [aggregate] = UsageAggregate.objects.for_tenant(tenant)
    assert (aggregate.calls, aggregate.seconds) == (5, sum(30 + n for n in range(5)))
