"""The offline responder's knowledge base: FAQ entries and paragraphs, ranked with a small BM25.

Documents arrive as plain data ({"title", "content"}), never as model rows, so this runs inside
the audio loop without touching the database.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from voice.engines.responder.text import terms, words

QUESTION_RE = re.compile(r"^\s*Q\s*[:.)-]\s*(.*)$", re.IGNORECASE)
ANSWER_RE = re.compile(r"^\s*A\s*[:.)-]\s*(.*)$", re.IGNORECASE)
INLINE_QA_RE = re.compile(r"^\s*Q\s*:\s*(.+?)\s+A\s*:\s*(.+)$", re.IGNORECASE)
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
MAX_ANSWER_CHARS = 320  # about 20 seconds of speech
# Question words carry meaning that the stopword list drops: "Where are you?" asks for a location.
QUESTION_HINTS = {"where": "location", "much": "price"}


@dataclass(frozen=True)
class Entry:
    """One retrievable unit: an FAQ pair, or a paragraph with its document title."""

    question: str
    answer: str
    source: str
    tokens: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_faq(self) -> bool:
        return self.question != self.source


def parse_document(title: str, content: str) -> list[Entry]:
    """FAQ pairs ('Q: … A: …', on one line or two) and the remaining paragraphs of one document."""
    entries: list[Entry] = []
    prose: list[str] = []
    question: str | None = None
    answer: list[str] = []

    def close_pair() -> None:
        nonlocal question, answer
        if question and answer:
            entries.append(_entry(question, " ".join(answer), title, weight_question=2))
        question, answer = None, []

    for line in content.splitlines():
        if m := INLINE_QA_RE.match(line):
            close_pair()
            entries.append(_entry(m[1], m[2], title, weight_question=2))
        elif m := QUESTION_RE.match(line):
            close_pair()
            question = m[1].strip()
        elif question is not None and (m := ANSWER_RE.match(line)):
            answer.append(m[1].strip())
        elif question is not None and answer and line.strip():
            answer.append(line.strip())  # a multi-line answer
        else:
            close_pair()
            prose.append(line)
    close_pair()
    entries.extend(_paragraph_entries(title, "\n".join(prose)))
    return entries


def _paragraph_entries(title: str, text: str) -> list[Entry]:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return [_entry(title, p, title, weight_question=1) for p in paragraphs if p]


def _entry(question: str, answer: str, source: str, *, weight_question: int) -> Entry:
    # A question's own words count double: they say what the entry answers.
    tokens = tuple(terms(question) * weight_question + terms(answer))
    return Entry(question=question.strip(), answer=_speakable(answer), source=source, tokens=tokens)


def _speakable(answer: str) -> str:
    """At most a few sentences, so a long paragraph is not read out whole."""
    answer = " ".join(answer.split())
    if len(answer) <= MAX_ANSWER_CHARS:
        return answer
    spoken = ""
    for sentence in SENTENCE_RE.split(answer):
        if spoken and len(spoken) + len(sentence) > MAX_ANSWER_CHARS:
            break
        spoken = f"{spoken} {sentence}".strip()
    return spoken


class KnowledgeIndex:
    """BM25 over entries, with a coverage threshold so unrelated questions find nothing."""

    K1 = 1.2
    B = 0.75

    def __init__(self, documents: list[dict] | None, *, min_coverage: float = 0.5) -> None:
        self.entries: list[Entry] = [
            entry
            for doc in documents or []
            if doc.get("is_active", True)
            for entry in parse_document(doc.get("title", ""), doc.get("content", ""))
        ]
        self.min_coverage = min_coverage
        self._tf = [Counter(e.tokens) for e in self.entries]
        self._avg_len = sum(len(e.tokens) for e in self.entries) / max(len(self.entries), 1)
        df = Counter(t for tf in self._tf for t in tf)
        n = len(self.entries)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    @property
    def titles(self) -> list[str]:
        return list(dict.fromkeys(e.source for e in self.entries if e.source))

    @property
    def faq_entries(self) -> list[Entry]:
        return [e for e in self.entries if e.is_faq]

    def passage_answer(self, i: int, query: str) -> str:
        """The sentences of passage `i` that share words with `query` (all of it when none does)."""
        entry = self.entries[i]
        wanted = set(query_terms(query))
        matching = [s for s in SENTENCE_RE.split(entry.answer) if wanted & set(terms(s))]
        return " ".join(matching) or entry.answer

    def answer(self, query: str) -> str | None:
        """What to say for `query`: an FAQ answer, or the sentences of a paragraph that match."""
        entry = self.search(query)
        if entry is None:
            return None
        if entry.question != entry.source:
            return entry.answer
        wanted = set(query_terms(query))
        matching = [s for s in SENTENCE_RE.split(entry.answer) if wanted & set(terms(s))]
        return " ".join(matching) or entry.answer

    def search(self, query: str) -> Entry | None:
        """The best entry for `query`, or None when it shares too little with every entry."""
        query_terms_ = query_terms(query)
        if not query_terms_ or not self.entries:
            return None
        score, neg_index = max((self._score(query_terms_, i), -i) for i in range(len(self.entries)))
        if score <= 0 or self._coverage(query_terms_, -neg_index) < self.min_coverage:
            return None
        return self.entries[-neg_index]

    def _score(self, query_terms: list[str], i: int) -> float:
        tf, length = self._tf[i], len(self.entries[i].tokens)
        norm = self.K1 * (1 - self.B + self.B * length / max(self._avg_len, 1))
        return sum(self._idf[t] * tf[t] * (self.K1 + 1) / (tf[t] + norm) for t in query_terms if t in tf)

    def _coverage(self, query_terms: list[str], i: int) -> float:
        """Share of the query's words (unknown words count as rare) that the entry contains."""
        weight = {t: self._idf.get(t, max(self._idf.values(), default=1.0)) for t in query_terms}
        matched = sum(w for t, w in weight.items() if t in self._tf[i])
        return matched / sum(weight.values())


def query_terms(query: str) -> list[str]:
    """A question's content words plus the hints its question words give, without repeats."""
    hints = [hint for word, hint in QUESTION_HINTS.items() if word in words(query)]
    return list(dict.fromkeys(terms(query) + terms(" ".join(hints))))
