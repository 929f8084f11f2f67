"""Retrieval by meaning, measured: "where are you located" finds the address from every format, and the
labelled set of tests/knowledge/corpus.py stays at the recall it was tuned to (docs/knowledge.md#retrieval)."""

import numpy as np
import pytest

from agents import selectors, tasks
from agents.knowledge import chunking
from agents.knowledge.embedding import passage_text
from agents.knowledge.search import HybridIndex, Passage, Source
from core import embeddings
from tests.knowledge.corpus import DOCUMENTS, QUESTIONS
from tests.knowledge.test_knowledge_api import UPLOADS, upload

DISTRACTORS = (
    "Q: When are you open? A: Monday to Friday 8 am to 6 pm.\n"
    "Q: Do you take insurance? A: We accept Delta Dental and Cigna.\n"
    "Q: Is there parking? A: Free parking behind the building.\n"
)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["txt", "md", "pdf", "docx", "html"])
def test_where_are_you_located_finds_the_address_from_each_format(api_client, tenant, agent, queued, kind):
    name, content_type, data, _ = UPLOADS[kind]
    created = [
        api_client.post(f"/v1/agents/{agent.pk}/documents", body, format=form).json()["id"]
        for body, form in (
            ({"title": "Contact", "file": upload(name, content_type, data)}, "multipart"),
            ({"title": "Practice FAQ", "content": DISTRACTORS}, "json"),
        )
    ]
    for document_id in created:
        assert tasks.knowledge_embed(str(tenant.pk), document_id) == "ready"

    knowledge = selectors.knowledge_snapshot(tenant_id=tenant.pk, agent_id=agent.pk)
    hits = knowledge.search("where are you located", embeddings.query("where are you located"), k=3)

    assert "Where are you? " in hits[0].text and "12 Harbour Street" in hits[0].text
    assert hits[0].source.title == "Contact"


def test_the_labelled_questions_are_answered_at_the_measured_recall():
    passages = [
        Passage(str(n), Source(str(i), title, d.section, d.page), d.position, d.text, d.question, d.answer)
        for i, (title, content) in enumerate(DOCUMENTS)
        for n, d in enumerate(chunking.chunk(content))
    ]
    model = embeddings.embedder()
    matrix = model.passages([passage_text(p.source.title, p.source.section, p.text) for p in passages])
    index = HybridIndex(passages, matrix)
    vectors = model.queries([question for question, _ in QUESTIONS])

    first = within_three = nothing = 0
    for (question, phrase), vector in zip(QUESTIONS, vectors, strict=True):
        found = [hit.text for hit in index.search(question, np.asarray(vector), k=3)]
        if phrase is None:
            nothing += not found
        else:
            first += bool(found) and phrase in found[0]
            within_three += any(phrase in text for text in found)

    answerable = sum(phrase is not None for _, phrase in QUESTIONS)
    unanswerable = len(QUESTIONS) - answerable
    # Measured when tuned (bench/knowledge.py prints them): 31 and 32 of 33, and 9 of 11 unrelated questions
    # finding nothing; the floors leave room for a slip or two.
    measured = {"first": first, "within three": within_three, "nothing": nothing}
    assert first >= answerable - 3, measured
    assert within_three >= answerable - 2, measured
    assert nothing >= unanswerable - 3, measured
