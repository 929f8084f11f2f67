"""Claude through livekit-plugins-anthropic (seed 3.3.4: streaming, tool use, temperature 0.7,
max_tokens 1024)."""

from livekit.agents.types import NOT_GIVEN
from livekit.plugins import anthropic


class ClaudeLLM(anthropic.LLM):
    """The plugin's LLM, closing its HTTP client with the call (the plugin leaves it open, and a
    media worker builds one per call)."""

    async def aclose(self) -> None:
        await super().aclose()
        await self._client.close()


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
