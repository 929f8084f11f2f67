"""Where each PBX event goes (the subscriber's handler in the media worker).

- `call.ringing` -> the media workers' shared channel: whichever worker takes it answers the call.
- `call.connected` of an outbound call still dialling -> the same channel: a worker runs its bridge.
- `call.failed` / `call.ended` of a call nobody answered yet -> the call ends here (no_answer, busy,
  voicemail...), since no bridge owns it.
- everything else (hang-up, transfer outcomes, a consult leg's progress) -> the call's own group
  `call.<id>`, where its bridge is listening, whichever process that is in.

The PBX may report a call before our dial request has stored its id (the events socket can be faster
than the REST answer), so an unknown PBX call id is looked up again for a few seconds before the
event is dropped with a log line.
"""

import asyncio
import dataclasses
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from calls import services as call_services
from calls.state_machine import CallStatus
from core import events
from telephony import services
from telephony.carriers.goto import legacy_wire as wire

logger = logging.getLogger(__name__)

RESOLVE_ATTEMPTS = 12
RESOLVE_DELAY_SECONDS = 0.25
NOT_ANSWERED = (CallStatus.INITIAL, CallStatus.DIALING, CallStatus.RINGING)


async def handle_pbx_event(event) -> None:
    """The EventSubscriber's handler: route one (de-duplicated) PBX event."""
    layer = get_channel_layer()
    if event.name == wire.CALL_RINGING:
        await layer.send(settings.MEDIA_WORKER_CHANNEL, {"type": "pbx.ringing", "event": dataclasses.asdict(event)})
        return
    # Waiting for a late id must not hold up the events behind this one.
    task = asyncio.create_task(_route(layer, event), name=f"pbx-route-{event.id}")
    _routing.add(task)  # held until done: the loop keeps only weak references to tasks
    task.add_done_callback(_routing.discard)


_routing: set[asyncio.Task] = set()


async def _route(layer, event) -> None:
    found = await _resolve(event.call_id)
    if found is None:
        logger.warning("PBX event %s for unknown PBX call %s dropped", event.name, event.call_id)
        return
    call_id, tenant_id, status, consult = found
    if not consult and status == CallStatus.DIALING and event.name == wire.CALL_CONNECTED:
        message = {"type": "pbx.connected", "call_id": call_id, "tenant_id": tenant_id}
        await layer.send(settings.MEDIA_WORKER_CHANNEL, message)
        return
    if not consult and status in NOT_ANSWERED and event.name in (wire.CALL_FAILED, wire.CALL_ENDED):
        reason = event.data.get("reason") or "no_answer"
        await database_sync_to_async(call_services.outbound_failed)(call_id=call_id, tenant_id=tenant_id, reason=reason)
    message = {"type": "pbx.event", "event": event.name, "data": event.data, "external_call_id": event.call_id}
    await layer.group_send(events.call_group(call_id), message)


async def _resolve(external_id: str):
    for attempt in range(RESOLVE_ATTEMPTS):
        found = await database_sync_to_async(services.external_call_resolve)(external_id)
        if found is not None:
            return found
        if attempt + 1 < RESOLVE_ATTEMPTS:
            await asyncio.sleep(RESOLVE_DELAY_SECONDS)
    return None
