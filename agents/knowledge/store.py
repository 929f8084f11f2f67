"""Where chunks and their vectors live: one small interface, and the portable default behind it.

The default keeps each vector in a column of its KnowledgeChunk (float16 bytes, `core.embeddings.to_bytes`)
and ranks in process (agents.knowledge.search), which works on SQLite and PostgreSQL alike and is fast at
an agent's scale (bench/knowledge.py; docs/knowledge.md#storage says where pgvector would take over). A
pgvector store would implement the same four methods with an indexed `vector` column and rank in SQL.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.db.models import Q
from django.utils import timezone

from agents.knowledge.chunking import Draft
from agents.knowledge.search import DIM, Passage, Source
from agents.models import KnowledgeChunk, KnowledgeDocument


@dataclass(frozen=True)
class Loaded:
    """One document's chunks as search needs them: passages, their vectors and FAQ question vectors."""

    passages: list[Passage]
    vectors: list[np.ndarray | None]
    question_vectors: list[np.ndarray | None]


class VectorStore(Protocol):
    def replace(self, document: KnowledgeDocument, drafts: Sequence[Draft]) -> None:
        """The document's chunks become `drafts`, none embedded yet."""

    def counts(self, document: KnowledgeDocument, *, model_id: str) -> tuple[int, int]:
        """(the document's chunks, those with a vector of `model_id`)."""

    def unembedded(self, document: KnowledgeDocument, *, model_id: str, limit: int) -> list[KnowledgeChunk]:
        """Up to `limit` of the document's chunks without a vector of `model_id`, in order."""

    def write_vectors(
        self,
        chunks: Sequence[KnowledgeChunk],
        vectors: np.ndarray,
        question_vectors: dict[int, np.ndarray],
        *,
        model_id: str,
    ) -> None:
        """Store each chunk's vector (row i of `vectors`) and, by index, its FAQ question's vector."""

    def load(self, *, tenant_id, agent_id, documents: dict[str, str], model_id: str) -> dict[str, Loaded]:
        """The chunks of the given documents ({id: title}) of the tenant's agent, by document id."""


def _vector(data: bytes | memoryview | None) -> np.ndarray | None:
    if not data:
        return None
    row = np.frombuffer(bytes(data), dtype=np.float16)
    return row.astype(np.float32) if row.size == DIM else None


class DatabaseStore:
    """Vectors in KnowledgeChunk's binary columns; ranking happens in process."""

    def replace(self, document: KnowledgeDocument, drafts: Sequence[Draft]) -> None:
        KnowledgeChunk.objects.for_tenant(document.tenant_id).filter(document=document).delete()
        KnowledgeChunk.objects.bulk_create(
            KnowledgeChunk(
                tenant_id=document.tenant_id,
                agent_id=document.agent_id,
                document=document,
                position=draft.position,
                text=draft.text,
                section=draft.section,
                page=draft.page,
                question=draft.question,
                answer=draft.answer,
            )
            for draft in drafts
        )

    def counts(self, document: KnowledgeDocument, *, model_id: str) -> tuple[int, int]:
        chunks = KnowledgeChunk.objects.for_tenant(document.tenant_id).filter(document=document)
        return chunks.count(), chunks.filter(vector__isnull=False, model_id=model_id).count()

    def unembedded(self, document: KnowledgeDocument, *, model_id: str, limit: int) -> list[KnowledgeChunk]:
        missing = KnowledgeChunk.objects.for_tenant(document.tenant_id).filter(
            Q(vector__isnull=True) | ~Q(model_id=model_id), document=document
        )
        return list(missing.order_by("position").defer("vector", "question_vector")[:limit])

    def write_vectors(
        self,
        chunks: Sequence[KnowledgeChunk],
        vectors: np.ndarray,
        question_vectors: dict[int, np.ndarray],
        *,
        model_id: str,
    ) -> None:
        from core.embeddings import to_bytes

        now = timezone.now()
        for index, chunk in enumerate(chunks):
            chunk.vector = to_bytes(vectors[index : index + 1])
            question = question_vectors.get(index)
            chunk.question_vector = to_bytes(question.reshape(1, DIM)) if question is not None else None
            chunk.model_id, chunk.updated_at = model_id, now
        KnowledgeChunk.objects.bulk_update(chunks, ["vector", "question_vector", "model_id", "updated_at"])

    def load(self, *, tenant_id, agent_id, documents: dict[str, str], model_id: str) -> dict[str, Loaded]:
        rows = (
            KnowledgeChunk.objects.for_tenant(tenant_id)
            .filter(agent_id=agent_id, document_id__in=list(documents))
            .order_by("document_id", "position")
            .values_list(
                "id", "document_id", "position", "text", "section", "page", "question", "answer", "vector",
                "question_vector", "model_id",
            )
        )  # fmt: skip
        loaded: dict[str, Loaded] = {}
        for pk, document_id, position, text, section, page, question, answer, vector, qvector, chunk_model in rows:
            document_id = str(document_id)
            source = Source(document_id, documents[document_id], section, page)
            entry = loaded.setdefault(document_id, Loaded([], [], []))
            entry.passages.append(Passage(str(pk), source, position, text, question, answer))
            current = chunk_model == model_id
            entry.vectors.append(_vector(vector) if current else None)
            entry.question_vectors.append(_vector(qvector) if current else None)
        return loaded


DEFAULT = DatabaseStore()


def store() -> VectorStore:
    """The platform's vector store."""
    return DEFAULT
