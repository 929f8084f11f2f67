"""The circuit breaker: every transition, in process and in Redis, and through the gateway.

Time is a FakeClock in every test (Redis scripts take the clock's reading too): a busy machine that takes
longer than a breaker timeout between two requests cannot turn an open breaker half-open behind a test's back.
"""

import asyncio

import pytest
import redis.asyncio

from integrations.config import BreakerPolicy
from integrations.gateway import GatewayHTTPError, GatewayUnavailable
from integrations.gateway.breaker import (
    CLOSED,
    FAILURE,
    HALF_OPEN,
    NEUTRAL,
    OPEN,
    SUCCESS,
    LocalBreakers,
    RedisBreakers,
)
from integrations.gateway.client import Gateway
from tests.gateway.conftest import REDIS_URL, make_service
from tests.gateway.server import Reply

POLICY = BreakerPolicy(threshold=3, timeout=0.05, half_open_requests=2, success_threshold=2)
LEASE = 10.0


@pytest.fixture(params=["local", "redis"])
async def store(request, clock):
    if request.param == "local":
        yield LocalBreakers(clock), "b"
        return
    prefix = request.getfixturevalue("redis_prefix")
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    yield RedisBreakers(client, clock=clock), f"{prefix}:t:svc:cb"
    await client.aclose()


async def fail(breakers, key, times=1, policy=POLICY):
    for _ in range(times):
        permit = await breakers.acquire(key, policy, LEASE)
        await breakers.record(permit, FAILURE, policy)


async def open_then_wait(breakers, key):
    await fail(breakers, key, POLICY.threshold)
    breakers.clock.advance(POLICY.timeout + 0.01)


async def test_closed_opens_after_threshold_consecutive_failures(store):
    breakers, key = store
    await fail(breakers, key, 2)
    assert (await breakers.acquire(key, POLICY, LEASE)).allowed
    await fail(breakers, key)
    permit = await breakers.acquire(key, POLICY, LEASE)
    assert (permit.allowed, permit.state) == (False, OPEN)
    assert await breakers.state(key, POLICY) == OPEN


async def test_a_success_resets_the_consecutive_count(store):
    breakers, key = store
    await fail(breakers, key, 2)
    permit = await breakers.acquire(key, POLICY, LEASE)
    assert await breakers.record(permit, SUCCESS, POLICY) == CLOSED
    await fail(breakers, key, 2)
    assert await breakers.state(key, POLICY) == CLOSED


async def test_neutral_outcomes_do_not_count(store):
    breakers, key = store
    for _ in range(5):
        permit = await breakers.acquire(key, POLICY, LEASE)
        await breakers.record(permit, NEUTRAL, POLICY)
    assert await breakers.state(key, POLICY) == CLOSED


async def test_open_turns_half_open_after_the_timeout(store):
    breakers, key = store
    await open_then_wait(breakers, key)
    assert await breakers.state(key, POLICY) == HALF_OPEN
    permit = await breakers.acquire(key, POLICY, LEASE)
    assert (permit.allowed, permit.state, permit.trial) == (True, HALF_OPEN, True)


async def test_half_open_admits_at_most_half_open_requests_trials(store):
    breakers, key = store
    await open_then_wait(breakers, key)
    permits = [await breakers.acquire(key, POLICY, LEASE) for _ in range(3)]
    assert [p.allowed for p in permits] == [True, True, False]
    await breakers.record(permits[0], NEUTRAL, POLICY)  # a slot comes free when a trial ends
    assert (await breakers.acquire(key, POLICY, LEASE)).allowed


async def test_half_open_closes_after_success_threshold_successes(store):
    breakers, key = store
    await open_then_wait(breakers, key)
    first, second = [await breakers.acquire(key, POLICY, LEASE) for _ in range(2)]
    assert await breakers.record(first, SUCCESS, POLICY) == HALF_OPEN
    assert await breakers.record(second, SUCCESS, POLICY) == CLOSED
    await fail(breakers, key, 2)  # the failure count started again from zero
    assert await breakers.state(key, POLICY) == CLOSED


async def test_a_failure_in_half_open_reopens(store):
    breakers, key = store
    await open_then_wait(breakers, key)
    first, second = [await breakers.acquire(key, POLICY, LEASE) for _ in range(2)]
    await breakers.record(first, SUCCESS, POLICY)
    assert await breakers.record(second, FAILURE, POLICY) == OPEN
    assert not (await breakers.acquire(key, POLICY, LEASE)).allowed


async def test_a_late_answer_from_an_earlier_period_is_ignored(store):
    breakers, key = store
    slow = await breakers.acquire(key, POLICY, LEASE)  # admitted while closed
    await open_then_wait(breakers, key)
    trial = await breakers.acquire(key, POLICY, LEASE)
    assert await breakers.record(slow, SUCCESS, POLICY) == HALF_OPEN  # does not count as a trial success
    assert await breakers.record(trial, SUCCESS, POLICY) == HALF_OPEN


async def test_a_trial_slot_held_past_its_lease_is_given_back(store):
    breakers, key = store
    await open_then_wait(breakers, key)
    for _ in range(2):
        await breakers.acquire(key, POLICY, 0.02)  # holders that never report (their process died)
    assert not (await breakers.acquire(key, POLICY, 0.02)).allowed
    breakers.clock.advance(0.03)
    assert (await breakers.acquire(key, POLICY, 0.02)).allowed


# --- through the gateway ---------------------------------------------------------------------------------

BREAKER = {"threshold": 2, "timeout": "100ms", "half_open_requests": 1, "success_threshold": 1}


def breaker_service(url, **extra):
    return make_service(url, circuit_breaker=BREAKER, retry={"max_attempts": 1}, **extra)


async def test_open_breaker_fails_fast_without_calling_the_backend(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(502))
    service = breaker_service(server.url)
    for _ in range(2):
        with pytest.raises(GatewayHTTPError):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    with pytest.raises(GatewayUnavailable) as caught:
        await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert (caught.value.code, caught.value.status_code) == ("UNAVAILABLE", 503)
    assert len(server.hits("/r")) == 2


async def test_client_errors_do_not_open_the_breaker(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(404))
    service = breaker_service(server.url)
    for _ in range(4):
        with pytest.raises(GatewayHTTPError):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert len(server.hits("/r")) == 4


async def test_a_429_after_retries_counts_as_a_failure(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(429))
    service = breaker_service(server.url)
    for _ in range(2):
        with pytest.raises(GatewayHTTPError):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    with pytest.raises(GatewayUnavailable):
        await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")


async def test_the_breaker_recovers_through_half_open(gateway, server, tenant_id, resolver, clock):
    server.script("/r", Reply(503), Reply(503), Reply(200, json={"back": True}))
    service = breaker_service(server.url)
    for _ in range(2):
        with pytest.raises(GatewayHTTPError):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    clock.advance(0.12)
    response = await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert response.json() == {"back": True}
    assert await gateway.breakers.state(f"gw:{tenant_id}:backend:cb", service.circuit_breaker) == CLOSED


async def test_tenants_never_share_a_breaker(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(503))
    service = breaker_service(server.url)
    for _ in range(2):
        with pytest.raises(GatewayHTTPError):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    with pytest.raises(GatewayUnavailable):
        await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    server.script("/r", Reply(200))
    response = await gateway.request(service, tenant_id=f"{tenant_id}-b", resolver=resolver, path="/r")
    assert response.status_code == 200


async def test_the_breaker_is_shared_by_gateways_through_redis(server, tenant_id, resolver, redis_prefix, clock):
    server.script("/r", Reply(503))
    service = breaker_service(server.url)
    first = Gateway(redis_url=REDIS_URL, key_prefix=redis_prefix, audit=False, clock=clock)
    second = Gateway(redis_url=REDIS_URL, key_prefix=redis_prefix, audit=False, clock=clock)
    async with first, second:
        for _ in range(2):
            with pytest.raises(GatewayHTTPError):
                await first.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
        with pytest.raises(GatewayUnavailable):
            await second.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
        server.script("/r", Reply(200))
        other = await second.request(service, tenant_id=f"{tenant_id}-b", resolver=resolver, path="/r")
    assert other.status_code == 200
    assert len(server.hits("/r")) == 3


async def test_half_open_lets_only_half_open_requests_through_at_once(gateway, server, tenant_id, resolver, clock):
    server.script("/r", Reply(503), Reply(503), Reply(200, delay=0.1))
    service = breaker_service(server.url)
    for _ in range(2):
        with pytest.raises(GatewayHTTPError):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    clock.advance(0.12)
    results = await asyncio.gather(
        *(gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r") for _ in range(3)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["GatewayResponse", "GatewayUnavailable", "GatewayUnavailable"]
    assert len(server.hits("/r")) == 3
