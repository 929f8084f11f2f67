"""The event bus (seed 5.3): events go to Channels groups after the transaction that caused them commits.

Groups: `call.<call_id>` (the bridge and the agent session of that call, live viewers) and
`tenant.<tenant_id>` (the tenant's dashboard). Consumers receive {"type": "bus.event", "event", "timestamp", "data"}.
"""

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


class BusMessage(TypedDict):
    type: str
    event: str
    timestamp: str
    data: dict


def call_group(call_id) -> str:
    return f"call.{call_id}"


def tenant_group(tenant_id) -> str:
    return f"tenant.{tenant_id}"


def publish_on_commit(event: str, data: dict, *, tenant_id, call_id=None) -> None:
    """Publish `event` to the call's and the tenant's groups once the current transaction commits."""
    message = BusMessage(type="bus.event", event=event, timestamp=timezone.now().isoformat(), data=data)
    groups = [tenant_group(tenant_id)] + ([call_group(call_id)] if call_id else [])
    transaction.on_commit(lambda: _send(groups, message))


def _send(groups: list[str], message: BusMessage) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the stored event is the record; a live push may be lost, never the write
            logger.exception("could not publish %s to %s", message["event"], group)
