"""What a call's session stores as it happens: transcript turns and tool calls, each with its bus event."""

from datetime import datetime

from django.db import transaction
from django.db.models import Max

from calls import webhook_events
from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from calls.services.lifecycle import call_event_record


@transaction.atomic
def tool_call_record(
    *,
    call: Call,
    tool_name: str,
    arguments: dict,
    status: str,
    started_at: datetime,
    ended_at: datetime | None = None,
    result=None,
    error: str = "",
    http_status: int | None = None,
    duration_ms: int | None = None,
    turn: TranscriptTurn | None = None,
) -> ToolCall:
    """Store a finished tool call with its `tool.called` event; a failed or timed-out one is sent as tool.failed."""
    tool_call = ToolCall.objects.create(
        tenant_id=call.tenant_id,
        call=call,
        turn=turn,
        tool_name=tool_name,
        arguments=arguments,
        result=result,
        status=status,
        error=error,
        http_status=http_status,
        started_at=started_at,
        ended_at=ended_at,
        duration_ms=duration_ms,
    )
    succeeded = status == ToolCall.Status.SUCCEEDED
    payload = {
        "call_id": str(call.pk),
        "tool_name": tool_name,
        "input": arguments,
        "output": result if succeeded else {"error": error},
        "status": status,
        "duration_ms": duration_ms,
    }
    call_event_record(call=call, event_type=CallEvent.Type.TOOL_CALLED, payload=payload, occurred_at=ended_at)
    if status in (ToolCall.Status.FAILED, ToolCall.Status.TIMED_OUT):
        webhook_events.emit_tool_failed(tool_call)
    return tool_call


def turn_next_number(*, call_id, tenant_id) -> int:
    turns = TranscriptTurn.objects.for_tenant(tenant_id).filter(call_id=call_id)
    return (turns.aggregate(m=Max("turn_number"))["m"] or 0) + 1


@transaction.atomic
def turn_record(
    *,
    call_id,
    tenant_id,
    turn_number: int,
    speaker: str,
    text: str,
    started_at: datetime,
    ended_at: datetime | None = None,
    confidence: float | None = None,
    interrupted: bool = False,
    metadata: dict | None = None,
) -> TranscriptTurn:
    """Store one finished turn and its `transcript.turn` event (pushed live once committed)."""
    call = Call(pk=call_id, tenant_id=tenant_id)  # a reference: the session knows its call and tenant
    turn = TranscriptTurn.objects.create(
        tenant_id=tenant_id,
        call=call,
        turn_number=turn_number,
        speaker=speaker,
        text=text,
        confidence=confidence,
        started_at=started_at,
        ended_at=ended_at if ended_at and ended_at >= started_at else None,
        interrupted=interrupted,
        metadata=metadata or {},
    )
    payload = {
        "call_id": str(call_id),
        "speaker": speaker,
        "text": text,
        "timestamp": started_at.isoformat(),
        "turn_number": turn_number,
        "interrupted": interrupted,
    }
    call_event_record(call=call, event_type=CallEvent.Type.TRANSCRIPT_TURN, payload=payload)
    return turn
