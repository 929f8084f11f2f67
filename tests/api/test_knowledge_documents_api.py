"""/v1/agents/{id}/documents: an agent's knowledge base over the API (list, create, read, change, delete)."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from agents import services
from agents.models import KnowledgeDocument
from tenants.models import AuditLog, Membership
from tests import factories
from tests.api.conftest import key_client
from tests.api.test_errors import assert_error

pytestmark = pytest.mark.django_db

FAQ = "Q: When are you open? A: Monday to Friday, 9 to 5."


@pytest.fixture
def agent(tenant):
    return factories.AgentFactory(tenant=tenant, name="Front desk")


@pytest.fixture
def document(agent):
    return factories.KnowledgeDocumentFactory(agent=agent, title="Opening hours", content=FAQ)


def docs_url(agent) -> str:
    return f"/v1/agents/{agent.pk}/documents"


def doc_url(document) -> str:
    return f"/v1/agents/{document.agent_id}/documents/{document.pk}"


def stored(tenant) -> list[tuple]:
    return list(
        KnowledgeDocument.objects.for_tenant(tenant)
        .order_by("title")
        .values_list("agent_id", "title", "content", "source_url", "is_active")
    )


def actions(tenant) -> list[str]:
    """The knowledge-base audit rows (creating the test's API key is audited too)."""
    rows = AuditLog.objects.for_tenant(tenant).filter(action__startswith="knowledge.").order_by("created_at")
    return list(rows.values_list("action", flat=True))


def upload(content: bytes, name="faq.txt", content_type="text/plain") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- create ---------------------------------------------------------------------------------------


def test_a_json_document_is_created_audited_and_listed(api_client, tenant, agent):
    body = {"title": "Opening hours", "content": FAQ, "source_url": "https://example.com/faq"}
    response = api_client.post(docs_url(agent), body, format="json", HTTP_X_REQUEST_ID="req-doc")
    assert response.status_code == 201
    data = response.json()
    document = KnowledgeDocument.objects.for_tenant(tenant).get()
    assert data == {
        "id": str(document.pk),
        "agent_id": str(agent.pk),
        "title": "Opening hours",
        "content": FAQ,
        "source_url": "https://example.com/faq",
        "source_format": "text",
        "is_active": True,
        "status": "pending",
        "progress": 0.0,
        "chunks_total": 1,
        "chunks_embedded": 0,
        "error": "",
        "next_attempt_at": None,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }
    row = AuditLog.objects.for_tenant(tenant).get(action="knowledge.create")
    assert (row.object_id, row.request_id, row.changes) == (
        str(document.pk),
        "req-doc",
        {"agent": str(agent.pk), "title": "Opening hours"},
    )
    assert row.actor_label == f"api key {row.actor_api_key.prefix}"
    assert api_client.get(docs_url(agent)).json()["results"] == [data]


def test_an_uploaded_text_file_becomes_the_documents_content(api_client, tenant, agent):
    response = api_client.post(
        docs_url(agent),
        {"title": "Prices", "file": upload("\ufeffCleaning: $90\nWhitening: $250\n".encode()), "is_active": "false"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert stored(tenant) == [(agent.pk, "Prices", "Cleaning: $90\nWhitening: $250\n", "", False)]


def test_a_markdown_file_sent_without_a_type_is_known_by_its_name(api_client, tenant, agent):
    markdown = upload(
        b"# Parking\n\nFree behind the building.", name="parking.md", content_type="application/octet-stream"
    )
    response = api_client.post(docs_url(agent), {"title": "Parking", "file": markdown}, format="multipart")
    assert response.status_code == 201, response.content
    assert stored(tenant)[0][2] == "# Parking\n\nFree behind the building."


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (upload(b"\x89PNG\r\n", name="logo.png", content_type="image/png"), "Upload plain text"),
        (upload("caf\u00e9".encode("latin-1")), "not UTF-8"),
        (upload(b"  \n\t "), "no text"),
        (upload(b"a\x00b"), "NUL"),
    ],
    ids=["image", "latin-1", "blank", "nul"],
)
def test_an_upload_that_is_not_usable_text_is_refused_and_nothing_is_created(api_client, tenant, agent, file, message):
    response = api_client.post(docs_url(agent), {"title": "Bad", "file": file}, format="multipart")
    error = assert_error(response, 400, "invalid_knowledge_document")
    assert list(error["fields"]) == ["file"]
    assert message in error["fields"]["file"][0]
    assert stored(tenant) == []


def test_an_upload_over_the_size_limits_is_refused(api_client, tenant, agent, monkeypatch):
    monkeypatch.setattr(services, "KNOWLEDGE_MAX_UPLOAD_BYTES", 40)
    monkeypatch.setattr(services, "KNOWLEDGE_MAX_CHARACTERS", 10)
    too_many_bytes = api_client.post(docs_url(agent), {"title": "A", "file": upload(b"x" * 41)}, format="multipart")
    too_many_chars = api_client.post(docs_url(agent), {"title": "B", "file": upload(b"x" * 11)}, format="multipart")
    assert "larger than 40 bytes" in assert_error(too_many_bytes, 400, "invalid_knowledge_document")["message"]
    assert "11 characters" in assert_error(too_many_chars, 400, "invalid_knowledge_document")["message"]
    assert stored(tenant) == []


def test_content_over_the_character_limit_is_refused(api_client, tenant, agent):
    body = {"title": "Everything", "content": "a" * (services.KNOWLEDGE_MAX_CHARACTERS + 1)}
    error = assert_error(api_client.post(docs_url(agent), body, format="json"), 400, "validation_error")
    assert list(error["fields"]) == ["content"]
    assert stored(tenant) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": FAQ}, "title"),
        ({"title": "   ", "content": FAQ}, "title"),
        ({"title": "x" * 256, "content": FAQ}, "title"),
        ({"title": "Hours"}, "content"),
        ({"title": "Hours", "content": " \n\t "}, "content"),
        ({"title": "Hours", "content": FAQ, "source_url": "not a url"}, "source_url"),
        ({"title": "Hours", "content": FAQ, "is_active": "maybe"}, "is_active"),
        ({"title": "Hours", "content": FAQ, "body": "x"}, "body"),
    ],
    ids=["no-title", "blank-title", "long-title", "no-content", "blank-content", "bad-url", "bad-flag", "unknown"],
)
def test_an_invalid_document_is_a_400_naming_the_field_and_nothing_is_created(api_client, tenant, agent, body, field):
    error = assert_error(api_client.post(docs_url(agent), body, format="json"), 400, "validation_error")
    assert list(error["fields"]) == [field]
    assert stored(tenant) == []
    assert actions(tenant) == []


def test_a_second_document_with_the_same_title_is_refused(api_client, tenant, agent, document):
    response = api_client.post(docs_url(agent), {"title": "Opening hours", "content": "Again"}, format="json")
    error = assert_error(response, 400, "knowledge_title_taken")
    assert error["fields"] == {"title": ["This agent already has a document with this title."]}
    assert stored(tenant) == [(agent.pk, "Opening hours", FAQ, "", True)]


def test_the_same_title_is_fine_on_another_agent(api_client, tenant, agent, document):
    other = factories.AgentFactory(tenant=tenant, name="Sales")
    response = api_client.post(docs_url(other), {"title": "Opening hours", "content": "Sales: 8 to 8."}, format="json")
    assert response.status_code == 201


def test_a_retried_create_with_the_same_idempotency_key_makes_one_document(api_client, tenant, agent):
    body = {"title": "Opening hours", "content": FAQ}
    first = api_client.post(docs_url(agent), body, format="json", HTTP_IDEMPOTENCY_KEY="doc-1")
    second = api_client.post(docs_url(agent), body, format="json", HTTP_IDEMPOTENCY_KEY="doc-1")
    assert (first.status_code, second.status_code, second["Idempotent-Replayed"]) == (201, 201, "true")
    assert second.json() == first.json()
    assert len(stored(tenant)) == 1


# --- read, list -----------------------------------------------------------------------------------


def test_a_document_is_read_by_its_id(api_client, agent, document):
    data = api_client.get(doc_url(document)).json()
    assert (data["id"], data["agent_id"], data["title"], data["content"]) == (
        str(document.pk),
        str(agent.pk),
        "Opening hours",
        FAQ,
    )


def test_the_list_is_the_agents_documents_by_title_paginated_like_the_other_lists(api_client, tenant, agent):
    for title in ("Prices", "Address", "Parking"):
        factories.KnowledgeDocumentFactory(agent=agent, title=title)
    factories.KnowledgeDocumentFactory(agent=factories.AgentFactory(tenant=tenant, name="Sales"), title="Other")
    page = api_client.get(docs_url(agent) + "?limit=2").json()
    assert page["count"] == 3
    assert [d["title"] for d in page["results"]] == ["Address", "Parking"]
    assert page["next"].endswith(f"{docs_url(agent)}?limit=2&offset=2")
    rest = api_client.get(page["next"]).json()
    assert [d["title"] for d in rest["results"]] == ["Prices"]
    assert_error(api_client.get(docs_url(agent) + "?limit=0"), 400, "validation_error")


# --- update ---------------------------------------------------------------------------------------


def test_a_patch_changes_only_the_given_fields_and_is_audited(api_client, tenant, agent, document):
    response = api_client.patch(doc_url(document), {"title": "Hours", "is_active": False}, format="json")
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["is_active"]) == ("Hours", False)
    assert stored(tenant) == [(agent.pk, "Hours", FAQ, "", False)]
    row = AuditLog.objects.for_tenant(tenant).get(action="knowledge.update")
    assert row.changes == {"agent": str(agent.pk), "title": "Hours", "fields": ["is_active", "title"]}


def test_a_patch_that_changes_nothing_leaves_no_audit_row(api_client, tenant, document):
    response = api_client.patch(doc_url(document), {"title": "Opening hours"}, format="json")
    assert response.status_code == 200
    assert actions(tenant) == []


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"content": ""}, "content", "validation_error"),
        ({"title": " "}, "title", "validation_error"),
        ({"title": "Prices"}, "title", "knowledge_title_taken"),
        ({"colour": "blue"}, "colour", "validation_error"),
    ],
)
def test_an_invalid_patch_changes_nothing(api_client, tenant, agent, document, body, field, code):
    factories.KnowledgeDocumentFactory(agent=agent, title="Prices", content="Cleaning: $90")
    before = stored(tenant)
    error = assert_error(api_client.patch(doc_url(document), body, format="json"), 400, code)
    assert list(error["fields"]) == [field]
    assert stored(tenant) == before
    assert actions(tenant) == []


# --- delete ---------------------------------------------------------------------------------------


def test_a_document_is_deleted_and_the_deletion_audited(api_client, tenant, document):
    response = api_client.delete(doc_url(document))
    assert response.status_code == 204
    assert stored(tenant) == []
    assert actions(tenant) == ["knowledge.delete"]
    assert_error(api_client.get(doc_url(document)), 404, "resource_missing")


# --- who may ------------------------------------------------------------------------------------


def test_another_tenants_agent_and_documents_are_404_like_missing_ones(api_client, tenant, agent, other_tenant):
    theirs = factories.KnowledgeDocumentFactory(agent=factories.AgentFactory(tenant=other_tenant))
    under_our_agent = f"{docs_url(agent)}/{theirs.pk}"
    before = stored(other_tenant)
    missing_agent = f"/v1/agents/{uuid.uuid4()}/documents"
    pairs = [
        (api_client.get(docs_url(theirs.agent)), api_client.get(missing_agent)),
        (
            api_client.post(docs_url(theirs.agent), {"title": "Mine", "content": "x"}, format="json"),
            api_client.post(missing_agent, {"title": "Mine", "content": "x"}, format="json"),
        ),
        (api_client.get(doc_url(theirs)), api_client.get(f"{missing_agent}/{uuid.uuid4()}")),
        (api_client.patch(doc_url(theirs), {"title": "Stolen"}, format="json"), None),
        (api_client.delete(doc_url(theirs)), None),
        (api_client.get(under_our_agent), None),
        (api_client.patch(under_our_agent, {"title": "Stolen"}, format="json"), None),
        (api_client.delete(under_our_agent), None),
    ]
    for foreign, missing in pairs:
        assert_error(foreign, 404, "resource_missing")
        if missing is not None:
            assert foreign.json() == missing.json()
    assert stored(other_tenant) == before
    assert stored(tenant) == []


def test_a_document_is_only_reached_through_its_own_agent(api_client, tenant, agent, document):
    other = factories.AgentFactory(tenant=tenant, name="Sales")
    wrong = f"/v1/agents/{other.pk}/documents/{document.pk}"
    assert_error(api_client.get(wrong), 404, "resource_missing")
    assert_error(api_client.delete(wrong), 404, "resource_missing")
    assert stored(tenant) == [(agent.pk, "Opening hours", FAQ, "", True)]


def test_a_deleted_agents_documents_are_gone_from_the_api(api_client, agent, document):
    assert api_client.delete(f"/v1/agents/{agent.pk}").status_code == 204
    assert_error(api_client.get(docs_url(agent)), 404, "resource_missing")
    assert_error(api_client.get(doc_url(document)), 404, "resource_missing")


def test_a_read_only_key_or_a_viewer_reads_but_cannot_write(tenant, agent, document):
    viewer = factories.UserFactory()
    Membership.objects.create(tenant=tenant, user=viewer, role=Membership.Role.VIEWER)
    session = Client()
    session.force_login(viewer)
    before = stored(tenant)
    for client in (key_client(tenant, ["read"]), session):
        assert client.get(docs_url(agent)).status_code == 200
        assert client.get(doc_url(document)).status_code == 200
        writes = [
            client.post(docs_url(agent), {"title": "New", "content": "x"}, content_type="application/json"),
            client.patch(doc_url(document), {"title": "Changed"}, content_type="application/json"),
            client.delete(doc_url(document)),
        ]
        for response in writes:
            assert_error(response, 403, "insufficient_permissions")
    assert stored(tenant) == before
    assert actions(tenant) == []


def test_a_member_session_may_write(tenant, agent):
    member = factories.UserFactory()
    Membership.objects.create(tenant=tenant, user=member, role=Membership.Role.MEMBER)
    session = Client()
    session.force_login(member)
    response = session.post(docs_url(agent), {"title": "Hours", "content": FAQ}, content_type="application/json")
    assert response.status_code == 201
    row = AuditLog.objects.for_tenant(tenant).get(action="knowledge.create")
    assert row.actor_user == member
