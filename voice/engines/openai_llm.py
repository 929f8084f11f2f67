"""An OpenAI-compatible chat endpoint (llama.cpp, Ollama, vLLM, or OpenAI itself) through
livekit-plugins-openai: the way to a local model run by the operator."""

from livekit.plugins import openai


def build_openai_compatible(config: dict, *, base_url: str, api_key: str | None) -> openai.LLM:
    return openai.LLM(
        model=config.get("model") or "default",
        base_url=base_url,
        # Local servers ignore the key, but the client refuses to start without one.
        api_key=api_key or "not-needed",
        temperature=float(config.get("temperature", 0.7)),
        max_completion_tokens=int(config.get("max_tokens", 1024)),
    )
