"""An agent's knowledge for its calls: tenant- and agent-scoped, cached per revision, searchable by meaning."""

import numpy as np
import pytest

from agents import selectors, services, tasks
from agents.knowledge import runner, snapshot
from agents.knowledge.search import Source
from agents.models import KnowledgeDocument
from core import embeddings
from tests import factories

pytestmark = pytest.mark.django_db

FAQ = "Q: Where are you? A: 12 Harbour Street.\nQ: When are you open? A: Monday to Friday, 9 to 5."
PROSE = "# Parking\n\nFree parking behind the building, entrance from Mill Lane."


def embedded(agent, title: str, content: str) -> KnowledgeDocument:
    document = services.knowledge_document_create(agent=agent, title=title, content=content)
    assert tasks.knowledge_embed(str(agent.tenant_id), str(document.pk)) == "ready"
    return document


def load(agent):
    return selectors.knowledge_snapshot(tenant_id=agent.tenant_id, agent_id=agent.pk)


def test_a_snapshot_holds_the_agents_active_documents_with_their_vectors_and_faq(agent, queued):
    faq = embedded(agent, "FAQ", FAQ)
    embedded(agent, "Directions", PROSE)
    services.knowledge_document_create(
        agent=agent, title="Old prices", content="Cleaning: 80 dollars.", is_active=False
    )

    knowledge = load(agent)

    assert [(p.source.title, p.source.section, p.text) for p in knowledge.passages] == [
        ("Directions", "Parking", "Free parking behind the building, entrance from Mill Lane."),
        ("FAQ", "", "Q: Where are you? A: 12 Harbour Street."),
        ("FAQ", "", "Q: When are you open? A: Monday to Friday, 9 to 5."),
    ]
    assert knowledge.matrix.shape == (3, embeddings.DIM) and knowledge.matrix.dtype == np.float32
    assert knowledge.embedded == 3 and knowledge.model_id == embeddings.MODEL_ID
    assert [(e.question, e.answer, e.source) for e in knowledge.faq] == [
        ("Where are you?", "12 Harbour Street.", Source(str(faq.pk), "FAQ")),
        ("When are you open?", "Monday to Friday, 9 to 5.", Source(str(faq.pk), "FAQ")),
    ]
    assert np.allclose(knowledge.faq[0].question_vector, embeddings.query("Where are you?"), atol=2e-3)


def test_where_are_you_located_finds_the_address_by_meaning(agent, queued):
    embedded(agent, "FAQ", FAQ)
    embedded(agent, "Directions", PROSE)

    hits = load(agent).search("where are you located", embeddings.query("where are you located"), k=3)

    assert hits[0].text == "Q: Where are you? A: 12 Harbour Street."
    assert hits[0].source.title == "FAQ" and hits[0].similarity > 0.81


def test_another_tenant_or_another_agent_gets_nothing_of_it(agent, other_tenant, queued):
    embedded(agent, "FAQ", FAQ)
    other_agent = factories.AgentFactory(tenant=agent.tenant)

    assert selectors.knowledge_snapshot(tenant_id=other_tenant.pk, agent_id=agent.pk).passages == ()
    assert load(other_agent).passages == ()
    assert selectors.knowledge_snapshot(tenant_id=other_tenant.pk, agent_id=agent.pk).search("where") == []


def test_calls_of_one_agent_share_one_snapshot_until_a_document_changes(agent, queued, django_assert_num_queries):
    document = embedded(agent, "FAQ", FAQ)
    first = load(agent)

    with django_assert_num_queries(1):  # the revision only
        assert load(agent) is first

    services.knowledge_document_update(document=document, is_active=False)
    assert load(agent) is not first and load(agent).passages == ()

    services.knowledge_document_update(document=document, is_active=True)
    current = load(agent)
    services.knowledge_document_delete(document=document)
    assert load(agent) is not current and load(agent).passages == ()


def test_a_pending_document_is_searchable_by_its_words_before_it_is_embedded(agent, queued):
    services.knowledge_document_create(agent=agent, title="FAQ", content=FAQ)

    knowledge = load(agent)
    hits = knowledge.search("where are you", embeddings.query("where are you"), k=3)

    assert knowledge.embedded == 0 and [e.question_vector for e in knowledge.faq] == [None, None]
    assert (hits[0].text, hits[0].similarity) == ("Q: Where are you? A: 12 Harbour Street.", None)


def test_a_document_whose_chunks_are_older_than_its_text_is_chunked_for_the_snapshot(agent, queued):
    document = embedded(agent, "FAQ", FAQ)
    KnowledgeDocument.objects.for_tenant(agent.tenant).filter(pk=document.pk).update(content="Q: Parking? A: Free.")
    factories.KnowledgeDocumentFactory(agent=agent, title="Never chunked", content="Q: Cash? A: Yes.")

    knowledge = load(agent)

    assert [(p.id, p.text) for p in knowledge.passages] == [("", "Q: Parking? A: Free."), ("", "Q: Cash? A: Yes.")]
    assert knowledge.embedded == 0


def test_the_cache_keeps_the_most_recent_agents(agent, queued, monkeypatch):
    monkeypatch.setattr(snapshot, "CACHE_SIZE", 1)
    other = factories.AgentFactory(tenant=agent.tenant)
    first = load(agent)

    load(other)

    assert load(agent) is not first


def test_the_cache_holds_a_bounded_number_of_passages_but_always_the_latest_snapshot(agent, queued, monkeypatch):
    monkeypatch.setattr(snapshot, "CACHE_PASSAGES", 2)
    services.knowledge_document_create(agent=agent, title="FAQ", content=FAQ)  # two passages
    other = factories.AgentFactory(tenant=agent.tenant)
    services.knowledge_document_create(agent=other, title="FAQ", content=FAQ + "\nQ: Cash? A: Yes.")  # three
    first = load(agent)
    assert load(agent) is first

    large = load(other)

    assert load(other) is large and load(agent) is not first


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_background_runner_embeds_a_saved_document(tenant, django_capture_on_commit_callbacks):
    agent = factories.AgentFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        document = services.knowledge_document_create(agent=agent, title="FAQ", content=FAQ)

    assert runner.RUNNER.wait_idle(timeout=120)

    document.refresh_from_db()
    assert (document.status, document.chunks_embedded) == (KnowledgeDocument.Status.READY, 2)
    assert load(agent).embedded == 2
