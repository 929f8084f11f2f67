"""Writes for phone numbers."""

from django.db import IntegrityError, transaction

from agents.models import Agent
from telephony.models import PhoneNumber
from tenants.models import Tenant
from tenants.services import audit_log_record
from voiceapp.errors import ApplicationError, Conflict

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
