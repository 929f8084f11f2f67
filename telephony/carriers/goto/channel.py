"""One GoTo notification channel kept alive, with its call-events subscription, for one account.

GoTo's documented lifecycle (docs/telephony.md#goto-connect):

1. `POST /notification-channel/v1/channels/{nickname}` {"channelType": "WebSockets"} -> 201 with the
   channel's id, its `channelData.channelURL` and its `channelLifetime` (seconds);
2. the WebSocket at `channelURL` is opened with no header and nothing is ever sent on it (WebSocket
   pings keep it checked); every frame is {"data": {"source", "type", "content"}};
3. `POST /call-events/v1/subscriptions` for the account keys -> 207 with a status per key: a key that
   failed is logged with GoTo's error and subscribed again after a backoff, never silently dropped;
4. `WEBSOCKET_REFRESH_REQUIRED`, and a timer at 80% of the lifetime, -> PUT the channel (refresh);
5. `WEBSOCKET_TO_BE_CLOSED` or a lost socket -> a new channel and new subscriptions (and `on_ready`
   again: the account registers its device on the new channel);
6. `stop()` -> DELETE the channel.

A grant that is revoked (the token source raises `goto_reconnect_required`) ends `run()`: nothing is
retried until the tenant connects GoTo again.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from core import jsonsafe
from integrations.config import RetryPolicy
from integrations.gateway.retry import backoff
from telephony.carriers.goto import metrics, wire
from telephony.carriers.goto.api import GoToApi
from telephony.carriers.goto.config import GoToConnectError

logger = logging.getLogger(__name__)

PING_INTERVAL_SECONDS = 8.0  # GoTo's call-events sample pings every 8 s and gives up after missed pongs
PING_TIMEOUT_SECONDS = 24.0
CLOSE_TIMEOUT_SECONDS = 2.0
REFRESH_AT = 0.8  # of the channel's lifetime
RECONNECT_REQUIRED = "goto_reconnect_required"

Handler = Callable[[wire.Notification], Awaitable[None]]


class ChannelListener:
    """Creates, subscribes, listens on, refreshes and rebuilds one account's notification channel."""

    def __init__(
        self,
        api: GoToApi,
        *,
        nickname: str,
        account_keys: list[str],
        handler: Handler,
        on_ready: Callable[[wire.Channel], Awaitable[None]] | None = None,
        on_state: Callable[[bool], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ):
        self.api, self.nickname, self.account_keys = api, nickname, list(account_keys)
        self.handler, self.on_ready, self.on_state = handler, on_ready, on_state
        self.sleep, self.rand = sleep, rand
        self.backoff = RetryPolicy(max_attempts=0, initial_backoff=backoff_initial, max_backoff=backoff_max)
        self.channel: wire.Channel | None = None
        self.connected = asyncio.Event()
        self.channels_created = 0
        self.refreshes = 0
        self.stopped_reason: str | None = None
        self._stopping = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._helpers: set[asyncio.Task] = set()

    # --- lifecycle -----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Until `stop()` (or a revoked grant): one channel after another."""
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    reason = await self._one_channel()
                except GoToConnectError as exc:
                    if exc.code == RECONNECT_REQUIRED:
                        logger.warning("GoTo account needs reconnecting: its listener stops (%s)", exc.message)
                        self.stopped_reason = RECONNECT_REQUIRED
                        return
                    logger.warning("GoTo notification channel: %s (%s)", exc.message, exc.code)
                    reason = "api_error"
                if self._stopping.is_set():
                    break
                failures = 0 if reason == "rebuild" else failures + 1
                metrics.pbx_event_reconnects_total.labels(reason).inc()
                delay = self._delay(failures)
                logger.info("GoTo notification channel: a new one in %.2f s (%s)", delay, reason)
                await self._wait_or_stop(delay)
        finally:
            await self._cancel_helpers()
            await self._delete_channel()

    async def stop(self) -> None:
        """End `run()`: closes the socket and interrupts a wait; the channel is deleted at GoTo."""
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()

    def _delay(self, failures: int) -> float:
        if failures == 0:  # GoTo asked for a new channel, or a working one dropped: come back soon
            return self.backoff.initial_backoff * self.rand()
        return backoff(self.backoff, failures, self.rand, "equal")

    async def _wait_or_stop(self, seconds: float) -> None:
        waiter = asyncio.ensure_future(self._stopping.wait())
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, sleeper):
            task.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)

    # --- one channel ---------------------------------------------------------------------------------
    async def _one_channel(self) -> str:
        """Create, subscribe and listen until the socket ends: "rebuild" when GoTo asked, else why it ended."""
        await self._cancel_helpers()
        await self._delete_channel()
        self.channel = channel = await self.api.create_channel(self.nickname)
        self.channels_created += 1
        logger.info("GoTo notification channel %s created (lifetime %s s)", channel.channel_id, channel.lifetime)
        try:
            async with connect(
                channel.url,
                open_timeout=self.api.config.timeout_seconds,
                ping_interval=PING_INTERVAL_SECONDS,
                ping_timeout=PING_TIMEOUT_SECONDS,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
            ) as ws:
                self._ws = ws
                if self._stopping.is_set():
                    return "stopped"
                # Listening before subscribing: nothing GoTo sends for the new subscription is missed.
                await self._subscribe(self.account_keys)
                if self.on_ready is not None:
                    await self.on_ready(channel)
                self._set_connected(True)
                self._helper(self._refresh_before_expiry(channel.lifetime))
                return await self._receive(ws)
        except ConnectionClosed:
            return "connection_lost"
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            logger.warning("GoTo notification channel: cannot connect (%s)", type(exc).__name__)
            return "unreachable"
        finally:
            self._ws = None
            self._set_connected(False)

    async def _receive(self, ws: ClientConnection) -> str:
        async for raw in ws:
            notification = wire.notification_of(_decode(raw))
            if notification is None:
                logger.warning("GoTo notification channel: ignored a frame that is not a notification")
                continue
            if notification.type == wire.WEBSOCKET_REFRESH_REQUIRED:
                self._helper(self._refresh())
            elif notification.type == wire.WEBSOCKET_TO_BE_CLOSED:
                logger.info("GoTo notification channel: GoTo will close it; building a new one")
                return "rebuild"
            else:
                await self._dispatch(notification)
        return "connection_lost"

    async def _dispatch(self, notification: wire.Notification) -> None:
        try:
            await self.handler(notification)
        except Exception:
            logger.exception("GoTo notification %s/%s: handler failed", notification.source, notification.type)

    # --- subscriptions -------------------------------------------------------------------------------
    async def _subscribe(self, keys: list[str]) -> None:
        assert self.channel is not None
        statuses = await self.api.subscribe(self.channel.channel_id, keys)
        failed = [s for s in statuses if not s.ok]
        for status in failed:
            logger.warning(
                "GoTo call-events subscription of account %s failed: %s %s %s",
                status.account_key,
                status.status,
                status.error_code,
                status.message[:200],
            )
        if failed:
            self._helper(self._subscribe_again([s.account_key for s in failed]))

    async def _subscribe_again(self, keys: list[str]) -> None:
        attempt = 0
        while keys and not self._stopping.is_set():
            attempt += 1
            await self.sleep(backoff(self.backoff, attempt, self.rand, "equal"))
            if self.channel is None:
                return
            try:
                statuses = await self.api.subscribe(self.channel.channel_id, keys)
            except GoToConnectError as exc:
                logger.warning("GoTo call-events subscription retry failed (%s)", exc.code)
                continue
            keys = [s.account_key for s in statuses if not s.ok]
            for status in statuses:
                if not status.ok:
                    logger.warning(
                        "GoTo call-events subscription of account %s failed again: %s %s",
                        status.account_key,
                        status.status,
                        status.error_code,
                    )

    # --- refresh -------------------------------------------------------------------------------------
    async def _refresh_before_expiry(self, lifetime: int) -> None:
        while True:
            await self.sleep(lifetime * REFRESH_AT)
            lifetime = await self._refresh() or lifetime

    async def _refresh(self) -> int | None:
        channel = self.channel
        if channel is None:
            return None
        try:
            lifetime = await self.api.refresh_channel(self.nickname, channel.channel_id)
        except GoToConnectError as exc:
            logger.warning("GoTo notification channel refresh failed (%s): building a new one", exc.code)
            if self._ws is not None:
                await self._ws.close()
            return None
        self.refreshes += 1
        return lifetime

    # --- helpers -------------------------------------------------------------------------------------
    def _helper(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _cancel_helpers(self) -> None:
        tasks = list(self._helpers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _delete_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is None:
            return
        with contextlib.suppress(GoToConnectError):
            await self.api.delete_channel(self.nickname, channel.channel_id)

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
            except Exception:  # a listener must not break the channel
                logger.exception("GoTo notification channel: the state listener failed")


def _decode(raw: str | bytes) -> Any:
    """A frame's JSON, or None for one that is not JSON or that nests too deep to handle safely."""
    try:
        return jsonsafe.loads(raw)
    except ValueError:
        return None
