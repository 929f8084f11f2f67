"""Degradation chains (docs/voice-pipeline.md#providers) on the framework's fallback adapters.

The subclasses add two things the session needs: the chain's provider labels, and an `aclose()`
that also closes the member engines (the framework's adapters leave their members open).
"""

from livekit.agents import llm, stt, tts
from livekit.agents.vad import VAD


class _Chain:
    _members: list

    @property
    def chain(self) -> list[str]:
        """Provider labels in fallback order, primary first."""
        return [member.provider for member in self._members]

    @property
    def members(self) -> list:
        """The member engines in fallback order, primary first."""
        return list(self._members)

    async def _close_members(self) -> None:
        for member in self._members:
            await member.aclose()


class STTChain(_Chain, stt.FallbackAdapter):
    def __init__(self, members: list[stt.STT], *, vad: VAD) -> None:
        self._members = list(members)
        # One quick retry (the first is immediate), then the next engine: a caller is waiting.
        super().__init__(members, vad=vad, attempt_timeout=5.0, max_retry_per_stt=1, retry_interval=0.5)

    async def aclose(self) -> None:
        await super().aclose()
        await self._close_members()


class LLMChain(_Chain, llm.FallbackAdapter):
    def __init__(self, members: list[llm.LLM]) -> None:
        self._members = list(members)
        super().__init__(members, attempt_timeout=10.0, max_retry_per_llm=0)

    async def aclose(self) -> None:
        await super().aclose()
        await self._close_members()


class TTSChain(_Chain, tts.FallbackAdapter):
    def __init__(self, members: list[tts.TTS]) -> None:
        self._members = list(members)
        # No retries on the same engine: speaking late is worse than speaking with another voice.
        super().__init__(members, max_retry_per_tts=0)

    async def aclose(self) -> None:
        await super().aclose()
        await self._close_members()
