"""What the LLM sees on each turn (docs/voice-pipeline.md#the-agent-session).

- Instructions: the agent's system prompt, the caller's context (number, name, anything the bridge
  or the outbound request put in `call.metadata`), and the call's ground rules.
- Knowledge: the agent's documents cut into FAQ entries and paragraphs, ranked against the
  caller's latest words with BM25; the best few go into the prompt just before that turn.
- History: after `summarize_after_turns` caller/agent messages, the older ones are folded into a
  short summary, and the rest is trimmed to `max_history_tokens`.

The summary is extractive (the turns themselves, shortened), not written by the LLM: it costs no
model call in the middle of a phone conversation and behaves the same with every provider.
Everything here works on plain data loaded once per call, so it runs in the audio loop.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass

from livekit.agents import llm

WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
QA_RE = re.compile(r"^\s*Q\s*[:.)-]\s*(.+?)(?:\s+A\s*[:.)-]\s*(.+))?$", re.IGNORECASE)
ANSWER_RE = re.compile(r"^\s*A\s*[:.)-]\s*(.+)$", re.IGNORECASE)
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
    }
)
CHARS_PER_TOKEN = 4  # close enough for English with the providers' tokenizers
SUMMARY_LINE_CHARS = 160
KNOWLEDGE_RESULTS = 3
CHUNK_CHARS = 600


def terms(text: str) -> list[str]:
    return [w for w in WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# --- knowledge base ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    title: str
    text: str


def chunk_document(title: str, content: str) -> list[Chunk]:
    """FAQ entries ('Q: … A: …', on one line or two) stay whole; other text is cut by paragraph."""
    chunks, prose, question = [], [], None
    for line in content.splitlines():
        qa, answer = QA_RE.match(line), ANSWER_RE.match(line)
        if qa and qa.group(2):
            chunks.append(Chunk(title, f"Q: {qa.group(1)} A: {qa.group(2)}"))
        elif qa:
            question = qa.group(1)
        elif answer and question:
            chunks.append(Chunk(title, f"Q: {question} A: {answer.group(1)}"))
            question = None
        else:
            prose.append(line)
    for paragraph in re.split(r"\n\s*\n", "\n".join(prose)):
        text = " ".join(paragraph.split())
        chunks.extend(Chunk(title, text[i : i + CHUNK_CHARS]) for i in range(0, len(text), CHUNK_CHARS))
    return chunks


class KnowledgeIndex:
    """BM25 over the chunks of one agent's active documents."""

    K1, B = 1.2, 0.75

    def __init__(self, documents: list[dict]):
        self.chunks = [c for d in documents for c in chunk_document(d["title"], d["content"])]
        self._tf = [Counter(terms(f"{c.title} {c.text}")) for c in self.chunks]
        lengths = [sum(tf.values()) for tf in self._tf]
        self._avg = sum(lengths) / max(len(lengths), 1)
        df = Counter(t for tf in self._tf for t in tf)
        n = len(self.chunks)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def search(self, query: str, k: int = KNOWLEDGE_RESULTS) -> list[Chunk]:
        wanted = set(terms(query))
        scored = [(self._score(wanted, i), -i) for i in range(len(self.chunks))]
        best = sorted((s for s in scored if s[0] > 0), reverse=True)[:k]
        return [self.chunks[-i] for _, i in best]

    def _score(self, wanted: set[str], i: int) -> float:
        tf = self._tf[i]
        norm = self.K1 * (1 - self.B + self.B * sum(tf.values()) / max(self._avg, 1))
        return sum(self._idf[t] * tf[t] * (self.K1 + 1) / (tf[t] + norm) for t in wanted if t in tf)


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


def prepare_context(
    chat_ctx: llm.ChatContext, *, policy: ContextPolicy, index: KnowledgeIndex | None
) -> llm.ChatContext:
    """A copy of the session's history shaped for the LLM; the session keeps the full history."""
    head = [i for i in chat_ctx.items if _is_instruction(i)]
    body = [i for i in chat_ctx.items if not _is_instruction(i) and i.type != "agent_handoff"]
    older, recent = _split_for_summary(body, policy.summarize_after_turns)
    recent = _trim_to_budget(recent, policy.max_history_tokens)
    items = head + ([_summary(older)] if older else []) + recent
    if index is not None:
        items = _with_knowledge(items, index)
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


def _with_knowledge(items: list, index: KnowledgeIndex) -> list:
    """Put the passages that match the caller's latest words just before that turn."""
    last_user = next((n for n in range(len(items) - 1, -1, -1) if _is_turn(items[n]) and items[n].role == "user"), None)
    if last_user is None:
        return items
    found = index.search(items[last_user].text_content or "")
    if not found:
        return items
    passages = "\n".join(f"[{c.title}] {c.text}" for c in found)
    note = llm.ChatMessage(role="system", content=[f"Knowledge base passages for the next turn:\n{passages}"])
    return [*items[:last_user], note, *items[last_user:]]
