"""/v1/agents/{id}/documents with every format, web pages, embedding status and retries, hostile files."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents import tasks
from agents.knowledge import formats
from agents.models import KnowledgeChunk, KnowledgeDocument
from tests import factories
from tests.api.test_errors import assert_error
from tests.knowledge import files

pytestmark = pytest.mark.django_db

ADDRESS = "Where are you? 12 Harbour Street."
UPLOADS = {
    "txt": ("faq.txt", "text/plain", b"Q: Where are you? A: 12 Harbour Street.", "text"),
    "md": ("faq.md", "text/markdown", b"# Contact\n\nQ: Where are you? A: 12 Harbour Street.", "markdown"),
    "html": ("faq.html", "text/html", b"<h1>Contact</h1><p>Where are you? 12 Harbour Street.</p>", "html"),
    "pdf": ("faq.pdf", formats.PDF, files.pdf([ADDRESS]), "pdf"),
    "docx": ("faq.docx", formats.DOCX, files.docx_file(("h1", "Contact"), ("p", ADDRESS)), "docx"),
}
EXTRACTED = {
    "txt": "Q: Where are you? A: 12 Harbour Street.",
    "md": "# Contact\n\nQ: Where are you? A: 12 Harbour Street.",
    "html": "# Contact\n\nWhere are you? 12 Harbour Street.",
    "pdf": ADDRESS,
    "docx": "# Contact\n\nWhere are you? 12 Harbour Street.",
}


def docs_url(agent) -> str:
    return f"/v1/agents/{agent.pk}/documents"


def upload(name: str, content_type: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored(tenant) -> list[tuple]:
    return list(KnowledgeDocument.objects.for_tenant(tenant).values_list("title", "status"))


@pytest.mark.parametrize("kind", list(UPLOADS))
def test_an_upload_of_each_format_becomes_the_documents_text_and_waits_to_be_embedded(
    api_client, tenant, agent, queued, kind
):
    name, content_type, data, source_format = UPLOADS[kind]

    response = api_client.post(
        docs_url(agent), {"title": "Contact", "file": upload(name, content_type, data)}, format="multipart"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["content"], body["source_format"], body["status"], body["progress"], body["error"]) == (
        EXTRACTED[kind],
        source_format,
        "pending",
        0.0,
        "",
    )
    assert body["chunks_total"] == KnowledgeChunk.objects.for_tenant(tenant).count() >= 1


def test_status_and_progress_show_once_the_document_is_embedded(api_client, tenant, agent, queued):
    created = api_client.post(docs_url(agent), {"title": "FAQ", "content": "Q: Where? A: Here."}, format="json").json()

    tasks.knowledge_embed(str(tenant.pk), created["id"])

    body = api_client.get(f"{docs_url(agent)}/{created['id']}").json()
    assert {k: body[k] for k in ("status", "progress", "chunks_total", "chunks_embedded", "error")} == {
        "status": "ready",
        "progress": 1.0,
        "chunks_total": 1,
        "chunks_embedded": 1,
        "error": "",
    }


def test_a_web_page_becomes_a_document_with_its_address_as_source(api_client, tenant, agent, queued, site):
    site.page("/contact", b"<h1>Contact</h1><p>Where are you? 12 Harbour Street.</p>")

    response = api_client.post(docs_url(agent), {"title": "Contact", "url": site.url("/contact")}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["content"], body["source_url"], body["source_format"]) == (
        "# Contact\n\nWhere are you? 12 Harbour Street.",
        site.url("/contact"),
        "html",
    )


def test_a_patch_with_a_url_fetches_the_page_again_and_re_embeds(api_client, tenant, agent, queued, site):
    document = factories.KnowledgeDocumentFactory(agent=agent, title="Contact", status="ready")
    site.page("/v2", b"<p>We moved to 40 Quay Road.</p>")

    response = api_client.patch(f"{docs_url(agent)}/{document.pk}", {"url": site.url("/v2")}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["content"], response.json()["status"]) == ("We moved to 40 Quay Road.", "pending")


def test_a_private_address_is_refused_and_nothing_is_created(api_client, tenant, agent, queued, settings, site):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    site.page("/contact", b"<p>secret</p>")

    response = api_client.post(docs_url(agent), {"title": "Contact", "url": site.url("/contact")}, format="json")

    error = assert_error(response, 400, "invalid_knowledge_document")
    assert list(error["fields"]) == ["url"] and "private, loopback or link-local" in error["message"]
    assert (stored(tenant), site.hits) == ([], [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "Contact", "content": "x", "url": "https://example.com/"}, "content"),
        ({"title": "Contact", "url": "not a url"}, "url"),
        ({"title": "Contact", "url": "ftp://example.com/faq"}, "url"),
    ],
    ids=["both", "not-a-url", "ftp"],
)
def test_content_and_url_together_or_a_bad_url_are_refused(api_client, tenant, agent, queued, body, field):
    response = api_client.post(docs_url(agent), body, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert stored(tenant) == []


HOSTILE = {
    "corrupt-pdf": ("x.pdf", formats.PDF, b"%PDF-1.7\n1 0 obj <<>>\n%%EOF", "The PDF could not be read"),
    "encrypted-pdf": ("x.pdf", formats.PDF, files.pdf(["Secret"], password="pw"), "protected by a password"),
    "zip-bomb-docx": ("x.docx", formats.DOCX, files.zip_bomb_docx(), "zip bomb"),
    "entity-bomb-docx": ("x.docx", formats.DOCX, files.billion_laughs_docx(), ""),
    "not-a-docx": ("x.docx", formats.DOCX, b"PK\x03\x04garbage", "The Word document could not be read"),
    "wrong-type": ("x.exe", "application/x-msdownload", b"MZ\x90\x00", "Upload plain text"),
    "not-utf8": ("x.txt", "text/plain", "Café".encode("cp1252"), "not UTF-8"),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_file_is_a_clear_400_and_nothing_is_created(api_client, tenant, agent, queued, kind):
    name, content_type, data, message = HOSTILE[kind]

    response = api_client.post(
        docs_url(agent), {"title": "Bad", "file": upload(name, content_type, data)}, format="multipart"
    )

    error = assert_error(response, 400, "invalid_knowledge_document")
    assert list(error["fields"]) == ["file"] and message in error["message"]
    assert (stored(tenant), KnowledgeChunk.objects.for_tenant(tenant).count(), queued) == ([], 0, [])


def test_a_file_over_the_size_limit_is_refused(api_client, tenant, agent, queued, monkeypatch):
    monkeypatch.setattr(formats, "MAX_FILE_BYTES", 500)

    response = api_client.post(
        docs_url(agent),
        {"title": "Big", "file": upload("x.pdf", formats.PDF, files.pdf(["x" * 80] * 20))},
        format="multipart",
    )

    assert assert_error(response, 400, "invalid_knowledge_document")["message"] == "The file is larger than 500 bytes."
    assert stored(tenant) == []


def test_a_failed_document_is_retried_through_the_api(
    api_client, tenant, agent, queued, django_capture_on_commit_callbacks
):
    document = factories.KnowledgeDocumentFactory(agent=agent, status="failed", error="Embedding failed: boom")

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"{docs_url(agent)}/{document.pk}/retry")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["error"], response.json()["chunks_total"]) == ("pending", "", 1)
    assert queued == [(str(tenant.pk), str(document.pk))]


def test_a_ready_document_has_nothing_to_retry(api_client, tenant, agent, queued):
    document = factories.KnowledgeDocumentFactory(agent=agent, status="ready")

    error = assert_error(api_client.post(f"{docs_url(agent)}/{document.pk}/retry"), 409, "knowledge_not_retryable")

    assert error["message"] == "The document is ready: there is nothing to retry."
    assert stored(tenant) == [(document.title, "ready")] and queued == []


def test_another_tenant_cannot_retry_or_read_the_status_of_a_document(other_api_client, tenant, agent, queued):
    document = factories.KnowledgeDocumentFactory(agent=agent, status="failed", error="Embedding failed: boom")

    assert_error(other_api_client.post(f"{docs_url(agent)}/{document.pk}/retry"), 404, "resource_missing")
    assert_error(other_api_client.get(f"{docs_url(agent)}/{document.pk}"), 404, "resource_missing")

    document.refresh_from_db()
    assert (document.status, document.error, queued) == ("failed", "Embedding failed: boom", [])


def test_deleting_a_document_through_the_api_removes_its_chunks(api_client, tenant, agent, queued):
    created = api_client.post(docs_url(agent), {"title": "FAQ", "content": "Q: Where? A: Here."}, format="json").json()

    assert api_client.delete(f"{docs_url(agent)}/{created['id']}").status_code == 204

    assert KnowledgeChunk.objects.for_tenant(tenant).count() == 0


def test_the_next_try_of_a_waiting_document_is_shown(api_client, agent, queued):
    document = factories.KnowledgeDocumentFactory(agent=agent, status="pending")
    embedding_due = document.created_at

    KnowledgeDocument.objects.for_tenant(agent.tenant).filter(pk=document.pk).update(embed_next_at=embedding_due)
    body = api_client.get(f"{docs_url(agent)}/{document.pk}").json()

    assert body["next_attempt_at"] == embedding_due.isoformat().replace("+00:00", "Z")
