"""Outbound calls: start (stored intent), dial once through the carrier interface, sweeps for lost dials.

The calls app never imports a carrier: `calls.carriers` holds the dialer each carrier adapter registers at
start-up (the telephony app), chosen by the provider of the number the call is placed from.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent
from calls import carriers
from calls.models import Call
from calls.services.lifecycle import call_check_allowed, call_create, call_end, call_note, call_transition
from calls.state_machine import CallStatus
from core.errors import ApplicationError, Conflict
from tenants.models import Tenant
from tenants.services import audit_log_record

logger = logging.getLogger(__name__)


def _caller_id(tenant: Tenant, agent: Agent, from_number=None):
    """The number to call from: the one given, else the agent's first active number, else the tenant's.

    Numbers are the telephony app's rows; the calls app reads them through `Call.phone_number`'s foreign key
    (`carriers.number_model()`), never by importing telephony."""
    if from_number is not None:
        return from_number
    numbers = carriers.active_numbers(tenant=tenant)
    number = numbers.filter(agent=agent).first() or numbers.first()
    if number is None:
        raise ApplicationError(
            "The tenant has no active phone number to call from.",
            code="no_caller_id",
            fields={"from_number_id": ["Add a phone number first."]},
        )
    return number


@transaction.atomic
def call_start_outbound(
    *,
    tenant: Tenant,
    agent: Agent,
    to_number: str,
    from_number=None,
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
    due = Call.objects.dangerously_unscoped().filter(
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
        Call.objects.dangerously_unscoped().filter(pk__in=[pk for pk, _ in claimed]).update(dial_due_at=lease)
    if claimed:
        logger.warning("queuing the dial of %s outbound calls again (their task was lost)", len(claimed))
    return claimed


def calls_abandon_undialled(*, now: datetime | None = None) -> int:
    """End outbound calls that could not be dialled within CALL_DIAL_DEADLINE_SECONDS (no worker took them):
    ringing someone long after the request would surprise them, so the call ends `setup_timeout`."""
    now = now or timezone.now()
    late = Call.objects.dangerously_unscoped().filter(
        status=CallStatus.INITIAL,
        direction=Call.Direction.OUTBOUND,
        started_at__lt=now - timedelta(seconds=settings.CALL_DIAL_DEADLINE_SECONDS),
    )
    ended = 0
    for call_id in list(late.values_list("pk", flat=True)):
        with transaction.atomic():
            call = (
                Call.objects.dangerously_unscoped()
                .select_for_update()
                .filter(pk=call_id, status=CallStatus.INITIAL)
                .first()
            )
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
    """Dial an outbound call through its carrier, once; without a carrier able to dial, it fails at once.

    The move to `dialing` (under the call's row lock) is the claim: a redelivered task or a second sweep
    finds the call out of `initial` and does nothing, so the callee is never rung twice. A carrier that
    refuses the dial ends the call with its reason rather than risk a second attempt.
    """
    if call.status != CallStatus.INITIAL:
        return call  # already initiated: a redelivered task does nothing
    dialer = carriers.dialer_for(call)
    if dialer is None or not dialer.available():
        try:
            with transaction.atomic():
                call_note(
                    call_id=call.pk, tenant_id=call.tenant_id, key="failure_reason", value=carriers.NOT_CONFIGURED
                )
                return call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.ERROR)
        except Conflict:
            return Call.objects.for_tenant(call.tenant_id).get(pk=call.pk)  # ended (canceled) meanwhile
    try:
        call = call_transition(call=call, to_status=CallStatus.DIALING)
    except Conflict:
        return Call.objects.for_tenant(call.tenant_id).get(pk=call.pk)  # another task moved it first
    try:
        external_id = dialer.dial(carriers.DialRequest.of(call))
    except carriers.DialRefused as exc:
        logger.warning("call %s: the carrier refused the dial: %s", call.pk, exc.code)
        call_note(call_id=call.pk, tenant_id=call.tenant_id, key="failure_reason", value=exc.code)
        call_end(call_id=call.pk, tenant_id=call.tenant_id, reason=Call.EndReason.ERROR)
        return Call.objects.for_tenant(call.tenant_id).get(pk=call.pk)
    Call.objects.for_tenant(call.tenant_id).filter(pk=call.pk).update(external_call_id=external_id)
    call.external_call_id = external_id
    return call


# What a carrier reports for a call that was never answered, and the end reason it becomes.
OUTBOUND_FAILURES = {
    "no_answer": Call.EndReason.NO_ANSWER,
    "busy": Call.EndReason.BUSY,
    "voicemail": Call.EndReason.VOICEMAIL,
    "rejected": Call.EndReason.REJECTED,
}


def outbound_failed(*, call_id, tenant_id, reason: str) -> None:
    """The carrier says the callee never answered: no_answer, busy, voicemail (or an error)."""
    call_note(call_id=call_id, tenant_id=tenant_id, key="failure_reason", value=reason)
    call_end(call_id=call_id, tenant_id=tenant_id, reason=OUTBOUND_FAILURES.get(reason, Call.EndReason.ERROR))
