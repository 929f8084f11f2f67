"""The offline LLM: a deterministic local responder that answers from the agent's configuration.

It is a real `llm.LLM`: replies stream word by word as `ChatChunk`s, and tool intents come out as
`FunctionToolCall`s, so the framework runs the tool and calls back with its output, which the
responder then puts into words. Same conversation, same tools, same day: same reply.
"""

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from livekit.agents import llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr

from agents.engines import OFFLINE_RESPONDER
from voice.engines.responder.dialogue import AgentFacts, Reply, Turn, decide
from voice.engines.responder.intents import (
    IntentSet,
    VectorCache,
    agent_intents,
    example_texts,
    passage_cache,
    shared_cache,
)
from voice.engines.responder.knowledge import KnowledgeIndex

logger = logging.getLogger(__name__)


class LocalResponder(llm.LLM):
    """Greeting, FAQ / knowledge base, tool intents, transfer and goodbye, without a model."""

    def __init__(
        self,
        *,
        knowledge: list[dict] | None = None,
        agent_profile: dict | None = None,
        today: Callable[[], date] | None = None,
        vectors: VectorCache | None = None,
    ) -> None:
        super().__init__()
        self._profile = dict(agent_profile or {})
        self._index = KnowledgeIndex(knowledge)
        self._today = today or _local_today(self._profile.get("timezone"))
        self._vectors = vectors
        self._intents: dict[tuple, IntentSet] = {}  # by the tools offered (the same for a whole call)
        # The agent's examples are embedded while the greeting plays, not on the caller's first turn.
        self.prewarming = threading.Thread(target=self._prewarm, name="responder-prewarm", daemon=True)
        self.prewarming.start()

    def _prewarm(self) -> None:
        try:
            queries, passages = example_texts(self._index.entries, self._profile.get("tools") or [])
            (self._vectors or shared_cache()).fill(queries)
            if self._vectors is None:
                passage_cache().fill(passages)
        except Exception:  # the first turn embeds what is missing, and says why if it cannot
            logger.exception("the responder could not embed the agent's examples ahead of the call")

    @property
    def model(self) -> str:
        return "local-responder"

    @property
    def provider(self) -> str:
        return OFFLINE_RESPONDER

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
        usable = [] if tool_choice == "none" else list(tools or [])
        return ResponderStream(self, chat_ctx=chat_ctx, tools=usable, conn_options=conn_options)

    def facts(self, tools: list[llm.Tool], said: list[str] | None = None) -> AgentFacts:
        """The agent as the responder sees it, its intents embedded and `said` too (blocking: in a thread)."""
        specs = [t["function"] for t in llm.ToolContext(tools).parse_function_tools("openai", strict=False)]
        key = tuple(json.dumps(spec, sort_keys=True) for spec in specs)
        vectors = self._vectors or shared_cache()
        if key not in self._intents:
            self._intents[key] = agent_intents(self._index.entries, specs, vectors)
        vectors.fill(said or [])
        return AgentFacts(
            profile=self._profile, index=self._index, tools=specs, today=self._today(), intents=self._intents[key]
        )


class ResponderStream(llm.LLMStream):
    async def _run(self) -> None:
        assert isinstance(self._llm, LocalResponder)
        turns = to_turns(self._chat_ctx)
        said = [t.text for t in turns if t.kind == "user"]
        facts = await asyncio.to_thread(self._llm.facts, self._tools, said)  # the model never runs on the loop
        reply = decide(turns, facts)
        request_id = "offline-" + _digest(turns, reply)[:16]
        if reply.tool_name:
            self._send(request_id, tool_calls=[_tool_call(reply, request_id)])
        else:
            await self._stream_words(request_id, reply.text or "")
        words_out = len((reply.text or "").split()) + len(json.dumps(reply.tool_arguments).split())
        prompt = sum(len(t.text.split()) for t in turns)
        usage = llm.CompletionUsage(completion_tokens=words_out, prompt_tokens=prompt, total_tokens=prompt + words_out)
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, usage=usage))

    async def _stream_words(self, request_id: str, text: str) -> None:
        for i, word in enumerate(text.split()):
            self._send(request_id, content=word if i == 0 else f" {word}")
            await asyncio.sleep(0)  # let the TTS start on the first words, as with a real model

    def _send(self, request_id: str, **delta: Any) -> None:
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", **delta)))


def to_turns(chat_ctx: llm.ChatContext) -> list[Turn]:
    """The conversation as the responder reads it; system messages and other items are skipped."""
    names: dict[str, str] = {}
    turns: list[Turn] = []
    for item in chat_ctx.items:
        if item.type == "message" and item.role in ("user", "assistant"):
            turns.append(Turn(kind=item.role, text=item.text_content or ""))
        elif item.type == "function_call":
            names[item.call_id] = item.name
            turns.append(Turn(kind="tool_call", name=item.name, text=item.arguments))
        elif item.type == "function_call_output":
            name = item.name or names.get(item.call_id, "")
            turns.append(Turn(kind="tool_output", name=name, text=item.output, is_error=item.is_error))
    return turns


def _tool_call(reply: Reply, request_id: str) -> llm.FunctionToolCall:
    arguments = json.dumps(reply.tool_arguments, sort_keys=True)
    call_id = "call_" + hashlib.sha256(f"{request_id}{reply.tool_name}{arguments}".encode()).hexdigest()[:20]
    return llm.FunctionToolCall(name=reply.tool_name or "", arguments=arguments, call_id=call_id)


def _digest(turns: list[Turn], reply: Reply) -> str:
    raw = json.dumps([[t.kind, t.name, t.text] for t in turns] + [[reply.text, reply.tool_name]], default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _local_today(timezone: str | None) -> Callable[[], date]:
    """'Tomorrow' is the business's tomorrow, not the server's."""
    try:
        zone = ZoneInfo(timezone) if timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return lambda: datetime.now(zone).date()
