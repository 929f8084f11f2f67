"""GoTo's REST API (`telephony.carriers.goto.api`) against the fake GoTo: routes and bodies, tokens,
retries, GoTo's error body and the rate limit per API."""

import socket

import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from integrations.gateway.ratelimit import LocalRateLimiter, RedisRateLimiter
from telephony.carriers.goto import wire
from telephony.carriers.goto.api import ApiConfig, GoToApi, rate_bucket
from telephony.carriers.goto.config import GoToConnectError
from telephony.carriers.goto.line import dial_string
from tests.telephony.conftest import REDIS_URL
from tests.telephony.fake_goto import DEFAULT_SDP, FakeTokens

OFFER = DEFAULT_SDP.replace("a=setup:active", "a=setup:actpass")


class Sleeps:
    """An injected sleep that records the waits (backoffs, rate limit) instead of sleeping."""

    def __init__(self):
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Ticking(Clock):
    """A clock a second later at every reading: the rate limit never makes anyone wait."""

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def tokens(fake_goto) -> FakeTokens:
    return FakeTokens(fake_goto)


def make_api(tokens, sleeps, *, limiter=None, account_key="acct-1", config=None) -> GoToApi:
    return GoToApi(
        config or ApiConfig.from_settings(),
        tokens=tokens,
        account_key=account_key,
        sleep=sleeps,
        rand=lambda: 1.0,
        limiter=limiter or LocalRateLimiter(Clock()),
    )


@pytest.fixture
async def api(tokens, sleeps):
    client = make_api(tokens, sleeps)
    yield client
    await client.aclose()


def calls(fake) -> list[tuple]:
    return [(r.method, r.path, r.json) for r in fake.requests]


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def ready_device(api, fake) -> str:
    """A channel, a device bound to it and the account's extension on it; returns the channel id."""
    channel = await api.create_channel("worker-1")
    await api.create_device(device_id="dev-1", channel_id=channel.channel_id, app_id="voice-gateway", app_version="1")
    await api.add_extension("dev-1", organization_id="org-1", extension="7001")
    return channel.channel_id


async def place(api, channel_id: str, dial: str = "+15557654321"):
    return await api.place_call(
        device_id="dev-1", organization_id="org-1", extension="7001", dial_string=dial, channel_id=channel_id, sdp=OFFER
    )


# --- dial strings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "expected"), [("+15551234567", "+15551234567"), ("ext:1001", "1001")])
def test_dial_strings_are_numbers_as_they_are_and_extensions_without_their_prefix(target, expected):
    assert dial_string(target) == expected


@pytest.mark.parametrize("target", ["", "5551234567", "tel:+15551234567", "ext:", "ext:12a", "+1555 123"])
def test_anything_else_is_refused_with_a_clear_error(target):
    with pytest.raises(GoToConnectError) as info:
        dial_string(target)
    assert (info.value.code, info.value.status_code) == ("invalid_dial_string", 400)


# --- notification channel and subscriptions ---------------------------------------------------------------


async def test_a_channel_is_created_as_websockets_and_read_from_goto_s_201(fake_goto, api):
    channel = await api.create_channel("worker-1")
    [created] = fake_goto.requests
    assert (created.method, created.path, created.json) == (
        "POST",
        "/notification-channel/v1/channels/worker-1",
        {"channelType": "WebSockets"},
    )
    assert created.status == 201
    assert channel.channel_id.startswith("WebSockets.")
    assert channel.url == f"ws://127.0.0.1:{fake_goto.port}/ws/{channel.channel_id}"
    assert channel.lifetime == 10800  # read from the answer (which also carried an attribute we do not know)


def test_a_channel_answer_without_its_url_or_lifetime_is_unusable():
    good = {"channelId": "c1", "channelData": {"channelURL": "wss://x"}, "channelLifetime": 1200}
    assert wire.channel_of(good) == wire.Channel("c1", "wss://x", 1200)
    assert wire.channel_of({**good, "channelData": {}}) is None
    assert wire.channel_of({**good, "channelLifetime": "1200"}) is None
    assert wire.channel_of({**good, "channelLifetime": True}) is None
    assert wire.channel_of([good]) is None


async def test_refresh_puts_the_same_body_and_deleting_a_gone_channel_is_success(fake_goto, api):
    channel = await api.create_channel("worker-1")
    assert await api.refresh_channel("worker-1", channel.channel_id) == 10800
    await api.delete_channel("worker-1", channel.channel_id)
    await api.delete_channel("worker-1", channel.channel_id)  # 404: already gone
    assert calls(fake_goto)[1:] == [
        ("PUT", f"/notification-channel/v1/channels/worker-1/{channel.channel_id}", {"channelType": "WebSockets"}),
        ("DELETE", f"/notification-channel/v1/channels/worker-1/{channel.channel_id}", None),
        ("DELETE", f"/notification-channel/v1/channels/worker-1/{channel.channel_id}", None),
    ]
    assert [r.status for r in fake_goto.requests[1:]] == [200, 204, 404]


async def test_a_subscription_reports_a_status_for_each_account_key(fake_goto, api):
    channel = await api.create_channel("worker-1")
    fake_goto.subscription_failures["acct-1"] = 1
    statuses = await api.subscribe(channel.channel_id, ["acct-1", "acct-unknown"])
    request = fake_goto.requests[-1]
    assert (request.path, request.status) == ("/call-events/v1/subscriptions", 207)
    assert request.json == {
        "channelId": channel.channel_id,
        "accountKeys": [
            {"id": "acct-1", "events": ["STARTING", "ACTIVE", "ENDING"]},
            {"id": "acct-unknown", "events": ["STARTING", "ACTIVE", "ENDING"]},
        ],
    }
    assert [(s.account_key, s.ok, s.status, s.error_code) for s in statuses] == [
        ("acct-1", False, 403, "AUTHZ_INSUFFICIENT_SCOPE"),
        ("acct-unknown", False, 403, "AUTHZ_INSUFFICIENT_SCOPE"),
    ]
    [again] = await api.subscribe(channel.channel_id, ["acct-1"])
    assert (again.ok, again.status) == (True, 200)


def test_a_key_the_207_leaves_out_counts_as_failed():
    body = {"accountKeys": [{"id": "a", "status": 200, "message": "Success"}]}
    assert [(s.account_key, s.ok, s.error_code) for s in wire.subscription_statuses(body, ["a", "b"])] == [
        ("a", True, ""),
        ("b", False, "MISSING"),
    ]


async def test_missed_states_are_asked_for_by_sequence_range(fake_goto, api):
    channel_id = await ready_device(api, fake_goto)
    placed = await place(api, channel_id)
    await fake_goto.until(lambda: len(fake_goto.states[fake_goto.calls[placed.call_id].space]) == 2)
    space = fake_goto.calls[placed.call_id].space
    states = await api.recover_states(space, 2, 5)
    request = fake_goto.requests[-1]
    assert (request.path, request.query) == (
        f"/call-events/v1/conversation-spaces/{space}/events",
        {"sequenceFrom": "2", "sequenceTo": "5"},
    )
    assert [s["state"]["sequenceNumber"] for s in states] == [2]


# --- devices and web calls -----------------------------------------------------------------------------


async def test_every_web_call_operation_hits_its_route_with_its_body(fake_goto, api):
    channel_id = await ready_device(api, fake_goto)
    placed = await place(api, channel_id)
    consult = await place(api, channel_id, "1001")
    cid = placed.call_id
    await api.hold(cid)
    await api.unhold(cid)
    await api.dtmf(cid, "12#")
    await api.blind_transfer(cid, "+15550002222")
    await api.merge(cid, consult.call_id)
    await api.warm_transfer(cid, consult.call_id)
    await api.hangup(cid)
    assert placed.leg_id.startswith("leg-") and placed.sdp == DEFAULT_SDP  # GoTo's answer to our offer
    base = "/web-calls/v1"
    assert calls(fake_goto)[1:] == [
        (
            "POST",
            f"{base}/devices",
            {
                "clientInformation": {
                    "deviceId": "dev-1",
                    "appId": "voice-gateway",
                    "appVersion": "1",
                    "platform": "INTEGRATOR",
                },
                "callbackReference": {"incomingCallChannelId": channel_id, "sessionManagementChannelId": channel_id},
            },
        ),
        ("POST", f"{base}/devices/dev-1/extensions", {"organizationId": "org-1", "extensions": [{"number": "7001"}]}),
        (
            "POST",
            f"{base}/calls",
            {
                "deviceId": "dev-1",
                "organizationId": "org-1",
                "extensionNumber": "7001",
                "dialString": "+15557654321",
                "inCallChannelId": channel_id,
                "sdp": OFFER,
            },
        ),
        (
            "POST",
            f"{base}/calls",
            {
                "deviceId": "dev-1",
                "organizationId": "org-1",
                "extensionNumber": "7001",
                "dialString": "1001",
                "inCallChannelId": channel_id,
                "sdp": OFFER,
            },
        ),
        ("POST", f"{base}/calls/{cid}/hold", None),
        ("POST", f"{base}/calls/{cid}/unhold", None),
        ("POST", f"{base}/calls/{cid}/dtmf", {"tone": "12#"}),
        ("POST", f"{base}/calls/{cid}/blind-transfer", {"dialString": "+15550002222"}),
        ("POST", f"{base}/calls/{cid}/merge", {"referId": consult.call_id}),
        ("POST", f"{base}/calls/{cid}/warm-transfer", {"referId": consult.call_id}),
        ("DELETE", f"{base}/calls/{cid}", None),
    ]
    assert all(r.status < 300 for r in fake_goto.requests)
    assert fake_goto.calls[cid].tones == ["12#"]


async def test_hanging_up_a_call_that_is_already_gone_is_success(fake_goto, api):
    await api.hangup("call-nobody-knows")
    assert fake_goto.requests[-1].status == 404


async def test_other_operations_on_an_unknown_call_are_not_found(fake_goto, api):
    with pytest.raises(GoToConnectError) as info:
        await api.hold("call-nobody-knows")
    assert (info.value.code, info.value.status) == ("pbx_call_not_found", 404)


async def test_a_call_id_is_one_path_segment_whatever_it_contains(fake_goto, api):
    await api.hangup("../devices/dev-1?x=1")
    assert fake_goto.requests[-1].path == "/web-calls/v1/calls/..%2Fdevices%2Fdev-1%3Fx%3D1"


@pytest.mark.parametrize(
    ("operation", "args", "code"),
    [
        ("hold", ("",), "invalid_call_id"),
        ("dtmf", ("call-1", "12x"), "invalid_dtmf"),
        ("dtmf", ("call-1", ""), "invalid_dtmf"),
        ("merge", ("call-1", ""), "invalid_refer_id"),
        ("recover_states", ("", 1, 2), "invalid_conversation_space_id"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_sent(fake_goto, api, operation, args, code):
    with pytest.raises(GoToConnectError) as info:
        await getattr(api, operation)(*args)
    assert (info.value.code, info.value.status_code) == (code, 400)
    assert fake_goto.requests == []


async def test_placing_a_call_without_an_offer_is_refused_before_anything_is_sent(fake_goto, api):
    with pytest.raises(GoToConnectError) as info:
        await api.place_call(
            device_id="d", organization_id="o", extension="7001", dial_string="+15557654321", channel_id="c", sdp=" "
        )
    assert info.value.code == "invalid_sdp"
    assert fake_goto.requests == []


# --- tokens ----------------------------------------------------------------------------------------------


async def test_a_refused_token_is_replaced_and_the_request_repeated_once(fake_goto, api, tokens):
    await api.create_channel("worker-1")
    first = tokens.last_token
    fake_goto.expire_tokens()
    await api.create_channel("worker-1")
    assert [r.status for r in fake_goto.requests] == [201, 401, 201]
    assert [r.token for r in fake_goto.requests][1] == first
    assert tokens.fetches == 2 and tokens.last_token != first


async def test_a_second_401_is_an_error_not_a_loop(fake_goto, api):
    fake_goto.fail_next(r"/channels/", 401, times=5, code="AUTHN_EXPIRED_TOKEN")
    with pytest.raises(GoToConnectError) as info:
        await api.create_channel("worker-1")
    assert info.value.code == "pbx_unauthorized"
    assert len(fake_goto.requests) == 2


async def test_a_revoked_grant_fails_every_request_with_reconnect_required(fake_goto, api, tokens):
    tokens.revoke()
    with pytest.raises(GoToConnectError) as info:
        await api.create_channel("worker-1")
    assert info.value.code == "goto_reconnect_required"
    assert fake_goto.requests == []


async def test_goto_error_bodies_give_clear_errors_that_never_carry_the_token(fake_goto, api, tokens):
    await api.create_channel("worker-1")
    token = tokens.last_token
    fake_goto.fail_next(r"/channels/", 400, code="BAD_REQUEST", message=f"bad token {token}")
    with pytest.raises(GoToConnectError) as info:
        await api.create_channel("worker-1")
    assert info.value.code == "pbx_request_rejected" and info.value.status == 400
    assert info.value.message == "GoTo create_channel failed: HTTP 400 (BAD_REQUEST: bad token [REDACTED])."
    assert token not in info.value.message


# --- retries and the rate limit ------------------------------------------------------------------------------


async def test_a_429_is_waited_out_with_jitter_and_retried_even_when_placing_a_call(fake_goto, tokens, sleeps):
    api = make_api(tokens, sleeps, limiter=LocalRateLimiter(Ticking()))
    channel_id = await ready_device(api, fake_goto)
    fake_goto.fail_next(r"/web-calls/v1/calls$", 429, times=2, method="POST")
    placed = await place(api, channel_id)
    await api.aclose()
    assert placed.call_id in fake_goto.calls
    assert [r.status for r in fake_goto.requests_to(r"/web-calls/v1/calls$")] == [429, 429, 201]
    assert sleeps.delays == [0.25, 0.5]  # full jitter (rand 1.0 here), exponential


async def test_a_503_is_retried_for_hold_but_never_for_placing_a_call_or_a_transfer(fake_goto, tokens, sleeps):
    api = make_api(tokens, sleeps)
    channel_id = await ready_device(api, fake_goto)
    placed = await place(api, channel_id)
    fake_goto.fail_next(r"/hold$", 503)
    await api.hold(placed.call_id)
    for path, operation in ((r"/web-calls/v1/calls$", place), (r"/blind-transfer$", None)):
        fake_goto.fail_next(path, 503)
        with pytest.raises(GoToConnectError) as info:
            if operation is not None:
                await operation(api, channel_id)
            else:
                await api.blind_transfer(placed.call_id, "+15550002222")
        assert (info.value.code, info.value.retryable) == ("pbx_unavailable", True)
    await api.aclose()
    assert [r.status for r in fake_goto.requests_to(r"/hold$")] == [503, 204]
    assert [r.status for r in fake_goto.requests_to(r"/blind-transfer$")] == [503]
    assert [r.status for r in fake_goto.requests_to(r"/web-calls/v1/calls$")] == [201, 503]


async def test_connection_refused_is_retried_even_when_placing_a_call(tokens, sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ApiConfig(api_base_url=f"http://127.0.0.1:{port}", web_calls_base_url=f"http://127.0.0.1:{port}")
    api = make_api(tokens, sleeps, config=config, limiter=LocalRateLimiter(Ticking()))
    with pytest.raises(GoToConnectError) as info:
        await api.place_call(
            device_id="d", organization_id="o", extension="7001", dial_string="+15557654321", channel_id="c", sdp=OFFER
        )
    await api.aclose()
    assert info.value.code == "pbx_unreachable"
    assert sleeps.delays == [0.25, 0.5, 1.0]  # four attempts: GoTo never saw any of them


def test_each_api_has_its_own_bucket_that_never_lets_a_second_exceed_the_limit():
    buckets = {api: rate_bucket("acct-1", api, 10) for api in wire.APIS}
    assert {b.key for b in buckets.values()} == {
        "goto:acct-1:notification-channel:ratelimit",
        "goto:acct-1:call-events:ratelimit",
        "goto:acct-1:web-calls:ratelimit",
    }
    for bucket in buckets.values():
        assert bucket.burst + bucket.rate * 1.0 <= 10
    assert rate_bucket("acct-2", wire.API_WEB_CALLS, 10).key != buckets[wire.API_WEB_CALLS].key


async def test_requests_beyond_the_burst_wait_for_their_token_per_api(fake_goto, tokens, sleeps):
    api = make_api(tokens, sleeps)
    channel = await api.create_channel("worker-1")
    await api.refresh_channel("worker-1", channel.channel_id)  # the notification-channel bucket: waits
    await api.subscribe(channel.channel_id, ["acct-1"])  # call-events has its own bucket: no wait
    await api.aclose()
    assert sleeps.delays == [pytest.approx(1 / 9)]


async def test_the_rate_limit_is_shared_by_processes_through_redis(fake_goto, tokens, sleeps, redis_prefix):
    clients = [redis.asyncio.Redis.from_url(REDIS_URL) for _ in range(2)]
    try:
        apis = [
            make_api(tokens, sleeps, limiter=RedisRateLimiter(client), account_key=f"{redis_prefix}-acct")
            for client in clients
        ]
        await apis[0].create_channel("worker-1")
        await apis[1].create_channel("worker-2")  # another process, the same account and API: it waits
        for api in apis:
            await api.aclose()
    finally:
        for client in clients:
            await client.aclose()
    assert len([d for d in sleeps.delays if d > 0]) == 1


async def test_requests_are_counted_by_operation_and_outcome(fake_goto, api):
    before = counter("vg_telephony_pbx_requests_total", operation="create_channel", outcome="ok")
    refused = counter("vg_telephony_pbx_requests_total", operation="create_channel", outcome="client_error")
    await api.create_channel("worker-1")
    fake_goto.fail_next(r"/channels/", 400)
    with pytest.raises(GoToConnectError):
        await api.create_channel("worker-1")
    assert counter("vg_telephony_pbx_requests_total", operation="create_channel", outcome="ok") == before + 1
    assert counter("vg_telephony_pbx_requests_total", operation="create_channel", outcome="client_error") == refused + 1
