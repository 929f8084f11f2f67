"""What a call's session is built from: the agent's configuration, loaded once, and its engines."""

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from agents import selectors as agent_selectors
from agents.models import KnowledgeDocument
from agents.secrets import provider_secrets
from core.errors import NotFound
from tenants.models import Tenant

if TYPE_CHECKING:  # livekit-agents is imported where the engines are built, not with the profile
    from livekit.agents import llm as lk_llm
    from livekit.agents import stt as lk_stt
    from livekit.agents import tts as lk_tts
    from livekit.agents.vad import VAD

    from agents.knowledge.search import KnowledgeSnapshot

logger = logging.getLogger(__name__)


class AgentNotFound(NotFound):
    code = "agent_not_found"


class CallNotFound(NotFound):
    code = "call_not_found"


# --- the agent's configuration, loaded once per call ---------------------------------------------


@dataclass(frozen=True)
class AgentProfile:
    """Everything a call needs from the database, read once before the audio starts."""

    tenant_id: str
    agent_id: str
    name: str
    system_prompt: str
    greeting: str
    tools: list[dict]
    transfer_targets: list[dict]
    pipeline: dict  # Agent.effective_settings(VOICE_PIPELINE_DEFAULTS)
    voice: dict | None
    knowledge: list[dict]
    secrets: dict = field(repr=False)
    business_name: str = ""
    # The agent's passages and vectors for the hybrid search (agents.knowledge.search), shared by its calls.
    knowledge_snapshot: "KnowledgeSnapshot | None" = field(default=None, repr=False)

    def provider_profile(self) -> dict:
        """What the offline responder answers from."""
        return {
            "name": self.name,
            "business_name": self.business_name,
            "greeting_message": self.greeting,
            "system_prompt": self.system_prompt,
            "transfer_targets": self.transfer_targets,
            "tools": self.tools,  # to embed its tools' examples before the caller speaks
        }


def find_agent(*, tenant: Tenant, agent_ref: str):
    """The tenant's live agent by id or exact name; another tenant's agent is not found."""
    agents = agent_selectors.agent_list(tenant=tenant).select_related("voice")
    try:
        agent = agents.filter(pk=uuid.UUID(str(agent_ref))).first()
    except ValueError:
        agent = agents.filter(name=agent_ref).first()
    if agent is None:
        raise AgentNotFound(f"Unknown agent {agent_ref!r} for tenant {tenant.slug!r}.")
    return agent


def load_profile(*, tenant: Tenant, agent_ref: str) -> AgentProfile:
    """The agent's configuration with its own tenant's documents and credentials only."""
    agent = find_agent(tenant=tenant, agent_ref=agent_ref)
    documents = KnowledgeDocument.objects.for_tenant(tenant).filter(agent=agent, is_active=True)
    voice = agent.voice
    return AgentProfile(
        tenant_id=str(tenant.pk),
        agent_id=str(agent.pk),
        name=agent.name,
        system_prompt=agent.system_prompt,
        greeting=agent.greeting_message,
        tools=list(agent.tools or []),
        transfer_targets=list(agent.transfer_targets or []),
        pipeline=agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS),
        voice=_voice_data(voice) if voice is not None else None,
        knowledge=list(documents.values("title", "content")),
        secrets=provider_secrets(tenant=tenant),
        business_name=tenant.name,
        knowledge_snapshot=agent_selectors.knowledge_snapshot(tenant_id=tenant.pk, agent_id=agent.pk),
    )


def _voice_data(voice) -> dict:
    return {
        "provider": voice.provider,
        "provider_voice_id": voice.provider_voice_id,
        "exaggeration": voice.exaggeration,
        "cfg_weight": voice.cfg_weight,
        "name": voice.name,
    }


# --- the engines ---------------------------------------------------------------------------------


@dataclass
class PipelineModels:
    stt: "lk_stt.STT"
    llm: "lk_llm.LLM"
    tts: "lk_tts.TTS"
    vad: "VAD"

    async def aclose(self) -> None:
        for engine in (self.stt, self.llm, self.tts):
            try:
                await engine.aclose()
            except Exception:  # closing is best effort; the call is over either way
                logger.exception("could not close %s", engine)


def build_models(profile: AgentProfile) -> PipelineModels:
    """The configured providers with their fallback chains (voice.engines)."""
    from voice import engines

    pipeline = profile.pipeline
    return PipelineModels(
        stt=engines.build_stt(pipeline["stt"], secrets=profile.secrets),
        llm=engines.build_llm(
            pipeline["llm"],
            secrets=profile.secrets,
            knowledge=profile.knowledge,
            agent_profile=profile.provider_profile(),
        ),
        tts=engines.build_tts(pipeline["tts"], voice=profile.voice, secrets=profile.secrets),
        vad=engines.build_vad(pipeline["vad"]),
    )
