"""One agent's knowledge as plain data for its calls, loaded once per revision and shared in the process.

A call loads the snapshot when it starts (agents.selectors.knowledge_snapshot, through
database_sync_to_async), then searches it on every turn without the database. The revision is one small
query (how many documents the agent has, and when the latest changed): any document saved, embedded,
switched off or deleted changes it, and the next call start builds a new snapshot, while the calls in
progress keep theirs. Fifty calls of one agent share one matrix. Only the tenant's own documents of that
agent are read, and only the active ones are in the snapshot.

A document whose stored chunks are older than its text (saved by a path that does not cut chunks, or
not yet cut) is chunked here, without vectors, so its words are searchable before its embedding is done.
"""

import threading
from collections import OrderedDict

import numpy as np
from django.db.models import Count, Max

from agents.knowledge import chunking
from agents.knowledge.embedding import content_hash
from agents.knowledge.search import DIM, FaqEntry, KnowledgeSnapshot, Passage, Source
from agents.knowledge.store import Loaded, store
from agents.models import KnowledgeDocument

# What a process keeps: the most recently used agents' snapshots, at most CACHE_SIZE of them and CACHE_PASSAGES
# passages in all (a passage holds about 3.6 kB with its vector and index: bench/knowledge.py), so a few
# agents with very large knowledge bases cannot take a media worker's memory.
CACHE_SIZE = 64
CACHE_PASSAGES = 100_000

_cache: OrderedDict[tuple[str, str], KnowledgeSnapshot] = OrderedDict()
_lock = threading.Lock()


def revision(*, tenant_id, agent_id) -> str:
    """Changes whenever any document of the agent is added, changed, embedded or deleted."""
    row = (
        KnowledgeDocument.objects.for_tenant(tenant_id)
        .filter(agent_id=agent_id)
        .aggregate(count=Count("id"), latest=Max("updated_at"))
    )
    return f"{row['count']}:{row['latest'].isoformat() if row['latest'] else '-'}"


def snapshot(*, tenant_id, agent_id) -> KnowledgeSnapshot:
    """The agent's knowledge at its current revision: from this process's cache, or built once."""
    key = (str(tenant_id), str(agent_id))
    current = revision(tenant_id=tenant_id, agent_id=agent_id)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.revision == current:
            _cache.move_to_end(key)
            return cached
    built = build(tenant_id=tenant_id, agent_id=agent_id, revision=current)
    with _lock:
        _cache[key] = built
        _cache.move_to_end(key)
        while len(_cache) > 1 and (
            len(_cache) > CACHE_SIZE or sum(len(s.passages) for s in _cache.values()) > CACHE_PASSAGES
        ):
            _cache.popitem(last=False)
    return built


def forget() -> None:
    """Empty the cache (tests, and a process that wants the memory back)."""
    with _lock:
        _cache.clear()


def build(*, tenant_id, agent_id, revision: str = "") -> KnowledgeSnapshot:
    from core.embeddings import MODEL_ID

    documents = list(
        KnowledgeDocument.objects.for_tenant(tenant_id)
        .filter(agent_id=agent_id, is_active=True)
        .order_by("title", "id")
        .values_list("id", "title", "content", "chunks_hash")
    )
    fresh = {str(pk): title for pk, title, content, digest in documents if digest == content_hash(title, content)}
    loaded = store().load(tenant_id=tenant_id, agent_id=agent_id, documents=fresh, model_id=MODEL_ID)
    passages: list[Passage] = []
    vectors: list[np.ndarray | None] = []
    faq: list[FaqEntry] = []
    for pk, title, content, _ in documents:
        entry = loaded.get(str(pk)) if str(pk) in fresh else None
        entry = entry or _unstored(str(pk), title, content)
        passages.extend(entry.passages)
        vectors.extend(entry.vectors)
        faq.extend(
            FaqEntry(p.question, p.answer, p.source, q)
            for p, q in zip(entry.passages, entry.question_vectors, strict=True)
            if p.question
        )
    matrix = np.zeros((len(passages), DIM), dtype=np.float32)
    for row, vector in enumerate(vectors):
        if vector is not None:
            matrix[row] = vector
    return KnowledgeSnapshot(revision, tuple(passages), matrix, tuple(faq), MODEL_ID)


def _unstored(document_id: str, title: str, content: str) -> Loaded:
    """A document's chunks cut now, without vectors (its stored ones are missing or older than its text)."""
    passages = [
        Passage("", Source(document_id, title, d.section, d.page), d.position, d.text, d.question, d.answer)
        for d in chunking.chunk(content)
    ]
    return Loaded(passages, [None] * len(passages), [None] * len(passages))
