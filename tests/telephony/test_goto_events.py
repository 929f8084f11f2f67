"""The events subscriber against the fake GoToConnect: once-only dispatch, reconnects, tokens, dedup."""

import asyncio
import contextlib
import logging
import socket
import uuid

import pytest
import redis.asyncio

from integrations.gateway.oauth import TokenCache
from telephony.carriers.goto.client import GoToConfig, TokenProvider
from telephony.carriers.goto.events import EventDeduplicator, EventSubscriber, PbxEvent
from tests.telephony.conftest import REDIS_URL

WAIT = 5.0


@pytest.fixture
def config(fake_goto) -> GoToConfig:
    return GoToConfig.from_settings()


def local_dedup(name: str | None = None) -> EventDeduplicator:
    """An in-process deduplicator with a store of its own (or one shared by name)."""
    name = name or f"dedup-{uuid.uuid4().hex}"
    return EventDeduplicator(redis_url="", ttl_seconds=60, key_prefix=name, local_name=name)


class Handled:
    """A handler that records the events it got."""

    def __init__(self):
        self.events: list[PbxEvent] = []

    async def __call__(self, event: PbxEvent) -> None:
        self.events.append(event)

    @property
    def ids(self) -> list[str]:
        return [event.id for event in self.events]


@contextlib.asynccontextmanager
async def running(config, handler, *, dedup=None, backoff_initial=0.01, tokens=None):
    subscriber = EventSubscriber(
        config,
        handler,
        tokens=tokens or TokenProvider(config, cache=TokenCache()),
        dedup=dedup or local_dedup(),
        backoff_initial=backoff_initial,
        backoff_max=0.05,
        rand=lambda: 1.0,
    )
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.connected.wait(), WAIT)
        yield subscriber
    finally:
        await subscriber.stop()
        await asyncio.wait_for(task, WAIT)


async def until(condition, what: str = "condition") -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.005)


async def test_an_event_is_handed_over_once_with_its_fields(fake_goto, config):
    handled = Handled()
    async with running(config, handled) as subscriber:
        event_id = fake_goto.emit(
            "call.ringing", {"call_id": "c1", "from": "+15551234567", "to": "+15559876543", "direction": "inbound"}
        )
        await until(lambda: handled.events)
        assert subscriber.last_event_id == event_id
    (event,) = handled.events
    logged = fake_goto.events[0]
    assert event == PbxEvent(
        id=event_id,
        name="call.ringing",
        call_id="c1",
        data={"call_id": "c1", "from": "+15551234567", "to": "+15559876543", "direction": "inbound"},
        timestamp=logged["timestamp"],
    )
    assert [s["since"] for s in fake_goto.subscriptions] == [None]


async def test_repeated_events_are_handled_once(fake_goto, config):
    handled = Handled()
    async with running(config, handled) as subscriber:
        first = fake_goto.emit("call.dialing", {"call_id": "c1"}, repeat=3)
        second = fake_goto.emit("call.connected", {"call_id": "c1", "answered_at": "2026-01-16T10:30:00Z"})
        await until(lambda: second in handled.ids)
        assert subscriber.received == 4
    assert handled.ids == [first, second]


async def test_events_emitted_while_disconnected_arrive_after_resubscribing(fake_goto, config):
    handled = Handled()
    async with running(config, handled, backoff_initial=0.3) as subscriber:
        first = fake_goto.emit("call.dialing", {"call_id": "c1"})
        await until(lambda: handled.ids == [first])
        fake_goto.drop_connections()
        await until(lambda: not subscriber.connected.is_set())
        assert fake_goto.subscriber_count() == 0
        missed = [fake_goto.emit("call.connected", {"call_id": "c1"}), fake_goto.emit("call.ended", {"call_id": "c1"})]
        await until(lambda: len(handled.ids) == 3)
        after = fake_goto.emit("call.ringing", {"call_id": "c2"})
        await until(lambda: len(handled.ids) == 4)
        assert subscriber.reconnects == 1
    assert handled.ids == [first, *missed, after]
    assert [s["since"] for s in fake_goto.subscriptions] == [None, first]


async def test_a_drop_during_a_burst_loses_and_doubles_nothing(fake_goto, config):
    handled = Handled()
    async with running(config, handled) as subscriber:
        emitted = [fake_goto.emit("call.dialing", {"call_id": f"c{n}"}) for n in range(30)]
        fake_goto.drop_connections()
        emitted += [fake_goto.emit("call.dialing", {"call_id": f"d{n}"}) for n in range(30)]
        await until(lambda: len(handled.ids) >= 60)
        await asyncio.sleep(0.05)  # room for a stray duplicate to show up
        assert subscriber.reconnects >= 1
    assert handled.ids == emitted


async def test_an_expired_token_closes_the_socket_and_the_subscriber_returns_with_a_new_one(fake_goto, config):
    handled = Handled()
    async with running(config, handled) as subscriber:
        fake_goto.expire_tokens()
        await until(lambda: len(fake_goto.subscriptions) == 2 and subscriber.connected.is_set())
        event_id = fake_goto.emit("call.ringing", {"call_id": "c1"})
        await until(lambda: handled.ids == [event_id])
        assert subscriber.reconnects == 1  # the 4001 close itself dropped the token: no refused handshake
    old, new = (s["token"] for s in fake_goto.subscriptions)
    assert old != new
    assert len(fake_goto.token_requests) == 2


async def test_a_token_refused_at_the_handshake_is_replaced(fake_goto, config):
    tokens = TokenProvider(config, cache=TokenCache())
    stale = await tokens.token()
    fake_goto.expire_tokens()
    async with running(config, Handled(), tokens=tokens) as subscriber:
        assert subscriber.reconnects == 1
    assert fake_goto.subscriptions[0]["token"] != stale
    assert len(fake_goto.token_requests) == 2


async def test_a_failing_handler_is_logged_and_the_subscription_goes_on(fake_goto, config, caplog):
    handled = Handled()

    async def handler(event: PbxEvent) -> None:
        if event.name == "call.ringing":
            raise RuntimeError("boom")
        await handled(event)

    with caplog.at_level(logging.ERROR, logger="telephony.carriers.goto.events"):
        async with running(config, handler) as subscriber:
            fake_goto.emit("call.ringing", {"call_id": "c-fail"})
            later = fake_goto.emit("call.ended", {"call_id": "c-ok", "reason": "hangup"})
            await until(lambda: handled.ids == [later])
            assert subscriber.reconnects == 0
    (record,) = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert "call.ringing" in record.getMessage() and "c-fail" in record.getMessage()
    assert record.exc_info[0] is RuntimeError


async def test_malformed_messages_are_skipped(fake_goto, config):
    handled = Handled()
    async with running(config, handled):
        fake_goto.send_raw("not json")
        fake_goto.send_raw('{"type": "event", "event": "call.ringing"}')  # no id
        fake_goto.send_raw('{"type": "error", "code": "oops"}')
        event_id = fake_goto.emit("call.dialing", {"call_id": "c1"})
        await until(lambda: handled.ids == [event_id])


async def test_an_unreachable_server_is_retried_with_backoff_until_stopped(config):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = GoToConfig(**{**config.__dict__, "websocket_url": f"ws://127.0.0.1:{port}/realtime"})
    subscriber = EventSubscriber(
        unreachable,
        Handled(),
        tokens=TokenProvider(config, cache=TokenCache()),
        dedup=local_dedup(),
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    task = asyncio.create_task(subscriber.run())
    await until(lambda: subscriber.reconnects >= 3)
    await subscriber.stop()
    await asyncio.wait_for(task, WAIT)
    assert not subscriber.connected.is_set()


async def test_stop_ends_run_and_closes_the_subscription(fake_goto, config):
    async with running(config, Handled()) as subscriber:
        await fake_goto.await_subscribers(1)
    assert not subscriber.connected.is_set()
    await until(lambda: fake_goto.subscriber_count() == 0)


async def test_subscribers_of_one_process_share_the_local_dedup_store(fake_goto, config):
    name = f"shared-{uuid.uuid4().hex}"
    first, second = Handled(), Handled()
    async with (
        running(config, first, dedup=local_dedup(name)) as one,
        running(config, second, dedup=local_dedup(name)) as two,
    ):
        emitted = [fake_goto.emit("call.dialing", {"call_id": f"c{n}"}) for n in range(10)]
        await until(lambda: one.received == 10 and two.received == 10)
    assert sorted(first.ids + second.ids) == sorted(emitted)


async def test_two_subscribers_with_redis_handle_each_event_once(fake_goto, config, redis_prefix):
    first, second = Handled(), Handled()

    def shared() -> EventDeduplicator:  # each worker its own client and local store; only Redis is shared
        return EventDeduplicator(
            redis_url=REDIS_URL, ttl_seconds=60, key_prefix=f"{redis_prefix}:event", local_name=uuid.uuid4().hex
        )

    async with running(config, first, dedup=shared()) as one, running(config, second, dedup=shared()) as two:
        emitted = [fake_goto.emit("call.dialing", {"call_id": f"c{n}"}, repeat=2) for n in range(10)]
        await until(lambda: one.received == 20 and two.received == 20)
    assert sorted(first.ids + second.ids) == sorted(emitted)


async def test_redis_dedup_claims_with_an_expiry(redis_prefix):
    dedup = EventDeduplicator(redis_url=REDIS_URL, ttl_seconds=90, key_prefix=redis_prefix, local_name=redis_prefix)
    try:
        assert await dedup.seen("evt-1") is False
        assert await dedup.seen("evt-1") is True
        assert await dedup.seen("evt-2") is False
    finally:
        await dedup.aclose()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        assert 0 < await client.ttl(f"{redis_prefix}:evt-1") <= 90
    finally:
        await client.aclose()


async def test_dedup_falls_back_to_the_process_when_redis_fails(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name = uuid.uuid4().hex
    dedup = EventDeduplicator(redis_url=f"redis://127.0.0.1:{port}/0", ttl_seconds=60, key_prefix=name, local_name=name)
    with caplog.at_level(logging.WARNING, logger="telephony.carriers.goto.events"):
        assert [await dedup.seen("evt-1"), await dedup.seen("evt-1")] == [False, True]
    await dedup.aclose()
    assert any("Redis failed" in r.getMessage() for r in caplog.records)


async def test_long_or_odd_event_ids_make_safe_keys():
    dedup = local_dedup()
    odd = "evt with spaces\n" + "x" * 300
    assert [await dedup.seen(odd), await dedup.seen(odd), await dedup.seen(odd[:-1])] == [False, True, False]


async def test_the_state_listener_hears_the_subscription_go_down_and_come_back(fake_goto, config):
    states: list[bool] = []
    subscriber = EventSubscriber(
        config,
        Handled(),
        tokens=TokenProvider(config, cache=TokenCache()),
        dedup=local_dedup(),
        backoff_initial=0.01,
        backoff_max=0.05,
        rand=lambda: 1.0,
        on_state=states.append,
    )
    task = asyncio.create_task(subscriber.run())
    try:
        await until(lambda: states == [True])
        fake_goto.drop_connections()
        await until(lambda: states == [True, False, True])
    finally:
        await subscriber.stop()
        await asyncio.wait_for(task, WAIT)
    assert states[-1] is False  # stopped: down, once


async def test_the_media_worker_announces_its_subscription_on_the_system_group():
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


async def test_events_sent_while_a_subscriber_that_has_seen_none_reconnects_are_replayed(fake_goto, config):
    """The acknowledgement's cursor is where a fresh subscription begins: nothing after it is lost."""
    handled = Handled()
    async with running(config, handled) as subscriber:
        assert subscriber.last_event_id == ""  # the log was empty when we subscribed
        fake_goto.drop_connections()
        emitted = [fake_goto.emit("call.dialing", {"call_id": f"c{n}"}) for n in range(5)]
        await until(lambda: handled.ids == emitted)
    assert [s["since"] for s in fake_goto.subscriptions][-1] == ""
