"""Where a carrier event about one of our calls goes (GoTo's call states, translated by `callstate`).

- a call not answered yet that fails or ends (no_answer, busy, ...) ends here: `outbound_failed`
  stores why, whether or not a bridge is still waiting for it;
- every event then goes to the call's own group `call.<id>`, where its bridge is listening, whichever
  process that is in (the bridge of an outbound call waits there for `call.connected`).

GoTo may report a call before the dial's answer has stored its id (the channel can be faster than the
REST answer), so an unknown carrier call id is looked up again for a few seconds before the event is
dropped with a log line. The lookup must not hold up the events behind it: each runs as its own task.
"""

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from calls import services as call_services
from calls.state_machine import CallStatus
from core import events
from telephony import carrier_events, services

logger = logging.getLogger(__name__)

RESOLVE_ATTEMPTS = 12
RESOLVE_DELAY_SECONDS = 0.25
NOT_ANSWERED = (CallStatus.INITIAL, CallStatus.DIALING, CallStatus.RINGING)

_routing: set[asyncio.Task] = set()


async def report(external_id: str, name: str, data: dict) -> None:
    """Route one (de-duplicated) carrier event about the carrier call `external_id`."""
    task = asyncio.create_task(_route(external_id, name, data), name=f"carrier-event-{external_id}")
    _routing.add(task)  # held until done: the loop keeps only weak references to tasks
    task.add_done_callback(_routing.discard)


async def _route(external_id: str, name: str, data: dict) -> None:
    found = await _resolve(external_id)
    if found is None:
        logger.warning("carrier event %s for unknown carrier call %s dropped", name, external_id)
        return
    call_id, tenant_id, status, consult = found
    if not consult and status in NOT_ANSWERED and name in (carrier_events.FAILED, carrier_events.ENDED):
        reason = data.get("reason") or "no_answer"
        reason = "no_answer" if reason == "hangup" else reason
        await database_sync_to_async(call_services.outbound_failed)(call_id=call_id, tenant_id=tenant_id, reason=reason)
    message = {"type": "pbx.event", "event": name, "data": data, "external_call_id": external_id}
    await get_channel_layer().group_send(events.call_group(call_id), message)


async def _resolve(external_id: str):
    for attempt in range(RESOLVE_ATTEMPTS):
        found = await database_sync_to_async(services.external_call_resolve)(external_id)
        if found is not None:
            return found
        if attempt + 1 < RESOLVE_ATTEMPTS:
            await asyncio.sleep(RESOLVE_DELAY_SECONDS)
    return None
