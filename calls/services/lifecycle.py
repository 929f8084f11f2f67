"""A call's life: creation, status changes through the state machine, the event log, notes and the end.

Every write to Call, CallEvent, TranscriptTurn and ToolCall goes through the calls app's services; the
state machine (calls/state_machine.py) decides which status may follow which.
"""

import contextlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from agents.models import Agent
from calls import carriers, concurrency, live_state, metrics, policies, webhook_events
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus, InvalidTransition, check_transition
from core import events
from core.errors import ApplicationError, Conflict
from tenants.models import Tenant

logger = logging.getLogger(__name__)

STATUS_EVENTS: dict[str, str] = {
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
    phone_number=None,
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
        Call.objects.select_for_update().filter(pk=call.pk, tenant_id=call.tenant_id).exists()
        last = CallEvent.objects.for_tenant(call.tenant_id).filter(call=call).aggregate(m=Max("sequence"))["m"] or 0
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
    call = Call.objects.select_for_update().get(pk=call.pk, tenant_id=call.tenant_id)
    try:
        check_transition(current=call.status, target=to_status, direction=call.direction)
    except InvalidTransition as exc:
        raise Conflict(str(exc), code="invalid_call_transition") from exc
    # A late or reordered provider event never moves time backwards past what the call recorded.
    now = max(t for t in (at or timezone.now(), call.started_at, call.answered_at) if t is not None)
    previous, call.status = call.status, to_status
    call.dial_due_at = None  # only a call still initial may be waiting to be dialled
    if to_status == CallStatus.DIALING:
        call.dialed_at = now  # a dial sent late (a lost task queued again) gets its whole setup time
    if to_status == CallStatus.CONNECTED:
        call.answered_at = now
    if to_status == CallStatus.ENDED:
        call.ended_at = now
        call.duration_seconds = int((now - call.answered_at).total_seconds()) if call.answered_at else 0
        call.end_reason = end_reason or (Call.EndReason.ERROR if previous == CallStatus.ERROR else "")
    call.save(
        update_fields=[
            "status", "answered_at", "ended_at", "duration_seconds", "end_reason", "dial_due_at", "dialed_at",
            "updated_at",
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
    policies.call_ended(call)  # metering (billing's hook): once, in the same transaction
    # Robust: a broker that is down is logged; the periodic sweep processes the call later.
    transaction.on_commit(lambda: _ended_committed(call), robust=True)


def _ended_committed(call: Call) -> None:
    """After the end commits: metrics, the tenant's active-call slot, the worker's post-call processing."""
    from calls import tasks  # tasks import the services

    _observe_ended(call)
    concurrency.active_calls_remove(tenant_id=call.tenant_id, call_id=call.pk)
    tasks.process_transcript.delay(call_id=str(call.pk), tenant_id=str(call.tenant_id))


def _event_payload(call: Call, previous: str) -> dict:
    """The payload of the event a status change emits (docs/webhooks.md#event-catalog)."""
    base = {"call_id": str(call.pk), "tenant_id": str(call.tenant_id)}
    if call.status in (CallStatus.RINGING, CallStatus.DIALING):
        return base | {"from": call.from_number, "to": call.to_number, "direction": call.direction}
    if call.status == CallStatus.CONNECTED:
        assert call.answered_at is not None  # the transition to connected has just set it
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


def call_note(*, call_id, tenant_id, key: str, value) -> None:
    """Keep a fact about the call in its metadata (answering-machine result, why it was rejected)."""
    with transaction.atomic():
        call = Call.objects.for_tenant(tenant_id).select_for_update().get(pk=call_id)
        call.metadata = {**(call.metadata or {}), key: value}
        call.save(update_fields=["metadata", "updated_at"])


CARRIER_ENDED_AT = "carrier_ended_at"  # metadata: when the carrier said a connected call was over


def call_carrier_ended(*, call_id, tenant_id, at: datetime | None = None) -> None:
    """The carrier says a connected call is over. Its bridge ends it (with the reason it knows); should that
    bridge's process be gone, the stuck-call sweep ends it after CALL_CARRIER_END_GRACE_SECONDS, at this time."""
    call_note(call_id=call_id, tenant_id=tenant_id, key=CARRIER_ENDED_AT, value=(at or timezone.now()).isoformat())


def call_end(*, call_id, tenant_id, reason: str) -> None:
    """End the call with `reason` unless it has ended already."""
    call = Call.objects.for_tenant(tenant_id).get(pk=call_id)
    if call.status == CallStatus.ENDED:
        return
    with contextlib.suppress(Conflict):  # ended meanwhile by another path
        call_transition(call=call, to_status=CallStatus.ENDED, end_reason=reason)


def call_mark_connected(*, call_id, tenant_id) -> None:
    """Answered (inbound) or picked up (outbound): -> connected, once."""
    call = Call.objects.for_tenant(tenant_id).get(pk=call_id)
    if call.status in (CallStatus.RINGING, CallStatus.DIALING):
        call_transition(call=call, to_status=CallStatus.CONNECTED)


def call_event(*, call_id, tenant_id, event_type: str, payload: dict) -> None:
    """Append an event to the call's log by id (the bridge, the recorder)."""
    call_event_record(call=Call(pk=call_id, tenant_id=tenant_id), event_type=event_type, payload=payload)


def call_set_external_id(*, call_id, tenant_id, external_call_id: str) -> None:
    """The carrier's id for the call, once the carrier answered a dial."""
    Call.objects.for_tenant(tenant_id).filter(pk=call_id).update(external_call_id=external_call_id)


def calls_end_stuck(*, now: datetime | None = None) -> int:
    """The one sweep of calls whose process died or whose event was lost:

    - open for longer than the setup timeout plus the maximum duration: ended `max_duration`;
    - ringing, or dialing since the dial was sent, for more than twice the setup timeout: ended
      `setup_timeout`, and a dialled carrier leg is hung up (the callee's phone must stop ringing);
    - connected, though the carrier said it was over (`call_carrier_ended`) longer than the grace ago (the
      bridge that should have ended it is gone): ended `error` at the carrier's time, so it bills no longer.

    Outbound calls still `initial` wait for their dial: `calls_abandon_undialled` owns them.
    """
    now = now or timezone.now()
    setup = now - timedelta(seconds=2 * settings.CALL_SETUP_TIMEOUT_SECONDS)
    stale = now - timedelta(seconds=settings.CALL_SETUP_TIMEOUT_SECONDS + settings.CALL_MAX_DURATION_SECONDS)
    # Sweeps cross tenants by design; each call is then read and ended within its own tenant.
    open_calls = (
        Call.objects.dangerously_unscoped()
        .exclude(status=CallStatus.ENDED)
        .exclude(status=CallStatus.INITIAL, direction=Call.Direction.OUTBOUND)
    )
    in_setup = Q(status=CallStatus.RINGING, started_at__lt=setup) | Q(status=CallStatus.DIALING, dialed_at__lt=setup)
    stuck = [  # the longer limit first: a call open past it ends `max_duration`, whatever its status
        (open_calls.filter(started_at__lt=stale), Call.EndReason.MAX_DURATION),
        (open_calls.filter(in_setup), Call.EndReason.SETUP_TIMEOUT),
    ]
    ended = 0
    for queryset, reason in stuck:
        for call_id, tenant_id in list(queryset.values_list("pk", "tenant_id")):
            call = Call.objects.for_tenant(tenant_id).get(pk=call_id)
            if call.status == CallStatus.ENDED:
                continue
            dialled_leg = call.external_call_id if call.status == CallStatus.DIALING else None
            try:
                call_transition(call=call, to_status=CallStatus.ENDED, end_reason=reason, at=now)
            except Conflict:
                continue  # ended meanwhile by its own process
            if dialled_leg:
                carriers.hang_up_on_commit(call, dialled_leg)
            ended += 1
    ended += _end_calls_the_carrier_ended(open_calls, now)
    if ended:
        logger.warning("ended %s calls stuck in setup, open past their maximum duration or lost by their bridge", ended)
    return ended


def _end_calls_the_carrier_ended(open_calls, now: datetime) -> int:
    grace = timedelta(seconds=settings.CALL_CARRIER_END_GRACE_SECONDS)
    ended = 0
    candidates = open_calls.filter(status=CallStatus.CONNECTED, metadata__has_key=CARRIER_ENDED_AT)
    for call_id, tenant_id in list(candidates.values_list("pk", "tenant_id")):
        with transaction.atomic():
            call = Call.objects.for_tenant(tenant_id).select_for_update().get(pk=call_id)
            at = _parsed_time((call.metadata or {}).get(CARRIER_ENDED_AT))
            if call.status != CallStatus.CONNECTED or at is None or at > now - grace:
                continue
            call.metadata = {**call.metadata, "failure_reason": "bridge_lost"}
            call.save(update_fields=["metadata", "updated_at"])
            try:
                call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.ERROR, at=at)
            except Conflict:
                continue
        ended += 1
    return ended


def _parsed_time(value) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def call_check_allowed(tenant: Tenant, agent: Agent) -> None:
    """Raise unless the tenant may take or place a call with this agent now (agent live, credit, concurrency)."""
    if agent.status != Agent.Status.ACTIVE:
        raise Conflict("This agent is paused.", code="agent_paused", fields={"agent_id": ["The agent is paused."]})
    admission = policies.admission(tenant)
    if not admission.may_place_calls:
        raise ApplicationError(
            "No plan and no remaining credit: add credit to place calls.", code="insufficient_credits", status_code=402
        )
    if admission.max_concurrent_calls is None:  # no limit (billing not installed)
        return
    active = concurrency.active_calls_at_limit(tenant_id=tenant.pk, limit=admission.max_concurrent_calls)
    if active is not None:
        raise ApplicationError(
            f"The tenant already has {active} active calls, its plan's limit.",
            code="concurrent_call_limit_reached",
            status_code=429,
            error_type="rate_limit_error",
        )
