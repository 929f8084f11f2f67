"""The voice pipeline's engines, built from an agent's merged settings (docs/voice-pipeline.md#providers).

`config` is one section of `Agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS)`; `secrets` is
`agents.secrets.provider_secrets(tenant=...)`: provider keys and endpoints by name. Which engine runs is
the registry's one decision (`agents.engines.choose`, which the dashboard shows too); each engine's builder
is the dotted path the registry names. A stage returns a livekit-agents STT / LLM / TTS / VAD: the chosen
real provider, behind its process-wide circuit breaker, first in a fallback chain that ends in the stage's
offline engine; or the offline engine alone when the provider is not chosen or not configured.
"""

from typing import Literal, overload

from django.utils.module_loading import import_string
from livekit.agents import llm as lk_llm
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents.vad import VAD

from agents import engines as registry
from voice.engines.chains import LLMChain, STTChain, TTSChain

__all__ = ["build_llm", "build_stt", "build_tts", "build_vad", "load_plugins", "provider_labels"]

# The livekit plugin modules (Deepgram, Anthropic, OpenAI, Silero) are imported by import_string when an
# engine is first built: a plugin may only be registered on the main thread, and a web request that only
# synthesizes a voice preview (piper or the Chatterbox node) runs in a worker thread. Sessions build their
# engines on the event loop's (main) thread; processes that run sessions call `load_plugins()` at start.


def load_plugins() -> None:
    """Import (and so register) every engine's module, livekit plugins included. Call it on the main thread.

    It also starts warming the embedding engine and the responder's shared examples in a thread, so the
    first call of a process that runs sessions does not wait for the model."""
    for engine in registry.ENGINES.values():
        import_string(engine.builder)
    from voice.engines.responder.intents import warm_up

    warm_up()


def _build(engine: registry.EngineSpec, config: dict, secrets: dict, **context):
    return import_string(engine.builder)(config, secrets=secrets, **context)


# A builder is found by its dotted path, so its type is the registry's contract: every engine of a
# stage returns that stage's livekit-agents type (the offline one an engine, a real one a list of them).
@overload
def _stage(
    stage: Literal["stt"], config: dict, secrets: dict, *, voice_provider: str = ..., **context: object
) -> tuple[lk_stt.STT, list[lk_stt.STT]]: ...
@overload
def _stage(
    stage: Literal["llm"], config: dict, secrets: dict, *, voice_provider: str = ..., **context: object
) -> tuple[lk_llm.LLM, list[lk_llm.LLM]]: ...
@overload
def _stage(
    stage: Literal["tts"], config: dict, secrets: dict, *, voice_provider: str = ..., **context: object
) -> tuple[lk_tts.TTS, list[lk_tts.TTS]]: ...
@overload
def _stage(
    stage: Literal["vad"], config: dict, secrets: dict, *, voice_provider: str = ..., **context: object
) -> tuple[VAD, list[VAD]]: ...
def _stage(stage: str, config: dict, secrets: dict, *, voice_provider: str = "", **context) -> tuple[object, list]:
    """(the stage's offline engine, the chosen real provider's chain members: none when it is offline)."""
    names = {name for name, value in secrets.items() if value}
    choice = registry.choose(stage, config, names, voice_provider=voice_provider)
    offline = _build(registry.offline_engine(stage), config, secrets, **context)
    if choice.offline:
        return offline, []
    return offline, list(_build(choice.engine, {**config, "model": choice.model}, secrets, **context))


def build_stt(config: dict, *, secrets: dict) -> lk_stt.STT:
    """Deepgram (streaming) -> offline Whisper; Whisper alone without a Deepgram key.

    Whisper alone is not streaming: the session wraps it with `stt.StreamAdapter` and its VAD.
    """
    offline, members = _stage("stt", config, secrets)
    # The chain must stream, so Whisper gets the framework's StreamAdapter with a seed-default VAD.
    return STTChain([*members, offline], vad=build_vad({})) if members else offline


def build_llm(
    config: dict,
    *,
    secrets: dict,
    knowledge: list[dict] | None = None,
    agent_profile: dict | None = None,
) -> lk_llm.LLM:
    """Claude -> Claude's secondary model (if configured) -> local responder; or an
    OpenAI-compatible endpoint -> local responder; the local responder alone without a key."""
    offline, members = _stage("llm", config, secrets, knowledge=knowledge, agent_profile=agent_profile)
    return LLMChain([*members, offline]) if members else offline


def build_tts(config: dict, *, voice: dict | None, secrets: dict) -> lk_tts.TTS:
    """Chatterbox node -> piper; piper alone without a node URL or for a piper voice.

    `voice` is the agent's Voice as data ({"provider", "provider_voice_id", "exaggeration",
    "cfg_weight"}); None means the platform default voice.
    """
    voice = voice or {}
    offline, members = _stage("tts", config, secrets, voice_provider=voice.get("provider") or "", voice=voice)
    return TTSChain([*members, offline]) if members else offline


def build_vad(config: dict) -> VAD:
    """Silero with the section's threshold and minimum speech / silence durations (ms)."""
    offline, _ = _stage("vad", config, {})
    return offline


def provider_labels(
    *, stt: lk_stt.STT | None = None, llm: lk_llm.LLM | None = None, tts: lk_tts.TTS | None = None
) -> dict[str, dict]:
    """Which engine serves each stage now, whether it is an offline one, and the whole chain.

    {"stt": {"provider": "deepgram", "offline": False, "chain": ["deepgram", "offline-whisper"]}, …}
    A chain reports the engine that will take the next request (a failed one is skipped).
    """
    found = {}
    for stage, engine in (("stt", stt), ("llm", llm), ("tts", tts)):
        if engine is not None:
            chain = list(getattr(engine, "chain", [engine.provider]))
            found[stage] = {
                "provider": engine.provider,
                "offline": registry.is_offline(engine.provider),
                "chain": chain,
            }
    return found
