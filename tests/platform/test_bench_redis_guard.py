"""Benchmarks never empty the tests' Redis databases (a benchmark run beside the suite cannot break it)."""

import pytest

from bench import redis_dbs


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/11", "redis://localhost/10"])
def test_a_benchmark_refuses_to_flush_a_test_database(url, monkeypatch):
    flushed = []
    monkeypatch.setattr("redis.Redis.flushdb", lambda self: flushed.append(self))
    with pytest.raises(SystemExit, match="belongs to the test suite"):
        redis_dbs.flush(url)
    assert flushed == []


def test_the_tests_redis_databases_are_the_ones_the_guard_protects():
    from tests.gateway.conftest import REDIS_URL as gateway_url
    from tests.services.test_live_state import REDIS_TEST_URL

    assert redis_dbs.database_of(gateway_url) in redis_dbs.TEST_DATABASES
    assert redis_dbs.database_of(REDIS_TEST_URL) in redis_dbs.TEST_DATABASES
    assert 15 in redis_dbs.TEST_DATABASES  # docs/testing.md and .ci/run give the suite database 15
