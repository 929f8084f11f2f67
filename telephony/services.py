"""Writes for phone numbers, and what the bridge needs of numbers and carrier legs.

Every write to a call goes through `calls.services`; this module finds the tenant and agent of a dialled
number and keeps the carrier's second legs (consult calls) of a call.
"""

import logging

from django.core.cache import cache
from django.db import IntegrityError, transaction

from agents.models import Agent
from calls import selectors as call_selectors
from calls import services as call_services
from calls.selectors import BridgeCall
from calls.services import CallRejected
from core.errors import ApplicationError, Conflict
from telephony.carriers.browser import wire
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


# --- calls through the carrier and the bridge --------------------------------------------------------
# Sync functions of the database, called by the media worker through `database_sync_to_async`.

CONSULT_LEG_TTL = 2 * 3600


def inbound_call_accept(
    *, external_call_id: str, from_number: str, to_number: str, tenant_id=None
) -> BridgeCall | None:
    """A carrier says a call is ringing: find the dialled number's tenant and agent, and start the call.

    Raises CallRejected for a number nobody answers (unknown, released or inactive, no agent, the tenant
    suspended): those leave no call row, only a log line. A call the tenant may not take now is stored and
    ended `rejected` by the calls app (CallRejected too). Returns None when another media worker took it.
    """
    # The dialled number decides the tenant: this lookup crosses tenants by design.
    number = PhoneNumber.objects.dangerously_unscoped().select_related("tenant", "agent").filter(e164=to_number).first()
    if number is None or number.status != PhoneNumber.Status.ACTIVE:
        raise CallRejected(f"No active number {to_number} on the platform.", code="unknown_number")
    if tenant_id is not None and str(number.tenant_id) != str(tenant_id):
        # The carrier account the call arrived on is another tenant's: that tenant's agents never answer it.
        raise CallRejected(f"Number {to_number} is not this carrier account's.", code="unknown_number")
    agent = number.agent
    if agent is None or agent.deleted_at is not None:
        raise CallRejected(f"Number {to_number} is not assigned to an agent.", code="unassigned_number")
    if not number.tenant.is_active:
        raise CallRejected(f"The tenant of {to_number} is suspended.", code="tenant_suspended")
    call = call_services.inbound_call_start(
        tenant=number.tenant,
        agent=agent,
        phone_number=number,
        external_call_id=external_call_id,
        from_number=from_number,
        to_number=to_number,
    )
    return call_selectors.bridge_call(call) if call is not None else None


@transaction.atomic
def browser_call_create(*, tenant: Tenant, agent: Agent, user_id=None) -> BridgeCall:
    """A test call from the dashboard (or any WebRTC peer): an inbound call whose carrier is the browser.

    Its carrier id, `browser:<call uuid>`, is what the browser carrier's events and transfers name it by.
    """
    call = call_services.browser_call_create(tenant=tenant, agent=agent, user_id=user_id)
    call.external_call_id = wire.external_id(str(call.pk))
    call_services.call_set_external_id(call_id=call.pk, tenant_id=tenant.pk, external_call_id=call.external_call_id)
    return call_selectors.bridge_call(call)


def consult_leg_register(*, external_id: str, call_id, tenant_id) -> None:
    """A second carrier leg of a call (warm-transfer target, supervisor): its events belong to the call."""
    cache.set(f"pbx:leg:{external_id}", f"{tenant_id}:{call_id}", CONSULT_LEG_TTL)


def external_call_resolve(external_id: str) -> tuple[str, str, str, bool] | None:
    """The call a carrier's call id belongs to: (call id, tenant id, status, is a consult leg), or None."""
    consult_of = cache.get(f"pbx:leg:{external_id}")
    if consult_of:
        tenant_id, _, call_id = consult_of.rpartition(":")
        if not tenant_id:  # written before the tenant was kept with it (a deploy mid-transfer): look it up
            found = call_selectors.call_by_id_across_tenants(call_id)
            return (*found, True) if found else None
        found = call_selectors.call_status(call_id=call_id, tenant_id=tenant_id)
        return (*found, True) if found else None
    found = call_selectors.call_by_external_id(external_id)
    return (*found, False) if found else None
