"""Channels consumers of the telephony app.

- `MediaWorkerConsumer`: the media workers' shared channel (`settings.MEDIA_WORKER_CHANNEL`): GoTo calls
  to hang up (a canceled or stuck dial); each becomes a task of this process's `MediaWorker`. Outbound
  GoTo dials have their own channel, read by the worker itself (`telephony.worker.dial_channel`).
- `BrowserCallConsumer`: `/ws/v1/test-calls`, the browser test call: a WebRTC peer (the dashboard, or
  any program) offers SDP and talks to one of its tenant's agents over the same bridge and session. The
  socket is the call's carrier (`telephony.carriers.browser`): the bridge answers, hangs up and transfers
  through it as through a phone carrier.

Test-call protocol (JSON text frames):

    -> {"type": "start", "agent_id": "<uuid>", "sdp": "<offer>"}
    <- {"type": "answer", "call_id": "<uuid>", "sdp": "<answer>"}
    <- {"type": "event", "event": "transcript.turn", "data": {...}, "sequence": 7}   (every event of the call)
    <- {"type": "transfer", "call_id": "<uuid>", "transfer_type": "blind|warm", "target": "+1555...",
        "briefing": "...", "message": "..."}   (the call was transferred: where a phone caller would now be;
                                                 `briefing`, on a warm transfer, is what the target would hear)
    -> {"type": "hangup"}                       (or close the socket)
    <- {"type": "hangup", "call_id": "<uuid>"}  (our side hung up: a supervisor, the agent, a limit)
    <- {"type": "ended", "call_id": "<uuid>", "end_reason": "caller_hangup"}   (always the last message)
    <- {"type": "error", "code": "...", "message": "..."}   (then the socket closes with 4400/4401/4403/4404/4429)
"""

import asyncio
import logging
import uuid

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core import events, jsonsafe
from core.errors import ApplicationError, NotFound
from telephony import services, worker
from telephony.bridge import CallBridge
from telephony.carriers.browser import BrowserCarrier
from tenants.realtime import SocketPrincipal, SocketRefused, socket_principal
from voice.session import find_agent

logger = logging.getLogger(__name__)


class MediaWorkerConsumer(AsyncConsumer):
    async def goto_hangup(self, message: dict) -> None:
        worker.current().take_hangup(message)


CLOSE_CODES = {400: 4400, 401: 4401, 402: 4402, 403: 4403, 404: 4404, 409: 4409, 429: 4429}


class BrowserCallConsumer(AsyncJsonWebsocketConsumer):
    """One browser test call per socket (a write scope is needed to place a call)."""

    bridge_options: dict = {}  # tests and benchmarks pass fake engines here

    async def connect(self):
        self.principal: SocketPrincipal | None = None  # None: refused
        self.bridge: CallBridge | None = None
        self.carrier: BrowserCarrier | None = None
        self.task: asyncio.Task | None = None
        self.call_id: str | None = None
        try:
            self.principal = await database_sync_to_async(socket_principal)(self.scope)
        except SocketRefused as exc:
            await self.accept()
            await self._refuse(exc)
            return
        await self.accept()

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "start":
                await self._start(content)
            elif kind == "hangup":
                await self._hangup()
            else:
                raise ApplicationError("Send {'type': 'start', 'agent_id', 'sdp'} or {'type': 'hangup'}.")
        except ApplicationError as exc:
            await self._refuse(exc)

    async def decode_json(self, text_data):
        try:
            return jsonsafe.loads(text_data)
        except ValueError:  # malformed, too deep or unstorable: the consumer answers an error
            return None

    async def _start(self, content: dict) -> None:
        if self.bridge is not None:
            raise ApplicationError("This socket already has a call.", code="call_in_progress", status_code=409)
        principal = self.principal
        if principal is None:  # refused on connect: a start sent before the close reached the caller
            raise SocketRefused("This socket was refused: connect again with a key or a session.")
        if not principal.allows("write"):
            raise ApplicationError("Placing a test call needs write access.", code="permission_denied", status_code=403)
        agent_id, sdp = content.get("agent_id"), content.get("sdp")
        if not isinstance(agent_id, str) or not isinstance(sdp, str) or not sdp.strip():
            raise ApplicationError("agent_id and sdp (the offer) are required.", code="invalid_request")
        call = await database_sync_to_async(self._create_call)(principal, agent_id)
        self.call_id = call.call_id
        await self.channel_layer.group_add(events.call_group(call.call_id), self.channel_name)
        self.carrier = carrier = BrowserCarrier(call, offer=sdp, send=self.send_json)
        self.bridge = bridge = CallBridge(call, pbx=carrier, **self.bridge_options)
        try:
            await bridge.answer_pbx()  # the carrier answers the browser's offer and sends it our answer
        except Exception as exc:
            await bridge.abort(getattr(exc, "code", "invalid_sdp"))
            raise ApplicationError(f"The offer was refused: {exc}", code=getattr(exc, "code", "invalid_sdp")) from exc
        self.task = asyncio.create_task(self._run(bridge, carrier), name=f"test-call-{call.call_id}")

    @staticmethod
    def _create_call(principal: SocketPrincipal, agent_id: str):
        try:
            uuid.UUID(agent_id)
        except ValueError as exc:
            raise NotFound("Unknown agent.", code="agent_not_found") from exc
        agent = find_agent(tenant=principal.tenant, agent_ref=agent_id)
        return services.browser_call_create(tenant=principal.tenant, agent=agent, user_id=principal.user_id)

    async def _run(self, bridge: CallBridge, carrier: BrowserCarrier) -> None:
        reason = await bridge.run()
        await carrier.ended(reason)
        await self.close(code=1000)

    async def _hangup(self) -> None:
        """The caller hung up (said so, or closed the socket): their carrier reports it, as a phone carrier would."""
        if self.carrier is None or self.bridge is None or self.task is None or self.task.done():
            return
        try:
            await self.carrier.caller_hung_up()
        except Exception:  # the channel layer failed: the bridge runs in this process and is told directly
            logger.warning("test call %s: the hang-up could not be reported, ending directly", self.call_id)
            self.bridge.hangup_by_caller()

    async def bus_event(self, message: dict) -> None:
        await self.send_json(
            {"type": "event", "event": message["event"], "data": message["data"], "sequence": message.get("sequence")}
        )

    async def bridge_hangup(self, message: dict) -> None:
        """A supervisor's hang-up on the call's group: the bridge (subscribed itself) carries it out."""

    async def pbx_event(self, message: dict) -> None:
        """The browser carrier's own events on the call's group: the bridge (subscribed itself) acts on them."""

    async def disconnect(self, code):
        if self.task is not None and not self.task.done():
            await self._hangup()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.call_id is not None:
            await self.channel_layer.group_discard(events.call_group(self.call_id), self.channel_name)

    async def _refuse(self, exc: ApplicationError) -> None:
        await self.send_json({"type": "error", "code": exc.code, "message": exc.message})
        await self.close(code=CLOSE_CODES.get(exc.status_code, 4400))
