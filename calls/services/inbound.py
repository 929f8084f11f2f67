"""Inbound calls: a call to one of the tenant's numbers rings, and a browser's test call."""

from django.db import IntegrityError, transaction

from agents.models import Agent
from calls.models import Call
from calls.services.lifecycle import call_check_allowed, call_create, call_end, call_note, call_transition
from calls.state_machine import CallStatus
from core.errors import ApplicationError
from tenants.models import Tenant


class CallRejected(ApplicationError):
    """An inbound call nobody may answer: an unknown or unassigned number, a suspended tenant, or one the
    tenant may not take now (agent paused, no credit, concurrent-call limit)."""

    code = "call_rejected"


def inbound_call_start(
    *, tenant: Tenant, agent: Agent, phone_number, external_call_id: str, from_number: str, to_number: str
) -> Call | None:
    """The carrier says a call to the tenant's number is ringing: create it, `ringing`.

    A call the tenant may not take now is stored and ended `rejected` (the tenant sees the missed call) and
    CallRejected is raised. Returns None when another media worker already took this call.
    """
    # The carrier's id is unique on the platform: a row with it, whoever's, means the call is taken.
    if Call.objects.dangerously_unscoped().filter(external_call_id=external_call_id).exists():
        return None
    try:
        call_check_allowed(tenant, agent)
        refused = None
    except ApplicationError as exc:
        refused = exc
    try:
        with transaction.atomic():
            call = call_create(
                tenant=tenant,
                agent=agent,
                direction=Call.Direction.INBOUND,
                from_number=from_number,
                to_number=to_number,
                phone_number=phone_number,
                external_call_id=external_call_id,
            )
            call = call_transition(call=call, to_status=CallStatus.RINGING)
    except IntegrityError:
        return None  # the same ringing taken by another worker a moment ago
    if refused is not None:
        call_note(call_id=call.pk, tenant_id=tenant.pk, key="rejected_reason", value=refused.code)
        call_end(call_id=call.pk, tenant_id=tenant.pk, reason=Call.EndReason.REJECTED)
        raise CallRejected(f"Call to {to_number} rejected: {refused.message}", code=refused.code)
    call.agent = agent
    return call


def browser_call_create(*, tenant: Tenant, agent: Agent, user_id=None) -> Call:
    """A test call from the dashboard (or any WebRTC peer): an inbound call with no carrier leg."""
    call_check_allowed(tenant, agent)
    with transaction.atomic():
        call = call_create(
            tenant=tenant,
            agent=agent,
            direction=Call.Direction.INBOUND,
            metadata={"source": "browser_test", "user_id": str(user_id) if user_id else ""},
        )
        call = call_transition(call=call, to_status=CallStatus.RINGING)
    call.agent = agent
    return call
