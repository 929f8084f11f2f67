"""The agent pages' knowledge base: each document's embedding status, its polling JSON, adding documents of
every kind from the dashboard, and trying a failed one again."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.knowledge import formats
from agents.models import KnowledgeDocument
from tests import factories
from tests.knowledge import files
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def web_client(owner):
    return signed_in(owner)


@pytest.fixture
def other_web_client(other_tenant):
    user = factories.UserFactory(username="bob")
    factories.MembershipFactory(tenant=other_tenant, user=user, role="owner")
    return signed_in(user)


@pytest.fixture
def viewer_client(tenant):
    user = factories.UserFactory(username="vera")
    factories.MembershipFactory(tenant=tenant, user=user, role="viewer")
    return signed_in(user)


@pytest.fixture
def documents(agent):
    return {
        "ready": factories.KnowledgeDocumentFactory(
            agent=agent, title="Address", status="ready", chunks_total=4, chunks_embedded=4
        ),
        "embedding": factories.KnowledgeDocumentFactory(
            agent=agent, title="Brochure", status="processing", chunks_total=40, chunks_embedded=10
        ),
        "failed": factories.KnowledgeDocumentFactory(
            agent=agent, title="Catalogue", status="failed", error="Embedding failed: ValueError: bad shape"
        ),
    }


def status_url(agent) -> str:
    return f"/agents/{agent.pk}/documents/status/"


def test_the_agent_page_shows_each_documents_status_progress_and_failure(web_client, agent, documents):
    response = web_client.get(f"/agents/{agent.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-knowledge-status="{status_url(agent)}" data-poll-seconds="2"' in page
    assert [status for _, status in response.context["documents"]] == [
        {"id": str(documents["ready"].pk), "status": "ready", "label": "Ready", "tone": "ok", "percent": 100, "done": 4,
         "total": 4, "detail": "4 passages, searchable by meaning.", "retryable": False, "poll_seconds": 0},
        {"id": str(documents["embedding"].pk), "status": "processing", "label": "Embedding", "tone": "live",
         "percent": 25, "done": 10, "total": 40, "detail": "10 of 40 passages embedded.", "retryable": False,
         "poll_seconds": 2},
        {"id": str(documents["failed"].pk), "status": "failed", "label": "Failed", "tone": "failed", "percent": 0,
         "done": 0, "total": 0, "detail": "Embedding failed: ValueError: bad shape", "retryable": True,
         "poll_seconds": 0},
    ]  # fmt: skip
    assert '<progress value="25" max="100" data-role="progress" aria-label="Embedding progress">25%</progress>' in page
    assert "Embedding failed: ValueError: bad shape" in page
    assert page.count('data-testid="document-retry"') == 3 and page.count('data-role="retry" hidden') == 2
    assert "agents/knowledge.js" in page


def test_the_edit_page_lists_the_same_statuses_in_its_table(web_client, agent, documents):
    page = web_client.get(f"/agents/{agent.pk}/edit/").content.decode()

    assert page.count('data-testid="document-status"') == 3
    assert "10 of 40 passages embedded." in page and 'enctype="multipart/form-data"' in page


def test_a_page_with_nothing_left_to_embed_does_not_poll(web_client, agent, documents):
    documents["embedding"].delete()

    page = web_client.get(f"/agents/{agent.pk}/").content.decode()

    assert 'data-poll-seconds="0"' in page


def test_the_status_json_has_every_documents_status_without_its_text(web_client, agent, documents):
    body = web_client.get(status_url(agent)).json()

    assert [(d["label"], d["percent"]) for d in body["documents"]] == [("Ready", 100), ("Embedding", 25), ("Failed", 0)]
    assert body["poll_seconds"] == 2
    assert all("content" not in d for d in body["documents"])


def test_a_document_waiting_to_retry_says_why_and_is_polled_slowly(web_client, agent):
    factories.KnowledgeDocumentFactory(
        agent=agent, status="pending", error="The embedding engine is unavailable (x). Trying again at 14:05 UTC."
    )

    body = web_client.get(status_url(agent)).json()

    assert [(d["label"], d["tone"], d["detail"], d["retryable"]) for d in body["documents"]] == [
        ("Retrying", "attention", "The embedding engine is unavailable (x). Trying again at 14:05 UTC.", True)
    ]
    assert body["poll_seconds"] == 30


def test_another_tenant_gets_a_404_for_the_status_and_the_retry(other_web_client, agent, documents, queued):
    failed = documents["failed"]

    assert other_web_client.get(status_url(agent)).status_code == 404
    assert other_web_client.post(f"/agents/{agent.pk}/documents/{failed.pk}/retry/").status_code == 404

    failed.refresh_from_db()
    assert (failed.status, queued) == ("failed", [])


def test_a_failed_document_is_tried_again_from_the_page(web_client, agent, documents, queued):
    failed = documents["failed"]

    response = web_client.post(f"/agents/{agent.pk}/documents/{failed.pk}/retry/", {"back": "edit"})

    assert (response.status_code, response["Location"]) == (302, f"/agents/{agent.pk}/edit/#knowledge")
    failed.refresh_from_db()
    assert (failed.status, failed.error) == ("pending", "")


def test_a_ready_document_is_not_tried_again(web_client, agent, documents, queued):
    response = web_client.post(f"/agents/{agent.pk}/documents/{documents['ready'].pk}/retry/", follow=True)

    assert [m.message for m in response.context["messages"]] == ["The document is ready: there is nothing to retry."]
    documents["ready"].refresh_from_db()
    assert documents["ready"].status == "ready"


def test_a_viewer_sees_the_statuses_but_cannot_retry(viewer_client, agent, documents, queued):
    failed = documents["failed"]

    assert viewer_client.get(status_url(agent)).status_code == 200
    assert 'data-testid="document-retry"' not in viewer_client.get(f"/agents/{agent.pk}/").content.decode()
    assert viewer_client.post(f"/agents/{agent.pk}/documents/{failed.pk}/retry/").status_code == 403
    failed.refresh_from_db()
    assert failed.status == "failed"


def post_document(client, agent, **fields):
    data = {f"document-{name}": value for name, value in fields.items()}
    return client.post(f"/agents/{agent.pk}/documents/", data)


def test_a_pdf_uploaded_from_the_page_becomes_a_document(web_client, agent, queued):
    pdf = SimpleUploadedFile("faq.pdf", files.pdf(["Where are you? 12 Harbour Street."]), content_type=formats.PDF)

    response = post_document(web_client, agent, title="Contact", file=pdf)

    assert response.status_code == 302
    document = KnowledgeDocument.objects.for_tenant(agent.tenant).get()
    assert (document.content, document.source_format, document.status) == (
        "Where are you? 12 Harbour Street.",
        "pdf",
        "pending",
    )


def test_a_web_page_imported_from_the_page_becomes_a_document(web_client, agent, queued, site):
    site.page("/contact", b"<p>Where are you? 12 Harbour Street.</p>")

    response = post_document(web_client, agent, title="Contact", url=site.url("/contact"))

    assert response.status_code == 302
    document = KnowledgeDocument.objects.for_tenant(agent.tenant).get()
    assert (document.content, document.source_url, document.source_format) == (
        "Where are you? 12 Harbour Street.",
        site.url("/contact"),
        "html",
    )


def test_a_hostile_file_is_shown_as_an_error_on_the_file_field(web_client, agent, queued):
    bomb = SimpleUploadedFile("x.docx", files.zip_bomb_docx(), content_type=formats.DOCX)

    response = post_document(web_client, agent, title="Bad", file=bomb)

    assert response.status_code == 400
    assert response.context["document_form"].errors == {
        "file": ["The Word document unpacks to far more than its size (a zip bomb?); it is not read."]
    }
    assert KnowledgeDocument.objects.for_tenant(agent.tenant).count() == 0


def test_giving_text_and_a_file_at_once_is_refused(web_client, agent, queued):
    text = SimpleUploadedFile("faq.txt", b"Q: Where? A: Here.", content_type="text/plain")

    response = post_document(web_client, agent, title="Both", content="Typed too", file=text)

    assert response.status_code == 400
    assert response.context["document_form"].errors == {
        "__all__": ["Type the text, upload a file or give a web page's address: one of the three."]
    }
