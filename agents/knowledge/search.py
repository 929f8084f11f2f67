"""Hybrid retrieval over one agent's knowledge: cosine similarity of embeddings and BM25 over words, fused.

Pure data and numpy, no ORM and no model: a KnowledgeSnapshot (agents.knowledge.snapshot builds it once
per revision of the agent's documents) holds the passages and their vectors, and its index answers a
caller's turn in about a millisecond, inside the audio loop. The caller embeds the turn itself
(`core.embeddings.aquery`, off the loop) and passes the vector; without one, or for a passage whose
document is not embedded yet, only BM25 ranks.

Fusion is a weighted sum (docs/knowledge.md#retrieval has the measurements that chose it over
reciprocal-rank fusion): WEIGHT x the similarity above `min_similarity`, scaled to 0-1, plus (1 - WEIGHT) x
the BM25 score over the best BM25 score of the query. Meaning leads and matching words break ties and
lift exact names and numbers; a passage not embedded yet still ranks by its words. A passage counts by
meaning only when its similarity reaches `min_similarity` (E5's cosines of unrelated text sit around
0.7-0.8), and by words only when a word matches, so an unrelated question mostly finds nothing rather
than three random chunks; `Hit.similarity` lets a caller be stricter.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

DIM = 384  # core.embeddings.DIM (imported lazily there; the index needs no model)
WEIGHT = 0.9  # of meaning in the fused score; words get the rest
MIN_SIMILARITY = 0.81
RRF_K = 60  # for fusion="rrf", kept to measure against (bench/knowledge.py)
CANDIDATES = 50  # how deep each list goes before fusion
K1, B = 1.2, 0.75

TOKEN_RE = re.compile(r"\w+")
STOPWORDS = frozenset(
    {
        "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did",
        "do", "does", "for", "from", "get", "had", "has", "have", "hello", "hey", "hi", "i", "if", "in", "into", "is",
        "it", "its", "just", "know", "let", "like", "me", "my", "of", "on", "or", "our", "please", "so", "some",
        "tell", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "us", "want",
        "was", "we", "were", "will", "with", "would", "you", "your", "yours", "what", "how", "which", "who", "why",
        "whom", "whose", "much", "many", "i'm", "im", "ok", "okay", "need", "thanks", "thank",
    }
)  # fmt: skip


def terms(text: str) -> list[str]:
    """BM25's words: lower case, accents folded, stopwords dropped, a plural's s removed."""
    folded = text.lower()
    if not folded.isascii():
        folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    return [_stem(w) for w in TOKEN_RE.findall(folded) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Source:
    """Where a passage comes from: its document and the heading or page it sits under."""

    document_id: str
    title: str
    section: str = ""
    page: int | None = None

    @property
    def label(self) -> str:
        """ "Price list › Cleaning, page 3", as the call page shows it."""
        label = f"{self.title} › {self.section}" if self.section else self.title
        return f"{label}, page {self.page}" if self.page else label


@dataclass(frozen=True)
class Passage:
    """One chunk as search sees it. `id` is the KnowledgeChunk's ("" for text not yet chunked in the database)."""

    id: str
    source: Source
    position: int
    text: str
    question: str = ""
    answer: str = ""


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # the fused score: higher is better, comparable within one search only
    similarity: float | None  # cosine to the query; None without a query vector or a passage vector
    bm25: float  # 0 when no word matches

    @property
    def text(self) -> str:
        return self.passage.text

    @property
    def source(self) -> Source:
        return self.passage.source


@dataclass(frozen=True)
class FaqEntry:
    """An FAQ pair for the offline responder, with its question embedded as a query (None until embedded)."""

    question: str
    answer: str
    source: Source
    question_vector: np.ndarray | None = field(default=None, compare=False, repr=False)


class Bm25:
    """Okapi BM25 over an inverted index held in numpy arrays (a query touches only its words' postings).

    The postings of word t are rows[starts[t]:starts[t + 1]] with their counts, built with one sort."""

    def __init__(self, documents: list[list[str]]):
        self.size = n = len(documents)
        self.vocabulary: dict[str, int] = {}
        ids = [[self.vocabulary.setdefault(word, len(self.vocabulary)) for word in words] for words in documents]
        lengths = np.array([len(words) for words in ids], dtype=np.float32)
        self.norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()) if n else 1.0, 1.0))
        words = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths.astype(np.int64))
        pairs, counts = np.unique(words * max(n, 1) + rows, return_counts=True)  # sorted by word, then row
        self.rows = (pairs % max(n, 1)).astype(np.int32)
        self.counts = counts.astype(np.float32)
        self.starts = np.searchsorted(pairs // max(n, 1), np.arange(len(self.vocabulary) + 1))
        frequency = np.diff(self.starts)
        self.idf = np.log(1 + (n - frequency + 0.5) / (frequency + 0.5)).astype(np.float32)

    def scores(self, text: str) -> np.ndarray:
        scores = np.zeros(self.size, dtype=np.float32)
        for word in set(terms(text)):
            t = self.vocabulary.get(word)
            if t is not None:
                start, end = self.starts[t], self.starts[t + 1]
                rows, counts = self.rows[start:end], self.counts[start:end]
                scores[rows] += self.idf[t] * counts * (K1 + 1) / (counts + self.norm[rows])
        return scores


class HybridIndex:
    """Search over passages and their vectors: `matrix` has one unit row per passage, zeros where none yet."""

    def __init__(
        self,
        passages: tuple[Passage, ...] | list[Passage],
        matrix: np.ndarray | None = None,
        *,
        min_similarity: float = MIN_SIMILARITY,
        fusion: str = "weighted",
        weight: float = WEIGHT,
    ):
        self.passages = tuple(passages)
        n = len(self.passages)
        self.matrix = np.zeros((n, DIM), dtype=np.float32) if matrix is None else np.asarray(matrix, np.float32)
        if self.matrix.shape != (n, DIM):
            raise ValueError(f"matrix is {self.matrix.shape}, expected ({n}, {DIM})")
        self.has_vector = np.abs(self.matrix).sum(axis=1) > 0
        self.missing_vectors = not bool(self.has_vector.all())
        self.min_similarity, self.fusion, self.weight = min_similarity, fusion, weight
        self.bm25 = Bm25([_indexed_terms(p) for p in self.passages])

    def __len__(self) -> int:
        return len(self.passages)

    def similarities(self, vector: np.ndarray) -> np.ndarray:
        """Cosine of every passage to `vector` (unit rows: a dot product); -1 where a passage has no vector."""
        scores = self.matrix @ np.asarray(vector, dtype=np.float32).reshape(DIM)
        if self.missing_vectors:
            scores[~self.has_vector] = -1.0
        return scores

    def search(self, text: str, vector: np.ndarray | None = None, k: int = 3) -> list[Hit]:
        """The `k` passages that best answer `text` (its query embedding `vector` if given), best first."""
        if not self.passages or k <= 0:
            return []
        bm25 = self.bm25.scores(text)
        similarity = self.similarities(vector) if vector is not None else None
        fused = self._fuse(bm25, similarity)
        order = [int(i) for i in _top(fused, k) if fused[i] > 0]
        return [
            Hit(
                passage=self.passages[i],
                score=float(fused[i]),
                similarity=float(similarity[i]) if similarity is not None and self.has_vector[i] else None,
                bm25=float(bm25[i]),
            )
            for i in order
        ]

    def _fuse(self, bm25: np.ndarray, similarity: np.ndarray | None) -> np.ndarray:
        by_words = [int(i) for i in _top(bm25, CANDIDATES) if bm25[i] > 0]
        by_meaning = []
        if similarity is not None:
            by_meaning = [int(i) for i in _top(similarity, CANDIDATES) if similarity[i] >= self.min_similarity]
        fused = np.zeros(len(self.passages), dtype=np.float32)
        if self.fusion == "weighted":
            if by_words:
                fused[by_words] += (1 - self.weight) * bm25[by_words] / bm25[by_words[0]]
            if by_meaning:
                floor = self.min_similarity
                fused[by_meaning] += self.weight * (similarity[by_meaning] - floor) / max(1e-6, 1 - floor) + 1e-6
            return fused
        for ranking in (by_words, by_meaning):
            for rank, i in enumerate(ranking):
                fused[i] += 1.0 / (RRF_K + rank + 1)
        return fused


def _indexed_terms(passage: Passage) -> list[str]:
    # A question's own words count twice (they say what the pair answers); the title and section once.
    return terms(f"{passage.source.title} {passage.source.section} {passage.question} {passage.text}")


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, highest first (ties by position)."""
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


@dataclass(frozen=True)
class KnowledgeSnapshot:
    """One agent's knowledge at one revision: shared by every call of the agent until a document changes."""

    revision: str
    passages: tuple[Passage, ...]
    matrix: np.ndarray = field(repr=False)  # (len(passages), DIM) float32; zero rows: not embedded yet
    faq: tuple[FaqEntry, ...] = ()
    model_id: str = ""

    @cached_property
    def index(self) -> HybridIndex:
        return HybridIndex(self.passages, self.matrix)

    def search(self, text: str, vector: np.ndarray | None = None, k: int = 3) -> list[Hit]:
        return self.index.search(text, vector, k)

    @property
    def embedded(self) -> int:
        """How many passages have a vector."""
        return int(self.index.has_vector.sum())

    @cached_property
    def faq_matrix(self) -> np.ndarray:
        """The FAQ questions' vectors stacked, (len(faq), DIM); zero rows for questions not embedded yet."""
        rows = [e.question_vector if e.question_vector is not None else np.zeros(DIM, np.float32) for e in self.faq]
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, DIM), dtype=np.float32)


EMPTY = KnowledgeSnapshot(revision="", passages=(), matrix=np.zeros((0, DIM), dtype=np.float32))
