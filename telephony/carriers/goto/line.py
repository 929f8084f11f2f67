"""One connected GoTo account in one media worker: its channel, device and extension, and its calls.

`GoToLine` is the carrier (`telephony.carriers.base.Carrier`) the bridge drives for the calls of that
account, and it keeps the account's notification channel (`ChannelListener`) alive: on every new
channel it registers a web-calls device bound to the channel and the account's extension on it (G17's
flow: channel, device, extension, calls). What arrives on the channel goes to `CallStates` (call
states) or to `on_incoming` (a web call ringing on our extension, see `inbound.py`).
"""

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telephony.carriers.goto import callstate, inbound, wire
from telephony.carriers.goto.api import GoToApi
from telephony.carriers.goto.channel import ChannelListener
from telephony.carriers.goto.config import E164, EXTENSION_PATTERN, GoToConnectError, _invalid

logger = logging.getLogger(__name__)

APP_ID = "voice-gateway"
APP_VERSION = "1"
EXT_PREFIX = "ext:"
RINGING_KEPT_SECONDS = 600.0


@dataclass(frozen=True)
class Account:
    """A tenant's connected GoTo account and the line the agent answers on (the OAuth grant's record)."""

    tenant_id: str
    connection_id: str
    account_key: str
    organization_id: str
    extension: str
    line_id: str = ""


def dial_string(target: str) -> str:
    """GoTo's dialString: an E.164 number as is, `ext:1001` as the extension 1001."""
    value = target.strip() if isinstance(target, str) else ""
    if value.startswith(EXT_PREFIX) and EXTENSION_PATTERN.match(value.removeprefix(EXT_PREFIX)):
        return value.removeprefix(EXT_PREFIX)
    if E164.match(value):
        return value
    raise _invalid(
        f"Cannot dial {target!r}: use an E.164 number (+15551234567) or a PBX extension (ext:1001).",
        "invalid_dial_string",
        "dial_string",
    )


IncomingHandler = Callable[["GoToLine", inbound.Incoming], Awaitable[None]]


class GoToLine:
    """The carrier for one account's calls, and the keeper of its notification channel."""

    def __init__(
        self,
        account: Account,
        api: GoToApi,
        *,
        worker_id: str,
        emit: callstate.Emit,
        on_incoming: IncomingHandler,
        dedup: callstate.EventDeduplicator,
        store: callstate.SharedStore,
        ttl_seconds: int = 3600,
        listener_options: dict | None = None,
    ):
        self.account, self.api, self.ttl = account, api, ttl_seconds
        self.on_incoming = on_incoming
        # One device per worker and account: GoTo rings every device of the extension, the first worker
        # to claim the call answers it.
        self.device_id = f"{APP_ID}-{worker_id}-{uuid.uuid5(uuid.NAMESPACE_URL, account.connection_id).hex[:12]}"
        self.states = callstate.CallStates(
            emit=emit, recover=api.recover_states, dedup=dedup, store=store, ttl_seconds=ttl_seconds
        )
        self._ringing: dict[str, tuple[float, inbound.Incoming]] = {}  # announced, not answered (monotonic time)
        self.listener = ChannelListener(
            api,
            nickname=self.device_id,
            account_keys=[account.account_key],
            handler=self._on_notification,
            on_ready=self._register_device,
            **(listener_options or {}),
        )

    async def run(self) -> None:
        await self.listener.run()

    async def stop(self) -> None:
        await self.listener.stop()

    async def aclose(self) -> None:
        """The bridge's `Carrier.aclose`: the line outlives its calls, so nothing is closed here."""

    async def shutdown(self) -> None:
        """Stop listening, remove the device at GoTo, close the HTTP client (the worker is stopping)."""
        await self.listener.stop()
        try:
            await self.api.delete_device(self.device_id)
        except GoToConnectError as exc:
            logger.info("GoTo device %s not removed (%s)", self.device_id, exc.code)
        await self.api.aclose()

    @property
    def channel_id(self) -> str:
        channel = self.listener.channel
        if channel is None:
            raise GoToConnectError("GoTo's notification channel is not open.", code="pbx_unavailable", retryable=True)
        return channel.channel_id

    # --- the channel -------------------------------------------------------------------------------
    async def _register_device(self, channel: wire.Channel) -> None:
        if self.listener.channels_created > 1:  # the device still names the old channel: register it afresh
            await self.api.delete_device(self.device_id)
        await self.api.create_device(
            device_id=self.device_id, channel_id=channel.channel_id, app_id=APP_ID, app_version=APP_VERSION
        )
        await self.api.add_extension(
            self.device_id, organization_id=self.account.organization_id, extension=self.account.extension
        )
        await self.states.catch_up()  # what our calls' states said while there was no channel

    async def _on_notification(self, notification: wire.Notification) -> None:
        if notification.source == wire.SOURCE_CALL_EVENTS and notification.type == wire.TYPE_CALL_STATE:
            await self.states.handle(notification.content)
            return
        incoming = inbound.incoming_of(notification)
        if incoming is not None:
            self._remember_ringing(incoming)
            await self.on_incoming(self, incoming)
            return
        logger.info("GoTo notification %s/%s ignored", notification.source, notification.type)

    # --- the carrier -------------------------------------------------------------------------------
    def dial_string(self, target: str) -> str:
        return dial_string(target)

    async def create_call(self, *, dial_string: str, caller_id: str, leg: inbound.OfferAnswerLeg) -> str:
        """Place a web call with `leg`'s offer; GoTo's answer completes the leg. Returns the call's id.

        GoTo places web calls from the device's extension: the caller id is the line's own, `caller_id`
        is not sent (no documented field carries it).
        """
        offer = await leg.offer()
        placed = await self.api.place_call(
            device_id=self.device_id,
            organization_id=self.account.organization_id,
            extension=self.account.extension,
            dial_string=dial_string,
            channel_id=self.channel_id,
            sdp=offer,
        )
        await self.states.match(placed.leg_id, placed.call_id)
        try:
            await leg.accept_answer(placed.sdp)
        except BaseException:  # GoTo's answer is unusable: the callee must not be left ringing
            with contextlib.suppress(Exception):
                await self.api.hangup(placed.call_id)
            raise
        return placed.call_id

    async def answer_leg(self, call_id: str, leg: inbound.OfferAnswerLeg) -> None:
        """Answer a web call ringing on our device with its media on `leg` (unverified: see inbound.py)."""
        ringing = self._ringing.pop(call_id, None)
        incoming = ringing[1] if ringing is not None else None
        if incoming is None:
            raise GoToConnectError(f"No web call {call_id} is ringing on this device.", code="pbx_call_not_found")
        leg_id = await inbound.answer(self.api, incoming, leg, channel_id=self.channel_id)
        await self.states.match(leg_id, call_id)

    def _remember_ringing(self, incoming: inbound.Incoming) -> None:
        """Keep an announced call until answered; calls other workers took are dropped after RINGING_KEPT_SECONDS."""
        now = time.monotonic()
        for call_id, (since, _) in list(self._ringing.items()):
            if now - since > RINGING_KEPT_SECONDS:
                del self._ringing[call_id]
        self._ringing.setdefault(incoming.call_id, (now, incoming))

    def forget(self, call_id: str) -> None:
        """A ringing call this worker will not answer (another took it, or it was refused)."""
        self._ringing.pop(call_id, None)

    async def hangup(self, call_id: str) -> None:
        await self.api.hangup(call_id)

    async def hold(self, call_id: str) -> None:
        await self.api.hold(call_id)

    async def resume(self, call_id: str) -> None:
        await self.api.unhold(call_id)

    # A transfer or merge is confirmed by the call states that follow it (callstate.py): the expectation
    # is noted before the request, since GoTo's states may arrive before its answer does.
    async def blind_transfer(self, call_id: str, target: str) -> None:
        await self._expecting(call_id, "transfer", target, self.api.blind_transfer(call_id, target))

    async def warm_transfer(self, call_id: str, consult_call_id: str) -> None:
        await self._expecting(call_id, "transfer", "", self.api.warm_transfer(call_id, consult_call_id))

    async def merge(self, call_id: str, consult_call_id: str) -> None:
        await self._expecting(call_id, "merge", consult_call_id, self.api.merge(call_id, consult_call_id))

    async def _expecting(self, call_id: str, kind: str, target: str, request: Awaitable[None]) -> None:
        await self.states.expect(call_id, kind, target)
        try:
            await request
        except BaseException:
            await self.states.unexpect(call_id)
            raise
