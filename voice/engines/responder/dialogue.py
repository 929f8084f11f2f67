"""What the offline responder says next: a pure function of the conversation and the agent.

A caller's turn is understood by meaning (`intents`: sentence embeddings over the agent's FAQ entries,
knowledge passages, tools and the conversation's own moves), together with what the conversation holds:
the detail we just asked for, and what the caller said in earlier turns (a day, a time, a name), so
"next Tuesday at 3" answers our question and "tomorrow" said two turns ago still counts. A question the
FAQ answers is answered; a request a tool serves calls it with the arguments the caller gave, asking for
a missing one at a time; a request no tool serves gets an honest "I can't do that by phone, but I can …".
After a tool ran, its result is put into words.
"""

import json
from dataclasses import dataclass, field
from datetime import date

from voice.engines.responder import phrasing, speech
from voice.engines.responder.arguments import direct_answer, fill_arguments, parameter_kind
from voice.engines.responder.intents import (
    CAPABILITIES,
    END,
    FAQ,
    GREETING,
    KNOWLEDGE,
    OUT_OF_SCOPE,
    ROBOT,
    TOOL,
    TRANSFER,
    UNSUPPORTED,
    Intent,
    IntentSet,
    Match,
)
from voice.engines.responder.knowledge import KnowledgeIndex
from voice.engines.responder.requests import free_text_value

TRANSFER_TOOL, END_TOOL = "transfer_call", "end_call"
BUILT_IN_TOOLS = {TRANSFER_TOOL, END_TOOL}
FLOOR = 0.855  # below this, the best intent is a guess: say what we can do instead
NEAR = 0.03  # scores closer than this are a near-tie, settled by what the words ask for
REQUEST_NEAR = 0.08  # how far behind an FAQ entry a tool may be and still take a request with its details
OVERRIDE = 0.93  # an answer to our question gives way only to an intent this sure (a goodbye, a transfer)
MEMORY_TURNS = 6  # earlier caller turns whose details (a day, a name) still count


@dataclass(frozen=True)
class Turn:
    """One conversation item, reduced to what the responder reads."""

    kind: str  # "user" | "assistant" | "tool_call" | "tool_output"
    text: str = ""
    name: str = ""
    is_error: bool = False


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    tool_name: str | None = None
    tool_arguments: dict = field(default_factory=dict)
    intent: str = ""  # what the turn was understood as ("faq", "tool", "fallback", ...): turn metadata, tests


@dataclass(frozen=True)
class AgentFacts:
    """The parts of an agent's configuration the responder answers from."""

    profile: dict
    index: KnowledgeIndex
    tools: list[dict]  # [{"name", "description", "parameters"}]
    today: date
    intents: IntentSet

    @property
    def tool_names(self) -> set[str]:
        return {t["name"] for t in self.tools}

    @property
    def business_tools(self) -> list[dict]:
        return [t for t in self.tools if t["name"] not in BUILT_IN_TOOLS]

    def tool(self, name: str) -> dict | None:
        return next((t for t in self.tools if t["name"] == name), None)


@dataclass(frozen=True)
class Memory:
    """What the conversation holds for the caller's next turn."""

    asked: tuple[dict, str] | None = None  # the tool and parameter our last turn asked for
    earlier: tuple[str, ...] = ()  # the caller's earlier turns, most recent first


def decide(turns: list[Turn], agent: AgentFacts) -> Reply:
    """The next reply for `turns` (oldest first)."""
    users = [t.text for t in turns if t.kind == "user"]
    last = turns[-1] if turns else None
    if last is not None and last.kind == "tool_output":
        return Reply(text=phrase_tool_result(last), intent="tool_result")
    if not users:
        return Reply(text=greeting(agent.profile), intent=GREETING)
    return respond(users[-1], agent, memory(turns, agent))


def memory(turns: list[Turn], agent: AgentFacts) -> Memory:
    users = [t.text for t in turns if t.kind == "user"]
    earlier = tuple(reversed(users[:-1]))[:MEMORY_TURNS]
    before = [t for t in turns[:-1] if t.kind in ("assistant", "tool_call", "tool_output")]
    asked = None
    if before and before[-1].kind == "assistant":
        asked = _asking_tool(phrasing.asked_in(before[-1].text, agent.business_tools), earlier, agent)
    return Memory(asked=asked, earlier=earlier)


def _asking_tool(candidates: list[tuple[dict, str]], earlier: tuple[str, ...], agent: AgentFacts):
    """Of the tools that ask this question, the one the caller's recent words were about."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    names = {tool["name"] for tool, _ in candidates}
    for said in earlier:
        for match in agent.intents.rank(said)[:3]:
            if match.intent.kind == TOOL and match.intent.key in names:
                return next(c for c in candidates if c[0]["name"] == match.intent.key)
    return candidates[0]


def respond(text: str, agent: AgentFacts, memory: Memory = Memory()) -> Reply:
    ranked = agent.intents.rank(text)
    if memory.asked is not None:
        reply = _answer_to_question(text, agent, memory, ranked)
        if reply is not None:
            return reply
    match = choose(ranked, text, agent)
    if match is None:
        return Reply(text=phrasing.fallback(agent), intent="fallback")
    return _act(match, text, agent, memory)


def choose(ranked: list[Match], text: str, agent: "AgentFacts | None" = None) -> Match | None:
    """The intent the caller means, or None when nothing here is close enough."""
    action = phrasing.unserved_action(text, agent.business_tools) if agent is not None else None
    if not ranked or ranked[0].score < FLOOR or ranked[0].intent.kind == OUT_OF_SCOPE:
        return _unsupported(ranked, action) if action else None
    top = ranked[0]
    if top.intent.kind == CAPABILITIES and not phrasing.asks_what_we_do(text):
        top = next((m for m in ranked[1:] if m.intent.kind != CAPABILITIES), top)
        if top.intent.kind == OUT_OF_SCOPE or top.score < FLOOR:
            return _unsupported(ranked, action) if action else None
    if top.intent.kind == END and phrasing.asks(text):
        # A goodbye hangs up: a question is never one ("Is there anything for you on Saturday?").
        top = next((m for m in ranked[1:] if m.intent.kind not in (END, CAPABILITIES)), top)
        if top.intent.kind in (END, OUT_OF_SCOPE) or top.score < FLOOR:
            return _unsupported(ranked, action) if action else None
    if action and top.intent.kind in (TOOL, UNSUPPORTED, CAPABILITIES) and not phrasing.is_question(text):
        return _unsupported(ranked, action)  # "move my appointment" when no tool moves one
    # A question the FAQ answers never goes to a tool, and a request a tool serves is not answered with
    # an FAQ entry: a near-tie between the two is settled by whether the caller asks or requests. So is one
    # between a transfer and "are you a robot?".
    # "Can I talk to a real person?" asks for one; "Am I talking to a real person?" asks what we are.
    rivals = {TOOL: FAQ, FAQ: TOOL, ROBOT: TRANSFER, TRANSFER: ROBOT}
    rival = next((m for m in ranked[1:4] if m.intent.kind == rivals.get(top.intent.kind)), None)
    if rival is not None and top.score - rival.score < NEAR:
        wants_action = phrasing.is_request(text)
        if (rival.intent.kind in (TOOL, TRANSFER)) == wants_action:
            return rival
    return top


def _unsupported(ranked: list[Match], action: str) -> Match:
    return Match(Intent(UNSUPPORTED, action, ()), ranked[0].score if ranked else 0.0)


def _act(match: Match, text: str, agent: AgentFacts, memory: Memory) -> Reply:
    intent = match.intent
    if intent.kind == FAQ:
        return Reply(text=agent.index.entries[int(intent.key)].answer, intent=FAQ)
    if intent.kind == KNOWLEDGE:
        return Reply(text=agent.index.passage_answer(int(intent.key), text), intent=KNOWLEDGE)
    if intent.kind == TOOL:
        tool = agent.tool(intent.key)
        assert tool is not None
        return _use_tool(tool, text, agent, memory)
    if intent.kind == TRANSFER:
        return _transfer(text, agent)
    if intent.kind == END:
        return _goodbye(text, agent)
    if intent.kind == UNSUPPORTED:
        return Reply(text=phrasing.unsupported(intent.key, agent), intent=f"{UNSUPPORTED}:{intent.key}")
    return Reply(text=phrasing.small_talk(intent.kind, agent), intent=intent.kind)


def _answer_to_question(text: str, agent: AgentFacts, memory: Memory, ranked: list[Match]) -> Reply | None:
    """The caller's reply to the detail we asked for, unless they clearly moved on."""
    assert memory.asked is not None
    tool, parameter = memory.asked
    schema = tool.get("parameters") or {}
    prop = (schema.get("properties") or {}).get(parameter) or {}
    typed, _ = fill_arguments(schema, text, today=agent.today, targets=agent.profile.get("transfer_targets"))
    direct = None if parameter in typed or prop.get("enum") else direct_answer(parameter_kind(parameter, prop), text)
    if parameter not in typed and direct is None and not typed:
        return None  # nothing here for the tool we asked about
    top = ranked[0] if ranked else None
    sure = top is not None and top.score >= OVERRIDE and top.intent.key != tool["name"]
    if sure and top is not None and (direct is not None or top.intent.kind in (TRANSFER, END)):
        return None  # the caller moved on: "actually, how much is a cleaning?"
    return _use_tool(tool, text, agent, memory, answered=(parameter, direct) if direct is not None else None)


def _use_tool(
    tool: dict, text: str, agent: AgentFacts, memory: Memory, *, answered: tuple[str, str] | None = None
) -> Reply:
    """Call the tool with what the caller said now and before, or ask for the first missing detail."""
    schema = tool.get("parameters") or {}
    args, _ = fill_arguments(schema, text, today=agent.today)
    if answered is not None:
        args.setdefault(*answered)
    for earlier in memory.earlier:
        remembered, _ = fill_arguments(schema, earlier, today=agent.today)
        for name, value in remembered.items():
            args.setdefault(name, value)
    properties, required = schema.get("properties") or {}, schema.get("required") or []
    for name, prop in properties.items():
        kind = parameter_kind(name, prop or {})
        # The caller's own words fill a free-text detail ("issue", "notes") or a required one we cannot
        # type ("items"), never an optional specific one ("reference": a booking reference).
        free = kind == "text" or (kind == "unknown" and name in required)
        if name not in args and not (prop or {}).get("enum") and free:
            value = free_text_value(text, tool) or next(
                (v for v in (free_text_value(e, tool) for e in memory.earlier) if v), None
            )
            if value:
                args[name] = value
    missing = [name for name in required if name not in args]
    if missing:
        first = memory.asked is None or memory.asked[0]["name"] != tool["name"]
        return Reply(text=phrasing.ask_for(tool, missing[0], first=first), intent=f"ask:{tool['name']}:{missing[0]}")
    return Reply(tool_name=tool["name"], tool_arguments=args, intent=TOOL)


def _transfer(text: str, agent: AgentFacts) -> Reply:
    tool = agent.tool(TRANSFER_TOOL)
    if tool is None:
        return Reply(
            text=f"I'm sorry, I can't transfer calls right now. {phrasing.capabilities(agent)}", intent=TRANSFER
        )
    args, _ = fill_arguments(
        tool.get("parameters") or {}, text, today=agent.today, targets=agent.profile.get("transfer_targets")
    )
    return Reply(tool_name=TRANSFER_TOOL, tool_arguments=args, intent=TRANSFER)


def _goodbye(text: str, agent: AgentFacts) -> Reply:
    if END_TOOL in agent.tool_names:
        return Reply(tool_name=END_TOOL, tool_arguments={}, intent=END)
    return Reply(text="Thank you for calling. Goodbye!", intent=END)


def greeting(profile: dict) -> str:
    if profile.get("greeting_message"):
        return profile["greeting_message"]
    business = profile.get("business_name") or profile.get("name") or ""
    return f"Hello, thank you for calling{' ' + business if business else ''}. How can I help you today?"


def phrase_tool_result(turn: Turn) -> str:
    """A tool's output (usually JSON from the tenant's backend) in one or two spoken sentences."""
    if turn.name == END_TOOL:
        return "Thank you for calling. Goodbye!"
    if turn.name == TRANSFER_TOOL and not turn.is_error:
        return "I'm transferring you now. Please hold."
    if turn.is_error:
        return (
            f"I'm sorry, I couldn't {phrasing.action_of(turn.name)} just now. Is there anything else I can help with?"
        )
    try:
        data = json.loads(turn.text)
    except (TypeError, ValueError):
        data = turn.text
    return speech.describe(data) or "Done. Is there anything else I can help you with?"
