"""Writes for calls: creation, status changes through the state machine, and the event log."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agents.models import Agent
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus, InvalidTransition, check_transition
from telephony.models import PhoneNumber
from tenants.models import Tenant
from voiceapp import metrics
from voiceapp.errors import ApplicationError, Conflict

logger = logging.getLogger(__name__)

STATUS_EVENTS = {
    CallStatus.RINGING: CallEvent.Type.CALL_RINGING,
    CallStatus.DIALING: CallEvent.Type.CALL_DIALING,
    CallStatus.CONNECTED: CallEvent.Type.CALL_CONNECTED,
    CallStatus.ENDED: CallEvent.Type.CALL_ENDED,
}


def room_name_for(call: Call) -> str:
    return f"call-{call.tenant_id}-{call.pk}"


@transaction.atomic
def call_create(
    *,
    tenant: Tenant,
    agent: Agent,
    direction: str,
    from_number: str = "",
    to_number: str = "",
    phone_number: PhoneNumber | None = None,
    external_call_id: str | None = None,
    metadata: dict | None = None,
) -> Call:
    """Create a call in the initial state for one of the tenant's live agents."""
    if agent.tenant_id != tenant.pk or agent.deleted_at is not None:
        raise ApplicationError("Unknown agent.", code="agent_not_found", fields={"agent": ["Unknown agent."]})
    if phone_number is not None and phone_number.tenant_id != tenant.pk:
        raise ApplicationError("Unknown phone number.", code="number_not_found")
    if direction not in Call.Direction.values:
        raise ApplicationError(f"Unknown direction {direction!r}.", code="invalid_direction")
    call = Call(
        tenant=tenant,
        agent=agent,
        direction=direction,
        from_number=from_number,
        to_number=to_number,
        phone_number=phone_number,
        external_call_id=external_call_id,
        metadata=metadata or {},
        started_at=timezone.now(),
    )
    call.room_name = room_name_for(call)
    call.save()
    return call


def call_event_record(
    *, call: Call, event_type: str, payload: dict | None = None, occurred_at: datetime | None = None
) -> CallEvent:
    """Append an event to the call's log with the next sequence number (locks the call row)."""
    with transaction.atomic():
        Call.objects.select_for_update().filter(pk=call.pk).exists()
        last = CallEvent.objects.filter(call=call).aggregate(m=Max("sequence"))["m"] or 0
        return CallEvent.objects.create(
            tenant_id=call.tenant_id,
            call=call,
            sequence=last + 1,
            event_type=event_type,
            payload=payload or {},
            occurred_at=occurred_at or timezone.now(),
        )


@transaction.atomic
def call_transition(*, call: Call, to_status: str, end_reason: str = "", at: datetime | None = None) -> Call:
    """Move a call to `to_status` if the state machine allows it, stamping times and logging the event."""
    call = Call.objects.select_for_update().get(pk=call.pk)
    try:
        check_transition(current=call.status, target=to_status, direction=call.direction)
    except InvalidTransition as exc:
        raise Conflict(str(exc), code="invalid_call_transition") from exc
    now = at or timezone.now()
    previous, call.status = call.status, to_status
    if to_status == CallStatus.CONNECTED:
        call.answered_at = now
    if to_status == CallStatus.ENDED:
        call.ended_at = now
        call.duration_seconds = int((now - call.answered_at).total_seconds()) if call.answered_at else 0
        call.end_reason = end_reason or (Call.EndReason.ERROR if previous == CallStatus.ERROR else "")
    call.save(update_fields=["status", "answered_at", "ended_at", "duration_seconds", "end_reason", "updated_at"])
    event_type = STATUS_EVENTS.get(to_status, CallEvent.Type.CALL_STATUS_CHANGED)
    call_event_record(call=call, event_type=event_type, payload=_event_payload(call, previous), occurred_at=now)
    if to_status == CallStatus.ENDED:
        transaction.on_commit(lambda: _observe_ended(call))
    return call


def _event_payload(call: Call, previous: str) -> dict:
    """The seed's payload (5.3) for the event a status change emits."""
    base = {"call_id": str(call.pk), "tenant_id": str(call.tenant_id)}
    if call.status in (CallStatus.RINGING, CallStatus.DIALING):
        return base | {"from": call.from_number, "to": call.to_number, "direction": call.direction}
    if call.status == CallStatus.CONNECTED:
        return base | {"answered_at": call.answered_at.isoformat()}
    if call.status == CallStatus.ENDED:
        return base | {"duration": call.duration_seconds, "end_reason": call.end_reason}
    return base | {"from_status": previous, "to_status": call.status}


def _observe_ended(call: Call) -> None:
    outcome = "error" if call.end_reason == Call.EndReason.ERROR else "completed"
    metrics.calls_total.labels(tenant=str(call.tenant_id), direction=call.direction, status=outcome).inc()
    metrics.call_duration_seconds.labels(tenant=str(call.tenant_id), direction=call.direction).observe(
        call.duration_seconds or 0
    )


def calls_end_stale(*, now: datetime | None = None) -> int:
    """End calls left open longer than setup timeout plus maximum duration (a process died mid-call)."""
    now = now or timezone.now()
    limit = settings.CALL_SETUP_TIMEOUT_SECONDS + settings.CALL_MAX_DURATION_SECONDS
    stale = (
        Call.objects.unscoped().exclude(status=CallStatus.ENDED).filter(started_at__lt=now - timedelta(seconds=limit))
    )
    ended = 0
    for call in stale.iterator():
        try:
            call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.MAX_DURATION, at=now)
        except Conflict:
            continue  # ended meanwhile by its own process
        ended += 1
    if ended:
        logger.warning("ended %s stale calls open for more than %s s", ended, limit)
    return ended
