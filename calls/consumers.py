"""Live call viewing over websockets (the dashboard's Live page, or any program with an API key).

`/ws/v1/live` — the tenant's calls as they start, change and end:

    <- {"type": "snapshot", "calls": [<call>, ...]}          the active calls, on connect
    <- {"type": "call", "event": "call.ringing", "call": <call>}   each lifecycle event of any call

`/ws/v1/live/calls/<call_id>?after=<sequence>` — one call, turn by turn:

    <- {"type": "call", "call": <call>, "state": {...}}      on connect: the call and its live state
    <- {"type": "event", "event": "transcript.turn", "data": {...}, "sequence": 7, "timestamp": "..."}
    <- {"type": "caught_up", "sequence": 12}                 everything stored so far has been sent
    <- {"type": "event", "event": "transcript.partial", "data": {...}, "sequence": null}   interim text
    -> {"type": "end"}                                        a supervisor ends the call (write access)
    -> {"type": "transfer", "transfer": {"type": "blind", "target": "+15550100", "context": ""}}
    <- {"type": "ack", "action": "end"} / {"type": "error", "code": "...", "message": "..."}

Catch-up without losing or doubling a turn: the consumer joins the call's group *before* it reads
the stored events after `after`, so an event committed while it reads is both in the database and
queued for it; queued events at or below the last sequence sent are dropped, and a gap (a push
that was lost) is filled from the database before the next event goes out. A client that
reconnects passes the last sequence it rendered as `after`.

A transfer carries the REST API's body (POST /v1/calls/{id}/transfer: `type`, `target`, `context`) as
one nested object, because `type` at the top level already names the message. The older flat form,
`{"type": "transfer", "transfer_type": "blind", "target": ..., "context": ...}`, is still accepted.

Authentication is the REST API's (`tenants.realtime`): the dashboard's session, or X-API-Key.
Another tenant's call is refused exactly like a call that does not exist (4404).
"""

import logging
import uuid
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder

from calls import live_state, presentation, selectors, services
from calls.models import Call, CallEvent
from core import events, jsonsafe
from core.errors import ApplicationError, NotFound
from tenants.models import ApiKey
from tenants.realtime import SocketRefused, socket_principal

logger = logging.getLogger(__name__)

CLOSE_CODES = {400: 4400, 401: 4401, 403: 4403, 404: 4404}
LIFECYCLE_EVENTS = frozenset(
    {
        CallEvent.Type.CALL_RINGING,
        CallEvent.Type.CALL_DIALING,
        CallEvent.Type.CALL_CONNECTED,
        CallEvent.Type.CALL_STATUS_CHANGED,
        CallEvent.Type.CALL_ENDED,
        CallEvent.Type.CALL_FAILED,
        CallEvent.Type.CALL_TRANSFER_REQUESTED,
        CallEvent.Type.CALL_TRANSFERRED,
    }
)
CATCH_UP_BATCH = 500


def call_summary(call: Call) -> dict:
    """What a live view shows of a call (JSON-safe)."""
    return {
        "id": str(call.pk),
        "status": call.status,
        "status_display": call.get_status_display(),
        "direction": call.direction,
        "agent_id": str(call.agent_id),
        "agent_name": call.agent.name,
        "from_number": call.from_number,
        "to_number": call.to_number,
        "started_at": (call.started_at or call.created_at).isoformat(),
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "end_reason": call.end_reason,
        **presentation.call_view(call),  # title, counterpart, outcome {label, tone, reason}, duration_text
    }


def transfer_fields(content: dict) -> tuple[str, object, object]:
    """(type, target, context) of a transfer message: the nested REST body, or the older flat fields."""
    nested = content.get("transfer")
    if isinstance(nested, dict):
        return str(nested.get("type") or ""), nested.get("target"), nested.get("context") or ""
    if nested is not None:
        raise ApplicationError(
            "transfer must be an object: {'type', 'target', 'context'}.",
            code="invalid_request",
            fields={"transfer": ["Must be an object."]},
        )
    return str(content.get("transfer_type") or ""), content.get("target"), content.get("context") or ""


class LiveSocket(AsyncJsonWebsocketConsumer):
    """Shared by both live consumers: authentication, JSON that carries dates, refusals with a close code."""

    @classmethod
    async def encode_json(cls, content):
        return DjangoJSONEncoder().encode(content)

    async def decode_json(self, text_data):
        try:
            return jsonsafe.loads(text_data)
        except ValueError:  # malformed, too deep or unstorable: the consumer answers an error
            return None

    async def authenticate(self) -> bool:
        """Accept the socket; True when the caller is known, else refuse (error message + close)."""
        await self.accept()
        try:
            self.principal = await database_sync_to_async(socket_principal)(self.scope)
        except SocketRefused as exc:
            await self.refuse(exc)
            return False
        return True

    async def refuse(self, exc: ApplicationError) -> None:
        await self.send_json({"type": "error", "code": exc.code, "message": exc.message})
        await self.close(code=CLOSE_CODES.get(exc.status_code, 4400))

    async def bridge_hangup(self, message: dict) -> None:
        """Meant for the bridge running the call, which shares the call's group."""


class LiveCallsConsumer(LiveSocket):
    """`/ws/v1/live`: the tenant's active calls, then every call starting, changing and ending."""

    async def connect(self):
        self.group = None
        if not await self.authenticate():
            return
        self.group = events.tenant_group(self.principal.tenant.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        calls = await database_sync_to_async(self._active_calls)()
        await self.send_json({"type": "snapshot", "calls": calls})

    def _active_calls(self) -> list[dict]:
        return [call_summary(call) for call in selectors.call_list_active(tenant=self.principal.tenant)[:200]]

    async def bus_event(self, message: dict) -> None:
        if message["event"] not in LIFECYCLE_EVENTS:
            return
        call = await database_sync_to_async(self._call)(message["data"].get("call_id"))
        if call is not None:
            await self.send_json({"type": "call", "event": message["event"], "call": call})

    def _call(self, call_id) -> dict | None:
        # Scoped again on every event: the group carries the tenant, the query proves it.
        call = selectors.call_list(tenant=self.principal.tenant).select_related("agent").filter(pk=call_id).first()
        return call_summary(call) if call is not None else None

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "code": "invalid_request", "message": "This socket only sends."})

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)


class LiveCallConsumer(LiveSocket):
    """`/ws/v1/live/calls/<call_id>?after=N`: one call's events, caught up from N, then live."""

    async def connect(self):
        self.group, self.last_sequence = None, 0
        if not await self.authenticate():
            return
        try:
            after = self._after()
            self.call = await database_sync_to_async(self._load_call)(self.scope["url_route"]["kwargs"]["call_id"])
        except ApplicationError as exc:
            await self.refuse(exc)
            return
        self.group = events.call_group(self.call.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)  # before reading: nothing slips between
        state = await database_sync_to_async(live_state.get_state)(self.call.pk)
        await self.send_json({"type": "call", "call": call_summary(self.call), "state": state})
        self.last_sequence = after
        await self._catch_up()
        await self.send_json({"type": "caught_up", "sequence": self.last_sequence})

    def _after(self) -> int:
        raw = (parse_qs((self.scope.get("query_string") or b"").decode()).get("after") or ["0"])[0]
        try:
            after = int(raw)
        except ValueError:
            after = -1
        if after < 0:
            raise ApplicationError("after must be the last event sequence you have (0 for all).", code="invalid_after")
        return after

    def _load_call(self, call_id) -> Call:
        call = selectors.call_list(tenant=self.principal.tenant).select_related("agent").filter(pk=call_id).first()
        if call is None:
            raise NotFound("No such call.", code="call_not_found")
        return call

    def _stored_after(self, sequence: int) -> list[dict]:
        rows = (
            CallEvent.objects.for_tenant(self.principal.tenant)
            .filter(call_id=self.call.pk, sequence__gt=sequence)
            .order_by("sequence")
            .values("sequence", "event_type", "payload", "occurred_at")[:CATCH_UP_BATCH]
        )
        return list(rows)

    async def _catch_up(self) -> None:
        """Send every stored event after the last one sent, in order."""
        while True:
            rows = await database_sync_to_async(self._stored_after)(self.last_sequence)
            for row in rows:
                await self._send_event(row["event_type"], row["payload"], row["sequence"], row["occurred_at"])
            if len(rows) < CATCH_UP_BATCH:
                return

    async def _send_event(self, event: str, data: dict, sequence: int | None, timestamp) -> None:
        await self.send_json(
            {"type": "event", "event": event, "data": data, "sequence": sequence, "timestamp": timestamp}
        )
        if sequence is not None:
            self.last_sequence = sequence

    async def bus_event(self, message: dict) -> None:
        sequence = message.get("sequence")
        if sequence is not None:
            if sequence <= self.last_sequence:
                return  # sent already, by the catch-up
            if sequence > self.last_sequence + 1:
                await self._catch_up()  # a push was lost: the database has it
                if sequence <= self.last_sequence:
                    return
        await self._send_event(message["event"], message["data"], sequence, message["timestamp"])

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind not in ("end", "transfer"):
                raise ApplicationError(
                    "Send {'type': 'end'} or {'type': 'transfer', 'transfer': {'type', 'target', 'context'}}."
                )
            if not self.principal.allows("write"):
                raise ApplicationError(
                    "Ending or transferring a call needs write access.", code="permission_denied", status_code=403
                )
            await database_sync_to_async(self._act)(kind, content)
        except ApplicationError as exc:
            reply: dict[str, object] = {"type": "error", "code": exc.code, "message": exc.message}
            if getattr(exc, "fields", None):
                reply["fields"] = exc.fields
            await self.send_json(reply)
            return
        await self.send_json({"type": "ack", "action": kind})

    def _act(self, kind: str, content: dict) -> None:
        call = self._load_call(self.call.pk)  # re-read: the call may have ended since
        actor = self._actor()
        if kind == "end":
            services.call_end_request(call=call, actor=actor)
            return
        transfer_type, target, context = transfer_fields(content)
        if not isinstance(target, str) or not target.strip() or not isinstance(context, str):
            raise ApplicationError("Name who to transfer to.", code="invalid_request", fields={"target": ["Required."]})
        services.call_transfer_request(
            call=call,
            transfer_type=transfer_type,
            target=target.strip(),
            context=context[:2000],
            reason="supervisor",
            actor=actor,
        )

    def _actor(self) -> dict:
        user = self.scope.get("user") if self.principal.user_id else None
        api_key = None
        if self.principal.api_key_id:
            api_key = (
                ApiKey.objects.for_tenant(self.principal.tenant).filter(pk=uuid.UUID(self.principal.api_key_id)).first()
            )
        return {"actor_user": user, "actor_api_key": api_key}

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
