"""What a caller means: the offline responder's intents, matched by sentence embeddings.

An agent's intents are its FAQ entries, its knowledge passages, its tools, and the conversation's own moves
(transfer, goodbye, greeting, thanks, "are you a robot", "what can you do") and examples of what no agent
here does (out of scope). Requests the agent has no tool for (cancel, reschedule, book, order, change) are
read from their words (`phrasing.unserved_action`). Each intent has a few example sentences; a caller's
words are embedded once (`core.embeddings`, E5 query vectors) and scored against every example: an intent's
score is its best example's cosine similarity, plus a small lexical bonus for the words the caller shares
with it (BM25's job here is to break near-ties between entries that mean almost the same thing).

The thresholds were tuned on the understanding test set (tests/voice/understanding), see docs/knowledge.md.
"""

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from voice.engines.responder.text import humanize_name, terms, words

logger = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, DIM) unit query vectors

TRANSFER, END, GREETING, THANKS, ROBOT, CAPABILITIES = "transfer", "end", "greeting", "thanks", "robot", "capabilities"
FAQ, KNOWLEDGE, TOOL, UNSUPPORTED = "faq", "knowledge", "tool", "unsupported"

# Example sentences of the conversation's own moves. None of them is a line of the test set: they are
# what the intent means, and the test set checks that other words with that meaning land on it.
CONVERSATION_EXAMPLES: dict[str, tuple[str, ...]] = {
    TRANSFER: (
        "I want to speak with a person.",
        "Please transfer my call to a staff member.",
        "Can you connect me to a human being?",
        "I need to talk to your manager.",
        "Put me through to reception.",
        "I'd like to speak to a representative.",
        "Is there someone there I could talk to?",
    ),
    END: (
        "Goodbye.",
        "That's everything for today, goodbye.",
        "No, nothing else, have a nice day.",
        "Alright, I'm done, see you.",
        "Okay, that's it, bye bye.",
        "That's all I wanted to know, thank you, bye.",
    ),
    GREETING: ("Hello.", "Hi.", "Good morning to you.", "Hello, is anybody there?", "Good evening."),
    THANKS: (
        "Thank you.",
        "Thanks for the help.",
        "Thank you very much, that's helpful.",
        "Much appreciated.",
        "Cheers for that.",
        "Ta, lovely.",
    ),
    ROBOT: (
        "Am I speaking with a robot?",
        "Are you a human or a computer?",
        "Is this an artificial intelligence?",
        "Do I have a human on the line?",
        "Am I speaking to an actual human?",
        "Are you a bot?",
    ),
    CAPABILITIES: (
        "What can you help with?",
        "What things are you able to handle?",
        "What kind of things can I ask?",
        "What services do you offer?",
        "How can you help?",
    ),
}
# Nothing this agent does: a question about another trade or no trade at all. Examples of the kind of
# thing, not of any particular question.
OUT_OF_SCOPE_EXAMPLES = (
    "What's in the news today?",
    "Tell me a joke.",
    "How is the stock market doing?",
    "Can you help me with my taxes?",
    "Do you sell shoes?",
    "Who was the first man on the moon?",
    "What's your favourite movie?",
    "How do I get to the airport?",
    "What's a good recipe for dinner?",
    "What is the meaning of life?",
)
OUT_OF_SCOPE = "out_of_scope"
# Requests callers make of any business, by the words that ask for them (phrasing.unserved_action).
ACTION_WORDS = {
    "cancel": {"cancel", "cancellation", "cancelling", "canceling", "canceled", "cancelled"},
    "reschedule": {"reschedule", "rescheduling", "move", "postpone", "rebook", "push"},
    "book": {"book", "booking", "reserve", "reservation", "schedule", "appointment"},
    "order": {"order", "ordering", "buy", "purchase"},
    "change": {"change", "modify", "update"},
}


@dataclass(frozen=True)
class Intent:
    kind: str
    key: str  # the FAQ entry's or passage's index, the tool's name, the action; "" for the others
    examples: tuple[str, ...]
    lexicon: frozenset[str] = field(default=frozenset(), compare=False)  # content words, for the lexical bonus
    passages: tuple[str, ...] = ()  # texts that answer or describe it, matched query-to-passage


@dataclass(frozen=True)
class Match:
    intent: Intent
    score: float


class VectorCache:
    """Query vectors by text, shared by every call of the process (an agent's examples are embedded once)."""

    def __init__(self, embed: Embed, size: int = 20_000):
        self._embed, self._size = embed, size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def missing(self, texts: Sequence[str]) -> list[str]:
        with self._lock:
            return [t for t in dict.fromkeys(texts) if t not in self._vectors]

    def fill(self, texts: Sequence[str]) -> None:
        """Embed what is not cached yet (blocking: call it in a thread from async code)."""
        todo = self.missing(texts)
        for start in range(0, len(todo), 32):
            batch = todo[start : start + 32]
            vectors = self._embed(batch)
            with self._lock:
                self._vectors.update(zip(batch, vectors, strict=True))
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        self.fill(texts)
        with self._lock:
            rows = [self._vectors.get(t) for t in texts]
        if any(r is None for r in rows):  # evicted meanwhile: embed them again
            return np.asarray(self._embed(list(texts)), dtype=np.float32)
        return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)  # type: ignore[arg-type]

    def vector(self, text: str) -> np.ndarray:
        with self._lock:
            found = self._vectors.get(text)
            if found is not None:
                self._vectors.move_to_end(text)
                return found
        return self.matrix([text])[0]


_shared: VectorCache | None = None
_passages: VectorCache | None = None


def passage_cache() -> VectorCache:
    """Passage vectors (E5's `passage: ` side) of the agents' FAQ answers and tool descriptions."""
    global _passages
    if _passages is None:
        from core import embeddings

        _passages = VectorCache(lambda texts: embeddings.embedder().passages(texts))
    return _passages


def shared_cache() -> VectorCache:
    """The process's cache over the platform's embedding engine (core.embeddings)."""
    global _shared
    if _shared is None:
        from core import embeddings

        _shared = VectorCache(lambda texts: embeddings.embedder().queries(texts))
    return _shared


LOOKUP_VERBS = {"list", "check", "find", "show", "get", "look", "search", "see"}


def tool_examples(tool: dict) -> tuple[str, ...]:
    """What a caller says to use a tool: its description, as requests (with a day where it takes one), and
    its name in words. A look-up tool ("List the open slots on a date") is also asked as "Do you have any …"."""
    description = (tool.get("description") or "").strip()
    clause = re.split(r"[.(;]| such as | for example", description, maxsplit=1)[0].strip()
    clause = re.sub(r"\s+(?:on|at|by|for|in)\s+(?:a|an|its|the)\s+[^,]*$", "", clause)
    name = humanize_name(tool["name"])
    examples = [description, name]
    if clause:
        request = clause[0].lower() + clause[1:]
        verb, _, rest = request.partition(" ")
        examples += [f"I'd like to {request}.", f"Can you {request}?"]
        if _takes_a_day(tool):
            examples.append(f"I'd like to {request} tomorrow at 10.")
        if verb in LOOKUP_VERBS and rest:
            thing = re.sub(r"^(?:the|a|an|any|all)\s+", "", rest)
            examples += [f"Do you have any {thing}?", f"Are there any {thing} on Monday?"]
    return tuple(dict.fromkeys(e for e in examples if e))


def _takes_a_day(tool: dict) -> bool:
    properties = (tool.get("parameters") or {}).get("properties") or {}
    return any("date" in name or (p or {}).get("format") in ("date", "date-time") for name, p in properties.items())


def tool_serves(tool: dict, action: str) -> bool:
    """Does the tool's name or description say it does `action` (cancel, book, ...)?"""
    said = set(words(f"{humanize_name(tool['name'])} {tool.get('description') or ''}"))
    return bool(said & ACTION_WORDS[action])


class IntentSet:
    """One agent's intents and their example vectors."""

    def __init__(self, intents: list[Intent], cache: VectorCache, passages: "VectorCache | None" = None):
        self.intents = intents
        texts = [e for intent in intents for e in intent.examples]
        self._owner = np.array([i for i, intent in enumerate(intents) for _ in intent.examples], dtype=np.int64)
        self._matrix = cache.matrix(texts)
        self._cache = cache
        ptexts = [p for intent in intents for p in intent.passages] if passages is not None else []
        self._powner = np.array([i for i, intent in enumerate(intents) for _ in intent.passages], dtype=np.int64)
        self._pmatrix = passages.matrix(ptexts) if ptexts and passages is not None else None

    def rank(self, text: str) -> list[Match]:
        """Every intent with its score for `text`, best first."""
        if not self.intents:
            return []
        sims = self._matrix @ self._cache.vector(text)
        best = np.full(len(self.intents), -1.0, dtype=np.float32)
        np.maximum.at(best, self._owner, sims)
        if self._pmatrix is not None:
            np.maximum.at(best, self._powner, self._pmatrix @ self._cache.vector(text) + PASSAGE_OFFSET)
        said = set(terms(text))
        scores = [float(best[i]) + lexical_bonus(said, intent) for i, intent in enumerate(self.intents)]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [Match(self.intents[i], scores[i]) for i in order]


PASSAGE_OFFSET = 0.02  # query-to-passage similarities run lower than query-to-query ones
LEXICAL_WEIGHT = 0.02  # per shared content word, at most three: a tie-breaker, not a matcher


def lexical_bonus(said: set[str], intent: Intent) -> float:
    return LEXICAL_WEIGHT * min(3, len(said & intent.lexicon))


def lexicon(*texts: str) -> frozenset[str]:
    return frozenset(t for text in texts for t in terms(text))


def example_texts(entries: list, tools: list[dict]) -> tuple[list[str], list[str]]:
    """The texts `agent_intents` embeds for an agent: (as queries, as passages), to embed them ahead."""
    intents = agent_intents_of(entries, tools)
    return [e for i in intents for e in i.examples], [p for i in intents for p in i.passages]


def agent_intents(
    entries: list, tools: list[dict], cache: VectorCache, passages: VectorCache | None = None
) -> IntentSet:
    """The intents of one agent, their examples embedded (blocking: in a thread from async code)."""
    return IntentSet(agent_intents_of(entries, tools), cache, passages or passage_cache())


def agent_intents_of(entries: list, tools: list[dict]) -> list[Intent]:
    """The intents of one agent: its FAQ entries and passages (`knowledge.Entry`), its tools, the
    conversation's moves and out-of-scope examples."""
    intents: list[Intent] = []
    for i, entry in enumerate(entries):
        if entry.is_faq:
            examples = (entry.question, f"{entry.question} {entry.answer}")
            intents.append(Intent(FAQ, str(i), examples, lexicon(entry.question), passages=(entry.answer,)))
        else:
            intents.append(Intent(KNOWLEDGE, str(i), (entry.answer,), lexicon(entry.answer), passages=(entry.answer,)))
    business = [t for t in tools if t["name"] not in ("transfer_call", "end_call")]
    for tool in business:
        words_of = lexicon(humanize_name(tool["name"]), tool.get("description") or "")
        description = (tool.get("description") or "").strip()
        intents.append(
            Intent(TOOL, tool["name"], tool_examples(tool), words_of, passages=(description,) if description else ())
        )
    for kind, said in CONVERSATION_EXAMPLES.items():
        intents.append(Intent(kind, "", said))
    intents.append(Intent(OUT_OF_SCOPE, "", OUT_OF_SCOPE_EXAMPLES))
    return intents


def warm_up() -> threading.Thread:
    """Load the embedding engine and embed the examples every agent shares, in a thread, so a process's
    first call does not wait for them (a media process calls it at start-up)."""

    def work() -> None:
        try:
            shared = [e for examples in CONVERSATION_EXAMPLES.values() for e in examples] + list(OUT_OF_SCOPE_EXAMPLES)
            shared_cache().fill(shared)
        except Exception:  # a broken engine must not take the process down: the first call says why
            logger.exception("the responder's warm-up failed")

    thread = threading.Thread(target=work, name="responder-warm-up", daemon=True)
    thread.start()
    return thread
