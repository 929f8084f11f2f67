"""The voice pipeline's engines, built from an agent's merged settings (seed 3.3.5, 12.3).

`config` is one section of `Agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS)`;
`secrets` carries provider keys and endpoints ("deepgram_api_key", "deepgram_base_url",
"anthropic_api_key", "anthropic_base_url", "openai_base_url", "openai_api_key", "chatterbox_url",
"chatterbox_token"). Each builder returns a livekit-agents STT / LLM / TTS / VAD: the configured
real provider, behind its process-wide circuit breaker, first in a fallback chain that ends in
the offline engine; or the offline engine alone when the provider is not configured.
"""

from livekit.agents import llm as lk_llm
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents.vad import VAD

from voice.engines import labels
from voice.engines.breaker import breaker_for
from voice.engines.chains import LLMChain, STTChain, TTSChain
from voice.engines.chatterbox_tts import ChatterboxOptions, ChatterboxTTS
from voice.engines.guarded import GuardedLLM, GuardedSTT, GuardedTTS
from voice.engines.piper_tts import OfflinePiperTTS
from voice.engines.responder.llm import LocalResponder
from voice.engines.whisper_stt import OfflineWhisperSTT

__all__ = ["build_llm", "build_stt", "build_tts", "build_vad", "load_plugins", "provider_labels"]

# The livekit plugin modules (Deepgram, Anthropic, OpenAI, Silero) are imported by the builders that use
# them: a plugin may only be registered on the main thread, and a web request that only synthesizes a
# voice preview (piper or the Chatterbox node) runs in a worker thread. Sessions build their engines on
# the event loop's (main) thread; processes that run sessions call `load_plugins()` at start.


def load_plugins() -> None:
    """Import (and so register) every livekit plugin the engines use. Call it on the main thread."""
    from voice.engines import claude_llm, deepgram_stt, openai_llm, silero_vad  # noqa: F401


def build_stt(config: dict, *, secrets: dict) -> lk_stt.STT:
    """Deepgram (streaming) -> offline Whisper; Whisper alone without a Deepgram key.

    Whisper alone is not streaming: the session wraps it with `stt.StreamAdapter` and its VAD.
    """
    offline = OfflineWhisperSTT(
        language=config.get("language") or "en-US", cpu_threads=int(config.get("cpu_threads", 2))
    )
    api_key = secrets.get("deepgram_api_key")
    if config.get("provider") != "deepgram" or not api_key:
        return offline
    from voice.engines.deepgram_stt import build_deepgram, listen_url

    base_url = secrets.get("deepgram_base_url")
    deepgram = build_deepgram(config, api_key=api_key, base_url=base_url)
    primary = GuardedSTT(deepgram, breaker=breaker_for("deepgram", listen_url(base_url)), label=labels.DEEPGRAM)
    # The chain must stream, so Whisper gets the framework's StreamAdapter with a seed-default VAD.
    return STTChain([primary, offline], vad=build_vad({}))


def build_llm(
    config: dict,
    *,
    secrets: dict,
    knowledge: list[dict] | None = None,
    agent_profile: dict | None = None,
) -> lk_llm.LLM:
    """Claude -> Claude's secondary model (if configured) -> local responder; or an
    OpenAI-compatible endpoint -> local responder; the local responder alone without a key."""
    offline = LocalResponder(knowledge=knowledge, agent_profile=agent_profile)
    members = _real_llms(config, secrets)
    return LLMChain([*members, offline]) if members else offline


def _real_llms(config: dict, secrets: dict) -> list[lk_llm.LLM]:
    provider = config.get("provider")
    if provider == "anthropic" and secrets.get("anthropic_api_key"):
        from voice.engines.claude_llm import build_claude

        return [
            GuardedLLM(
                build_claude(
                    config,
                    model=model,
                    api_key=secrets["anthropic_api_key"],
                    base_url=secrets.get("anthropic_base_url"),
                ),
                breaker=breaker_for(labels.ANTHROPIC, model),
                label=labels.ANTHROPIC,
            )
            for model in _claude_models(config, secrets)
        ]
    if provider == "openai_compatible" and secrets.get("openai_base_url"):
        from voice.engines.openai_llm import build_openai_compatible

        base_url = secrets["openai_base_url"]
        real = build_openai_compatible(config, base_url=base_url, api_key=secrets.get("openai_api_key"))
        breaker = breaker_for(labels.OPENAI_COMPATIBLE, f"{base_url}#{config.get('model')}")
        return [GuardedLLM(real, breaker=breaker, label=labels.OPENAI_COMPATIBLE)]
    return []


def _claude_models(config: dict, secrets: dict) -> list[str]:
    """The primary model and, when set, the seed's 'Claude Haiku' step ("fallback_model")."""
    primary = config.get("model") or "claude-sonnet-4-6"
    secondary = config.get("fallback_model") or secrets.get("anthropic_fallback_model")
    return [primary, secondary] if secondary and secondary != primary else [primary]


def build_tts(config: dict, *, voice: dict | None, secrets: dict) -> lk_tts.TTS:
    """Chatterbox node -> piper; piper alone without a node URL or for a piper voice.

    `voice` is the agent's Voice as data ({"provider", "provider_voice_id", "exaggeration",
    "cfg_weight"}); None means the platform default voice.
    """
    offline = OfflinePiperTTS()
    voice = voice or {}
    url = secrets.get("chatterbox_url")
    if config.get("provider") != "chatterbox" or not url or voice.get("provider") == "piper":
        return offline
    options = ChatterboxOptions(
        base_url=url,
        token=secrets.get("chatterbox_token") or "",
        voice_id=voice.get("provider_voice_id") or config.get("default_voice_id") or "default_female_1",
        exaggeration=float(voice.get("exaggeration", config.get("exaggeration", 0.5))),
        cfg_weight=float(voice.get("cfg_weight", config.get("cfg_weight", 0.5))),
        model=config.get("model") or "turbo",
        sample_rate=int(config.get("sample_rate", 24000)),
    )
    primary = GuardedTTS(ChatterboxTTS(options), breaker=breaker_for(labels.CHATTERBOX, url), label=labels.CHATTERBOX)
    return TTSChain([primary, offline])


def build_vad(config: dict) -> VAD:
    """Silero with the section's threshold and minimum speech / silence durations (ms)."""
    from voice.engines.silero_vad import build_silero

    return build_silero(config)


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
            found[stage] = {"provider": engine.provider, "offline": labels.is_offline(engine.provider), "chain": chain}
    return found
