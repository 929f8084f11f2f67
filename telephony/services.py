"""Writes for phone numbers, and the database side of calls through the PBX and the bridge."""

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus
from core.errors import ApplicationError, Conflict
from telephony.models import PhoneNumber
from tenants.models import Tenant
from tenants.services import audit_log_record

logger = logging.getLogger(__name__)
UPDATABLE = ("agent", "friendly_name", "status")


def _check_agent(tenant: Tenant, agent: Agent | None) -> None:
    if agent is not None and (agent.tenant_id != tenant.pk or agent.deleted_at is not None):
        raise ApplicationError("Unknown agent.", code="agent_not_found", fields={"agent_id": ["Unknown agent."]})


@transaction.atomic
def phone_number_create(*, tenant: Tenant, e164: str, actor: dict | None = None, **fields) -> PhoneNumber:
    """Add a number the tenant owns at the PBX, optionally routed to one of its agents."""
    _check_agent(tenant, fields.get("agent"))
    try:
        with transaction.atomic():
            number = PhoneNumber.objects.create(tenant=tenant, e164=e164, **fields)
    except IntegrityError as exc:
        # Unique across the platform; say so without telling whose it is.
        raise Conflict(
            "This number (or provider id) is already registered on the platform.",
            code="number_unavailable",
            fields={"e164": ["Already registered."]},
        ) from exc
    audit_log_record(tenant=tenant, action="number.create", obj=number, changes={"e164": e164}, **(actor or {}))
    return number


@transaction.atomic
def phone_number_update(*, number: PhoneNumber, actor: dict | None = None, **fields) -> PhoneNumber:
    """Assign the number to an agent (or none), rename it, or change its status."""
    _check_agent(number.tenant, fields.get("agent"))
    changed = {name: value for name, value in fields.items() if name in UPDATABLE and getattr(number, name) != value}
    for name, value in changed.items():
        setattr(number, name, value)
    number.save()
    if changed:
        summary = {k: (str(v.pk) if isinstance(v, Agent) else v) for k, v in changed.items()}
        audit_log_record(tenant=number.tenant, action="number.update", obj=number, changes=summary, **(actor or {}))
    return number


# --- calls through the PBX and the bridge (seed 4.1-4.3) -------------------------------------------
# Sync functions of the database, called by the media worker through `database_sync_to_async`.

CONSULT_LEG_TTL = 2 * 3600


@dataclass
class BridgeCall:
    """What the bridge needs to know about its call, read once from the database."""

    call_id: str
    tenant_id: str
    agent_id: str
    agent_name: str
    direction: str
    room_name: str
    external_call_id: str | None = None
    our_number: str = ""
    voicemail_message: str = ""
    metadata: dict = field(default_factory=dict)


class CallRejected(ApplicationError):
    """An inbound call nobody may answer: an unknown or unassigned number, a suspended tenant."""

    code = "call_rejected"


def bridge_call(call: Call) -> BridgeCall:
    caller = call.from_number if call.direction == Call.Direction.INBOUND else call.to_number
    ours = call.to_number if call.direction == Call.Direction.INBOUND else call.from_number
    return BridgeCall(
        call_id=str(call.pk),
        tenant_id=str(call.tenant_id),
        agent_id=str(call.agent_id),
        agent_name=call.agent.name,
        direction=call.direction,
        room_name=call.room_name,
        external_call_id=call.external_call_id,
        our_number=ours,
        voicemail_message=call.agent.voicemail_message,
        metadata={**(call.metadata or {}), "caller_number": caller},
    )


def bridge_call_load(*, call_id, tenant_id) -> BridgeCall | None:
    """The tenant's call for the bridge (None if it is not that tenant's)."""
    call = Call.objects.for_tenant(tenant_id).select_related("agent").filter(pk=call_id).first()
    return bridge_call(call) if call is not None else None


def inbound_call_accept(*, external_call_id: str, from_number: str, to_number: str) -> BridgeCall | None:
    """`call.ringing`: find the dialled number's tenant and agent and create the call, ringing.

    Raises CallRejected for a number nobody answers (unknown, released or inactive, no agent, the
    tenant suspended); those leave no call row, only a log line. A call the tenant may not take
    now (agent paused, no credit, concurrent-call limit) is created and ended `rejected`, so the
    tenant sees the missed call. Returns None when another media worker already took this call.
    """
    from calls import services as call_services

    number = PhoneNumber.objects.unscoped().select_related("tenant", "agent").filter(e164=to_number).first()
    if number is None or number.status != PhoneNumber.Status.ACTIVE:
        raise CallRejected(f"No active number {to_number} on the platform.", code="unknown_number")
    agent = number.agent
    if agent is None or agent.deleted_at is not None:
        raise CallRejected(f"Number {to_number} is not assigned to an agent.", code="unassigned_number")
    if not number.tenant.is_active:
        raise CallRejected(f"The tenant of {to_number} is suspended.", code="tenant_suspended")
    if Call.objects.unscoped().filter(external_call_id=external_call_id).exists():
        return None
    try:
        call_services.call_check_allowed(number.tenant, agent)
        refused = None
    except ApplicationError as exc:
        refused = exc
    try:
        with transaction.atomic():
            call = call_services.call_create(
                tenant=number.tenant,
                agent=agent,
                direction=Call.Direction.INBOUND,
                from_number=from_number,
                to_number=to_number,
                phone_number=number,
                external_call_id=external_call_id,
            )
            call = call_services.call_transition(call=call, to_status=CallStatus.RINGING)
    except IntegrityError:
        return None  # the same ringing taken by another worker a moment ago
    if refused is not None:
        call_note(call_id=call.pk, key="rejected_reason", value=refused.code)
        call_end(call_id=call.pk, reason=Call.EndReason.REJECTED)
        raise CallRejected(f"Call to {to_number} rejected: {refused.message}", code=refused.code)
    call.agent = agent
    return bridge_call(call)


def browser_call_create(*, tenant: Tenant, agent: Agent, user_id=None) -> BridgeCall:
    """A test call from the dashboard (or any WebRTC peer): an inbound call with no PBX leg."""
    from calls import services as call_services

    call_services.call_check_allowed(tenant, agent)
    with transaction.atomic():
        call = call_services.call_create(
            tenant=tenant,
            agent=agent,
            direction=Call.Direction.INBOUND,
            metadata={"source": "browser_test", "user_id": str(user_id) if user_id else ""},
        )
        call = call_services.call_transition(call=call, to_status=CallStatus.RINGING)
    call.agent = agent
    return bridge_call(call)


def call_mark_connected(*, call_id) -> None:
    """Answered (inbound) or picked up (outbound): -> connected, once."""
    from calls import services as call_services

    call = Call.objects.unscoped().get(pk=call_id)
    if call.status in (CallStatus.RINGING, CallStatus.DIALING):
        call_services.call_transition(call=call, to_status=CallStatus.CONNECTED)


def call_event(*, call_id, event_type: str, payload: dict) -> None:
    from calls import services as call_services

    call_services.call_event_record(
        call=Call.objects.unscoped().get(pk=call_id), event_type=event_type, payload=payload
    )


def call_note(*, call_id, key: str, value) -> None:
    """Keep a fact about the call in its metadata (answering-machine result, why it was rejected)."""
    with transaction.atomic():
        call = Call.objects.unscoped().select_for_update().get(pk=call_id)
        call.metadata = {**(call.metadata or {}), key: value}
        call.save(update_fields=["metadata", "updated_at"])


def call_end(*, call_id, reason: str) -> None:
    """End the call with `reason` unless it has ended already."""
    from calls import services as call_services

    call = Call.objects.unscoped().get(pk=call_id)
    if call.status == CallStatus.ENDED:
        return
    with contextlib.suppress(Conflict):  # ended meanwhile by another path
        call_services.call_transition(call=call, to_status=CallStatus.ENDED, end_reason=reason)


def last_transfer_request(*, call_id) -> dict | None:
    event = (
        CallEvent.objects.unscoped()
        .filter(call_id=call_id, event_type=CallEvent.Type.CALL_TRANSFER_REQUESTED)
        .order_by("-sequence")
        .first()
    )
    return event.payload if event is not None else None


def consult_leg_register(*, external_id: str, call_id) -> None:
    """A second PBX leg of a call (warm-transfer target, supervisor): its events belong to the call."""
    cache.set(f"pbx:leg:{external_id}", str(call_id), CONSULT_LEG_TTL)


def external_call_resolve(external_id: str) -> tuple[str, str, str, bool] | None:
    """The call a PBX call id belongs to: (call id, tenant id, status, is a consult leg), or None."""
    consult_of = cache.get(f"pbx:leg:{external_id}")
    if consult_of:
        call = Call.objects.unscoped().filter(pk=consult_of).values("pk", "tenant_id", "status").first()
        return (str(call["pk"]), str(call["tenant_id"]), call["status"], True) if call else None
    call = Call.objects.unscoped().filter(external_call_id=external_id).values("pk", "tenant_id", "status").first()
    return (str(call["pk"]), str(call["tenant_id"]), call["status"], False) if call else None


OUTBOUND_FAILURES = {
    "no_answer": Call.EndReason.NO_ANSWER,
    "busy": Call.EndReason.BUSY,
    "voicemail": Call.EndReason.VOICEMAIL,
    "rejected": Call.EndReason.REJECTED,
}


def outbound_failed(*, call_id, reason: str) -> None:
    """`call.failed` before the callee answered: no_answer, busy, voicemail (or an error)."""
    call_note(call_id=call_id, key="failure_reason", value=reason)
    call_end(call_id=call_id, reason=OUTBOUND_FAILURES.get(reason, Call.EndReason.ERROR))


def call_dial(*, call: Call) -> Call:
    """Dial an outbound call through the PBX (seed 4.2): -> dialing, then the PBX's events take over.

    The dial is sent once: a failed request ends the call with the PBX's error rather than risk
    ringing the callee twice. Raises calls.services.TelephonyUnavailable without a PBX configured.
    """
    from calls import services as call_services
    from telephony.goto.client import GoToConfig, GoToConnectClient, GoToConnectError, dial_string

    config = GoToConfig.from_settings()
    if not config.configured:
        raise call_services.TelephonyUnavailable(
            "No telephony provider can dial out on this deployment (GoToConnect is not configured)."
        )
    call = call_services.call_transition(call=call, to_status=CallStatus.DIALING)

    async def dial() -> str:
        client = GoToConnectClient(config)
        try:
            return await client.create_call(dial_string=dial_string(call.to_number), caller_id=call.from_number)
        finally:
            await client.aclose()

    try:
        external_id = async_to_sync(dial)()
    except GoToConnectError as exc:
        logger.warning("call %s: the PBX refused the dial: %s", call.pk, exc.code)
        call_note(call_id=call.pk, key="failure_reason", value=exc.code)
        call_end(call_id=call.pk, reason=Call.EndReason.ERROR)
        return Call.objects.unscoped().get(pk=call.pk)
    Call.objects.unscoped().filter(pk=call.pk).update(external_call_id=external_id)
    call.external_call_id = external_id
    return call


def calls_end_stuck_setups(*, now=None) -> int:
    """End calls that never got past ringing or dialing within twice the setup timeout (a lost event).

    Outbound calls still `initial` wait for their dial: the calls app's dial sweep owns them."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=2 * settings.CALL_SETUP_TIMEOUT_SECONDS)
    stuck = Call.objects.unscoped().filter(status__in=[CallStatus.RINGING, CallStatus.DIALING], started_at__lt=limit)
    count = 0
    for call_id in stuck.values_list("pk", flat=True):
        call_end(call_id=call_id, reason=Call.EndReason.SETUP_TIMEOUT)
        count += 1
    if count:
        logger.warning("ended %s calls stuck in setup", count)
    return count
