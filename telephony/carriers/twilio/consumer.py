"""The Media Streams websocket Twilio connects to after our <Connect><Stream> (docs/telephony.md#twilio).

One socket is one call. Twilio sends JSON text frames: `connected`, then `start` (streamSid, callSid,
customParameters with our signed token, mediaFormat), `media` (base64 mu-law 8 kHz, 20 ms each), `dtmf`,
`mark` (ours, played) and `stop`. The `start` must carry a valid, unexpired token naming this callSid and
a call still waiting for its media, in the format we asked for; then the call's bridge runs in this
process with a `TwilioStreamLeg`, and the agent session is the one every carrier uses.

Bad input never reaches another call: a frame that is not JSON, too large or binary, media before `start`,
a `start` for an unknown, ended or other call, an unexpected media format, or a flood of messages ends
this socket with a log line (and the call, if it had begun); an unknown event is ignored with a log line.
"""

import asyncio
import base64
import binascii
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.cache import cache

from calls import selectors as call_selectors
from calls.state_machine import CallStatus
from core import jsonsafe
from telephony.bridge import CallBridge
from telephony.carriers.twilio import signature
from telephony.carriers.twilio.config import account_for_tenant
from telephony.carriers.twilio.rest import TwilioCarrier
from telephony.carriers.twilio.stream import TwilioStreamLeg
from telephony.carriers.twilio.twiml import STREAM_TOKEN_PARAMETER

logger = logging.getLogger(__name__)

MAX_FRAME_CHARS = 16_384  # a 20 ms media message is about 400 characters
MAX_MESSAGES_PER_SECOND = 200  # Twilio sends 50 media messages a second, and a few others
EXPECTED_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
WAITING_FOR_MEDIA = (CallStatus.RINGING, CallStatus.DIALING)
IGNORED = frozenset({"connected", "mark"})
CLAIM_KEY = "twilio:stream:{call_id}"  # one stream per call, whatever tokens were issued for it


class StreamRefused(Exception):
    pass


class TwilioStreamConsumer(AsyncWebsocketConsumer):
    bridge_options: dict = {}  # tests and benchmarks pass fake engines here
    clock = staticmethod(time.monotonic)
    start_timeout = 10.0  # seconds: Twilio sends `connected` and `start` as soon as the socket opens

    async def connect(self) -> None:
        self.leg: TwilioStreamLeg | None = None
        self.bridge: CallBridge | None = None
        self.task: asyncio.Task | None = None
        self.stream_sid = ""
        self._window, self._count = 0.0, 0
        self._closed = self._starting = False
        await self.accept()
        self._start_timer = asyncio.create_task(self._await_start())

    async def _await_start(self) -> None:
        """A socket that never sends a `start` is not left holding a connection."""
        await asyncio.sleep(self.start_timeout)
        if not self._starting and not self._closed:
            logger.warning("Twilio stream ended: no start within %.0f s", self.start_timeout)
            await self._close(1008)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self._closed:
            return  # what was in flight after we ended the stream
        try:
            await self._handle(text_data, bytes_data)
        except StreamRefused as exc:
            logger.warning("Twilio stream %s ended: %s", self.stream_sid or "(not started)", exc)
            await self._end()

    async def _handle(self, text_data, bytes_data) -> None:
        self._count_message()
        if bytes_data is not None or text_data is None or len(text_data) > MAX_FRAME_CHARS:
            raise StreamRefused("a binary or oversized frame")
        try:
            message = jsonsafe.loads(text_data)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            raise StreamRefused("a frame that is not a Media Streams message")
        event = message["event"]
        if event == "start":
            await self._start(message.get("start"), message.get("streamSid"))
        elif event == "media":
            self._media(message.get("media"))
        elif event == "dtmf":
            await self._dtmf(message.get("dtmf"))
        elif event == "stop":
            if self.leg is not None:
                self.leg.remote_closed()
        elif event not in IGNORED:
            logger.warning("Twilio stream %s: unknown event %r ignored", self.stream_sid, event[:40])

    def _count_message(self) -> None:
        now = self.clock()
        if now - self._window >= 1.0:
            self._window, self._count = now, 0
        self._count += 1
        if self._count > MAX_MESSAGES_PER_SECOND:
            raise StreamRefused(f"more than {MAX_MESSAGES_PER_SECOND} messages in a second")

    async def _start(self, start, stream_sid) -> None:
        if self._starting:
            raise StreamRefused("a second start on one stream")
        self._starting = True
        if not isinstance(start, dict) or not isinstance(start.get("customParameters"), dict):
            raise StreamRefused("a start without customParameters")
        claims = signature.stream_claims(str(start["customParameters"].get(STREAM_TOKEN_PARAMETER, "")))
        if claims is None or claims["sid"] != start.get("callSid"):
            raise StreamRefused("a start without a valid token for its callSid")
        media_format = start.get("mediaFormat")
        if not isinstance(media_format, dict) or {k: media_format.get(k) for k in EXPECTED_FORMAT} != EXPECTED_FORMAT:
            raise StreamRefused(f"media format {media_format!r} is not the mu-law 8 kHz mono we asked for")
        call = await database_sync_to_async(_waiting_call)(claims["call"], claims["tenant"], claims["sid"])
        if call is None:
            raise StreamRefused(f"call {claims['call']} is unknown, ended or already has its media")
        self.stream_sid = str(start.get("streamSid") or stream_sid or "")[:64]  # in `start` and beside it

        def leg_factory(**options) -> TwilioStreamLeg:
            self.leg = TwilioStreamLeg(send=self._send, **options)
            self.leg.stream_sid = self.stream_sid
            return self.leg

        detect = call.direction == "outbound" and bool(claims.get("amd"))  # Twilio could not tell, or a machine
        carrier = await database_sync_to_async(_carrier)(claims["tenant"], call.our_number)
        self.bridge = bridge = CallBridge(
            call, pbx=carrier, leg_factory=leg_factory, detect_machine=detect, digits_out=True, **self.bridge_options
        )
        if carrier is not None:
            carrier.events = bridge.pbx_events
        await bridge.media_started()
        self.task = asyncio.create_task(self._run(bridge), name=f"twilio-call-{call.call_id}")
        logger.info("Twilio stream %s carries call %s", self.stream_sid, call.call_id)

    def _media(self, media) -> None:
        if self.leg is None:
            raise StreamRefused("media before start")
        if not isinstance(media, dict) or media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return
        try:
            payload = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (binascii.Error, ValueError):
            raise StreamRefused("media that is not base64") from None
        self.leg.feed(payload)

    async def _dtmf(self, dtmf) -> None:
        if self.bridge is None:
            raise StreamRefused("dtmf before start")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
            logger.warning("Twilio stream %s: dtmf %r ignored", self.stream_sid, str(digit)[:8])
            return
        await self.bridge.caller_pressed(digit)

    async def _send(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))

    async def _run(self, bridge: CallBridge) -> None:
        reason = await bridge.run()
        logger.info("Twilio stream %s: call %s ended (%s)", self.stream_sid, bridge.call.call_id, reason)
        await self._close(1000)  # Twilio's <Connect> ends, and with it the call (nothing follows it)

    async def _end(self) -> None:
        """Refuse the stream: close it (policy violation) and end its call, if it had begun."""
        await self._close(1008)
        if self.bridge is not None and self.task is not None and not self.task.done():
            self.bridge.hangup()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _close(self, code: int) -> None:
        if not self._closed:
            self._closed = True
            await self.close(code=code)

    async def disconnect(self, code) -> None:
        self._closed = True
        self._start_timer.cancel()
        if self.leg is not None:
            self.leg.remote_closed()
        if self.task is not None and not self.task.done():
            await asyncio.gather(self.task, return_exceptions=True)


def _carrier(tenant_id: str, our_number: str) -> TwilioCarrier | None:
    account = account_for_tenant(tenant_id)
    return TwilioCarrier(account, caller_id=our_number) if account is not None else None


def _waiting_call(call_id: str, tenant_id: str, call_sid: str):
    """The tenant's call for the bridge if it is Twilio's `call_sid` and still waits for its media, else None.

    The first stream to get here claims the call (an atomic cache add, shared by every process): a second
    start with a token for the same call, even one racing the first before the call is connected, is refused.
    """
    call = call_selectors.bridge_call_load(call_id=call_id, tenant_id=tenant_id)
    if call is None or call.external_call_id != call_sid:
        return None
    status = call_selectors.call_status(call_id=call_id, tenant_id=tenant_id)
    if status is None or status[2] not in WAITING_FOR_MEDIA:
        return None
    claimed = cache.add(CLAIM_KEY.format(call_id=call_id), call_sid, timeout=signature.STREAM_TOKEN_MAX_AGE)
    return call if claimed else None
