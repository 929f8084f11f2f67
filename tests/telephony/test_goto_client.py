"""The GoToConnect client against the fake GoToConnect: tokens, routes and bodies, retries, rate limit."""

import asyncio
import dataclasses
import socket

import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from integrations.gateway.oauth import TokenCache
from integrations.gateway.ratelimit import LocalRateLimiter, RedisRateLimiter
from telephony.carriers.goto.client import (
    GoToConfig,
    GoToConnectClient,
    GoToConnectError,
    TokenProvider,
    dial_string,
    rate_bucket,
)
from tests.gateway.conftest import FakeClock
from tests.telephony.conftest import REDIS_URL
from tests.telephony.fake_goto import DEFAULT_OFFER_SDP, FakeGoTo

SEED_SCOPES = (  # the GOTO_OAUTH_SCOPES default
    "webrtc.v1.read webrtc.v1.write call-events.v1.notifications.manage call-events.v1.events.read "
    "users.v1.lines.read call-control.v1.calls.control voice-admin.v1.read"
)


class Sleeps:
    """An injected sleep that records the waits (backoffs, Retry-After, rate limit) instead of sleeping."""

    def __init__(self):
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def config(fake_goto) -> GoToConfig:
    return GoToConfig.from_settings()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(config: GoToConfig, sleeps: Sleeps, *, cache: TokenCache | None = None, limiter=None):
    tokens = TokenProvider(config, cache=cache or TokenCache())
    return GoToConnectClient(
        config, tokens=tokens, sleep=sleeps, rand=lambda: 1.0, limiter=limiter or LocalRateLimiter(Clock())
    )


@pytest.fixture
async def client(config, sleeps):
    async with make_client(config, sleeps) as goto:
        yield goto


def calls(fake: FakeGoTo) -> list[tuple]:
    return [(r.method, r.path, r.json) for r in fake.requests]


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- configuration and dial strings ---------------------------------------------------------------------
def test_config_reads_the_settings_and_hides_the_secret(fake_goto):
    config = GoToConfig.from_settings()
    assert config.api_base_url == fake_goto.api_base_url
    assert config.websocket_url == fake_goto.websocket_url
    assert config.token_url == fake_goto.token_url
    assert config.scopes == tuple(SEED_SCOPES.split())
    assert (config.rate_limit_per_minute, config.timeout_seconds, config.event_dedup_seconds) == (1000, 10.0, 3600)
    assert config.configured
    assert fake_goto.client_secret not in repr(config)
    assert not dataclasses.replace(config, client_secret="").configured


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("+15551234567", "tel:+15551234567"),
        (" +442071234567 ", "tel:+442071234567"),
        ("tel:+15551234567", "tel:+15551234567"),
        ("ext:1001", "ext:1001"),
    ],
)
def test_dial_string_formats_numbers_and_keeps_extensions(destination, expected):
    assert dial_string(destination) == expected


@pytest.mark.parametrize("destination", ["", "15551234567", "+0123", "ext:", "ext:10a1", "sip:bob@x", "+1 555 1234567"])
def test_dial_string_refuses_anything_else_with_a_clear_error(destination):
    with pytest.raises(GoToConnectError) as info:
        dial_string(destination)
    assert (info.value.code, info.value.status_code) == ("invalid_dial_string", 400)
    assert "E.164" in info.value.message


# --- tokens -------------------------------------------------------------------------------------------------
async def test_token_is_fetched_once_with_the_seed_scopes_and_basic_credentials(fake_goto, client):
    call_id = fake_goto.ring()
    await client.hold(call_id)
    await client.resume(call_id)
    assert [(t.client_id, t.grant_type, t.scope, t.status) for t in fake_goto.token_requests] == [
        (fake_goto.client_id, "client_credentials", SEED_SCOPES, 200)
    ]
    tokens = {r.token for r in fake_goto.requests}
    assert len(tokens) == 1 and None not in tokens


async def test_token_is_refreshed_shortly_before_it_expires(fake_goto, config, sleeps):
    fake_goto.expires_in = 600
    clock = Clock()
    call_id = fake_goto.ring()
    async with make_client(config, sleeps, cache=TokenCache(clock)) as client:
        await client.hold(call_id)
        clock.now += 600 - 61  # 61 s left: still used
        await client.resume(call_id)
        clock.now += 2  # 59 s left: inside the 60 s margin, refreshed
        await client.hold(call_id)
    assert len(fake_goto.token_requests) == 2
    first, second, third = (r.token for r in fake_goto.requests)
    assert first == second != third


async def test_a_token_refused_mid_call_is_refetched_and_the_request_repeated_once(fake_goto, client):
    call_id = fake_goto.ring()
    await client.hold(call_id)
    fake_goto.expire_tokens()
    await client.resume(call_id)
    assert [(r.method, r.status) for r in fake_goto.requests] == [("PUT", 204), ("DELETE", 401), ("DELETE", 204)]
    old, refused, new = (r.token for r in fake_goto.requests)
    assert old == refused != new
    assert len(fake_goto.token_requests) == 2


async def test_a_refused_token_is_repeated_even_for_create_call(fake_goto, client):
    await client.create_call(dial_string="+15551234567", caller_id="+15559876543")
    fake_goto.expire_tokens()
    await client.create_call(dial_string="+15551234568", caller_id="+15559876543")
    assert [r.status for r in fake_goto.requests] == [201, 401, 201]  # a 401 was never acted on


async def test_a_second_401_is_an_error_not_a_loop(fake_goto, client, sleeps):
    call_id = fake_goto.ring()
    fake_goto.fail_next(r"/hold$", 401, times=2)
    with pytest.raises(GoToConnectError) as info:
        await client.hold(call_id)
    assert (info.value.code, info.value.status, info.value.retryable) == ("pbx_unauthorized", 401, False)
    assert len(fake_goto.requests) == 2
    assert sleeps.delays == []


async def test_bad_credentials_give_a_clear_error_and_no_call_control_request(fake_goto, config, sleeps):
    wrong = dataclasses.replace(config, client_secret="not-the-secret")
    async with make_client(wrong, sleeps) as client:
        with pytest.raises(GoToConnectError) as info:
            await client.hold("c1")
    error = info.value
    assert (error.code, error.retryable) == ("pbx_auth_failed", False)
    assert "GOTO_CLIENT_SECRET" in error.message and "invalid_client" in error.message
    assert "not-the-secret" not in error.message
    assert fake_goto.token_requests[0].status == 401
    assert fake_goto.requests == []


async def test_missing_credentials_say_what_to_configure(fake_goto, config, sleeps):
    async with make_client(dataclasses.replace(config, client_id=""), sleeps) as client:
        with pytest.raises(GoToConnectError) as info:
            await client.hold("c1")
    assert info.value.code == "goto_not_configured"
    assert fake_goto.token_requests == []


async def test_concurrent_requests_share_one_token_fetch(fake_goto, client):
    call_ids = [fake_goto.ring() for _ in range(5)]
    await asyncio.gather(*(client.hold(call_id) for call_id in call_ids))
    assert len(fake_goto.token_requests) == 1


# --- call control: routes and bodies ----------------------------------------------------------------------
async def test_every_operation_hits_its_route_with_its_body(fake_goto, client):
    inbound = fake_goto.ring()
    outbound = await client.create_call(dial_string="+15551234567", caller_id="+15559876543")
    assert fake_goto.calls[outbound] in ("dialing", "connected")
    assert await client.answer(inbound) == DEFAULT_OFFER_SDP
    await client.send_answer(inbound, "v=0 our answer")
    await client.hold(inbound)
    await client.resume(inbound)
    await client.warm_transfer(inbound, outbound)
    await client.merge(outbound, inbound)
    await client.blind_transfer(outbound, "ext:1001")
    await client.hangup(inbound)
    base = "/web-calls/v1/calls"
    assert calls(fake_goto) == [
        ("POST", base, {"dial_string": "tel:+15551234567", "caller_id": "+15559876543"}),
        ("POST", f"{base}/{inbound}/answer", None),
        ("POST", f"{base}/{inbound}/sdp-answer", {"type": "answer", "sdp": "v=0 our answer"}),
        ("PUT", f"{base}/{inbound}/hold", None),
        ("DELETE", f"{base}/{inbound}/hold", None),
        ("POST", f"{base}/{inbound}/warm-transfer", {"refer_id": outbound}),
        ("POST", f"{base}/{outbound}/merge", {"refer_id": inbound}),
        ("POST", f"{base}/{outbound}/blind-transfer", {"dial_string": "ext:1001"}),
        ("DELETE", f"{base}/{inbound}", None),
    ]
    assert [r.status for r in fake_goto.requests] == [201, 200, 204, 204, 204, 202, 202, 202, 204]
    assert fake_goto.sdp_answers == {inbound: "v=0 our answer"}
    assert fake_goto.hangups == [inbound]


async def test_hooks_choose_the_call_id_and_the_offer(fake_goto, client):
    seen = []

    async def on_create_call(body):
        seen.append(body)
        return {"call_id": "pbx-42", "events": []}

    async def on_answer(call_id):
        return f"v=0 offer for {call_id}"

    fake_goto.on_create_call, fake_goto.on_answer = on_create_call, on_answer
    assert await client.create_call(dial_string="ext:1002", caller_id="") == "pbx-42"
    assert seen == [{"dial_string": "ext:1002"}]
    assert await client.answer("pbx-42") == "v=0 offer for pbx-42"


async def test_hanging_up_a_call_that_is_already_gone_is_success(fake_goto, client):
    call_id = fake_goto.ring()
    await client.hangup(call_id)
    await client.hangup(call_id)
    await client.hangup("never-existed")
    assert [r.status for r in fake_goto.requests] == [204, 404, 404]


async def test_other_operations_on_an_unknown_call_raise_not_found(fake_goto, client):
    with pytest.raises(GoToConnectError) as info:
        await client.hold("never-existed")
    assert (info.value.code, info.value.status, info.value.status_code) == ("pbx_call_not_found", 404, 404)


async def test_a_call_id_is_one_path_segment_whatever_it_contains(fake_goto, client):
    with pytest.raises(GoToConnectError):
        await client.hold("a/../b?x=1")
    assert fake_goto.requests[0].path == "/web-calls/v1/calls/a%2F..%2Fb%3Fx%3D1/hold"


@pytest.mark.parametrize(
    ("operation", "args", "code"),
    [
        ("create_call", {"dial_string": "12345", "caller_id": "+15559876543"}, "invalid_dial_string"),
        ("create_call", {"dial_string": "+15551234567", "caller_id": "Reception"}, "invalid_caller_id"),
        ("blind_transfer", {"call_id": "c1", "dial_string": "sales"}, "invalid_dial_string"),
        ("warm_transfer", {"call_id": "c1", "refer_id": ""}, "invalid_refer_id"),
        ("send_answer", {"call_id": "c1", "sdp": "  "}, "invalid_sdp"),
        ("hold", {"call_id": ""}, "invalid_call_id"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_sent(fake_goto, client, operation, args, code):
    with pytest.raises(GoToConnectError) as info:
        await getattr(client, operation)(**args)
    assert (info.value.code, info.value.status_code) == (code, 400)
    assert fake_goto.requests == [] and fake_goto.token_requests == []


async def test_an_answer_without_an_offer_is_a_bad_response(fake_goto, client):
    fake_goto.on_answer = lambda call_id: ""
    with pytest.raises(GoToConnectError) as info:
        await client.answer(fake_goto.ring())
    assert info.value.code == "pbx_bad_response"


async def test_error_messages_never_carry_the_token_or_the_secret(fake_goto, client):
    call_id = fake_goto.ring()
    await client.hold(call_id)
    token = fake_goto.requests[0].token
    fake_goto.fail_next(r"/hold$", 400, message=f"bad token {token} for {fake_goto.client_secret}")
    with pytest.raises(GoToConnectError) as info:
        await client.resume(call_id)
    assert token not in info.value.message and fake_goto.client_secret not in info.value.message
    assert "bad token [REDACTED] for [REDACTED]" in info.value.message


# --- retries ----------------------------------------------------------------------------------------------
async def test_create_call_is_not_retried_on_503(fake_goto, client, sleeps):
    fake_goto.fail_next(r"/calls$", 503)
    with pytest.raises(GoToConnectError) as info:
        await client.create_call(dial_string="+15551234567", caller_id="+15559876543")
    assert (info.value.code, info.value.status, info.value.retryable) == ("pbx_unavailable", 503, True)
    assert len(fake_goto.requests) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize("operation", ["blind_transfer", "warm_transfer", "merge"])
async def test_transfers_and_merge_are_not_retried_on_502(fake_goto, client, sleeps, operation):
    call_id, other = fake_goto.ring(), fake_goto.ring()
    fake_goto.fail_next(r"-transfer$|/merge$", 502)
    args = ("ext:1001",) if operation == "blind_transfer" else (other,)
    with pytest.raises(GoToConnectError):
        await getattr(client, operation)(call_id, *args)
    assert len(fake_goto.requests) == 1 and sleeps.delays == []


async def test_hold_is_retried_on_503_with_backoff(fake_goto, client, sleeps):
    call_id = fake_goto.ring()
    before = counter("vg_telephony_pbx_retries_total", operation="hold")
    fake_goto.fail_next(r"/hold$", 503, times=2)
    await client.hold(call_id)
    assert [r.status for r in fake_goto.requests] == [503, 503, 204]
    assert sleeps.delays == [0.25, 0.5]  # initial backoff, doubled (jitter drawn at its maximum here)
    assert counter("vg_telephony_pbx_retries_total", operation="hold") - before == 2


async def test_idempotent_operations_give_up_after_three_attempts(fake_goto, client, sleeps):
    fake_goto.fail_next(r"/answer$", 504, times=5)
    with pytest.raises(GoToConnectError) as info:
        await client.answer(fake_goto.ring())
    assert (info.value.code, info.value.status) == ("pbx_unavailable", 504)
    assert len(fake_goto.requests) == 3 and len(sleeps.delays) == 2


async def test_429_retry_after_is_honoured(fake_goto, client, sleeps):
    call_id = fake_goto.ring()
    fake_goto.fail_next(r"/hold$", 429, retry_after=7)
    await client.hold(call_id)
    assert sleeps.delays == [7.0]
    assert [r.status for r in fake_goto.requests] == [429, 204]


async def test_429_asking_for_too_long_is_returned_with_its_retry_after(fake_goto, client, sleeps):
    fake_goto.fail_next(r"/hold$", 429, retry_after=120)
    with pytest.raises(GoToConnectError) as info:
        await client.hold(fake_goto.ring())
    assert (info.value.code, info.value.retryable, info.value.retry_after) == ("pbx_rate_limited", True, 120.0)
    assert len(fake_goto.requests) == 1 and sleeps.delays == []


async def test_429_on_create_call_is_not_retried_but_says_when_to_try(fake_goto, client, sleeps):
    fake_goto.fail_next(r"/calls$", 429, retry_after=3)
    with pytest.raises(GoToConnectError) as info:
        await client.create_call(dial_string="+15551234567", caller_id="+15559876543")
    assert (info.value.code, info.value.retry_after) == ("pbx_rate_limited", 3.0)
    assert sleeps.delays == []


async def test_a_timeout_is_retried_for_hold_but_not_for_create_call(fake_goto, config, sleeps):
    fast = dataclasses.replace(config, timeout_seconds=0.2)
    call_id = fake_goto.ring()
    async with make_client(fast, sleeps) as client:
        fake_goto.fail_next(r"/hold$", None, delay=0.6)
        await client.hold(call_id)
        fake_goto.fail_next(r"/calls$", None, delay=0.6)
        with pytest.raises(GoToConnectError) as info:
            await client.create_call(dial_string="+15551234567", caller_id="+15559876543")
    assert (info.value.code, info.value.retryable) == ("pbx_timeout", True)
    assert [r.method for r in fake_goto.requests] == ["PUT", "PUT", "POST"]
    assert len(sleeps.delays) == 1


async def test_connection_refused_is_retried_even_for_create_call(fake_goto, config, sleeps):
    unreachable = dataclasses.replace(config, api_base_url=f"http://127.0.0.1:{closed_port()}")
    async with make_client(unreachable, sleeps) as client:
        with pytest.raises(GoToConnectError) as info:
            await client.create_call(dial_string="+15551234567", caller_id="+15559876543")
    assert (info.value.code, info.value.retryable) == ("pbx_unreachable", True)
    assert len(sleeps.delays) == 2  # three attempts: nothing was sent, so repeating cannot dial twice


# --- rate limit ---------------------------------------------------------------------------------------------
def test_the_bucket_never_lets_a_minute_exceed_the_limit(config):
    bucket = rate_bucket(dataclasses.replace(config, rate_limit_per_minute=1000))
    assert bucket.burst == 50
    assert bucket.burst + bucket.rate * 60 == pytest.approx(1000)


async def test_requests_beyond_the_burst_wait_for_their_token(fake_goto, config, sleeps):
    limited = dataclasses.replace(config, rate_limit_per_minute=60)  # burst 3, then 57 a minute
    call_id = fake_goto.ring()
    async with make_client(limited, sleeps) as client:
        for _ in range(6):
            await client.hold(call_id)
    assert len(fake_goto.requests) == 6
    rate = 57 / 60
    assert sleeps.delays == pytest.approx([1 / rate, 2 / rate, 3 / rate])


async def test_a_full_rate_limit_queue_refuses_with_a_clear_error(fake_goto, config, sleeps):
    limited = dataclasses.replace(config, rate_limit_per_minute=60)
    bucket = rate_bucket(limited)
    call_id = fake_goto.ring()
    async with make_client(limited, sleeps) as client:
        for _ in range(bucket.burst + bucket.queue_depth):
            await client.hold(call_id)
        with pytest.raises(GoToConnectError) as info:
            await client.hold(call_id)
    assert (info.value.code, info.value.retryable) == ("pbx_rate_limited", True)
    assert len(fake_goto.requests) == bucket.burst + bucket.queue_depth


async def test_the_rate_limit_is_shared_by_processes_through_redis(fake_goto, config, redis_prefix):
    limited = dataclasses.replace(config, rate_limit_per_minute=60)
    call_id = fake_goto.ring()
    bucket = rate_bucket(limited)
    key = bucket.key
    store = redis.asyncio.Redis.from_url(REDIS_URL)
    await store.delete(key)
    first_sleeps, second_sleeps = Sleeps(), Sleeps()
    clock = FakeClock()  # the two processes' requests are a second apart whatever the machine's load
    try:
        async with (
            make_client(limited, first_sleeps, limiter=RedisRateLimiter(store, clock)) as first,
            make_client(limited, second_sleeps, limiter=RedisRateLimiter(store, clock)) as second,
        ):
            for _ in range(3):
                await first.hold(call_id)
            await second.hold(call_id)
    finally:
        await store.delete(key)
        await store.aclose()
    assert first_sleeps.delays == []
    assert second_sleeps.delays == [pytest.approx(1 / bucket.rate)]  # it waited the whole refill of the next token


# --- metrics and ways of running ------------------------------------------------------------------------------
async def test_requests_are_counted_by_operation_and_outcome(fake_goto, client):
    labels = {"operation": "hangup"}
    ok, missing = (
        counter("vg_telephony_pbx_requests_total", **labels, outcome="ok"),
        counter("vg_telephony_pbx_requests_total", **labels, outcome="client_error"),
    )
    timed = counter("vg_telephony_pbx_request_duration_seconds_count", **labels)
    call_id = fake_goto.ring()
    await client.hangup(call_id)
    await client.hangup(call_id)
    assert counter("vg_telephony_pbx_requests_total", **labels, outcome="ok") - ok == 1
    assert counter("vg_telephony_pbx_requests_total", **labels, outcome="client_error") - missing == 1
    assert counter("vg_telephony_pbx_request_duration_seconds_count", **labels) - timed == 2


def test_the_client_works_from_sync_code_in_its_own_loop(fake_goto, config, sleeps):
    call_id = fake_goto.ring()

    async def run():
        async with make_client(config, sleeps) as client:
            await client.hold(call_id)

    asyncio.run(run())
    assert fake_goto.wait_for_request(r"/hold$", 1.0).status == 204


async def test_the_fake_can_also_serve_on_the_test_loop(sleeps):
    async with FakeGoTo() as fake:
        config = GoToConfig(
            api_base_url=fake.api_base_url,
            websocket_url=fake.websocket_url,
            token_url=fake.token_url,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
        )
        async with make_client(config, sleeps) as client:
            call_id = await client.create_call(dial_string="ext:1001", caller_id="")
        await fake.until(lambda: fake.calls[call_id] == "connected", 2.0, "call.connected")
        assert [e["event"] for e in fake.events] == ["call.dialing", "call.connected"]
