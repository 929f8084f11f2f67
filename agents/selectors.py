"""Reads for agents and voices, always for one tenant."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch

from agents.models import Agent, KnowledgeDocument, Voice
from integrations.models import ProviderCredential
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


def voice_list(*, tenant: Tenant):
    """Platform voices and the tenant's own."""
    return Voice.objects.available_to(tenant).order_by("name", "id")


# --- which engines a call would run on -----------------------------------------------------------
#
# The same choice voice.engines.build_stt / build_llm / build_tts make from an agent's
# merged settings and voice.session.provider_secrets, made here without loading the
# runtime (and livekit) into the web process. Labels are the runtime's (providers/labels.py);
# tests/web/test_agents_pages.py checks both agree.

OFFLINE_ENGINES = frozenset({"offline-whisper", "offline-responder", "offline-piper"})
ENGINE_NAMES = {
    "deepgram": "Deepgram",
    "anthropic": "Claude",
    "openai-compatible": "OpenAI-compatible",
    "chatterbox": "Chatterbox",
    "offline-whisper": "Whisper",
    "offline-responder": "Local responder",
    "offline-piper": "Piper",
}


@dataclass(frozen=True)
class Engine:
    """The engine that serves one stage of the pipeline, and the provider the settings asked for."""

    provider: str
    model: str
    wanted: str
    note: str = ""  # why the offline engine runs although a real provider was chosen

    @property
    def name(self) -> str:
        return ENGINE_NAMES[self.provider]

    @property
    def offline(self) -> bool:
        return self.provider in OFFLINE_ENGINES


def provider_keys(*, tenant: Tenant) -> frozenset[str]:
    """The secrets provider_secrets() would find for the tenant (names only; nothing is decrypted)."""
    platform = {
        "deepgram_api_key": settings.DEEPGRAM_API_KEY,
        "anthropic_api_key": settings.ANTHROPIC_API_KEY,
        "chatterbox_url": settings.CHATTERBOX_URL,
        "openai_base_url": settings.OPENAI_BASE_URL,
    }
    own = (
        ProviderCredential.objects.for_tenant(tenant)
        .filter(provider__in=["anthropic", "deepgram"])
        .exclude(verification=ProviderCredential.Verification.FAILED)
        .values_list("provider", flat=True)
    )
    return frozenset({name for name, value in platform.items() if value} | {f"{p}_api_key" for p in own})


def agent_engines(*, agent: Agent, keys: frozenset[str]) -> dict[str, Engine]:
    """{"stt": Engine, "llm": Engine, "tts": Engine} for the agent's calls."""
    pipeline = agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS)
    return {
        "stt": _stt_engine(pipeline["stt"], keys),
        "llm": _llm_engine(pipeline["llm"], keys),
        "tts": _tts_engine(pipeline["tts"], agent.voice, keys),
    }


def voice_engine(*, voice: Voice, keys: frozenset[str]) -> Engine:
    """The engine that speaks with this voice on the platform's default settings (previews use it)."""
    return _tts_engine(settings.VOICE_PIPELINE_DEFAULTS["tts"], voice, keys)


def _stt_engine(config: dict, keys: frozenset[str]) -> Engine:
    wanted = config.get("provider") or ""
    if wanted == "deepgram" and "deepgram_api_key" in keys:
        return Engine("deepgram", config.get("model") or "", wanted)
    note = "Deepgram is chosen, but no Deepgram API key is configured." if wanted == "deepgram" else ""
    return Engine("offline-whisper", "tiny.en", wanted, note)


def _llm_engine(config: dict, keys: frozenset[str]) -> Engine:
    wanted = config.get("provider") or ""
    if wanted == "anthropic" and "anthropic_api_key" in keys:
        return Engine("anthropic", config.get("model") or "claude-sonnet-4-6", wanted)
    if wanted == "openai_compatible" and "openai_base_url" in keys:
        return Engine("openai-compatible", config.get("model") or "", wanted)
    notes = {
        "anthropic": "Claude is chosen, but no Anthropic API key is configured.",
        "openai_compatible": "An OpenAI-compatible endpoint is chosen, but none is configured for calls.",
    }
    return Engine("offline-responder", "", wanted, notes.get(wanted, ""))


def _tts_engine(config: dict, voice: Voice | None, keys: frozenset[str]) -> Engine:
    wanted = config.get("provider") or ""
    if voice is not None and voice.provider == Voice.Provider.PIPER:
        return Engine("offline-piper", "en_US joe", wanted)
    if wanted == "chatterbox" and "chatterbox_url" in keys:
        return Engine("chatterbox", config.get("model") or "turbo", wanted)
    note = "Chatterbox is chosen, but no TTS node (CHATTERBOX_URL) is configured." if wanted == "chatterbox" else ""
    return Engine("offline-piper", "en_US joe", wanted, note)
