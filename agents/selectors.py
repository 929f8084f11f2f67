"""Reads for agents and voices, always for one tenant."""

from agents.models import Agent, Voice
from tenants.models import Tenant


def agent_list(*, tenant: Tenant):
    return Agent.objects.for_tenant(tenant).alive().order_by("name", "id")


def agent_get(*, tenant: Tenant, agent_id) -> Agent | None:
    return agent_list(tenant=tenant).filter(pk=agent_id).first()


def voice_list(*, tenant: Tenant):
    """Platform voices and the tenant's own."""
    return Voice.objects.available_to(tenant).order_by("name", "id")
