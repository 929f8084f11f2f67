"""Gateway fixtures: a scripted local server, a dict-backed secret resolver, gateways, Redis."""

import os
import uuid

import pytest
import redis

from integrations.config import parse_service
from integrations.gateway.client import LOCAL_BREAKERS, LOCAL_LIMITER, TOKENS, Gateway
from tests.gateway.server import Server

REDIS_URL = "redis://127.0.0.1:6379/11"  # the tests' own database: benchmarks never flush it (bench/redis_dbs.py)


class DictResolver:
    """The vault's resolver contract (`.resolve(name, field)`), backed by a dict."""

    def __init__(self, secrets: dict | None = None):
        self.secrets = dict(secrets or {})
        self.calls: list[tuple[str, str | None]] = []

    def resolve(self, name: str, field: str | None = None) -> str:
        self.calls.append((name, field))
        if name not in self.secrets:
            raise LookupError(f"secret {name} does not exist")
        value = self.secrets[name]
        return value[field] if field else value


class Sleeps:
    """An injected sleep that records the backoff delays instead of waiting them out."""

    def __init__(self):
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_service(url: str, name: str = "backend", **data):
    """A ServiceConfig through the real parser, with millisecond backoffs unless told otherwise."""
    data.setdefault("retry", {"max_attempts": 3, "initial_backoff": "10ms", "max_backoff": "100ms"})
    data.setdefault("timeout", "2s")
    return parse_service(name, {"url": url, **data})


@pytest.fixture(scope="session")
def _server():
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture
def server(_server):
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture
def tenant_id():
    """A fresh tenant id per test, so process-wide breakers and buckets never leak between tests."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def resolver():
    return DictResolver({"API_TOKEN": "tok-3f9a7c1e", "CLIENT_SECRET": "cs-8b2d4e6f"})


@pytest.fixture(autouse=True)
def _local_state():
    yield
    LOCAL_BREAKERS.reset()
    LOCAL_LIMITER.reset()
    TOKENS.clear()


class FakeClock:
    """A clock that moves only when a test says so: breaker timeouts never depend on how busy the machine is."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def gateway(sleeps, clock):
    async with Gateway(redis_url="", audit=False, sleep=sleeps, rand=lambda: 1.0, clock=clock) as gw:
        yield gw


def redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def redis_prefix():
    """A test-only key prefix in the tests' Redis db 11, deleted afterwards; CI (CI set) must have Redis."""
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis does not answer at {REDIS_URL}; CI always runs these tests")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    prefix = f"gwtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
