"""Telephony fixtures: a fake GoTo Connect on 127.0.0.1 with the GOTO_* settings pointed at it."""

import os
import uuid

import pytest
import redis

from telephony.carriers.goto import api as goto_api
from tests.telephony.bridge_support import point_settings_at
from tests.telephony.fake_goto import FakeGoTo


@pytest.fixture
def fake_goto(settings):
    """A started FakeGoTo (background thread, usable from sync and async tests) that the settings name,
    with one account (key "acct-1", organization "org-1", extension "7001")."""
    fake = FakeGoTo().start()
    fake.add_account("acct-1", organization_id="org-1", extension="7001")
    point_settings_at(fake, settings)
    yield fake
    fake.stop()
    goto_api.LOCAL_LIMITER.reset()


REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"  # the tests' own (bench/redis_dbs.py)


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_prefix():
    """A key prefix of this test in the Redis at REDIS_URL, deleted afterwards; under CI Redis must answer."""
    if not _redis_answers():
        if os.environ.get("CI"):
            pytest.fail(f"Redis does not answer at {REDIS_URL}; CI always runs the Redis tests")
        pytest.skip(f"Redis does not answer at {REDIS_URL} (and CI is not set)")
    prefix = f"gototest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
