"""What the LLM sees on each turn (docs/voice-pipeline.md#the-agent-session).

- Instructions: the agent's system prompt, the caller's context (number, name, anything the bridge
  or the outbound request put in `call.metadata`), and the call's ground rules.
- Knowledge: the passages of the agent's documents that the hybrid search (agents.knowledge.search:
  embeddings and BM25) finds for the caller's latest words go into the prompt just before that turn,
  each with its source.
- History: after `summarize_after_turns` caller/agent messages, the older ones are folded into a
  short summary, and the rest is trimmed to `max_history_tokens`.

The summary is extractive (the turns themselves, shortened), not written by the LLM: it costs no
model call in the middle of a phone conversation and behaves the same with every provider.
Everything here works on plain data loaded once per call, so it runs in the audio loop.
"""

import math
from dataclasses import dataclass

from livekit.agents import llm

CHARS_PER_TOKEN = 4  # close enough for English with the providers' tokenizers
SUMMARY_LINE_CHARS = 160
KNOWLEDGE_RESULTS = 3  # passages put before a turn


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# --- knowledge base ------------------------------------------------------------------------------


def knowledge_note(hits: list) -> llm.ChatMessage | None:
    """The passages found for the caller's latest words (agents.knowledge.search hits), as a system note."""
    if not hits:
        return None
    passages = "\n".join(f"[{hit.source.label}] {hit.text}" for hit in hits)
    return llm.ChatMessage(role="system", content=[f"Knowledge base passages for the next turn:\n{passages}"])


def last_caller_words(chat_ctx: llm.ChatContext) -> str:
    return next(
        (i.text_content or "" for i in reversed(chat_ctx.items) if i.type == "message" and i.role == "user"), ""
    )


# --- instructions --------------------------------------------------------------------------------

CALLER_FIELDS = {"caller_number": "Caller's number", "customer_name": "Caller's name", "account_id": "Account"}


def build_instructions(*, system_prompt: str, caller: dict, transfer_targets: list[dict]) -> str:
    """The system prompt with the caller's context and the call's ground rules appended."""
    parts = [system_prompt.strip()]
    known = [f"- {CALLER_FIELDS.get(k, k.replace('_', ' ').capitalize())}: {v}" for k, v in caller.items() if v]
    if known:
        parts.append("About this caller:\n" + "\n".join(known))
    rules = [
        "You are speaking on a phone call: answer in one to three short sentences, no lists or markdown.",
        "Use the knowledge provided with a turn when it answers the caller; never invent facts.",
        "When the caller is done, say goodbye and call end_call.",
    ]
    if transfer_targets:
        names = ", ".join(t["name"] for t in transfer_targets)
        rules.append(f"If the caller asks for a person or you cannot help, call transfer_call (targets: {names}).")
    parts.append("Call rules:\n" + "\n".join(f"- {r}" for r in rules))
    return "\n\n".join(parts)


# --- the context for one LLM call ----------------------------------------------------------------


@dataclass(frozen=True)
class ContextPolicy:
    max_history_tokens: int = 8000
    summarize_after_turns: int = 20


def prepare_context(chat_ctx: llm.ChatContext, *, policy: ContextPolicy, hits: list | None = None) -> llm.ChatContext:
    """A copy of the session's history shaped for the LLM, the knowledge `hits` found for the caller's latest
    words just before that turn; the session keeps the full history."""
    head = [i for i in chat_ctx.items if _is_instruction(i)]
    body = [i for i in chat_ctx.items if not _is_instruction(i) and i.type != "agent_handoff"]
    older, recent = _split_for_summary(body, policy.summarize_after_turns)
    recent = _trim_to_budget(recent, policy.max_history_tokens)
    items = head + ([_summary(older)] if older else []) + recent
    if hits:
        items = _with_knowledge(items, hits)
    return llm.ChatContext(items)


def _is_instruction(item) -> bool:
    return item.type == "message" and item.role in ("system", "developer")


def _is_turn(item) -> bool:
    return item.type == "message" and item.role in ("user", "assistant")


def _split_for_summary(body: list, after_turns: int) -> tuple[list, list]:
    """Keep the latest half of `after_turns` turns verbatim once there are more than `after_turns`."""
    turns = [n for n, item in enumerate(body) if _is_turn(item)]
    if len(turns) <= after_turns:
        return [], body
    cut = _safe_cut(body, turns[-max(1, after_turns // 2)])
    return body[:cut], body[cut:]


def _safe_cut(body: list, index: int) -> int:
    """Move a cut back so a tool call is never separated from its output."""
    while index > 0 and body[index].type == "function_call_output":
        index -= 1
    return index


def _trim_to_budget(items: list, budget: int) -> list:
    """Drop the oldest items until the rest fits, always keeping the latest turn."""
    sizes = [estimate_tokens(_text_of(i)) for i in items]
    start = 0
    while start < len(items) - 1 and sum(sizes[start:]) > budget:
        start += 1
    while start < len(items) - 1 and items[start].type == "function_call_output":
        start += 1  # an output without its call would be rejected by the providers
    return items[start:]


def _summary(items: list) -> llm.ChatMessage:
    lines = [line for item in items if (line := _summary_line(item))]
    text = "Summary of the earlier part of this call:\n" + "\n".join(lines)
    return llm.ChatMessage(role="system", content=[text], extra={"is_summary": True})


def _summary_line(item) -> str:
    if _is_turn(item):
        who = "Caller" if item.role == "user" else "Agent"
        return f"- {who}: {_shorten(item.text_content or '')}"
    if item.type == "function_call_output":
        outcome = "failed" if item.is_error else "returned"
        return f"- Tool {item.name or item.call_id} {outcome}: {_shorten(item.output)}"
    return ""


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LINE_CHARS else text[: SUMMARY_LINE_CHARS - 1] + "…"


def _text_of(item) -> str:
    if item.type == "message":
        return item.text_content or ""
    if item.type == "function_call":
        return f"{item.name} {item.arguments}"
    if item.type == "function_call_output":
        return item.output
    return ""


def _with_knowledge(items: list, hits: list) -> list:
    """Put the passages that match the caller's latest words just before that turn."""
    last_user = next((n for n in range(len(items) - 1, -1, -1) if _is_turn(items[n]) and items[n].role == "user"), None)
    note = knowledge_note(hits)
    if last_user is None or note is None:
        return items
    return [*items[:last_user], note, *items[last_user:]]
