"""The Media Streams websocket Twilio connects to after our <Connect><Stream> (docs/telephony.md#twilio).

One socket is one call. Twilio sends JSON text frames: `connected`, then `start` (streamSid, callSid,
customParameters with our signed token, mediaFormat), `media` (base64 mu-law 8 kHz, 20 ms each), `dtmf`,
`mark` (ours, played) and `stop`. The `start` must carry a valid, unexpired token naming this callSid and
a call still waiting for its media, in the format we asked for; then the call's bridge runs in this
process with a `TwilioStreamLeg`, and the agent session is the one every carrier uses.

A stream whose token is a consult token is a supervisor's call we dialled for a conference on a running
call (`conference`): its callSid must be a consult leg registered for that call, which must still be live,
and the call's bridge must expect it; it then becomes the consult leg of that bridge, here (the process's
registry) or, when the bridge runs in another process, relayed to it through the channel layer.

Bad input never reaches another call: a frame that is not JSON, too large or binary, media before `start`,
a `start` for an unknown, ended or other call, an unexpected media format, or a flood of messages ends
this socket with a log line (and the call, if it had begun); an unknown event is ignored with a log line.
"""

import asyncio
import base64
import binascii
import contextlib
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
from telephony.carriers.twilio import conference, signature
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
ATTACH_TIMEOUT = 10.0  # seconds for the process running a call to answer a relayed consult stream


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
        self.host: conference.ConsultHost | None = None  # this call's consult legs (a caller's stream)
        self._relayed: dict[str, TwilioStreamLeg] = {}  # consult legs whose stream is in another process
        self.consult_sid = ""  # a supervisor's stream: the consult leg's CallSid ...
        self._relay_to = ""  # ... and, when its call runs in another process, that consumer's channel
        self._attached = asyncio.Event()
        self._attach_timer: asyncio.Task | None = None
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
            await self._media(message.get("media"))
        elif event == "dtmf":
            await self._dtmf(message.get("dtmf"))
        elif event == "stop":
            await self._stopped()
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
        call_sid = str(start.get("callSid") or "")[:64]
        if claims is None or (claims["sid"] != call_sid and not claims.get("consult")):
            raise StreamRefused("a start without a valid token for its callSid")
        media_format = start.get("mediaFormat")
        if not isinstance(media_format, dict) or {k: media_format.get(k) for k in EXPECTED_FORMAT} != EXPECTED_FORMAT:
            raise StreamRefused(f"media format {media_format!r} is not the mu-law 8 kHz mono we asked for")
        if claims.get("consult"):
            await self._start_consult(claims, call_sid, str(start.get("streamSid") or stream_sid or "")[:64])
            return
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
            assert self.leg is not None  # built by the bridge, through leg_factory
            carrier.host = self.host = conference.ConsultHost(
                call=call, leg=self.leg, bridge=bridge, hang_up=carrier.hangup
            )
            await conference.register(self.host, channel=self.channel_name)
        await bridge.media_started()
        self.task = asyncio.create_task(self._run(bridge), name=f"twilio-call-{call.call_id}")
        logger.info("Twilio stream %s carries call %s", self.stream_sid, call.call_id)

    async def _media(self, media) -> None:
        if self.leg is None and not self._relay_to:
            raise StreamRefused("media before start")
        if not isinstance(media, dict) or media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return
        encoded = str(media.get("payload", ""))
        try:
            payload = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise StreamRefused("media that is not base64") from None
        if self.leg is not None:
            self.leg.feed(payload)
        else:
            await self._relay({"type": "twilio.consult.media", "payload": encoded})

    async def _stopped(self) -> None:
        """Twilio ended the stream (`stop`, or the socket closed): the party hung up or the call moved on."""
        if self.leg is not None:
            self.leg.remote_closed()
        if self._relay_to:
            await self._relay({"type": "twilio.consult.stop"})
            self._relay_to = ""

    async def _dtmf(self, dtmf) -> None:
        if self.consult_sid:
            return  # a supervisor's keys are theirs: the agent takes the caller's only
        if self.bridge is None:
            raise StreamRefused("dtmf before start")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
            logger.warning("Twilio stream %s: dtmf %r ignored", self.stream_sid, str(digit)[:8])
            return
        await self.bridge.caller_pressed(digit)

    async def _send(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))

    # --- a supervisor's stream (a consult leg of a running call) ----------------------------------

    async def _start_consult(self, claims: dict, call_sid: str, stream_sid: str) -> None:
        call_id, tenant_id = claims["call"], claims["tenant"]
        live = database_sync_to_async(conference.consult_leg_is_live)
        if not call_sid or not await live(call_sid=call_sid, call_id=call_id, tenant_id=tenant_id):
            raise StreamRefused(f"{call_sid or 'no callSid'} is not a consult leg of live call {call_id}")
        self.stream_sid, self.consult_sid = stream_sid, call_sid
        host = conference.local_host(call_id)
        if host is not None:
            self.leg = host.attach(call_sid, send=self._send, stream_sid=stream_sid, close=self._hang_up_consult)
            if self.leg is None:
                raise StreamRefused(f"call {call_id} expects no consult stream {call_sid}")
            logger.info("Twilio stream %s: consult leg %s of call %s", stream_sid, call_sid, call_id)
            return
        channel = await conference.host_channel(call_id)
        if channel is None:
            raise StreamRefused(f"call {call_id} runs in no process")
        self._relay_to = channel
        message = {"type": "twilio.consult.attach", "stream_sid": stream_sid, "reply_to": self.channel_name}
        await self._relay(message)
        self._attach_timer = asyncio.create_task(self._await_attached())
        logger.info("Twilio stream %s: consult leg %s of call %s, relayed", stream_sid, call_sid, call_id)

    async def _hang_up_consult(self) -> None:
        await self._close(1000)  # the supervisor's <Connect> ends, and with it their call

    async def _relay(self, message: dict) -> None:
        """A message about this consult stream to the consumer running its call in another process."""
        try:
            await self.channel_layer.send(self._relay_to, {**message, "call_sid": self.consult_sid})
        except Exception as exc:  # a full channel (that process is behind or gone): this frame is lost
            logger.warning("Twilio stream %s: relay to %s failed: %r", self.stream_sid, self._relay_to, exc)

    async def _await_attached(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attached.wait(), ATTACH_TIMEOUT)
        if not self._attached.is_set() and not self._closed:
            logger.warning("Twilio stream %s ended: its call's process never answered", self.stream_sid)
            self._relay_to = ""
            await self._close(1008)

    # Channel-layer messages between the two processes of a relayed consult stream (conference.relay).

    async def twilio_consult_attach(self, message: dict) -> None:
        """(The call's process) a supervisor's stream in another process asks to be this call's consult leg."""
        call_sid, reply_to = str(message.get("call_sid", "")), str(message.get("reply_to", ""))
        leg = None
        if self.host is not None and call_sid not in self._relayed:
            send, close = conference.relay(self.channel_layer, reply_to, call_sid)
            leg = self.host.attach(call_sid, send=send, stream_sid=str(message.get("stream_sid", "")), close=close)
        if leg is None:
            logger.warning("Twilio stream %s: relayed consult stream %s refused", self.stream_sid, call_sid)
            await self.channel_layer.send(reply_to, {"type": "twilio.consult.refused", "call_sid": call_sid})
            return
        self._relayed[call_sid] = leg
        await self.channel_layer.send(reply_to, {"type": "twilio.consult.attached", "call_sid": call_sid})

    async def twilio_consult_media(self, message: dict) -> None:
        leg = self._relayed.get(str(message.get("call_sid", "")))
        if leg is not None:
            leg.feed(base64.b64decode(str(message.get("payload", ""))))

    async def twilio_consult_stop(self, message: dict) -> None:
        leg = self._relayed.pop(str(message.get("call_sid", "")), None)
        if leg is not None:
            leg.remote_closed()

    async def twilio_consult_attached(self, message: dict) -> None:
        """(The supervisor's process) the call's process took this stream."""
        if message.get("call_sid") == self.consult_sid:
            self._attached.set()

    async def twilio_consult_refused(self, message: dict) -> None:
        if message.get("call_sid") == self.consult_sid and not self._closed:
            logger.warning("Twilio stream %s ended: its call expects no consult stream", self.stream_sid)
            self._relay_to = ""
            await self._close(1008)

    async def twilio_consult_send(self, message: dict) -> None:
        if (
            message.get("call_sid") == self.consult_sid
            and not self._closed
            and isinstance(message.get("message"), dict)
        ):
            await self._send(message["message"])

    async def twilio_consult_close(self, message: dict) -> None:
        if message.get("call_sid") == self.consult_sid:
            self._relay_to = ""
            await self._close(1000)

    async def _run(self, bridge: CallBridge) -> None:
        try:
            reason = await bridge.run()
        finally:
            if self.host is not None:  # the supervisor's call, if any, ends with the caller's
                await self.host.close()
                await conference.unregister(self.host)
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
        if self._attach_timer is not None:
            self._attach_timer.cancel()
        with contextlib.suppress(Exception):
            await self._stopped()
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
