"""Transfer strategies (docs/telephony.md#transfers): blind, warm and conference, on any carrier.

- blind: the carrier hands the caller over;
- warm: hold the caller, dial the target, the agent briefs the target with the context in its own voice on a
  second media leg, then the carrier joins caller and target (a carrier that has no second leg of ours, as
  Twilio's streams, briefs the target itself: its `transfer_with_briefing`);
- conference: dial a supervisor and merge them into the call with the agent.

A transfer that fails returns the caller to the agent, who apologises; each step is a stored call event. The
strategies talk to the session only through its bridge interface (`hold`, `resume(line)`, `set_status`,
`record`) and to the carrier through `telephony.carriers.base.Carrier`.
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from livekit import rtc

from calls.models import CallEvent
from calls.selectors import BridgeCall
from telephony import carrier_events, services
from telephony.carrier_events import CarrierEvents
from telephony.carriers.base import Carrier
from telephony.media import PhoneLeg
from telephony.playback import speak

logger = logging.getLogger(__name__)

TRANSFER_TIMEOUT_SECONDS = 30.0  # the carrier's answer to a transfer or a consult call's connect
APOLOGY = "I'm sorry, I couldn't connect you just now. I'm still here: how else can I help?"
BRIEFING = "Hello, this is {agent}, the virtual assistant. I have a caller for you. {context}"
KINDS = ("blind", "warm", "conference")


class TransferFailed(Exception):
    pass


class TransferSession(Protocol):
    """What the strategies ask of the call's agent session (part of voice.session.CallSession's bridge interface)."""

    def hold(self) -> None: ...

    def resume(self, line: str | None = None) -> None: ...

    def record(self, event_type: str, payload: dict) -> None: ...

    def synthesize(self, text: str) -> AsyncIterator[rtc.AudioFrame]: ...


@dataclass
class Transfers:
    """One call's transfers: `carry_out(request)` is True when the caller has left the agent for good."""

    call: BridgeCall
    carrier: Carrier | None  # None for a call with no carrier leg (a browser test)
    events: CarrierEvents
    session: TransferSession

    async def carry_out(self, request: dict) -> bool:
        kind, target = request.get("type") or request.get("transfer_type"), request.get("target", "")
        logger.info("call %s: %s transfer to %s", self.call.call_id, kind, target)
        if kind != "conference":
            self.session.hold()
        try:
            carrier, ext = self.carrier, self.call.external_call_id
            if carrier is None or not ext:
                raise TransferFailed("this call has no carrier leg to transfer")
            if kind == "blind":
                await self._blind(carrier, ext, target)
            elif kind == "warm":
                await self._warm(carrier, ext, target, request.get("context", ""))
            else:
                await self._conference(carrier, ext, target)
                return False
            return True
        except Exception as exc:  # TransferFailed, a carrier error, a timeout: the caller goes back to the agent
            reason = str(exc) or type(exc).__name__
            logger.warning("call %s: %s transfer to %s failed: %s", self.call.call_id, kind, target, reason)
            payload = {"transfer_type": kind, "target": target, "reason": reason}
            self.session.record(CallEvent.Type.CALL_TRANSFER_FAILED, payload)
            self.session.resume(None if kind == "conference" else APOLOGY)
            return False

    async def _blind(self, carrier: Carrier, ext: str, target: str) -> None:
        mark = self.events.mark
        await carrier.blind_transfer(ext, carrier.dial_string(target))
        await self._transferred(ext, target, mark)

    async def _transferred(self, ext: str, target: str, mark: int) -> None:
        names = {carrier_events.TRANSFERRED, carrier_events.TRANSFER_FAILED}
        name, data = await self.events.wait(ext, names, TRANSFER_TIMEOUT_SECONDS, after=mark)
        if name == carrier_events.TRANSFER_FAILED:
            raise TransferFailed(data.get("reason") or "the carrier could not transfer the call")
        payload = {"call_id": self.call.call_id, "transferred_to": data.get("transferred_to") or target}
        self.session.record(CallEvent.Type.CALL_TRANSFERRED, payload)

    async def _dial_consult(self, carrier: Carrier, target: str, leg: PhoneLeg) -> str:
        """Dial a second leg (the warm-transfer target or a supervisor), its media on `leg`; wait until it answers."""
        mark = self.events.mark
        dial_string = carrier.dial_string(target)
        consult = await carrier.create_call(dial_string=dial_string, caller_id=self.call.our_number, leg=leg)
        await database_sync_to_async(services.consult_leg_register)(
            external_id=consult, call_id=self.call.call_id, tenant_id=self.call.tenant_id
        )
        names = {carrier_events.CONNECTED, carrier_events.FAILED, carrier_events.ENDED}
        name, data = await self.events.wait(consult, names, TRANSFER_TIMEOUT_SECONDS, after=mark)
        if name != carrier_events.CONNECTED:
            with contextlib.suppress(Exception):
                await carrier.hangup(consult)
            raise TransferFailed(f"{target} did not answer ({data.get('reason') or name})")
        return consult

    async def _warm(self, carrier: Carrier, ext: str, target: str, context: str) -> None:
        briefing = BRIEFING.format(agent=self.call.agent_name, context=context).strip()
        briefed = getattr(carrier, "transfer_with_briefing", None)
        if briefed is not None:  # the carrier briefs the target itself (Twilio: no second media leg of ours)
            await self._warm_briefed(briefed, ext, target, briefing)
            return
        await carrier.hold(ext)
        self.session.record(CallEvent.Type.CALL_HELD, {"call_id": self.call.call_id, "reason": "warm_transfer"})
        consult = None
        briefing_leg = PhoneLeg(label=f"consult-{self.call.call_id}", ice_servers=settings.WEBRTC_ICE_SERVERS or None)
        try:
            consult = await self._dial_consult(carrier, target, briefing_leg)
            await speak(self.session, briefing_leg, briefing)
            if briefing_leg.closed:
                raise TransferFailed(f"{target} hung up during the briefing")
            mark = self.events.mark
            await carrier.warm_transfer(ext, consult)
            await self._transferred(ext, target, mark)
        except BaseException:
            if consult is not None:
                with contextlib.suppress(Exception):
                    await carrier.hangup(consult)
            with contextlib.suppress(Exception):
                await carrier.resume(ext)
            self.session.record(CallEvent.Type.CALL_RESUMED, {"call_id": self.call.call_id})
            raise
        finally:
            await briefing_leg.aclose()

    async def _warm_briefed(self, briefed, ext: str, target: str, briefing: str) -> None:
        """Warm transfer where the carrier dials the target, reads it `briefing` and joins the caller to it."""
        self.session.record(CallEvent.Type.CALL_HELD, {"call_id": self.call.call_id, "reason": "warm_transfer"})
        mark = self.events.mark
        try:
            await briefed(ext, target=target, briefing=briefing, call=self.call, events=self.events)
        except BaseException:
            self.session.record(CallEvent.Type.CALL_RESUMED, {"call_id": self.call.call_id})
            raise
        await self._transferred(ext, target, mark)

    async def _conference(self, carrier: Carrier, ext: str, target: str) -> None:
        # The supervisor's call is ours until merged (a leg with media, silent); the merge joins its party
        # into the caller's call, whose media the agent keeps (Twilio: the supervisor's own media stream, which
        # the carrier attaches to this call's bridge, and the bridge mixes the three).
        consult_leg = PhoneLeg(label=f"supervisor-{self.call.call_id}", ice_servers=settings.WEBRTC_ICE_SERVERS or None)
        consult = None
        try:
            consult = await self._dial_consult(carrier, target, consult_leg)
            mark = self.events.mark
            await carrier.merge(ext, consult)
            names = {carrier_events.MERGED, carrier_events.TRANSFER_FAILED}
            name, data = await self.events.wait(ext, names, TRANSFER_TIMEOUT_SECONDS, after=mark)
            if name != carrier_events.MERGED:
                raise TransferFailed(data.get("reason") or "the carrier could not merge the calls")
        except BaseException:
            if consult is not None:  # answered but not merged: the supervisor is not left on a line of ours
                with contextlib.suppress(Exception):
                    await carrier.hangup(consult)
            raise
        finally:
            await consult_leg.aclose()
        payload = {"call_id": self.call.call_id, "refer_id": consult, "target": target}
        self.session.record(CallEvent.Type.CALL_MERGED, payload)
        self.session.resume(None)  # back to conversing, the supervisor on the line
