"""Runs the understanding test set through the offline responder (the test and bench/understanding.py)."""

import json
import time
from dataclasses import dataclass

from tests.voice.understanding.agents import AGENTS, TODAY, demo
from tests.voice.understanding.cases import CASES
from voice.engines.responder.dialogue import AgentFacts, Reply, Turn, decide
from voice.engines.responder.intents import agent_intents, shared_cache
from voice.engines.responder.knowledge import KnowledgeIndex


@dataclass(frozen=True)
class Outcome:
    agent: str
    said: str
    expected: tuple[str, ...]
    got: str
    reply: Reply
    ok: bool
    seconds: float  # responder time for the last turn


def facts(name: str, vectors: tuple | None = None) -> AgentFacts:
    """The agent as the responder sees it; `vectors` = (query cache, passage cache) of another embedder."""
    agent = demo() if name == "demo" else AGENTS[name]
    index = KnowledgeIndex(agent["documents"])
    queries, passages = vectors or (shared_cache(), None)
    intents = agent_intents(index.entries, agent["tools"], queries, passages)
    return AgentFacts(profile=agent["profile"], index=index, tools=agent["tools"], today=TODAY, intents=intents)


def label(reply: Reply, agent: AgentFacts) -> str:
    if reply.tool_name == "transfer_call":
        return "transfer"
    if reply.tool_name == "end_call":
        return "end"
    if reply.tool_name:
        return f"tool:{reply.tool_name} {json.dumps(reply.tool_arguments, sort_keys=True)}"
    if reply.intent == "faq":
        question = next(e.question for e in agent.index.faq_entries if e.answer == reply.text)
        return f"faq:{question}"
    if reply.intent == "knowledge":
        return f"knowledge:{reply.text}"
    return reply.intent


def matches(expected: str, got: str, reply: Reply, args: dict | None) -> bool:
    kind, _, detail = expected.partition(":")
    if kind in ("faq", "knowledge"):
        return got.startswith(f"{kind}:") and detail.lower() in got.lower()
    if kind == "tool":
        if reply.tool_name != detail:
            return False
        given = {k: str(v).lower() for k, v in reply.tool_arguments.items()}
        return all(given.get(k) == str(v).lower() for k, v in (args or {}).items())
    return got == expected


def run_case(case: tuple, agents: dict[str, AgentFacts]) -> Outcome:
    """One case through the responder (the caller's words embedded by the agents' own caches)."""
    name, said, expected = case[0], case[1], case[2]
    args = case[3] if len(case) > 3 else None
    agent = agents[name]
    lines = said if isinstance(said, list) else [said]
    turns: list[Turn] = []
    reply = Reply()
    seconds = 0.0
    for n, line in enumerate(lines):
        turns.append(Turn(kind="user", text=line))
        started = time.perf_counter()
        reply = decide(turns, agent)
        seconds = time.perf_counter() - started
        if n == len(lines) - 1:
            break
        if reply.tool_name:
            turns.append(Turn(kind="tool_call", name=reply.tool_name, text=json.dumps(reply.tool_arguments)))
            turns.append(Turn(kind="tool_output", name=reply.tool_name, text='{"message": "Done."}'))
            reply = decide(turns, agent)
        turns.append(Turn(kind="assistant", text=reply.text or ""))
    alternatives = expected if isinstance(expected, tuple) else (expected,)
    got = label(reply, agent)
    ok = any(matches(e, got, reply, args) for e in alternatives)
    return Outcome(name, " / ".join(lines), alternatives, got, reply, ok, seconds)


def run_all(cases: list[tuple] = CASES, vectors: tuple | None = None) -> list[Outcome]:
    agents = {name: facts(name, vectors) for name in AGENTS}
    return [run_case(case, agents) for case in cases]
