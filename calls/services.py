"""Writes for calls: creation, status changes through the state machine, and the event log."""

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from agents.models import Agent
from billing import selectors as billing_selectors
from billing import services as billing_services
from calls import concurrency, live_state, metrics, webhook_events
from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from calls.state_machine import CallStatus, InvalidTransition, check_transition
from core import events
from core.errors import ApplicationError, Conflict
from core.validators import E164_PATTERN
from telephony.models import PhoneNumber
from tenants.models import Tenant
from tenants.services import audit_log_record

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
    concurrency.active_calls_add(tenant_id=tenant.pk, call_id=call.pk)  # ghosts of a rollback are reconciled
    return call


def call_event_record(
    *, call: Call, event_type: str, payload: dict | None = None, occurred_at: datetime | None = None
) -> CallEvent:
    """Append an event to the call's log with the next sequence number (locks the call row).

    Once the transaction commits, the event goes out on the bus (`call.<id>` and `tenant.<id>`) and
    is applied to the call's live state (`calls.live_state`), so both follow the stored log.
    """
    with transaction.atomic():
        Call.objects.select_for_update().filter(pk=call.pk).exists()
        last = CallEvent.objects.filter(call=call).aggregate(m=Max("sequence"))["m"] or 0
        event = CallEvent.objects.create(
            tenant_id=call.tenant_id,
            call=call,
            sequence=last + 1,
            event_type=event_type,
            payload=payload or {},
            occurred_at=occurred_at or timezone.now(),
        )
        if event_type == CallEvent.Type.CALL_TRANSFERRED:
            webhook_events.emit_transferred(call, event.payload)
        events.publish_on_commit(
            event_type,
            event.payload,
            tenant_id=call.tenant_id,
            call_id=call.pk,
            sequence=event.sequence,
            timestamp=event.occurred_at,
        )
        transaction.on_commit(lambda: live_state.apply_event(event), robust=True)
        return event


@transaction.atomic
def call_transition(*, call: Call, to_status: str, end_reason: str = "", at: datetime | None = None) -> Call:
    """Move a call to `to_status` if the state machine allows it, stamping times and logging the event."""
    call = Call.objects.select_for_update().get(pk=call.pk)
    try:
        check_transition(current=call.status, target=to_status, direction=call.direction)
    except InvalidTransition as exc:
        raise Conflict(str(exc), code="invalid_call_transition") from exc
    # A late or reordered provider event never moves time backwards past what the call recorded.
    now = max(t for t in (at or timezone.now(), call.started_at, call.answered_at) if t is not None)
    previous, call.status = call.status, to_status
    call.dial_due_at = None  # only a call still initial may be waiting to be dialled
    if to_status == CallStatus.CONNECTED:
        call.answered_at = now
    if to_status == CallStatus.ENDED:
        call.ended_at = now
        call.duration_seconds = int((now - call.answered_at).total_seconds()) if call.answered_at else 0
        call.end_reason = end_reason or (Call.EndReason.ERROR if previous == CallStatus.ERROR else "")
    call.save(
        update_fields=[
            "status", "answered_at", "ended_at", "duration_seconds", "end_reason", "dial_due_at", "updated_at"
        ]
    )  # fmt: skip
    event_type = STATUS_EVENTS.get(to_status, CallEvent.Type.CALL_STATUS_CHANGED)
    call_event_record(call=call, event_type=event_type, payload=_event_payload(call, previous), occurred_at=now)
    if to_status == CallStatus.ENDED:
        _end(call)
    else:
        webhook_events.emit_for_status(call)
    return call


def _end(call: Call) -> None:
    """What ending a call does besides its event: webhooks, metering, then (after commit) the worker's part."""
    transferred = call.end_reason == Call.EndReason.TRANSFERRED and webhook_events.transfer_payload(call)
    if transferred:  # the bridge did not report it: record it, so the tenant hears of it before call.ended
        call_event_record(call=call, event_type=CallEvent.Type.CALL_TRANSFERRED, payload=transferred)
    webhook_events.emit_for_status(call)
    billing_services.usage_record_for_call(call=call)  # metered once, in the same transaction
    # Robust: a broker that is down is logged; the periodic sweep processes the call later.
    transaction.on_commit(lambda: _ended_committed(call), robust=True)


def _ended_committed(call: Call) -> None:
    """After the end commits: metrics, the tenant's active-call slot, the worker's post-call processing."""
    from calls import tasks  # tasks import this module

    _observe_ended(call)
    concurrency.active_calls_remove(tenant_id=call.tenant_id, call_id=call.pk)
    tasks.process_transcript.delay(call_id=str(call.pk), tenant_id=str(call.tenant_id))


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


class TelephonyUnavailable(ApplicationError):
    code = "telephony_not_configured"


def _caller_id(tenant: Tenant, agent: Agent, from_number: PhoneNumber | None) -> PhoneNumber:
    if from_number is not None:
        return from_number
    numbers = PhoneNumber.objects.for_tenant(tenant).filter(status=PhoneNumber.Status.ACTIVE).order_by("e164")
    number = numbers.filter(agent=agent).first() or numbers.first()
    if number is None:
        raise ApplicationError(
            "The tenant has no active phone number to call from.",
            code="no_caller_id",
            fields={"from_number_id": ["Add a phone number first."]},
        )
    return number


def call_check_allowed(tenant: Tenant, agent: Agent) -> None:
    """Raise unless the tenant may take or place a call with this agent now (agent live, credit, concurrency)."""
    if agent.status != Agent.Status.ACTIVE:
        raise Conflict("This agent is paused.", code="agent_paused", fields={"agent_id": ["The agent is paused."]})
    if not billing_selectors.tenant_may_place_calls(tenant=tenant):
        raise ApplicationError(
            "No plan and no remaining credit: add credit to place calls.", code="insufficient_credits", status_code=402
        )
    limit = billing_selectors.max_concurrent_calls(tenant=tenant)
    active = concurrency.active_calls_at_limit(tenant_id=tenant.pk, limit=limit)
    if active is not None:
        raise ApplicationError(
            f"The tenant already has {active} active calls, its plan's limit.",
            code="concurrent_call_limit_reached",
            status_code=429,
            error_type="rate_limit_error",
        )


@transaction.atomic
def call_start_outbound(
    *,
    tenant: Tenant,
    agent: Agent,
    to_number: str,
    from_number: PhoneNumber | None = None,
    metadata: dict | None = None,
    actor: dict | None = None,
) -> Call:
    """Create an outbound call and enqueue its dialling after commit (checks credit and concurrency)."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).exists()  # one start at a time per tenant
    call_check_allowed(tenant, agent)
    number = _caller_id(tenant, agent, from_number)
    call = call_create(
        tenant=tenant,
        agent=agent,
        direction=Call.Direction.OUTBOUND,
        from_number=number.e164,
        to_number=to_number,
        phone_number=number,
        metadata=metadata,
    )
    # The stored intent: if the task queued below is lost (broker down, worker killed), the sweep
    # (`calls_claim_due_dials`) queues it again once this time has passed and the call is still initial.
    call.dial_due_at = timezone.now() + dial_lease()
    call.save(update_fields=["dial_due_at"])
    audit_log_record(tenant=tenant, action="call.start", obj=call, changes={"to": to_number}, **(actor or {}))
    transaction.on_commit(lambda: dial_enqueue(call_id=call.pk, tenant_id=tenant.pk), robust=True)
    return call


def dial_lease() -> timedelta:
    """How long a queued dial is left to its task before the sweep queues it again."""
    return timedelta(seconds=settings.CALL_DIAL_LEASE_SECONDS)


def dial_enqueue(*, call_id, tenant_id) -> None:
    """Queue the dial task; a broker that is down is only logged: the sweep queues it after the lease."""
    from calls import tasks  # tasks import this module

    try:
        tasks.call_initiate.delay(call_id=str(call_id), tenant_id=str(tenant_id))
    except Exception:
        logger.warning("could not queue the dial of call %s; the sweep will", call_id, exc_info=True)


def calls_claim_due_dials(*, now: datetime | None = None, limit: int = 500) -> list[tuple]:
    """Outbound calls still initial whose dial task is due again: claim them (push the lease) and return
    (call id, tenant id) pairs for the caller to queue. A claimed call is dialled at most once anyway:
    the dial itself moves it out of initial under a row lock before anything is sent to the carrier."""
    now = now or timezone.now()
    due = Call.objects.unscoped().filter(
        Q(dial_due_at__lte=now) | Q(dial_due_at__isnull=True),
        status=CallStatus.INITIAL,
        direction=Call.Direction.OUTBOUND,
        started_at__gte=now - timedelta(seconds=settings.CALL_DIAL_DEADLINE_SECONDS),
    )
    ids = list(due.order_by("started_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    lease = now + dial_lease()
    with transaction.atomic():
        claimed = list(due.filter(pk__in=ids).select_for_update().values_list("pk", "tenant_id"))
        Call.objects.unscoped().filter(pk__in=[pk for pk, _ in claimed]).update(dial_due_at=lease)
    if claimed:
        logger.warning("queuing the dial of %s outbound calls again (their task was lost)", len(claimed))
    return claimed


def calls_abandon_undialled(*, now: datetime | None = None) -> int:
    """End outbound calls that could not be dialled within CALL_DIAL_DEADLINE_SECONDS (no worker took them):
    ringing someone long after the request would surprise them, so the call ends `setup_timeout`."""
    now = now or timezone.now()
    late = Call.objects.unscoped().filter(
        status=CallStatus.INITIAL,
        direction=Call.Direction.OUTBOUND,
        started_at__lt=now - timedelta(seconds=settings.CALL_DIAL_DEADLINE_SECONDS),
    )
    ended = 0
    for call_id in list(late.values_list("pk", flat=True)):
        with transaction.atomic():
            call = Call.objects.unscoped().select_for_update().filter(pk=call_id, status=CallStatus.INITIAL).first()
            if call is None:
                continue  # dialled meanwhile
            call.metadata = {**call.metadata, "failure_reason": "not_dialled"}
            call.save(update_fields=["metadata", "updated_at"])
            call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.SETUP_TIMEOUT, at=now)
        ended += 1
    if ended:
        logger.warning("ended %s outbound calls never dialled within %s s", ended, settings.CALL_DIAL_DEADLINE_SECONDS)
    return ended


def call_initiate(*, call: Call) -> Call:
    """Dial an outbound call through the PBX; without a telephony provider the call fails at once."""
    from telephony import services as telephony_services  # telephony uses this module

    if call.status != CallStatus.INITIAL:
        return call  # already initiated: a redelivered task does nothing
    try:
        return telephony_services.call_dial(call=call)
    except Conflict:
        return Call.objects.unscoped().get(pk=call.pk)  # another task moved it out of initial first
    except TelephonyUnavailable as exc:
        with transaction.atomic():
            Call.objects.filter(pk=call.pk).update(metadata={**call.metadata, "failure_reason": exc.code})
            return call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.ERROR)


TRANSFER_TYPES = ("blind", "warm", "conference")


def _transfer_destination(call: Call, target: str) -> str:
    """A target is E.164, `ext:NNN`, or the name of one of the agent's transfer targets."""
    if re.match(E164_PATTERN, target) or re.match(r"^ext:[0-9]{1,10}\Z", target):
        return target
    for configured in call.agent.transfer_targets:
        if configured["name"].casefold() == target.casefold():
            return configured["destination"]
    raise ApplicationError(
        "Unknown transfer target: give E.164, ext:NNN, or the name of one of the agent's transfer targets.",
        code="invalid_transfer_target",
        fields={"target": ["Unknown transfer target."]},
    )


@transaction.atomic
def call_transfer_request(
    *,
    call: Call,
    transfer_type: str,
    target: str,
    context: str = "",
    reason: str = "api_request",
    actor: dict | None = None,
) -> Call:
    """Ask the bridge to transfer a live call (seed 4.3): state -> transferring, event call.transfer_requested."""
    if transfer_type not in TRANSFER_TYPES:
        raise ApplicationError(
            "type must be blind, warm or conference.", code="invalid_transfer_type", fields={"type": ["Unknown."]}
        )
    destination = _transfer_destination(call, target)
    call = call_transition(call=call, to_status=CallStatus.TRANSFERRING)
    payload = {
        "call_id": str(call.pk),
        "type": transfer_type,  # the name in the event catalog (5.3) ...
        "transfer_type": transfer_type,  # ... and in the bridge contract (5.4.2)
        "target": destination,
        "context": context,
        "reason": reason,
    }
    call_event_record(call=call, event_type=CallEvent.Type.CALL_TRANSFER_REQUESTED, payload=payload)
    audit_log_record(tenant=call.tenant, action="call.transfer", obj=call, changes=payload, **(actor or {}))
    return call


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


def call_end_request(*, call: Call, actor: dict | None = None) -> Call:
    """End a call on request (a supervisor, the API); audited. A live call's bridge is asked to hang up; an
    outbound call not dialled yet has no bridge: it ends here, `canceled`, and its dial never happens."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if call.status == CallStatus.ENDED:
            raise Conflict("This call has already ended.", code="call_not_active")
        audit_log_record(
            tenant=call.tenant, action="call.end", obj=call, changes={"status": call.status}, **(actor or {})
        )
        if call.status == CallStatus.INITIAL:
            return call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.CANCELED)
        events.request_hangup_on_commit(call_id=call.pk)
    return call
