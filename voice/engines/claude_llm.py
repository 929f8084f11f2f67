"""Claude through livekit-plugins-anthropic (streaming, tool use, temperature 0.7,
max_tokens 1024)."""

from livekit.agents.types import NOT_GIVEN
from livekit.plugins import anthropic

from agents.engines import ANTHROPIC
from voice.engines.breaker import breaker_for
from voice.engines.guarded import GuardedLLM


class ClaudeLLM(anthropic.LLM):
    """The plugin's LLM, closing its HTTP client with the call (the plugin leaves it open, and a
    media worker builds one per call)."""

    async def aclose(self) -> None:
        await super().aclose()
        await self._client.close()


def build(config: dict, *, secrets: dict, **_context) -> list[GuardedLLM]:
    """The registry's builder: Claude's model, then its secondary one when set, each behind its own breaker
    (an overloaded Sonnet must not block Haiku on the same API)."""
    return [
        GuardedLLM(
            build_claude(
                config, model=model, api_key=secrets["anthropic_api_key"], base_url=secrets.get("anthropic_base_url")
            ),
            breaker=breaker_for(ANTHROPIC, model),
            label=ANTHROPIC,
        )
        for model in claude_models(config, secrets)
    ]


def claude_models(config: dict, secrets: dict) -> list[str]:
    """The primary model and, when set, the 'Claude Haiku' degradation step ("fallback_model")."""
    primary = config["model"]
    secondary = config.get("fallback_model") or secrets.get("anthropic_fallback_model")
    return [primary, secondary] if secondary and secondary != primary else [primary]


def build_claude(config: dict, *, model: str, api_key: str, base_url: str | None) -> ClaudeLLM:
    return ClaudeLLM(
        model=model,
        api_key=api_key,
        base_url=base_url or NOT_GIVEN,
        temperature=float(config.get("temperature", 0.7)),
        max_tokens=int(config.get("max_tokens", 1024)),
        # The system prompt and tool schemas repeat on every turn of a call: cache them.
        caching="ephemeral" if config.get("prompt_caching", True) else NOT_GIVEN,
    )
