"""The browser test call's call control (`telephony.carriers.base.Carrier`), over the test-call socket.

A browser is a carrier with one call and no phone network behind it. What a phone carrier does to a call,
this one tells the browser: the answer to its SDP offer, our hang-up, a transfer (where the caller would
now be, and the briefing a warm transfer's target would hear). What it reports back (the caller's hang-up,
a transfer carried out) goes on the call's bus group as carrier events, as every carrier's do, so the
bridge and the transfer strategies treat a test call exactly as a phone call. It cannot dial anyone: a
conference or a consult leg fails cleanly, and so does holding (the caller's audio is the browser's own).
"""

import logging
import re
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer

from calls.selectors import BridgeCall
from core import events
from telephony import carrier_events
from telephony.carrier_events import CarrierEvents
from telephony.carriers.browser import wire
from telephony.media import PhoneLeg

logger = logging.getLogger(__name__)

DIALLABLE = re.compile(r"^(\+[1-9]\d{6,14}|ext:[0-9]{1,10})\Z")  # what the other carriers dial: E.164, ext:NNN

Send = Callable[[dict], Awaitable[None]]


class BrowserCallError(Exception):
    """What a browser test call cannot do: `code` is kept with the failed transfer's reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class BrowserCarrier:
    """One browser test call's carrier, by its carrier id (`browser:<call uuid>`); `send` writes to its socket."""

    def __init__(self, call: BridgeCall, *, offer: str, send: Send):
        self.call, self._offer, self._send = call, offer, send
        self.answered = False  # the browser has our SDP answer: from then on there is a call to hang up
        self._ended = False

    @property
    def external_id(self) -> str:
        return self.call.external_call_id or wire.external_id(self.call.call_id)

    def dial_string(self, target: str) -> str:
        if not DIALLABLE.match(target):
            raise ValueError(f"A transfer target is E.164 or ext:NNN, not {target!r}")
        return target

    # --- the browser's side of the call -------------------------------------------------------------

    async def answer_leg(self, call_id: str, leg: PhoneLeg) -> None:
        """Answer the browser's offer on `leg` and send it our SDP answer (InvalidOffer for a bad offer)."""
        self._own(call_id)
        sdp = await leg.accept(self._offer)
        await self._send(wire.answer(self.call.call_id, sdp))
        self.answered = True

    async def caller_hung_up(self) -> None:
        """The browser said hang-up or closed its socket: reported as the carrier's `call.ended`."""
        await self._report(carrier_events.ENDED, {"call_id": self.external_id, "reason": "hangup"})

    async def ended(self, end_reason: str) -> None:
        """The call is over and stored: the browser's last message (once)."""
        if not self._ended:
            self._ended = True
            await self._send(wire.ended(self.call.call_id, end_reason))

    # --- call control (telephony.carriers.base.Carrier) ---------------------------------------------

    async def hangup(self, call_id: str) -> None:
        """Our side hangs up: the browser is told (a call it never got the answer to has nothing to hang up)."""
        self._own(call_id)
        if self.answered and not self._ended:
            await self._send(wire.hangup(self.call.call_id))

    async def blind_transfer(self, call_id: str, target: str) -> None:
        self._own(call_id)
        await self._send(wire.transfer(self.call.call_id, "blind", target))
        await self._transferred(target)

    async def transfer_with_briefing(
        self, call_id: str, *, target: str, briefing: str, call: BridgeCall, events: CarrierEvents
    ) -> None:
        """A warm transfer: the browser is shown the briefing the target would hear, then the caller is theirs."""
        self._own(call_id)
        target = self.dial_string(target)
        await self._send(wire.transfer(self.call.call_id, "warm", target, briefing=briefing))
        await self._transferred(target)

    async def create_call(self, *, dial_string: str, caller_id: str, leg: PhoneLeg) -> str:
        raise BrowserCallError(
            "browser_cannot_dial",
            f"A browser test call cannot dial {dial_string}: conferences and consult calls need a phone line",
        )

    async def warm_transfer(self, call_id: str, consult_call_id: str) -> None:
        raise BrowserCallError("browser_cannot_dial", "A browser test call briefs warm transfers itself")

    async def merge(self, call_id: str, consult_call_id: str) -> None:
        raise BrowserCallError("browser_cannot_dial", "A browser test call cannot hold a conference")

    async def hold(self, call_id: str) -> None:
        raise BrowserCallError("browser_cannot_hold", "A browser test call cannot be put on hold")

    async def resume(self, call_id: str) -> None:
        return None  # nothing was held

    async def aclose(self) -> None:
        return None

    # --- reporting ------------------------------------------------------------------------------------

    def _own(self, call_id: str) -> None:
        if call_id != self.external_id:
            raise BrowserCallError("browser_unknown_leg", f"{call_id} is not this browser call")

    async def _transferred(self, target: str) -> None:
        data = {"call_id": self.external_id, "transferred_to": target}
        await self._report(carrier_events.TRANSFERRED, data)

    async def _report(self, name: str, data: dict) -> None:
        """A carrier event on the call's group, in the message `telephony.dispatch` routes a phone carrier's in."""
        message = {"type": "pbx.event", "event": name, "data": data, "external_call_id": self.external_id}
        logger.info("browser call %s: %s", self.call.call_id, name)
        await get_channel_layer().group_send(events.call_group(self.call.call_id), message)
