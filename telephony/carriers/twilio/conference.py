"""A conference on a Twilio call with the agent staying on the line: the bridge is the conference (docs/telephony.md#twilio).

Twilio's two-way Media Stream exists only as <Connect><Stream>: a call moved into <Dial><Conference> loses
its stream (and the agent with it), and a conference participant cannot be a websocket. So
`TwilioCarrier.create_call` dials the supervisor with <Connect><Stream> to our stream URL and a consult
token naming the call; the supervisor's stream is attached to the running bridge of that call as its
consult leg (`ConsultHost.attach`), and `merge` joins the two legs (`TwilioStreamLeg.join`), which mix the
three parties' audio in the bridge's process.

`ConsultHost` is one running call's side of it: the consult CallSids it dialled (`expect`), the one
supervisor's stream it takes (`attach`: a CallSid it dialled, no other stream attached), the merge, the
supervisor leaving (the call goes on with the caller and the agent, `call.resumed` with reason
`supervisor_left`), and the end of the call (every supervisor's call it dialled is hung up through the REST
API and its stream closed).

Where the supervisor's stream lands: behind a load balancer, in any web process. `local_host(call_id)` is
this process's registry of running calls (the fast path). Elsewhere, the stream's consumer relays through
the channel layer to the consumer running the call, whose channel name the shared cache holds under
`HOST_KEY`: `twilio.consult.attach` (answered `twilio.consult.attached` or `.refused`), `.media` and `.stop`
towards the call, `.send` (a Media Streams message for Twilio) and `.close` back. Direct channels, not
the call's bus group: the group also feeds every live view of the call, which must not get 50 audio
messages a second.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache

from calls.models import CallEvent
from calls.selectors import BridgeCall
from calls.state_machine import CallStatus
from telephony import services
from telephony.carriers.twilio.rest import TwilioError
from telephony.carriers.twilio.stream import TwilioStreamLeg

if TYPE_CHECKING:
    from telephony.bridge import CallBridge

logger = logging.getLogger(__name__)

HOST_KEY = "twilio:host:{call_id}"  # the channel of the consumer running the call's bridge, for relayed consult legs
LIVE = (CallStatus.CONNECTED, CallStatus.CONVERSING, CallStatus.TRANSFERRING, CallStatus.ON_HOLD)
SUPERVISOR_LEFT = "supervisor_left"

Close = Callable[[], Awaitable[None]]


@dataclass
class _Guest:
    call_sid: str
    leg: TwilioStreamLeg
    close: Close  # ends the supervisor's stream (its socket here, or the relaying process's)


class ConsultHost:
    """One running Twilio call's consult legs: dialled, attached, merged, left, hung up (see the module docstring)."""

    def __init__(
        self, *, call: BridgeCall, leg: TwilioStreamLeg, bridge: "CallBridge", hang_up: Callable[[str], Awaitable[None]]
    ):
        self.call, self.leg, self.bridge = call, leg, bridge
        self._hang_up = hang_up
        self._dialled: dict[str, asyncio.Future[_Guest]] = {}  # consult CallSids still up, with their stream
        self._guest: _Guest | None = None
        self._merged: str | None = None  # the CallSid of the merged supervisor
        self._watch: asyncio.Task | None = None
        self._closing = False

    def expect(self, call_sid: str) -> None:
        """A supervisor's call we dialled for this call: its stream may attach."""
        self._dialled[call_sid] = asyncio.get_running_loop().create_future()

    def forget(self, call_sid: str) -> None:
        """We hung that call up ourselves: nothing of it is left to attach or to hang up."""
        self._dialled.pop(call_sid, None)

    def attach(self, call_sid: str, *, send, stream_sid: str, close: Close) -> TwilioStreamLeg | None:
        """The supervisor's stream (`send` puts a message on it): its leg, or None when this call expects none."""
        waiting = self._dialled.get(call_sid)
        if waiting is None or waiting.done() or self._guest is not None or self.leg.closed or self._closing:
            return None
        leg = TwilioStreamLeg(label=f"supervisor-{self.call.call_id}", send=send)
        leg.stream_sid = stream_sid
        self._guest = guest = _Guest(call_sid, leg, close)
        waiting.set_result(guest)
        self._watch = asyncio.create_task(self._watch_guest(guest), name=f"twilio-consult-{self.call.call_id}")
        logger.info("call %s: consult leg %s attached", self.call.call_id, call_sid)
        return leg

    async def merge(self, call_sid: str, timeout: float) -> None:
        """Join the supervisor's leg to the call once its stream is here (TwilioError when it does not come)."""
        waiting = self._dialled.get(call_sid)
        if waiting is None:
            raise TwilioError("twilio_consult_unknown", f"{call_sid} is not a consult leg of this call")
        try:
            guest = await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            raise TwilioError(
                "twilio_consult_no_stream", "the supervisor answered but their media stream never reached this call"
            ) from None
        if guest.leg.closed:
            raise TwilioError("twilio_consult_gone", "the supervisor hung up before joining")
        self.leg.join(guest.leg)
        self._merged = call_sid

    async def _watch_guest(self, guest: _Guest) -> None:
        """The supervisor's stream ended (they hung up, or we closed it): the caller and the agent go on."""
        await guest.leg.wait_closed()
        self._guest = None
        self._dialled.pop(guest.call_sid, None)
        if self.leg.guest is guest.leg:
            self.leg.part()
        await guest.leg.aclose()
        if self._merged != guest.call_sid:
            return
        self._merged = None
        if not self._closing and self.bridge.session is not None:
            logger.info("call %s: the supervisor (%s) left the conference", self.call.call_id, guest.call_sid)
            payload = {"call_id": self.call.call_id, "reason": SUPERVISOR_LEFT, "refer_id": guest.call_sid}
            self.bridge.session.record(CallEvent.Type.CALL_RESUMED, payload)

    async def close(self) -> None:
        """The call is over: hang up every supervisor's call still up (REST) and close its stream."""
        self._closing = True
        for call_sid in list(self._dialled):
            try:
                await self._hang_up(call_sid)
            except Exception as exc:
                logger.warning("call %s: consult leg %s not hung up: %s", self.call.call_id, call_sid, exc)
        self._dialled.clear()
        guest = self._guest
        if guest is not None:
            with contextlib.suppress(Exception):
                await guest.close()
            await guest.leg.aclose()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)


_HOSTS: dict[str, ConsultHost] = {}  # this process's running Twilio calls, by call id


def local_host(call_id: str) -> ConsultHost | None:
    return _HOSTS.get(call_id)


async def register(host: ConsultHost, *, channel: str) -> None:
    """The call runs here: in this process's registry, and its consumer's channel in the shared cache."""
    _HOSTS[host.call.call_id] = host
    timeout = settings.CALL_MAX_DURATION_SECONDS + settings.CALL_SETUP_TIMEOUT_SECONDS
    await cache.aset(HOST_KEY.format(call_id=host.call.call_id), channel, timeout)


async def unregister(host: ConsultHost) -> None:
    if _HOSTS.get(host.call.call_id) is host:
        del _HOSTS[host.call.call_id]
    await cache.adelete(HOST_KEY.format(call_id=host.call.call_id))


async def host_channel(call_id: str) -> str | None:
    """The channel of the consumer running the call's bridge in another process, or None."""
    channel = await cache.aget(HOST_KEY.format(call_id=call_id))
    return channel if isinstance(channel, str) and channel else None


def consult_leg_is_live(*, call_sid: str, call_id: str, tenant_id: str) -> bool:
    """Whether `call_sid` is a consult leg we dialled for the tenant's call `call_id`, and that call is still live."""
    found = services.external_call_resolve(call_sid)
    return found is not None and found[3] and found[:2] == (call_id, tenant_id) and found[2] in LIVE


def relay(layer, channel: str, call_sid: str) -> tuple[Callable[[dict], Awaitable[None]], Close]:
    """`send` and `close` of a supervisor's stream held by the consumer on `channel` (another process)."""

    async def send(message: dict) -> None:
        await layer.send(channel, {"type": "twilio.consult.send", "call_sid": call_sid, "message": message})

    async def close() -> None:
        await layer.send(channel, {"type": "twilio.consult.close", "call_sid": call_sid})

    return send, close
