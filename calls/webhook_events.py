"""The tenant webhooks a call's life emits (catalog in integrations.webhooks.catalog).

Each is stored in the outbox inside the transaction of the change it reports, so an event is sent if
and only if the change committed.
"""

from calls.models import Call, CallEvent, ToolCall
from calls.state_machine import CallStatus
from integrations.webhooks.outbox import webhook_emit

# A call that ended this way never became a conversation.
FAILED_REASONS = frozenset(
    {
        Call.EndReason.ERROR,
        Call.EndReason.SETUP_TIMEOUT,
        Call.EndReason.NO_ANSWER,
        Call.EndReason.BUSY,
        Call.EndReason.REJECTED,
    }
)


def call_data(call: Call) -> dict:
    return {
        "call_id": str(call.pk),
        "agent_id": str(call.agent_id),
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
    }


def _ended_data(call: Call) -> dict:
    return {
        **call_data(call),
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "duration_seconds": call.duration_seconds,
        "end_reason": call.end_reason,
    }


def emit_for_status(call: Call) -> None:
    """call.started when a call starts ringing or dialling; call.ended (and call.failed) when it ends."""
    if call.status in (CallStatus.RINGING, CallStatus.DIALING):
        data = {**call_data(call), "status": call.status, "started_at": call.started_at}
        webhook_emit(tenant_id=call.tenant_id, event_type="call.started", data=data)
    elif call.status == CallStatus.ENDED:
        webhook_emit(tenant_id=call.tenant_id, event_type="call.ended", data=_ended_data(call))
        if call.end_reason in FAILED_REASONS:
            reason = (call.metadata or {}).get("failure_reason") or call.end_reason
            data = {**_ended_data(call), "failure_reason": reason}
            webhook_emit(tenant_id=call.tenant_id, event_type="call.failed", data=data)


def emit_transferred(call: Call, payload: dict) -> None:
    data = {
        **call_data(call),
        "transfer_type": payload.get("transfer_type", ""),
        "transferred_to": payload.get("transferred_to") or payload.get("target", ""),
        "reason": payload.get("reason", ""),
    }
    webhook_emit(tenant_id=call.tenant_id, event_type="call.transferred", data=data)


def transfer_payload(call: Call) -> dict | None:
    """The payload of a call.transferred event for a call that ended by transfer, unless one was recorded."""
    events = CallEvent.objects.for_tenant(call.tenant_id).filter(call=call)
    if events.filter(event_type=CallEvent.Type.CALL_TRANSFERRED).exists():
        return None
    requested = events.filter(event_type=CallEvent.Type.CALL_TRANSFER_REQUESTED).order_by("-sequence").first()
    asked = requested.payload if requested else {}
    return {
        "call_id": str(call.pk),
        "transfer_type": asked.get("transfer_type", ""),
        "transferred_to": asked.get("target", ""),
        "reason": asked.get("reason", ""),
    }


def emit_tool_failed(tool_call: ToolCall) -> None:
    data = {
        "call_id": str(tool_call.call_id),
        "tool_call_id": str(tool_call.pk),
        "tool_name": tool_call.tool_name,
        "status": tool_call.status,
        "error": tool_call.error,
        "http_status": tool_call.http_status,
        "duration_ms": tool_call.duration_ms,
    }
    webhook_emit(tenant_id=tool_call.tenant_id, event_type="tool.failed", data=data)
