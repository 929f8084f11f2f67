"""The event bus: events go to Channels groups after the transaction that caused them commits.

Documented in docs/architecture.md#the-event-bus-and-live-state.

Groups: `call.<call_id>` (the bridge and the agent session of that call, live viewers),
`tenant.<tenant_id>` (the tenant's dashboard) and `system` (platform-wide events: the PBX event
subscription going up or down, media workers starting and stopping). Consumers receive
{"type": "bus.event", "event", "timestamp", "data", "sequence"}: `sequence` is the stored
`CallEvent`'s position in its call (None for events that are not stored), so a viewer that
reconnects can ask for what it missed and drop what it already has.

Every stored call event is published by `calls.services.call_event_record`; nothing else needs to
call `publish_on_commit` for those. Interim transcripts (`transcript.partial`) are published to the call's
group only, with no sequence: they are replaced by the stored `transcript.turn` and never replayed.
A `{"type": "bridge.hangup"}` message on a call's group asks the bridge running it to hang up; every
other member of the group ignores it.
"""

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

SYSTEM_GROUP = "system"


class BusMessage(TypedDict):
    type: str
    event: str
    timestamp: str
    data: dict
    sequence: int | None


def call_group(call_id) -> str:
    return f"call.{call_id}"


def tenant_group(tenant_id) -> str:
    return f"tenant.{tenant_id}"


def message(event: str, data: dict, *, sequence: int | None = None, timestamp=None) -> BusMessage:
    stamp = (timestamp or timezone.now()).isoformat()
    return BusMessage(type="bus.event", event=event, timestamp=stamp, data=data, sequence=sequence)


def publish_on_commit(event: str, data: dict, *, tenant_id, call_id=None, sequence=None, timestamp=None) -> None:
    """Publish `event` to the call's and the tenant's groups once the current transaction commits."""
    msg = message(event, data, sequence=sequence, timestamp=timestamp)
    groups = [tenant_group(tenant_id)] + ([call_group(call_id)] if call_id else [])
    transaction.on_commit(lambda: _send(groups, msg))


def request_hangup_on_commit(*, call_id) -> None:
    """Tell the bridge running this call to hang up, once the current transaction commits."""
    transaction.on_commit(lambda: _send([call_group(call_id)], {"type": "bridge.hangup"}))


async def apublish_transient(event: str, data: dict, *, call_id) -> None:
    """Publish an event that is not stored (interim transcripts) to the call's viewers, from async code."""
    await _asend([call_group(call_id)], message(event, data))


def publish_system(event: str, data: dict) -> None:
    """Publish a platform-wide event to the `system` group now (from sync code)."""
    _send([SYSTEM_GROUP], message(event, data))


async def apublish_system(event: str, data: dict) -> None:
    """The same from async code (the media worker's loop)."""
    await _asend([SYSTEM_GROUP], message(event, data))


def _send(groups: list[str], msg: BusMessage) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, msg)
        except Exception:  # the stored event is the record; a live push may be lost, never the write
            logger.exception("could not publish %s to %s", msg["event"], group)


async def _asend(groups: list[str], msg: BusMessage) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            await layer.group_send(group, msg)
        except Exception:
            logger.exception("could not publish %s to %s", msg["event"], group)
