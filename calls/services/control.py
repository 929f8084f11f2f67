"""Requests on a live call: a transfer (the agent, the API, a supervisor) and ending it."""

import re

from django.db import transaction

from calls import carriers
from calls.models import Call, CallEvent
from calls.services.lifecycle import call_event_record, call_transition
from calls.state_machine import CallStatus
from core import events
from core.errors import ApplicationError, Conflict
from core.validators import E164_PATTERN
from tenants.services import audit_log_record

TRANSFER_TYPES = ("blind", "warm", "conference")


def transfer_destination(targets: list[dict], target: str) -> str:
    """Where a transfer goes: E.164 or `ext:NNN` as given, or the destination of the agent's target of that name."""
    if re.match(E164_PATTERN, target) or re.match(r"^ext:[0-9]{1,10}\Z", target):
        return target
    for configured in targets:
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
    """Ask the bridge to transfer a live call (docs/telephony.md#transfers): state -> transferring, event call.transfer_requested."""
    if transfer_type not in TRANSFER_TYPES:
        raise ApplicationError(
            "type must be blind, warm or conference.", code="invalid_transfer_type", fields={"type": ["Unknown."]}
        )
    destination = transfer_destination(call.agent.transfer_targets, target)
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


def call_end_request(*, call: Call, actor: dict | None = None) -> Call:
    """End a call on request (a supervisor, the API); audited. A live call's bridge is asked to hang up; an
    outbound call not answered yet has no bridge: it ends here, `canceled` (its dial never happens, or the
    carrier hangs up the ringing leg)."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk, tenant_id=call.tenant_id)
        if call.status == CallStatus.ENDED:
            raise Conflict("This call has already ended.", code="call_not_active")
        audit_log_record(
            tenant=call.tenant, action="call.end", obj=call, changes={"status": call.status}, **(actor or {})
        )
        if call.status == CallStatus.INITIAL:
            return call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.CANCELED)
        if call.status == CallStatus.DIALING:  # ringing at the callee, no bridge yet: the carrier hangs up
            dialled_leg = call.external_call_id
            call = call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.CANCELED)
            if dialled_leg:
                carriers.hang_up_on_commit(call, dialled_leg)
            return call
        events.request_hangup_on_commit(call_id=call.pk)
    return call
