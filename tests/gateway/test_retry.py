"""Retry rules of the seed, against a real local server: what is retried, how often, how long apart."""

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from integrations.config import RetryPolicy
from integrations.gateway import GatewayConfigError, GatewayConnectionError, GatewayHTTPError, GatewayTimeout
from integrations.gateway.client import Gateway, join_url
from integrations.gateway.retry import backoff, retry_after_seconds, safe_to_repeat
from tests.gateway.conftest import make_service
from tests.gateway.server import Reply


async def call(gateway, service, tenant_id, resolver, **kwargs):
    return await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r", **kwargs)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_each_retryable_code_is_retried(gateway, server, tenant_id, resolver, status):
    server.script("/r", Reply(status), Reply(status), Reply(200, json={"ok": True}))
    response = await call(gateway, make_service(server.url), tenant_id, resolver, method="GET")
    assert (response.status_code, response.json(), response.attempts) == (200, {"ok": True}, 3)
    assert len(server.hits("/r")) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_errors_are_never_retried(gateway, server, tenant_id, resolver, sleeps, status):
    server.script("/r", Reply(status, json={"error": "nope"}), Reply(200))
    with pytest.raises(GatewayHTTPError) as caught:
        await call(gateway, make_service(server.url), tenant_id, resolver, method="GET")
    assert (caught.value.status, caught.value.body) == (status, '{"error": "nope"}')
    assert len(server.hits("/r")) == 1
    assert sleeps.delays == []


async def test_a_500_is_not_in_the_seeds_retryable_codes(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(500), Reply(200))
    with pytest.raises(GatewayHTTPError):
        await call(gateway, make_service(server.url), tenant_id, resolver, method="GET")
    assert len(server.hits("/r")) == 1


async def test_attempts_stop_at_max_attempts_with_the_last_answer(gateway, server, tenant_id, resolver, sleeps):
    server.script("/r", Reply(503, body=b"down"))
    with pytest.raises(GatewayHTTPError) as caught:
        await call(gateway, make_service(server.url), tenant_id, resolver, method="GET")
    assert (caught.value.status, caught.value.body) == (503, "down")
    assert "3 attempt(s)" in caught.value.message
    assert len(server.hits("/r")) == 3
    assert len(sleeps.delays) == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connection_refused_is_retried_for_any_method(gateway, tenant_id, resolver, sleeps, method):
    # Nothing was sent, so even a POST without an idempotency key is safe to try again.
    service = make_service(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(GatewayConnectionError, match="ConnectError"):
        await call(gateway, service, tenant_id, resolver, method=method)
    assert sleeps.delays == [0.01, 0.02]


async def test_a_read_timeout_is_retried_when_safe(gateway, server, tenant_id, resolver, sleeps):
    server.script("/r", Reply(200, delay=0.3), Reply(200, json={"late": False}))
    service = make_service(server.url, timeout="100ms")
    response = await call(gateway, service, tenant_id, resolver, method="GET")
    assert (response.json(), response.attempts) == ({"late": False}, 2)


async def test_a_read_timeout_of_a_post_is_not_retried(gateway, server, tenant_id, resolver, sleeps):
    server.script("/r", Reply(200, delay=0.3), Reply(200))
    service = make_service(server.url, timeout="100ms")
    with pytest.raises(GatewayTimeout, match=r"within 0.1s \(1 attempt"):
        await call(gateway, service, tenant_id, resolver, method="POST", json={"a": 1})
    assert len(server.hits("/r")) == 1


async def test_the_per_service_timeout_applies_to_every_attempt(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200, delay=0.3))
    with pytest.raises(GatewayTimeout):
        await call(gateway, make_service(server.url, timeout="50ms"), tenant_id, resolver, method="GET")
    assert len(server.hits("/r")) == 3


async def test_a_connection_reset_mid_response_is_retried_when_safe(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200, body=b"x" * 50, cut=True), Reply(200, json={"whole": True}))
    response = await call(gateway, make_service(server.url), tenant_id, resolver, method="PUT")
    assert (response.json(), response.attempts) == ({"whole": True}, 2)


async def test_a_connection_reset_of_a_post_is_not_retried(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200, body=b"x" * 50, cut=True), Reply(200))
    with pytest.raises(GatewayConnectionError):
        await call(gateway, make_service(server.url), tenant_id, resolver, method="POST")
    assert len(server.hits("/r")) == 1


async def test_a_post_is_not_retried_after_a_503(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(503), Reply(200))
    with pytest.raises(GatewayHTTPError) as caught:
        await call(gateway, make_service(server.url), tenant_id, resolver, json={"n": 1})
    assert caught.value.status == 503
    assert len(server.hits("/r")) == 1


async def test_a_post_with_an_idempotency_key_is_retried_and_sends_the_key(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(503), Reply(201, json={"id": 7}))
    response = await call(gateway, make_service(server.url), tenant_id, resolver, json={"n": 1}, idempotency_key="k-1")
    assert (response.status_code, response.attempts) == (201, 2)
    assert [r.headers["idempotency-key"] for r in server.hits("/r")] == ["k-1", "k-1"]
    assert [r.json() for r in server.hits("/r")] == [{"n": 1}, {"n": 1}]


async def test_retry_after_seconds_is_honoured(gateway, server, tenant_id, resolver, sleeps):
    server.script("/r", Reply(429, headers={"Retry-After": "2"}), Reply(200))
    service = make_service(server.url, retry={"initial_backoff": "10ms", "max_backoff": "5s"})
    await call(gateway, service, tenant_id, resolver, method="GET")
    assert sleeps.delays == [2.0]


async def test_retry_after_is_capped_at_max_backoff(gateway, server, tenant_id, resolver, sleeps):
    server.script("/r", Reply(503, headers={"Retry-After": "120"}), Reply(200))
    service = make_service(server.url, retry={"initial_backoff": "10ms", "max_backoff": "3s"})
    await call(gateway, service, tenant_id, resolver, method="GET")
    assert sleeps.delays == [3.0]


async def test_retry_after_as_an_http_date(gateway, server, tenant_id, resolver, sleeps):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    server.script("/r", Reply(503, headers={"Retry-After": when}), Reply(200))
    service = make_service(server.url, retry={"initial_backoff": "10ms", "max_backoff": "10s"})
    await call(gateway, service, tenant_id, resolver, method="GET")
    assert 2.5 < sleeps.delays[0] <= 4.0


async def test_backoff_grows_by_the_multiplier_up_to_max_backoff(server, tenant_id, resolver, sleeps):
    server.script("/r", Reply(503))
    retry = {"max_attempts": 7, "initial_backoff": "100ms", "max_backoff": "1s", "backoff_multiplier": 2.0}
    async with Gateway(redis_url="", audit=False, sleep=sleeps, rand=lambda: 1.0) as gateway:
        with pytest.raises(GatewayHTTPError):
            await call(gateway, make_service(server.url, retry=retry), tenant_id, resolver, method="GET")
    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@pytest.mark.parametrize(
    ("jitter", "rand", "expected"),
    [("equal", 0.0, [0.05, 0.1, 0.2]), ("equal", 0.5, [0.075, 0.15, 0.3]), ("full", 0.25, [0.025, 0.05, 0.1])],
)
async def test_jitter_is_deterministic_with_an_injected_random(server, resolver, sleeps, jitter, rand, expected):
    server.script("/r", Reply(502))
    retry = {"max_attempts": 4, "initial_backoff": "100ms", "max_backoff": "5s"}
    async with Gateway(redis_url="", audit=False, sleep=sleeps, rand=lambda: rand, jitter=jitter) as gateway:
        with pytest.raises(GatewayHTTPError):
            await call(gateway, make_service(server.url, retry=retry), f"t-{jitter}-{rand}", resolver, method="GET")
    assert sleeps.delays == pytest.approx(expected)


def test_backoff_never_exceeds_max_backoff():
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=0.5, multiplier=3.0)
    assert [backoff(policy, n, lambda: 1.0) for n in range(1, 5)] == pytest.approx([0.1, 0.3, 0.5, 0.5])


def test_retry_after_forms():
    def response(value):
        return httpx.Response(429, headers={"Retry-After": value})

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(response("7")) == 7.0
    assert retry_after_seconds(response("Thu, 01 Jan 2026 00:00:30 GMT"), now=lambda: now) == 30.0
    assert retry_after_seconds(response("Wed, 31 Dec 2025 00:00:00 GMT"), now=lambda: now) == 0.0
    assert retry_after_seconds(response("soon")) is None
    assert retry_after_seconds(httpx.Response(429)) is None


@pytest.mark.parametrize(
    ("method", "key", "safe"),
    [
        ("GET", None, True),
        ("PUT", None, True),
        ("DELETE", None, True),
        ("POST", None, False),
        ("PATCH", "", False),
        ("POST", "k", True),
        ("PATCH", "k", True),
    ],
)
def test_safe_to_repeat(method, key, safe):
    assert safe_to_repeat(method, key) is safe


@pytest.mark.parametrize("path", ["http://evil.example/x", "../admin", "a/%2e%2e/%2E%2E/admin", "a/../../b?x=1"])
async def test_a_path_cannot_leave_the_service_url(gateway, server, tenant_id, resolver, path):
    with pytest.raises(GatewayConfigError, match="must stay below the service URL"):
        await gateway.request(make_service(server.url + "/api"), tenant_id=tenant_id, resolver=resolver, path=path)
    assert server.requests == []


def test_join_url():
    assert join_url("https://h/api/", "/v1/items?q=1") == "https://h/api/v1/items?q=1"
    assert join_url("https://h/api", "") == "https://h/api"
