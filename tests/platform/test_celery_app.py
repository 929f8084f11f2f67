"""The Celery app's guards: exactly one beat, and database connections kept across tasks."""

import pytest
import redis
from django.conf import settings

from voiceapp import celery as celery_module


@pytest.mark.skipif(not settings.REDIS_URL, reason="the beat lock lives in Redis: REDIS_URL is not set")
def test_a_second_beat_refuses_to_start():
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(celery_module.BEAT_LOCK_KEY)
    try:
        celery_module.hold_single_beat_lock()
        assert client.ttl(celery_module.BEAT_LOCK_KEY) > 0
        with pytest.raises(SystemExit, match="Another celery beat is running"):
            celery_module.hold_single_beat_lock()
    finally:
        client.delete(celery_module.BEAT_LOCK_KEY)


def test_workers_reuse_database_connections():
    # Celery's Django fix-up closes connections around each task unless this is set (one connect per delivery).
    assert celery_module.app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX >= 100
