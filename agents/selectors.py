"""Reads for agents and voices, always for one tenant."""

from django.conf import settings
from django.db.models import Prefetch

from agents import engines
from agents.knowledge import snapshot
from agents.knowledge.search import KnowledgeSnapshot
from agents.models import Agent, KnowledgeDocument, Voice
from agents.secrets import secret_names
from tenants.models import Tenant


def agent_list(*, tenant: Tenant):
    return Agent.objects.for_tenant(tenant).alive().order_by("name", "id")


def agent_get(*, tenant: Tenant, agent_id) -> Agent | None:
    return agent_list(tenant=tenant).filter(pk=agent_id).first()


def agent_list_with_numbers(*, tenant: Tenant):
    """The tenant's agents with their voice and their numbers (by number) loaded, for listing.

    The numbers are the telephony app's rows that point at each agent (`Agent.phone_numbers`, the reverse of
    their foreign key): read through the relation, this app needs no import of telephony."""
    numbers = Prefetch(
        "phone_numbers", Agent.phone_numbers.rel.related_model.objects.for_tenant(tenant).order_by("e164")
    )
    return agent_list(tenant=tenant).select_related("voice").prefetch_related(numbers)


def knowledge_document_list(*, tenant: Tenant, agent: Agent):
    return KnowledgeDocument.objects.for_tenant(tenant).filter(agent=agent).order_by("title", "id")


def knowledge_snapshot(*, tenant_id, agent_id) -> KnowledgeSnapshot:
    """The agent's knowledge as plain data for a call (agents.knowledge.snapshot): its active documents'
    passages, vectors and FAQ pairs, shared by the process's calls until a document of the agent changes.
    Another tenant's agent, or an agent without documents, gives an empty snapshot."""
    return snapshot.snapshot(tenant_id=tenant_id, agent_id=agent_id)


def voice_list(*, tenant: Tenant):
    """Platform voices and the tenant's own."""
    return Voice.objects.available_to(tenant).order_by("name", "id")


# --- which engines a call would run on -----------------------------------------------------------
#
# The registry's one decision (agents.engines.choose), which voice.engines makes again when it builds a
# call's engines, made here without loading the runtime (and livekit) into the web process.


def provider_keys(*, tenant: Tenant) -> frozenset[str]:
    """The names of the provider secrets the tenant's calls would find (agents.secrets; nothing is decrypted)."""
    return secret_names(tenant=tenant)


def agent_engines(*, agent: Agent, keys: frozenset[str]) -> dict[str, engines.Choice]:
    """{"stt": Choice, "llm": Choice, "tts": Choice} for the agent's calls."""
    pipeline = agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS)
    voice_provider = agent.voice.provider if agent.voice is not None else ""
    return {
        "stt": engines.choose("stt", pipeline["stt"], keys),
        "llm": engines.choose("llm", pipeline["llm"], keys),
        "tts": engines.choose("tts", pipeline["tts"], keys, voice_provider=voice_provider),
    }


def voice_engine(*, voice: Voice, keys: frozenset[str]) -> engines.Choice:
    """The engine that speaks with this voice on the platform's default settings (previews use it)."""
    return engines.choose("tts", settings.VOICE_PIPELINE_DEFAULTS["tts"], keys, voice_provider=voice.provider)
