"""A real provider behind its circuit breaker, as framework STT / LLM / TTS objects.

The wrapper hands requests to the provider unchanged while the breaker allows them, and refuses
them at once (a non-retryable `APIConnectionError`, no network) while it is open, so the fallback
adapter moves straight to the next engine. The breaker learns from the provider's own events:
a non-recoverable "error" is a failure, "metrics_collected" (emitted only after a request
succeeded, or for Deepgram when its socket connected) is a success.
"""

from typing import Any

from livekit.agents import APIConnectionError, llm, stt, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer

from voice.engines.breaker import CircuitBreaker


def _refusal(breaker: CircuitBreaker) -> APIConnectionError:
    return APIConnectionError(f"circuit breaker {breaker.name} is open", retryable=False)


class _BreakerEvents:
    """Feeds a provider's error / metrics events to a breaker and re-emits them."""

    def _watch(self, inner: Any, breaker: CircuitBreaker, label: str) -> None:
        self._inner, self._breaker, self._provider_label = inner, breaker, label
        inner.on("error", self._on_error)
        inner.on("metrics_collected", self._on_metrics)

    def _unwatch(self) -> None:
        self._inner.off("error", self._on_error)
        self._inner.off("metrics_collected", self._on_metrics)

    def _on_error(self, event: Any) -> None:
        if not getattr(event, "recoverable", False):
            self._breaker.record_failure()
        self.emit("error", event)  # type: ignore[attr-defined]

    def _on_metrics(self, metrics: Any) -> None:
        self._breaker.record_success()
        self.emit("metrics_collected", metrics)  # type: ignore[attr-defined]

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def wrapped(self) -> Any:
        return self._inner


class GuardedSTT(_BreakerEvents, stt.STT):
    def __init__(self, inner: stt.STT, *, breaker: CircuitBreaker, label: str) -> None:
        stt.STT.__init__(self, capabilities=inner.capabilities)
        self._label = inner.label
        self._watch(inner, breaker, label)

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._provider_label

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        if not self._breaker.allow():
            raise _refusal(self._breaker)
        return await self._inner.recognize(buffer, language=language, conn_options=conn_options)

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> stt.SpeechEvent:
        return await self._inner._recognize_impl(buffer, language=language, conn_options=conn_options)

    def stream(
        self, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> stt.RecognizeStream:
        if not self._breaker.allow():
            return _RefusedRecognizeStream(stt=self, conn_options=conn_options)
        return self._inner.stream(language=language, conn_options=conn_options)

    def _update_session_keyterms(self, keyterms: list[str]) -> None:
        self._inner._update_session_keyterms(keyterms)

    def _push_conversation_item(self, ev: Any) -> None:
        self._inner._push_conversation_item(ev)

    def prewarm(self) -> None:
        self._inner.prewarm()

    async def aclose(self) -> None:
        self._unwatch()
        await self._inner.aclose()


class _RefusedRecognizeStream(stt.RecognizeStream):
    async def _run(self) -> None:
        raise _refusal(self._stt.breaker)  # type: ignore[attr-defined]


class GuardedLLM(_BreakerEvents, llm.LLM):
    def __init__(self, inner: llm.LLM, *, breaker: CircuitBreaker, label: str) -> None:
        llm.LLM.__init__(self)
        self._label = inner.label
        self._watch(inner, breaker, label)

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._provider_label

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        if not self._breaker.allow():
            return _RefusedLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)
        return self._inner.chat(
            chat_ctx=chat_ctx,
            tools=tools,
            conn_options=conn_options,
            parallel_tool_calls=parallel_tool_calls,
            tool_choice=tool_choice,
            extra_kwargs=extra_kwargs,
        )

    def prewarm(self, *, loop: Any = None) -> None:
        self._inner.prewarm(loop=loop)

    async def aclose(self) -> None:
        self._unwatch()
        await self._inner.aclose()
        await super().aclose()


class _RefusedLLMStream(llm.LLMStream):
    async def _run(self) -> None:
        raise _refusal(self._llm.breaker)  # type: ignore[attr-defined]


class GuardedTTS(_BreakerEvents, tts.TTS):
    def __init__(self, inner: tts.TTS, *, breaker: CircuitBreaker, label: str) -> None:
        tts.TTS.__init__(
            self, capabilities=inner.capabilities, sample_rate=inner.sample_rate, num_channels=inner.num_channels
        )
        self._label = inner.label
        self._watch(inner, breaker, label)

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._provider_label

    @property
    def markup(self) -> tts.TTS.Markup:
        return self._inner.markup

    def _set_expressive(self, enabled: bool) -> None:
        super()._set_expressive(enabled)
        self._inner._set_expressive(enabled)

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        if not self._breaker.allow():
            return _RefusedChunkedStream(tts=self, input_text=text, conn_options=conn_options)
        return self._inner.synthesize(text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.SynthesizeStream:
        if not self._breaker.allow():
            return _RefusedSynthesizeStream(tts=self, conn_options=conn_options)
        return self._inner.stream(conn_options=conn_options)

    def prewarm(self) -> None:
        self._inner.prewarm()

    async def aclose(self) -> None:
        self._unwatch()
        await self._inner.aclose()


class _RefusedChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        raise _refusal(self._tts.breaker)  # type: ignore[attr-defined]


class _RefusedSynthesizeStream(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        raise _refusal(self._tts.breaker)  # type: ignore[attr-defined]
