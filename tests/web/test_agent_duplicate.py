"""Item 14: duplicating an agent (agents.services.agent_duplicate) from its page."""

import pytest

from agents.models import Agent, KnowledgeDocument
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

TOOLS = [
    {
        "name": "book_appointment",
        "description": "Book a slot.",
        "parameters": {"type": "object", "properties": {"date": {"type": "string"}}},
        "webhook_url": "https://crm.example.com/book",
    }
]
TARGETS = [{"name": "Front desk", "destination": "+15550100100", "type": "blind", "description": "Reception"}]


@pytest.fixture
def original(tenant):
    voice = factories.VoiceFactory(tenant=tenant, name="Sarah")
    agent = factories.AgentFactory(
        tenant=tenant,
        name="Front desk",
        description="Answers the main line",
        voice=voice,
        greeting_message="Acme Dental, hello!",
        voicemail_message="Please call us back.",
        tools=TOOLS,
        transfer_targets=TARGETS,
        settings={"llm": {"temperature": 0.3}},
        status=Agent.Status.PAUSED,
    )
    factories.KnowledgeDocumentFactory(agent=agent, title="Hours", content="Q: Open? A: 9 to 5.")
    factories.KnowledgeDocumentFactory(agent=agent, title="Prices", content="Cleaning: $90.", is_active=False)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550000100")
    return agent


def test_duplicating_copies_the_configuration_and_knowledge_but_not_the_numbers(web_client, tenant, owner, original):
    response = web_client.post(f"/agents/{original.pk}/duplicate/")

    copy = Agent.objects.for_tenant(tenant).get(name="Front desk (copy)")
    assert response.status_code == 302 and response["Location"] == f"/agents/{copy.pk}/"
    fields = ("description", "voice_id", "system_prompt", "greeting_message", "voicemail_message", "tools",
              "transfer_targets", "settings", "status")  # fmt: skip
    assert [getattr(copy, f) for f in fields] == [getattr(original, f) for f in fields]
    documents = KnowledgeDocument.objects.for_tenant(tenant).filter(agent=copy).order_by("title")
    assert [(d.title, d.content, d.is_active) for d in documents] == [
        ("Hours", "Q: Open? A: 9 to 5.", True),
        ("Prices", "Cleaning: $90.", False),
    ]
    assert not copy.phone_numbers.exists() and original.phone_numbers.count() == 1
    assert (
        KnowledgeDocument.objects.dangerously_unscoped().filter(agent=original).count() == 2
    )  # the original keeps its own
    audit = AuditLog.objects.for_tenant(tenant).get(action="agent.duplicate")
    assert (audit.actor_user, audit.object_id) == (owner, str(copy.pk))
    assert audit.changes == {"from": str(original.pk), "name": "Front desk (copy)", "documents": 2}
    page = web_client.get(response["Location"]).content.decode()
    assert "“Front desk (copy)” created from “Front desk”" in page


def test_a_second_duplicate_gets_the_next_free_name(web_client, tenant, original):
    web_client.post(f"/agents/{original.pk}/duplicate/")
    web_client.post(f"/agents/{original.pk}/duplicate/")

    names = sorted(Agent.objects.for_tenant(tenant).alive().values_list("name", flat=True))
    assert names == ["Front desk", "Front desk (copy 2)", "Front desk (copy)"]


def test_a_viewer_cannot_duplicate_and_another_tenant_gets_a_404(viewer_client, other_web_client, tenant, original):
    assert viewer_client.post(f"/agents/{original.pk}/duplicate/").status_code == 403
    assert other_web_client.post(f"/agents/{original.pk}/duplicate/").status_code == 404
    assert Agent.objects.for_tenant(tenant).count() == 1


def test_the_agent_page_offers_duplicate_to_writers_only(web_client, viewer_client, original):
    assert 'data-testid="agent-duplicate"' in web_client.get(f"/agents/{original.pk}/").content.decode()
    assert 'data-testid="agent-duplicate"' not in viewer_client.get(f"/agents/{original.pk}/").content.decode()
