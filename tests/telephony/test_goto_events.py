"""GoTo's events: the notification channel kept alive (`channel`) and call states turned into the carrier
events the bridge knows, each once (`callstate`), against the fake GoTo and its documented frames."""

import asyncio
import json
import logging
import socket
import uuid

import pytest
import redis.asyncio

from telephony import carrier_events
from telephony.carriers.goto import wire
from telephony.carriers.goto.api import ApiConfig, GoToApi
from telephony.carriers.goto.callstate import CallStates, EventDeduplicator, SharedStore
from telephony.carriers.goto.channel import ChannelListener
from telephony.carriers.goto.config import GoToConnectError
from tests.telephony.conftest import REDIS_URL
from tests.telephony.fake_goto import FakeTokens

WAIT = 10.0


async def until(condition, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


class Gate:
    """An injected sleep: records each wait asked for, and returns at once (or, held, when released)."""

    def __init__(self, *, hold: bool = False):
        self.asked: list[float] = []
        self.hold = hold
        self._released = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        if self.hold:
            await self._released.wait()
            self._released.clear()
        else:
            await asyncio.sleep(0)

    def release(self) -> None:
        self._released.set()


def local_dedup() -> EventDeduplicator:
    name = uuid.uuid4().hex
    return EventDeduplicator(redis_url=None, ttl_seconds=60, key_prefix=name, local_name=name)


def local_store() -> SharedStore:
    return SharedStore(redis_url=None, local_name=uuid.uuid4().hex)


@pytest.fixture
async def api(fake_goto):
    client = GoToApi(ApiConfig.from_settings(), tokens=FakeTokens(fake_goto), account_key="acct-1")
    yield client
    await client.aclose()


class Listening:
    """A ChannelListener run as a task, with what its handler got."""

    def __init__(self, api, *, sleep=None, **options):
        self.notifications: list[wire.Notification] = []
        self.states: list[bool] = []

        async def handler(notification: wire.Notification) -> None:
            self.notifications.append(notification)

        self.listener = ChannelListener(
            api,
            nickname="worker-1",
            account_keys=["acct-1"],
            handler=handler,
            on_state=self.states.append,
            sleep=sleep or Gate(),
            rand=lambda: 1.0,
            **options,
        )
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> "Listening":
        self.task = asyncio.create_task(self.listener.run())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.listener.stop()
        await asyncio.wait_for(self.task, WAIT)


def broadcast(fake, data: dict) -> None:
    fake._in_loop(fake._broadcast, data, None)


# --- the notification channel ----------------------------------------------------------------------------


async def test_a_channel_is_created_subscribed_and_listened_on_with_nothing_sent(fake_goto, api):
    async with Listening(api) as listening:
        await until(lambda: listening.listener.connected.is_set())
        channel = listening.listener.channel
        broadcast(fake_goto, {"source": "call-events", "type": "call-state", "content": {"metadata": {}}})
        await until(lambda: len(listening.notifications) == 1)
    assert [(r.method, r.path) for r in fake_goto.requests] == [
        ("POST", "/notification-channel/v1/channels/worker-1"),
        ("POST", "/call-events/v1/subscriptions"),
        ("DELETE", f"/notification-channel/v1/channels/worker-1/{channel.channel_id}"),  # stop() deletes it
    ]
    assert fake_goto.requests[1].json["channelId"] == channel.channel_id
    [notification] = listening.notifications
    assert (notification.source, notification.type, notification.content) == (
        "call-events",
        "call-state",
        {"metadata": {}},
    )
    assert fake_goto.violations == []  # no Authorization header on the socket, no frame sent on it
    assert listening.states == [True, False]


async def test_refresh_required_puts_the_channel_and_keeps_it(fake_goto, api):
    async with Listening(api) as listening:
        await until(lambda: listening.listener.connected.is_set())
        channel_id = listening.listener.channel.channel_id
        fake_goto.send_housekeeping("WEBSOCKET_REFRESH_REQUIRED")
        await until(lambda: fake_goto.refreshes == [channel_id])
        assert listening.listener.channel.channel_id == channel_id
    assert listening.notifications == []  # housekeeping is not handed to the handler
    assert listening.listener.channels_created == 1


async def test_the_channel_is_refreshed_before_its_lifetime_runs_out(fake_goto, api):
    fake_goto.channel_lifetime = 1200  # read from the answer, never assumed
    gate = Gate(hold=True)
    async with Listening(api, sleep=gate) as listening:
        await until(lambda: gate.asked == [960.0])  # 80% of the lifetime
        assert fake_goto.refreshes == []
        gate.release()
        await until(lambda: len(fake_goto.refreshes) == 1)
        await until(lambda: gate.asked == [960.0, 960.0])  # the next refresh is scheduled the same way
    assert listening.listener.refreshes == 1


async def test_to_be_closed_builds_a_new_channel_and_subscribes_again(fake_goto, api):
    async with Listening(api) as listening:
        await until(lambda: listening.listener.connected.is_set())
        first = listening.listener.channel.channel_id
        fake_goto.send_housekeeping("WEBSOCKET_TO_BE_CLOSED")
        await until(lambda: listening.listener.channels_created == 2 and listening.listener.connected.is_set())
        second = listening.listener.channel.channel_id
    assert first != second
    subscriptions = [r.json["channelId"] for r in fake_goto.requests_to(r"/call-events/v1/subscriptions$")]
    assert subscriptions == [first, second]
    assert fake_goto.channels[first].deleted


async def test_a_lost_socket_builds_a_new_channel(fake_goto, api):
    async with Listening(api, backoff_initial=0.01) as listening:
        await until(lambda: listening.listener.connected.is_set())
        fake_goto.drop_sockets()
        await until(lambda: listening.listener.channels_created == 2 and listening.listener.connected.is_set())
        broadcast(fake_goto, {"source": "call-events", "type": "call-state", "content": {}})
        await until(lambda: len(listening.notifications) == 1)
    assert listening.states[:3] == [True, False, True]


async def test_a_failed_account_key_is_logged_and_subscribed_again(fake_goto, api, caplog):
    fake_goto.subscription_failures["acct-1"] = 2
    with caplog.at_level(logging.WARNING, logger="telephony.carriers.goto.channel"):
        async with Listening(api) as listening:
            await until(lambda: fake_goto.subscribed("acct-1") == 1)
    statuses = [r.status for r in fake_goto.requests_to(r"/call-events/v1/subscriptions$")]
    assert statuses == [207, 207, 207]  # refused twice for that key, then accepted
    failures = [r.getMessage() for r in caplog.records if "subscription of account acct-1" in r.getMessage()]
    assert len(failures) == 2 and all("403 AUTHZ_INSUFFICIENT_SCOPE" in m for m in failures)
    assert listening.listener.channels_created == 1


async def test_a_revoked_grant_stops_the_listener_without_retrying(fake_goto, fake_goto_tokens_revoked):
    api = fake_goto_tokens_revoked
    listening = Listening(api)
    await asyncio.wait_for(listening.listener.run(), WAIT)  # returns by itself
    assert listening.listener.stopped_reason == "goto_reconnect_required"
    assert fake_goto.requests == []


@pytest.fixture
async def fake_goto_tokens_revoked(fake_goto):
    tokens = FakeTokens(fake_goto)
    tokens.revoke()
    client = GoToApi(ApiConfig.from_settings(), tokens=tokens, account_key="acct-1")
    yield client
    await client.aclose()


async def test_frames_that_are_not_notifications_are_ignored(fake_goto, api):
    async with Listening(api) as listening:
        await until(lambda: listening.listener.connected.is_set())
        fake_goto.send_raw("not json")
        fake_goto.send_raw("[" * 100_000 + "]" * 100_000)  # deeper than the interpreter's stack
        fake_goto.send_raw(json.dumps({"data": {"source": "call-events"}}))  # no type
        broadcast(fake_goto, {"source": "WebRTC", "type": "incoming", "content": {"callId": "c1"}})
        await until(lambda: len(listening.notifications) == 1)
    assert listening.notifications[0].content == {"callId": "c1"}


async def test_an_unreachable_goto_is_retried_with_backoff_until_stopped(fake_goto):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ApiConfig(api_base_url=f"http://127.0.0.1:{port}", web_calls_base_url=f"http://127.0.0.1:{port}")
    api = GoToApi(config, tokens=FakeTokens(fake_goto), account_key="acct-1", sleep=Gate(), rand=lambda: 1.0)
    gate = Gate()
    listening = Listening(api, sleep=gate, backoff_initial=0.5, backoff_max=4.0)
    async with listening:
        await until(lambda: len(gate.asked) >= 4)
    await api.aclose()
    assert gate.asked[:4] == [0.5, 1.0, 2.0, 4.0]  # equal jitter at rand 1.0: the full exponential value


def test_notifications_are_read_with_or_without_the_data_envelope():
    wrapped = {"event": "Notification", "data": {"source": "call-events", "type": "call-state", "content": {"a": 1}}}
    bare = {"source": "WebRTC", "type": "incoming", "timestamp": "t", "content": {"callId": "c"}}
    assert wire.notification_of(wrapped) == wire.Notification("call-events", "call-state", {"a": 1}, "")
    assert wire.notification_of(bare) == wire.Notification("WebRTC", "incoming", {"callId": "c"}, "t")
    assert wire.notification_of({"data": {"source": "x"}}) is None
    assert wire.notification_of("text") is None


# --- call states ---------------------------------------------------------------------------------------


def state(space: str, sequence: int, kind: str, participants: list[tuple[str, str]]) -> dict:
    """A call-state content; participants as (id, status)."""
    return {
        "metadata": {"conversationSpaceId": space, "accountKey": "acct-1", "direction": "OUTBOUND"},
        "state": {
            "id": uuid.uuid4().hex,
            "type": kind,
            "sequenceNumber": sequence,
            "timestamp": f"2026-01-01T00:00:0{sequence}Z",
            "participants": [{"id": pid, "type": {"value": "X"}, "status": {"value": st}} for pid, st in participants],
        },
    }


class Translated:
    """CallStates with a local store and dedup, recording what it emits and what it asks to recover."""

    def __init__(self, recovered: dict | None = None, *, dedup=None, store=None):
        self.emitted: list[tuple[str, str, dict]] = []
        self.asked: list[tuple[str, int, int]] = []
        self.recovered = recovered or {}

        async def emit(call_id: str, name: str, data: dict) -> None:
            self.emitted.append((call_id, name, data))

        async def recover(space: str, first: int, upto: int) -> list:
            self.asked.append((space, first, upto))
            return [s for s in self.recovered.get(space, []) if first <= s["state"]["sequenceNumber"] <= upto]

        self.states = CallStates(
            emit=emit, recover=recover, dedup=dedup or local_dedup(), store=store or local_store(), ttl_seconds=60
        )

    def names(self) -> list[str]:
        return [name for _, name, _ in self.emitted]


async def test_a_placed_call_that_is_answered_then_hung_up_connects_and_ends_once():
    t = Translated()
    await t.states.match("leg-1", "call-1")
    ringing = state("s1", 1, "STARTING", [("leg-1", "CONNECTED"), ("them", "RINGING")])
    answered = state("s1", 2, "ACTIVE", [("leg-1", "CONNECTED"), ("them", "CONNECTED")])
    for content in (ringing, answered, answered, ringing):  # GoTo may send a state twice
        await t.states.handle(content)
    await t.states.handle(state("s1", 3, "ENDING", []))  # ENDING came with no participants on the live API
    assert t.emitted == [
        ("call-1", carrier_events.CONNECTED, {"call_id": "call-1", "answered_at": "2026-01-01T00:00:02Z"}),
        ("call-1", carrier_events.ENDED, {"call_id": "call-1", "reason": "hangup"}),
    ]


@pytest.mark.parametrize(("status", "reason"), [("RINGING", "no_answer"), ("BUSY", "busy"), ("SOMETHING", "error")])
async def test_a_call_never_answered_fails_with_the_other_partys_last_status(status, reason):
    t = Translated()
    await t.states.match("leg-1", "call-1")
    await t.states.handle(state("s1", 1, "STARTING", [("leg-1", "CONNECTED"), ("them", status)]))
    await t.states.handle(state("s1", 2, "ENDING", []))
    assert t.emitted == [("call-1", carrier_events.FAILED, {"call_id": "call-1", "reason": reason})]


async def test_a_gap_is_filled_over_rest_before_the_state_after_it():
    missed = state("s1", 2, "ACTIVE", [("leg-1", "CONNECTED"), ("them", "CONNECTED")])
    t = Translated({"s1": [missed]})
    await t.states.match("leg-1", "call-1")
    await t.states.handle(state("s1", 1, "STARTING", [("leg-1", "CONNECTED"), ("them", "RINGING")]))
    await t.states.handle(state("s1", 3, "ENDING", []))
    assert t.asked == [("s1", 2, 2)]
    assert t.names() == [carrier_events.CONNECTED, carrier_events.ENDED]  # not "failed": state 2 was recovered
    await t.states.handle(missed)  # arriving late after all: already handled
    assert t.names() == [carrier_events.CONNECTED, carrier_events.ENDED]


async def test_a_recovery_goto_refuses_is_logged_and_the_state_still_handled(caplog):
    t = Translated()

    async def refuse(space, first, upto):
        raise GoToConnectError("no", code="pbx_call_not_found")

    t.states.recover = refuse
    await t.states.match("leg-1", "call-1")
    with caplog.at_level(logging.WARNING, logger="telephony.carriers.goto.callstate"):
        await t.states.handle(state("s1", 3, "ENDING", []))
    assert "could not be recovered (pbx_call_not_found)" in caplog.text
    assert t.names() == []  # ENDING of a call we never saw a participant of: not ours


async def test_states_before_our_leg_id_is_known_are_caught_up_when_it_is():
    """GoTo's channel can be faster than the answer to our request to place the call."""
    t = Translated()
    await t.states.handle(state("s1", 1, "STARTING", [("leg-1", "CONNECTED"), ("them", "RINGING")]))
    await t.states.handle(state("s1", 2, "ACTIVE", [("leg-1", "CONNECTED"), ("them", "CONNECTED")]))
    assert t.emitted == []
    await t.states.match("leg-1", "call-1")
    assert t.names() == [carrier_events.CONNECTED]


async def test_states_of_calls_that_are_not_ours_emit_nothing():
    t = Translated()
    await t.states.match("leg-1", "call-1")
    await t.states.handle(state("s9", 1, "ACTIVE", [("someone", "CONNECTED"), ("else", "CONNECTED")]))
    await t.states.handle(state("s9", 2, "ENDING", []))
    assert t.emitted == []


async def test_a_transfer_is_confirmed_when_our_leg_leaves_and_a_merge_when_two_others_are_on():
    t = Translated()
    await t.states.match("leg-1", "call-1")
    await t.states.handle(state("s1", 1, "ACTIVE", [("leg-1", "CONNECTED"), ("caller", "CONNECTED")]))
    await t.states.expect("call-1", "merge", "call-2")
    await t.states.handle(state("s1", 2, "ACTIVE", [("leg-1", "CONNECTED"), ("caller", "CONNECTED")]))
    await t.states.handle(
        state("s1", 3, "ACTIVE", [("leg-1", "CONNECTED"), ("caller", "CONNECTED"), ("boss", "CONNECTED")])
    )
    await t.states.expect("call-1", "transfer", "+15550002222")
    await t.states.handle(state("s1", 4, "ACTIVE", [("caller", "CONNECTED"), ("target", "RINGING")]))
    assert t.emitted[1:] == [
        ("call-1", carrier_events.MERGED, {"call_id": "call-1", "refer_id": "call-2"}),
        ("call-1", carrier_events.TRANSFERRED, {"call_id": "call-1", "transferred_to": "+15550002222"}),
    ]


async def test_malformed_states_are_ignored_with_a_log_line(caplog):
    t = Translated()
    with caplog.at_level(logging.WARNING, logger="telephony.carriers.goto.callstate"):
        for bad in ({}, {"metadata": {"conversationSpaceId": "s"}, "state": {"type": "ACTIVE"}}, "x"):
            await t.states.handle(bad)
        await t.states.handle(
            {"metadata": {"conversationSpaceId": "s"}, "state": {"type": "ACTIVE", "sequenceNumber": True}}
        )
    assert t.emitted == [] and caplog.text.count("ignored") == 4


async def test_two_workers_with_redis_translate_each_state_once(redis_prefix):
    def worker() -> Translated:  # each worker its own clients and local stores; only Redis is shared
        dedup = EventDeduplicator(
            redis_url=REDIS_URL, ttl_seconds=60, key_prefix=f"{redis_prefix}:state", local_name=uuid.uuid4().hex
        )
        return Translated(dedup=dedup, store=SharedStore(redis_url=REDIS_URL, local_name=uuid.uuid4().hex))

    one, two = worker(), worker()
    try:
        await one.states.match("leg-1", f"{redis_prefix}-call")
        contents = [
            state(f"{redis_prefix}-s", 1, "STARTING", [("leg-1", "CONNECTED"), ("them", "RINGING")]),
            state(f"{redis_prefix}-s", 2, "ACTIVE", [("leg-1", "CONNECTED"), ("them", "CONNECTED")]),
            state(f"{redis_prefix}-s", 3, "ENDING", []),
        ]
        for content in contents:  # every worker's channel receives every state
            await one.states.handle(content)
            await two.states.handle(content)
    finally:
        for t in (one, two):
            await t.states.dedup.aclose()
            await t.states.store.aclose()
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        await client.delete("goto:leg:leg-1", f"goto:space:{redis_prefix}-s")
        await client.aclose()
    assert sorted(one.names() + two.names()) == sorted([carrier_events.CONNECTED, carrier_events.ENDED])


# --- claims --------------------------------------------------------------------------------------------


async def test_redis_dedup_claims_with_an_expiry(redis_prefix):
    dedup = EventDeduplicator(redis_url=REDIS_URL, ttl_seconds=90, key_prefix=redis_prefix, local_name=redis_prefix)
    try:
        assert await dedup.seen("s1:1") is False
        assert await dedup.seen("s1:1") is True
        assert await dedup.seen("s1:2") is False
    finally:
        await dedup.aclose()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        assert 0 < await client.ttl(f"{redis_prefix}:s1:1") <= 90
    finally:
        await client.aclose()


async def test_dedup_falls_back_to_the_process_when_redis_fails(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name = uuid.uuid4().hex
    dedup = EventDeduplicator(redis_url=f"redis://127.0.0.1:{port}/0", ttl_seconds=60, key_prefix=name, local_name=name)
    with caplog.at_level(logging.WARNING, logger="telephony.carriers.goto.callstate"):
        assert [await dedup.seen("s1:1"), await dedup.seen("s1:1")] == [False, True]
    await dedup.aclose()
    assert any("Redis failed" in r.getMessage() for r in caplog.records)


async def test_long_or_odd_ids_make_safe_keys():
    dedup = local_dedup()
    odd = "space with spaces\n" + "x" * 300
    assert [await dedup.seen(odd), await dedup.seen(odd), await dedup.seen(odd[:-1])] == [False, True, False]


async def test_the_media_worker_announces_its_goto_channels_on_the_system_group():
    from channels.layers import get_channel_layer

    from telephony.management.commands import run_media

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("system", channel)
    run_media._announce_subscription(True)
    run_media._announce_subscription(False)
    got = [await asyncio.wait_for(layer.receive(channel), WAIT) for _ in range(2)]
    assert [m["event"] for m in got] == ["pbx.events_connected", "pbx.events_disconnected"]
    assert got[0]["data"] == {"channel": "telephony.bridge"}
