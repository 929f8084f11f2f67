"""Twilio's REST API through the official SDK: dialling, live call updates and numbers.

The SDK's client is synchronous (requests); the bridge's calls run it in a thread so the media loop never
blocks. Every request goes to `TWILIO_API_BASE_URL` (integrations.twilio_api). Nothing is retried: a
dial or a call update is never sent twice.
"""

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException

from calls.selectors import BridgeCall
from integrations import twilio_api
from telephony import carrier_events, services
from telephony.carrier_events import CarrierEvents
from telephony.carriers.twilio import signature, twiml
from telephony.carriers.twilio.config import TwilioAccount

if TYPE_CHECKING:
    from telephony.carriers.twilio.conference import ConsultHost

logger = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# The progress we ask Twilio to report on a call we place (status callbacks).
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
CONSULT_TIMEOUT_SECONDS = 30.0  # a transfer target's ringing, as telephony.transfers waits for a consult leg


class TwilioError(Exception):
    """Twilio refused a request: `code` is Twilio's error code (or the HTTP status), kept for the call's notes."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _refusal(exc: TwilioRestException) -> TwilioError:
    return TwilioError(f"twilio_{exc.code or exc.status}", f"Twilio answered {exc.status}: {exc.msg}")


def _page_refusal(exc: TwilioException) -> TwilioError:
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", 0)
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return TwilioError(f"twilio_{body.get('code') or status}", f"Twilio answered {status}: {body.get('message', '')}")


@dataclass(frozen=True)
class NumberAtTwilio:
    sid: str
    e164: str
    friendly_name: str
    voice_url: str


class TwilioRest:
    """One account's REST calls (sync: run them in a thread from async code)."""

    def __init__(self, account: TwilioAccount):
        self.account = account
        self.client = twilio_api.client(account.account_sid, account.auth_token)

    def place_call(self, *, to: str, from_: str, answer_url: str, status_callback: str) -> str:
        """Dial `to` from `from_`; when answered Twilio fetches `answer_url` (with AnsweredBy). Returns the CallSid."""
        try:
            call = self.client.calls.create(
                to=to,
                from_=from_,
                url=answer_url,
                status_callback=status_callback,
                status_callback_event=STATUS_EVENTS,
                machine_detection="Enable",
            )
        except TwilioRestException as exc:
            raise _refusal(exc) from exc
        return call.sid

    def place_consult(self, *, to: str, from_: str, xml: str, status_callback: str) -> str:
        """Dial a second leg (a transfer target) that runs `xml` when answered; returns its CallSid."""
        try:
            call = self.client.calls.create(
                to=to, from_=from_, twiml=xml, status_callback=status_callback, status_callback_event=STATUS_EVENTS
            )
        except TwilioRestException as exc:
            raise _refusal(exc) from exc
        return call.sid

    def update_twiml(self, call_sid: str, xml: str) -> None:
        """Replace what a live call is doing with new TwiML (its media stream, if any, ends)."""
        try:
            self.client.calls(call_sid).update(twiml=xml)
        except TwilioRestException as exc:
            raise _refusal(exc) from exc

    def hang_up(self, call_sid: str) -> None:
        try:
            self.client.calls(call_sid).update(status="completed")
        except TwilioRestException as exc:
            raise _refusal(exc) from exc

    def numbers(self) -> list[NumberAtTwilio]:
        """The account's incoming phone numbers (every page)."""
        try:
            found = self.client.incoming_phone_numbers.list()
        except TwilioRestException as exc:
            raise _refusal(exc) from exc
        except TwilioException as exc:  # a list page refused: the SDK raises its base error with the response
            raise _page_refusal(exc) from exc
        return [NumberAtTwilio(n.sid, n.phone_number, n.friendly_name or "", n.voice_url or "") for n in found]

    def point_number(self, sid: str, *, voice_url: str, status_callback: str) -> None:
        """Send the number's calls to our voice webhook (POST), and their progress to our status callback."""
        try:
            self.client.incoming_phone_numbers(sid).update(
                voice_url=voice_url, voice_method="POST", status_callback=status_callback, status_callback_method="POST"
            )
        except TwilioRestException as exc:
            raise _refusal(exc) from exc


class TwilioCarrier:
    """The call control the bridge uses on a Twilio call (telephony.carriers.base), by CallSid.

    A Twilio call's media is its Media Stream (the stream consumer builds the leg), so there is no SDP here.
    Blind transfers replace the call's TwiML with <Dial>; warm transfers brief the target with <Say> and
    join both in a conference (`transfer_with_briefing`). A conference with the agent staying on the line
    is held by the bridge itself (`conference.ConsultHost`): `create_call` dials the supervisor with
    <Connect><Stream> back to us, their stream attaches to this call's bridge, and `merge` mixes the three
    parties there (Twilio's own <Conference> would end the agent's stream). Holding a call is not offered.
    """

    def __init__(self, account: TwilioAccount, *, caller_id: str = ""):
        self.rest = TwilioRest(account)
        self.caller_id = caller_id
        self.events: CarrierEvents | None = None  # the bridge's, set by the stream consumer
        self.host: ConsultHost | None = None  # the call's consult legs, set by the stream consumer

    def dial_string(self, target: str) -> str:
        if not E164.match(target):
            raise ValueError(f"Twilio dials E.164 numbers only, not {target!r}")
        return target

    async def hangup(self, call_id: str) -> None:
        if self.host is not None:
            self.host.forget(call_id)
        await asyncio.to_thread(self.rest.hang_up, call_id)

    async def blind_transfer(self, call_id: str, target: str) -> None:
        await asyncio.to_thread(self.rest.update_twiml, call_id, twiml.dial(target, caller_id=self.caller_id))
        if self.events is not None:  # Twilio took the new TwiML: the caller is on their way to the target
            await self.events.add(call_id, carrier_events.TRANSFERRED, {"call_id": call_id, "transferred_to": target})

    async def transfer_with_briefing(
        self, call_id: str, *, target: str, briefing: str, call: BridgeCall, events: CarrierEvents
    ) -> None:
        """A warm transfer on Twilio: dial the target into a conference after reading it the briefing
        (<Say>, Twilio's voice: our agent's media is the caller's stream, so it cannot reach the target),
        and once the target answers move the caller into the same conference. The caller stays with the
        agent until then; a target who does not answer is hung up and TwilioError says why."""
        base = settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
        if not base:
            raise TwilioError("twilio_no_public_url", "TWILIO_WEBHOOK_BASE_URL is not set: no status callback")
        room = f"transfer-{call.call_id}"
        xml = twiml.conference(room, end_on_exit=True, say=briefing)
        mark = events.mark
        consult = await asyncio.to_thread(
            self.rest.place_consult,
            to=self.dial_string(target),
            from_=self.caller_id,
            xml=xml,
            status_callback=f"{base}/carriers/twilio/status",
        )
        await database_sync_to_async(services.consult_leg_register)(
            external_id=consult, call_id=call.call_id, tenant_id=call.tenant_id
        )
        names = {carrier_events.CONNECTED, carrier_events.FAILED, carrier_events.ENDED}
        name, data = await events.wait(consult, names, CONSULT_TIMEOUT_SECONDS, after=mark)
        if name != carrier_events.CONNECTED:
            with contextlib.suppress(Exception):
                await self.hangup(consult)
            raise TwilioError("twilio_target_unanswered", f"{target} did not answer ({data.get('reason') or name})")
        await asyncio.to_thread(self.rest.update_twiml, call_id, twiml.conference(room, end_on_exit=True))
        await events.add(call_id, carrier_events.TRANSFERRED, {"call_id": call_id, "transferred_to": target})

    async def create_call(self, *, dial_string: str, caller_id: str = "", leg: object = None) -> str:
        """Dial a supervisor for a conference: when answered, Twilio streams their call to us (<Connect><Stream>,
        a consult token naming this call), and the stream attaches to this call's bridge. Returns the CallSid.
        Its progress comes back on the status callback (registered by the caller as a consult leg); `leg`,
        a WebRTC leg, is not used: the supervisor's media is their stream."""
        host, base = self.host, settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
        if host is None:
            raise TwilioError(
                "twilio_consult_unsupported", "Only a call streaming to this process can dial a consult leg"
            )
        if not base:
            raise TwilioError("twilio_no_public_url", "TWILIO_WEBHOOK_BASE_URL is not set: no stream or status URL")
        call = host.call
        token = signature.stream_token(call_id=call.call_id, tenant_id=call.tenant_id, call_sid="", consult=True)
        consult = await asyncio.to_thread(
            self.rest.place_consult,
            to=dial_string,
            from_=caller_id or self.caller_id,
            xml=twiml.connect_stream(signature.websocket_url(None, signature.STREAM_PATH), token),
            status_callback=f"{base}/carriers/twilio/status",
        )
        host.expect(consult)
        return consult

    async def warm_transfer(self, call_id: str, consult_call_id: str) -> None:
        raise TwilioError("twilio_consult_unsupported", "Twilio joins warm transfers itself (transfer_with_briefing)")

    async def merge(self, call_id: str, consult_call_id: str) -> None:
        """The conference: once the supervisor's stream is attached, the bridge mixes them into the call (MERGED)."""
        if self.host is None:
            raise TwilioError("twilio_consult_unsupported", "Only a call streaming to this process can merge a leg")
        await self.host.merge(consult_call_id, CONSULT_TIMEOUT_SECONDS)
        if self.events is not None:
            await self.events.add(call_id, carrier_events.MERGED, {"call_id": call_id, "refer_id": consult_call_id})

    async def hold(self, call_id: str) -> None:
        raise TwilioError("twilio_consult_unsupported", "Holding a call is not offered on Twilio yet")

    async def resume(self, call_id: str) -> None:
        return None  # nothing was held

    async def aclose(self) -> None:
        return None
