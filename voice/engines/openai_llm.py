"""An OpenAI-compatible chat endpoint (llama.cpp, Ollama, vLLM, or OpenAI itself) through
livekit-plugins-openai: the way to a local model run by the operator."""

from livekit.plugins import openai

from agents.engines import OPENAI_COMPATIBLE
from voice.engines.breaker import breaker_for
from voice.engines.guarded import GuardedLLM


def build(config: dict, *, secrets: dict, **_context) -> list[GuardedLLM]:
    """The registry's builder: the endpoint behind the breaker of its URL and model."""
    base_url = secrets["openai_base_url"]
    real = build_openai_compatible(config, base_url=base_url, api_key=secrets.get("openai_api_key"))
    breaker = breaker_for(OPENAI_COMPATIBLE, f"{base_url}#{config['model']}")
    return [GuardedLLM(real, breaker=breaker, label=OPENAI_COMPATIBLE)]


def build_openai_compatible(config: dict, *, base_url: str, api_key: str | None) -> openai.LLM:
    return openai.LLM(
        model=config["model"],
        base_url=base_url,
        # Local servers ignore the key, but the client refuses to start without one.
        api_key=api_key or "not-needed",
        temperature=float(config.get("temperature", 0.7)),
        max_completion_tokens=int(config.get("max_tokens", 1024)),
    )
