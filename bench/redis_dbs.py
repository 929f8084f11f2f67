"""Which Redis databases the benchmarks may empty: never the tests' own.

The test suite uses database 15 (`REDIS_URL` in CI and docs/testing.md), 11 (the gateway and telephony tests'
Redis scenarios) and 10 (the live-state tests); the benchmarks default to 12, 13 and 14. A benchmark that
empties a database calls `flush`, which refuses the tests' databases whatever URL it was given.
"""

from urllib.parse import urlsplit

TEST_DATABASES = frozenset({10, 11, 15})


def database_of(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def flush(url: str) -> None:
    """Empty the Redis database at `url`, unless it is one the tests use (then stop with a clear message)."""
    import redis

    if database_of(url) in TEST_DATABASES:
        raise SystemExit(
            f"{url}: Redis database {database_of(url)} belongs to the test suite; give the benchmark another one "
            f"(12, 13 and 14 are the benchmarks' own)."
        )
    redis.Redis.from_url(url).flushdb()
