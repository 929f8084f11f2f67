"""What the offline responder says next: a pure function of the conversation and the agent.

Order of precedence for a caller's turn: goodbye, transfer, one of the agent's tools, a plain
greeting, the knowledge base, thanks, then a fallback that says what the agent can help with.
After a tool ran, its result is put into words.
"""

import json
from dataclasses import dataclass, field
from datetime import date

from voice.engines.responder import speech
from voice.engines.responder.arguments import fill_arguments
from voice.engines.responder.knowledge import KnowledgeIndex
from voice.engines.responder.text import human_list, humanize_name, terms, words

TRANSFER_TOOL, END_TOOL = "transfer_call", "end_call"
BUILT_IN_TOOLS = {TRANSFER_TOOL, END_TOOL}
TRANSFER_STRONG = ("human", "representative", "operator", "receptionist", "front desk", "real person", "live person")
TRANSFER_WEAK = ("person", "agent", "someone", "somebody", "staff", "manager", "transfer")
TRANSFER_VERBS = {"speak", "talk", "connect", "transfer", "put", "reach", "get"}
GOODBYE_PHRASES = ("goodbye", "good bye", "bye", "that's all", "that is all", "that's it", "hang up", "nothing else")
GREETING_WORDS = {"hi", "hello", "hey", "good", "morning", "afternoon", "evening", "there"}
THANKS_PHRASES = ("thank you", "thanks", "cheers", "appreciate it")


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


@dataclass(frozen=True)
class AgentFacts:
    """The parts of an agent's configuration the responder answers from."""

    profile: dict
    index: KnowledgeIndex
    tools: list[dict]  # [{"name", "description", "parameters"}]
    today: date

    @property
    def tool_names(self) -> set[str]:
        return {t["name"] for t in self.tools}

    @property
    def business_tools(self) -> list[dict]:
        return [t for t in self.tools if t["name"] not in BUILT_IN_TOOLS]


def decide(turns: list[Turn], agent: AgentFacts) -> Reply:
    """The next reply for `turns` (oldest first)."""
    users = [t for t in turns if t.kind == "user"]
    last = turns[-1] if turns else None
    if last is not None and last.kind == "tool_output":
        return Reply(text=phrase_tool_result(last))
    if not users:
        return Reply(text=greeting(agent.profile))
    previous = users[-2].text if len(users) > 1 else ""
    return respond(users[-1].text, agent, previous=previous)


def respond(text: str, agent: AgentFacts, *, previous: str = "") -> Reply:
    for handler in (_goodbye, _transfer, _tool, _greeting, _knowledge, _thanks):
        reply = handler(text, agent, previous)
        if reply is not None:
            return reply
    return Reply(text=fallback(agent))


def greeting(profile: dict) -> str:
    if profile.get("greeting_message"):
        return profile["greeting_message"]
    business = profile.get("business_name") or profile.get("name") or ""
    return f"Hello, thank you for calling{' ' + business if business else ''}. How can I help you today?"


def _goodbye(text: str, agent: AgentFacts, previous: str) -> Reply | None:
    if not _has_phrase(text, GOODBYE_PHRASES):
        return None
    if END_TOOL in agent.tool_names:
        return _call(agent, END_TOOL, text)
    return Reply(text="Thank you for calling. Goodbye!")


def _transfer(text: str, agent: AgentFacts, previous: str) -> Reply | None:
    tokens = set(words(text))
    strong = _has_phrase(text, TRANSFER_STRONG)
    if not strong and not (_has_phrase(text, TRANSFER_WEAK) and tokens & TRANSFER_VERBS):
        return None
    if TRANSFER_TOOL in agent.tool_names:
        return _call(agent, TRANSFER_TOOL, text)
    return Reply(text=f"I'm sorry, I can't transfer calls right now. {capabilities(agent)}")


def _call(agent: AgentFacts, name: str, text: str) -> Reply:
    tool = next(t for t in agent.tools if t["name"] == name)
    args, _ = fill_arguments(
        tool.get("parameters") or {}, text, today=agent.today, targets=agent.profile.get("transfer_targets")
    )
    return Reply(tool_name=name, tool_arguments=args)


def _tool(text: str, agent: AgentFacts, previous: str) -> Reply | None:
    reply = _match_tool(text, agent)
    if reply is None and previous:
        # The caller may be answering our question about a missing detail ("Tuesday at 3").
        earlier = _match_tool(previous, agent)
        if earlier is not None and earlier.tool_name is None:
            reply = _match_tool(f"{previous} {text}", agent)
    return reply


def _match_tool(text: str, agent: AgentFacts) -> Reply | None:
    said = set(terms(text))
    best: tuple | None = None
    for position, tool in enumerate(agent.business_tools):
        overlap = len(said & set(_tool_terms(tool)))
        if not overlap:
            continue
        args, missing = fill_arguments(tool.get("parameters") or {}, text, today=agent.today)
        rank = (not missing, overlap, len(args), -position)
        if best is None or rank > best[0]:
            best = (rank, tool, args, missing)
    if best is None:
        return None
    (_, overlap, found, _), tool, args, missing = best
    if not missing:
        return Reply(tool_name=tool["name"], tool_arguments=args)
    if overlap >= 2 or found:
        return Reply(text=ask_for(tool, missing[0]))
    return None


def _tool_terms(tool: dict) -> list[str]:
    return terms(f"{humanize_name(tool['name'])} {tool.get('description') or ''}")


def ask_for(tool: dict, parameter: str) -> str:
    prop = ((tool.get("parameters") or {}).get("properties") or {}).get(parameter) or {}
    label = humanize_name(parameter)
    if prop.get("description") and len(prop["description"]) <= 60:
        label = prop["description"].rstrip(".").lower()
    return f"Sure, I can help with that. What {label} would you like?"


def _greeting(text: str, agent: AgentFacts, previous: str) -> Reply | None:
    tokens = words(text)
    if tokens and set(tokens) <= GREETING_WORDS and tokens[0] in {"hi", "hello", "hey", "good"}:
        return Reply(text="Hello! How can I help you today?")
    return None


def _knowledge(text: str, agent: AgentFacts, previous: str) -> Reply | None:
    answer = agent.index.answer(text)
    return Reply(text=answer) if answer else None


def _thanks(text: str, agent: AgentFacts, previous: str) -> Reply | None:
    if _has_phrase(text, THANKS_PHRASES):
        return Reply(text="You're welcome! Is there anything else I can help you with?")
    return None


def fallback(agent: AgentFacts) -> str:
    return f"I'm sorry, I don't have an answer for that. {capabilities(agent)}"


def capabilities(agent: AgentFacts) -> str:
    """One sentence on what this agent can do, from its tools and knowledge titles."""
    can = [humanize_name(t["name"]) for t in agent.business_tools]
    if agent.index.titles:
        # Titles as written: "Practice FAQ" lower-cased would be read as the word "faq".
        can.append(f"answer questions about {human_list(agent.index.titles[:3])}")
    offer = " Or I can connect you with a person." if TRANSFER_TOOL in agent.tool_names else ""
    if not can:
        return f"I can take a message or answer general questions.{offer}".strip()
    return f"I can {human_list(can, 'or')}.{offer}"


def phrase_tool_result(turn: Turn) -> str:
    """A tool's output (usually JSON from the tenant's backend) in one or two spoken sentences."""
    if turn.name == END_TOOL:
        return "Thank you for calling. Goodbye!"
    if turn.name == TRANSFER_TOOL and not turn.is_error:
        return "I'm transferring you now. Please hold."
    if turn.is_error:
        return (
            f"I'm sorry, I couldn't {humanize_name(turn.name) or 'do that'} just now. "
            "Is there anything else I can help you with?"
        )
    try:
        data = json.loads(turn.text)
    except (TypeError, ValueError):
        data = turn.text
    return speech.describe(data) or "Done. Is there anything else I can help you with?"


def _has_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    spoken = f" {' '.join(words(text))} "
    return any(f" {' '.join(words(p))} " in spoken for p in phrases)
