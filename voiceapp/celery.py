"""The Celery app: queues default, webhooks and reports; beat reads its schedule from the database."""

import atexit
import os
import socket
import threading

from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")

app = Celery("voiceapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("webhooks"), Queue("reports"))
app.autodiscover_tasks()


@signals.task_prerun.connect
def reset_log_context(sender=None, **kwargs) -> None:
    """Each task starts with empty tenant and call ids in its log lines (tasks bind their own)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # in-process: the caller's request context is the right one
    from core.logging import call_id_var, request_id_var, tenant_id_var

    for var in (request_id_var, tenant_id_var, call_id_var):
        var.set(None)


@signals.task_postrun.connect
def close_old_database_connections(sender=None, **kwargs) -> None:
    """After each task, close connections that broke or outlived CONN_MAX_AGE (CELERY_DB_REUSE_MAX keeps the rest)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # in-process: the caller owns the connection (and its transaction)
    from django.db import close_old_connections

    close_old_connections()


BEAT_LOCK_KEY = "voiceapp:celery-beat:lock"
BEAT_LOCK_SECONDS = 60
# Extend the lock only while this beat still holds it (a paused beat whose lock expired must not take it back).
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"


@signals.beat_init.connect
def hold_single_beat_lock(sender=None, **kwargs) -> None:
    """Exactly one beat: a second one exits at start, instead of running every schedule twice."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    if not client.set(BEAT_LOCK_KEY, holder, nx=True, ex=BEAT_LOCK_SECONDS):
        current = (client.get(BEAT_LOCK_KEY) or b"?").decode()
        raise SystemExit(f"Another celery beat is running ({current} holds {BEAT_LOCK_KEY}): run exactly one beat.")

    def extend() -> None:
        while not stopped.wait(BEAT_LOCK_SECONDS / 3):
            client.eval(_EXTEND, 1, BEAT_LOCK_KEY, holder, BEAT_LOCK_SECONDS)

    stopped = threading.Event()
    threading.Thread(target=extend, name="beat-lock", daemon=True).start()
    atexit.register(lambda: (stopped.set(), client.eval(_EXTEND, 1, BEAT_LOCK_KEY, holder, 1)))
