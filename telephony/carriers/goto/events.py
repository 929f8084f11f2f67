"""GoToConnect's call events: one WebSocket subscription that hands each event to a handler once.

GoToConnect delivers events at least once: it may send one twice, and after a reconnect it replays
everything after the `since` id we subscribe with. `EventSubscriber` keeps the last id it saw, so a
dropped connection loses nothing, and asks `EventDeduplicator` before handling, so nothing is handled
twice, not even when several media workers are subscribed at once (the ids are claimed in Redis).

    subscriber = EventSubscriber(GoToConfig.from_settings(), handle_event)
    task = asyncio.create_task(subscriber.run())
    ...
    await subscriber.stop()

Events of one subscription are handled in order, one at a time: a handler that needs long work (a
whole call) should start its own task and return.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import redis
from django.core.cache.backends.locmem import LocMemCache
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from integrations.config import RetryPolicy
from integrations.gateway.retry import backoff
from telephony.carriers.goto import legacy_wire as wire
from telephony.carriers.goto import metrics
from telephony.carriers.goto.client import GoToConfig, GoToConnectError, TokenProvider

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis

logger = logging.getLogger(__name__)

_FROM_SETTINGS: Any = object()
PING_INTERVAL_SECONDS = 20.0  # the WebSocket protocol's own ping/pong keeps the connection checked
PING_TIMEOUT_SECONDS = 20.0
CLOSE_TIMEOUT_SECONDS = 2.0
LOCAL_DEDUP_NAME = "goto-event-dedup"  # LocMemCache instances with one name share their store
LOCAL_DEDUP_MAX_ENTRIES = 100_000
MAX_KEY_ID_CHARS = 128


@dataclass(frozen=True)
class PbxEvent:
    """One event from GoToConnect: `name` is the provider's event name (see `wire`), `data` its payload."""

    id: str
    name: str
    call_id: str
    data: dict
    timestamp: str


class EventDeduplicator:
    """Claims event ids: `seen(id)` is False exactly once per id within the dedup window.

    With REDIS_URL the claim is a Redis SET NX EX, shared by every process; without it, an in-process
    TTL'd LRU (Django's LocMemCache, which is one: it culls least recently used keys). If Redis fails,
    the claim falls back to this process (an event may then be handled once per process, never lost).
    """

    def __init__(
        self,
        *,
        redis_url: str | None = _FROM_SETTINGS,
        ttl_seconds: int | None = None,
        key_prefix: str = "goto:event",
        local_name: str = LOCAL_DEDUP_NAME,
    ):
        from django.conf import settings

        self.redis_url = settings.REDIS_URL if redis_url is _FROM_SETTINGS else redis_url
        self.ttl = int(ttl_seconds or settings.GOTO_EVENT_DEDUP_SECONDS)
        self.key_prefix = key_prefix
        self._local = LocMemCache(
            local_name, {"TIMEOUT": self.ttl, "OPTIONS": {"MAX_ENTRIES": LOCAL_DEDUP_MAX_ENTRIES}}
        )
        self._redis: AsyncRedis | None = None

    def _key(self, event_id: str) -> str:
        if len(event_id) <= MAX_KEY_ID_CHARS and event_id.isprintable() and " " not in event_id:
            return f"{self.key_prefix}:{event_id}"
        return f"{self.key_prefix}:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"

    async def seen(self, event_id: str) -> bool:
        """Whether `event_id` was already claimed; claims it when not."""
        key = self._key(event_id)
        if self.redis_url:
            try:
                return not await self._client(self.redis_url).set(key, 1, nx=True, ex=self.ttl)
            except redis.RedisError:
                logger.warning("PBX event dedup in process only: Redis failed", exc_info=True)
        return not self._local.add(key, 1, self.ttl)

    def _client(self, redis_url: str) -> "AsyncRedis":
        if self._redis is None:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(redis_url)
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class EventSubscriber:
    """Keeps one subscription to GoToConnect's call events alive and dispatches every event once.

    `run()` connects (Bearer token at the handshake), subscribes with `since` = the last event id seen,
    and hands events to `handler` until `stop()`. A lost connection is reopened after a jittered
    exponential backoff (reset once a subscription succeeds); a refused or expired token (HTTP 401 at the
    handshake, close code 4001 later) is dropped and a new one fetched. A handler that raises is logged
    with the event's name and call id, and the subscription goes on.
    """

    def __init__(
        self,
        config: GoToConfig,
        handler: Callable[[PbxEvent], Awaitable[None]],
        *,
        tokens: TokenProvider | None = None,
        dedup: EventDeduplicator | None = None,
        backoff_max: float = 30.0,
        backoff_initial: float = 0.5,
        rand: Callable[[], float] = random.random,
        on_state: Callable[[bool], None] | None = None,
    ):
        self.config = config
        self.on_state = on_state  # told True when subscribed, False when the subscription is lost
        self.handler = handler
        self.tokens = tokens or TokenProvider(config)
        self._owns_dedup = dedup is None  # a deduplicator passed in may be shared: its owner closes it
        self.dedup = dedup or EventDeduplicator(ttl_seconds=config.event_dedup_seconds)
        self.backoff = RetryPolicy(max_attempts=0, initial_backoff=backoff_initial, max_backoff=backoff_max)
        self.rand = rand
        self.connected = asyncio.Event()  # set while subscribed
        self.last_event_id: str | None = None
        self.reconnects = 0
        self.received = 0  # event messages received, duplicates included
        self._stopping = asyncio.Event()
        self._ws: ClientConnection | None = None

    async def run(self) -> None:
        """Subscribe and dispatch until `stop()`, reconnecting after failures; a stopped subscriber stays stopped."""
        failures = 0
        try:
            while not self._stopping.is_set():
                subscribed, reason = await self._session()
                if self._stopping.is_set():
                    break
                failures = 0 if subscribed else failures + 1
                self.reconnects += 1
                metrics.pbx_event_reconnects_total.labels(reason).inc()
                delay = self._delay(failures)
                logger.info("PBX events: reconnecting in %.2f s (%s)", delay, reason)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            if self._owns_dedup:
                await self.dedup.aclose()

    async def stop(self) -> None:
        """End `run()`: closes the connection and interrupts a backoff wait."""
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()

    def _delay(self, failures: int) -> float:
        if failures == 0:  # a working subscription dropped: come back soon, spread over the workers
            return self.backoff.initial_backoff * self.rand()
        return backoff(self.backoff, failures, self.rand, "equal")

    # --- one connection ----------------------------------------------------------------------------------
    async def _session(self) -> tuple[bool, str]:
        """Connect, subscribe and dispatch until the connection ends: (whether it subscribed, why it ended)."""
        try:
            token = await self.tokens.token()
        except GoToConnectError as exc:
            logger.warning("PBX events: no access token (%s)", exc.message)
            return False, "no_token"
        headers = {"Authorization": f"{wire.AUTH_SCHEME} {token}"}
        subscribed = False
        try:
            async with connect(
                self.config.websocket_url,
                additional_headers=headers,
                open_timeout=self.config.timeout_seconds,
                ping_interval=PING_INTERVAL_SECONDS,
                ping_timeout=PING_TIMEOUT_SECONDS,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
            ) as ws:
                self._ws = ws
                if self._stopping.is_set():
                    return False, "stopped"
                subscribed = await self._subscribe(ws)
                if subscribed:
                    await self._receive(ws)
            return subscribed, self._closed_reason(ws, token)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in wire.AUTH_FAILURE_STATUSES:
                self.tokens.invalidate(token)
                return False, "token_rejected"
            logger.warning("PBX events: handshake refused with HTTP %s", status)
            return False, "handshake_refused"
        except ConnectionClosed:
            return subscribed, self._closed_reason(self._ws, token)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            logger.warning("PBX events: cannot connect (%s)", type(exc).__name__)
            return False, "unreachable"
        finally:
            self._ws = None
            self._set_connected(False)

    def _closed_reason(self, ws: ClientConnection | None, token: str) -> str:
        code = ws.close_code if ws is not None else None
        if code == wire.CLOSE_TOKEN_EXPIRED:
            self.tokens.invalidate(token)
            return "token_expired"
        return "closed" if code in (1000, 1001) else "connection_lost"

    async def _subscribe(self, ws: ClientConnection) -> bool:
        """Send the subscription and wait for its acknowledgement; events arriving first are handled after it."""
        await ws.send(json.dumps(wire.subscribe_message(self.last_event_id)))
        early: list[Any] = []
        async with asyncio.timeout(self.config.timeout_seconds):
            while True:
                message = _decode(await ws.recv())
                kind = wire.message_type(message)
                if kind == wire.MSG_ERROR:
                    logger.warning("PBX events: subscription refused: %.200s", json.dumps(message))
                    return False
                if kind == wire.MSG_SUBSCRIBED:
                    if self.last_event_id is None:  # nothing seen yet: remember where this subscription began
                        self.last_event_id = wire.subscribed_cursor(message)
                    break
                early.append(message)
        self._set_connected(True)
        logger.info("PBX events: subscribed (since %s)", self.last_event_id)
        for message in early:  # outside the timeout: a slow handler must not be cancelled by it
            await self._on_message(message)
        return True

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            await self._on_message(_decode(raw))

    def _set_connected(self, live: bool) -> None:
        if live == self.connected.is_set():
            return
        if live:
            self.connected.set()
            metrics.pbx_event_connected.inc()
        else:
            self.connected.clear()
            metrics.pbx_event_connected.dec()
        if self.on_state is not None:
            try:
                self.on_state(live)
            except Exception:  # a listener must not break the subscription
                logger.exception("PBX events: the state listener failed")

    # --- one message -------------------------------------------------------------------------------------
    async def _on_message(self, message: Any) -> None:
        fields = wire.event_fields(message)
        if fields is None:
            kind = wire.message_type(message)
            if kind == wire.MSG_ERROR:
                logger.warning("PBX events: error message: %.200s", json.dumps(message))
            elif kind != wire.MSG_SUBSCRIBED:
                logger.warning("PBX events: ignored a message that is not a well-formed event (type %r)", kind)
            return
        self.received += 1
        event = PbxEvent(**asdict(fields))
        label = event.name if event.name in wire.EVENT_NAMES else "other"
        if await self.dedup.seen(event.id):
            metrics.pbx_events_total.labels(label, "duplicate").inc()
        else:
            await self._dispatch(event, label)
        self.last_event_id = event.id

    async def _dispatch(self, event: PbxEvent, label: str) -> None:
        try:
            await self.handler(event)
        except Exception:
            metrics.pbx_events_total.labels(label, "handler_error").inc()
            logger.exception(
                "PBX event %s of call %s (event id %s): handler failed", event.name, event.call_id, event.id
            )
            return
        metrics.pbx_events_total.labels(label, "handled").inc()


def _decode(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
