"""The engine registry: every engine a call's voice pipeline can run, and the one decision of which runs.

Each engine declares its facts once: its name (the value in an agent's settings and the label reported
in metrics, turn metadata and the dashboard), its stage, its labels, whether it runs offline, the
secrets it cannot run without, its default model and its builder. The settings schema, the settings
form, the dashboard's engine summary, the post-call analysis and the voice runtime all read them here.

This module imports no other app: agents sits below the voice app, so a builder is named by a dotted
path (a string, not an import) that `voice.engines` resolves with `django.utils.module_loading.import_string`.
A builder is called as `build(config, *, secrets, **context)`: an offline engine's returns the engine, a
real provider's returns the members it adds to the stage's fallback chain, each behind its circuit breaker.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass

STAGES = ("stt", "llm", "tts", "vad")  # a call's pipeline; "embeddings" serves knowledge and understanding
EMBEDDINGS = "embeddings"
OFFLINE = "offline"  # in an agent's settings: "the stage's offline engine"

DEEPGRAM = "deepgram"
OFFLINE_WHISPER = "offline-whisper"
ANTHROPIC = "anthropic"
OPENAI_COMPATIBLE = "openai_compatible"
OFFLINE_RESPONDER = "offline-responder"
CHATTERBOX = "chatterbox"
OFFLINE_PIPER = "offline-piper"
SILERO = "silero"
OFFLINE_E5 = "offline-e5"


@dataclass(frozen=True)
class EngineSpec:
    """What the platform knows about one engine."""

    name: str  # in settings ("provider"), metrics, turn metadata and the dashboard; offline ones: "offline-…"
    stage: str  # one of STAGES, or EMBEDDINGS
    label: str  # the dashboard's short name
    choice_label: str  # the settings form's option
    offline: bool  # runs on this machine with no key and no network
    builder: str  # dotted path of `build(config, *, secrets, **context)`
    secrets: tuple[str, ...] = ()  # secret names it cannot run without (agents.secrets holds the values)
    default_model: str = ""  # when the settings name no model
    models: tuple[str, ...] = ()  # the only models the settings may name; empty: any
    breaker: tuple[int, float] | None = None  # (failures in a row that open it, seconds it stays open)
    voice_provider: str = ""  # the `Voice.provider` of the voices it speaks (TTS)
    missing: str = ""  # the dashboard's note when it is chosen but a secret is missing


ENGINES: dict[str, EngineSpec] = {
    engine.name: engine
    for engine in (
        EngineSpec(
            name=DEEPGRAM,
            stage="stt",
            label="Deepgram",
            choice_label="Deepgram (streaming)",
            offline=False,
            builder="voice.engines.deepgram_stt.build",
            secrets=("deepgram_api_key",),
            default_model="nova-2",
            breaker=(5, 30.0),
            missing="Deepgram is chosen, but no Deepgram API key is configured.",
        ),
        EngineSpec(
            name=OFFLINE_WHISPER,
            stage="stt",
            label="Whisper",
            choice_label="Whisper (offline)",
            offline=True,
            builder="voice.engines.whisper_stt.build",
            default_model="tiny.en",
        ),
        EngineSpec(
            name=ANTHROPIC,
            stage="llm",
            label="Claude",
            choice_label="Claude (Anthropic)",
            offline=False,
            builder="voice.engines.claude_llm.build",
            secrets=("anthropic_api_key",),
            default_model="claude-sonnet-4-6",
            breaker=(3, 60.0),
            missing="Claude is chosen, but no Anthropic API key is configured.",
        ),
        EngineSpec(
            name=OPENAI_COMPATIBLE,
            stage="llm",
            label="OpenAI-compatible",
            choice_label="OpenAI-compatible endpoint",
            offline=False,
            builder="voice.engines.openai_llm.build",
            secrets=("openai_base_url",),
            default_model="default",
            breaker=(3, 60.0),
            missing="An OpenAI-compatible endpoint is chosen, but none is configured for calls.",
        ),
        EngineSpec(
            name=OFFLINE_RESPONDER,
            stage="llm",
            label="Local responder",
            choice_label="Local responder (offline)",
            offline=True,
            builder="voice.engines.responder.build",
        ),
        EngineSpec(
            name=CHATTERBOX,
            stage="tts",
            label="Chatterbox",
            choice_label="Chatterbox (GPU TTS node)",
            offline=False,
            builder="voice.engines.chatterbox_tts.build",
            secrets=("chatterbox_url",),
            default_model="turbo",
            models=("turbo", "standard", "multilingual"),
            breaker=(3, 30.0),
            voice_provider="chatterbox",
            missing="Chatterbox is chosen, but no TTS node (CHATTERBOX_URL) is configured.",
        ),
        EngineSpec(
            name=OFFLINE_PIPER,
            stage="tts",
            label="Piper",
            choice_label="Piper (offline)",
            offline=True,
            builder="voice.engines.piper_tts.build",
            default_model="en_US joe",
            voice_provider="piper",
        ),
        EngineSpec(
            name=SILERO,
            stage="vad",
            label="Silero",
            choice_label="Silero (offline)",
            offline=True,
            builder="voice.engines.silero_vad.build",
        ),
        EngineSpec(
            name=OFFLINE_E5,
            stage=EMBEDDINGS,
            label="E5 embeddings",
            choice_label="multilingual-e5-small (offline)",
            offline=True,
            builder="core.embeddings.build",
            default_model="multilingual-e5-small-q4",
        ),
    )
}


def stage_engines(stage: str) -> list[EngineSpec]:
    """The stage's engines, real providers first (in the registry's order), its offline engine last."""
    engines = [engine for engine in ENGINES.values() if engine.stage == stage]
    return sorted(engines, key=lambda engine: engine.offline)


def offline_engine(stage: str) -> EngineSpec:
    """The engine that serves the stage with no key and no network, and ends its fallback chain."""
    (engine,) = (engine for engine in stage_engines(stage) if engine.offline)
    return engine


def provider_choices(stage: str) -> list[str]:
    """The values an agent's settings may give the stage's "provider": each real provider, then "offline"."""
    return [engine.name for engine in stage_engines(stage) if not engine.offline] + [OFFLINE]


def form_choices(stage: str) -> list[tuple[str, str]]:
    """(value, label) pairs for the settings form, in `provider_choices` order."""
    return [(engine.name, engine.choice_label) for engine in stage_engines(stage) if not engine.offline] + [
        (OFFLINE, offline_engine(stage).choice_label)
    ]


def model_choices(stage: str) -> list[str]:
    """The models the stage's settings may name, where its engines restrict them (empty: any string)."""
    return [model for engine in stage_engines(stage) for model in engine.models]


def is_offline(name: str) -> bool:
    """Is the engine reported under this name an offline one? (Unknown names are not.)"""
    engine = ENGINES.get(name)
    return engine is not None and engine.offline


def breaker_policies() -> dict[str, tuple[int, float]]:
    """Each real provider's circuit-breaker policy, by engine name."""
    return {engine.name: engine.breaker for engine in ENGINES.values() if engine.breaker is not None}


@dataclass(frozen=True)
class Choice:
    """The engine that serves one stage, the model it runs, the provider the settings asked for, and why
    the offline engine runs although a real provider was asked for (`note`)."""

    engine: EngineSpec
    model: str
    wanted: str
    note: str = ""

    @property
    def provider(self) -> str:
        return self.engine.name

    @property
    def label(self) -> str:
        return self.engine.label

    @property
    def offline(self) -> bool:
        return self.engine.offline


def choose(stage: str, config: Mapping, secret_names: Collection[str], *, voice_provider: str = "") -> Choice:
    """Which engine serves `stage` for one section of an agent's merged settings, given the names of the
    secrets available (agents.secrets). The dashboard and the voice runtime both ask this, and only this.

    The provider the settings name runs when its secrets are there; otherwise the stage's offline engine
    does, with a note saying why. A voice made for the offline engine (`voice_provider`) is always spoken
    by it. The model is the settings' own, else the chosen engine's default.
    """
    wanted = config.get("provider") or ""
    offline = offline_engine(stage)
    if voice_provider and voice_provider == offline.voice_provider:
        return Choice(offline, offline.default_model, wanted)
    engine = ENGINES.get(wanted)
    if engine is None or engine.stage != stage or engine.offline:
        return Choice(offline, offline.default_model, wanted)
    if any(secret not in secret_names for secret in engine.secrets):
        return Choice(offline, offline.default_model, wanted, engine.missing)
    return Choice(engine, config.get("model") or engine.default_model, wanted)
