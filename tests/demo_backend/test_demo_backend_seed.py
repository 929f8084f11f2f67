"""seed_demo installs the demo's tools (calling the demo backend) and FAQ, and a re-run brings an older demo up to
date without undoing what its user changed."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent, KnowledgeDocument
from tenants.models import AuditLog, Tenant
from voiceapp.demo_backend import content

pytestmark = pytest.mark.django_db

SEEDED = ["check_availability", "book_appointment", "cancel_appointment", "reschedule_appointment"]
OLD_TOOL = {
    "name": "check_availability",
    "description": "List open appointment slots on a given date.",
    "parameters": {
        "type": "object",
        "properties": {"date": {"type": "string", "format": "date", "description": "YYYY-MM-DD"}},
        "required": ["date"],
    },
    "webhook_url": "http://127.0.0.1:9000/tools/check_availability",
    "method": "POST",
    "timeout_seconds": 10,
    "filler": "Let me check the calendar for you.",
}
THEIR_TOOL = {
    "name": "lookup_patient",
    "description": "Find a patient's file.",
    "parameters": {"type": "object", "properties": {}},
    "webhook_url": "https://crm.example.com/patients",
}


@pytest.fixture(autouse=True)
def _debug(settings):
    settings.DEBUG = True


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def demo_agent() -> Agent:
    return Agent.objects.for_tenant(Tenant.objects.get(slug="demo-dental")).get()


def faq(agent: Agent) -> KnowledgeDocument:
    return KnowledgeDocument.objects.for_tenant(agent.tenant).get(agent=agent, title="Practice FAQ")


def test_the_demo_agent_books_through_the_demo_backend_of_this_server():
    output = seed()

    agent = demo_agent()
    assert [t["name"] for t in agent.tools] == SEEDED
    assert [t["webhook_url"] for t in agent.tools] == [f"http://127.0.0.1:8000/demo-backend/{name}" for name in SEEDED]
    booking = agent.tools[1]
    assert booking["description"] == (
        "Book a new appointment for a cleaning, check-up or other visit on a given day and time."
    )
    assert booking["parameters"]["required"] == ["date", "time", "name"]
    assert booking["parameters"]["properties"]["date"]["format"] == "date"
    assert agent.tools[2]["description"] == "Cancel an existing appointment."
    assert all(t["filler"] for t in agent.tools)
    assert "Demo backend:  http://127.0.0.1:8000/demo-backend/" in output


def test_the_demo_faq_answers_what_callers_ask_first():
    seed()

    text = faq(demo_agent()).content
    lines = text.splitlines()
    assert all(line.startswith("Q: ") and " A: " in line for line in lines)
    for fact in (
        "Saturday mornings from 9 AM to noon",
        "12 Harbour Street",
        "free parking",
        "insurance card",
        "A check-up is 75 dollars",
        "A cleaning is 95 dollars",
        "Whitening in the chair is 350 dollars",
        "A filling starts at 150 dollars",
        "at least 24 hours ahead",
        "new patients",
        "emergencies",
        "Visa, Mastercard",
    ):
        assert fact in text, fact


def test_a_rerun_brings_an_older_demo_up_to_date_and_keeps_the_users_own_tools():
    seed()
    agent = demo_agent()
    agent.tools = [OLD_TOOL, THEIR_TOOL]
    agent.save(update_fields=["tools"])
    document = faq(agent)
    document.content = content.PREVIOUS_FAQS[0]
    document.save(update_fields=["content"])

    seed()

    agent.refresh_from_db()
    assert [t["name"] for t in agent.tools] == [
        "check_availability",
        "lookup_patient",
        "book_appointment",
        "cancel_appointment",
        "reschedule_appointment",
    ]
    assert agent.tools[0]["webhook_url"] == "http://127.0.0.1:8000/demo-backend/check_availability"
    assert agent.tools[1] == THEIR_TOOL
    assert faq(agent).content == content.FAQ
    actions = set(AuditLog.objects.for_tenant(agent.tenant).values_list("action", flat=True))
    assert {"agent.update", "knowledge.update"} <= actions


def test_a_rerun_leaves_a_tool_the_user_pointed_at_their_backend_and_an_edited_faq_alone():
    seed()
    agent = demo_agent()
    theirs = {**agent.tools[0], "webhook_url": "https://booking.example.com/slots", "description": "Free slots."}
    agent.tools = [theirs, *agent.tools[1:]]
    agent.save(update_fields=["tools"])
    document = faq(agent)
    document.content = "Q: When are you open? A: Only on Tuesdays."
    document.save(update_fields=["content"])
    audit_rows = AuditLog.objects.for_tenant(agent.tenant).count()

    seed()

    agent.refresh_from_db()
    assert agent.tools[0] == theirs
    assert [t["name"] for t in agent.tools] == SEEDED
    assert faq(agent).content == "Q: When are you open? A: Only on Tuesdays."
    assert AuditLog.objects.for_tenant(agent.tenant).count() == audit_rows


def test_the_base_url_follows_make_runs_host_and_port_and_is_kept_on_a_plain_rerun():
    seed("--base-url", "http://0.0.0.0:8080/")
    assert demo_agent().tools[0]["webhook_url"] == "http://127.0.0.1:8080/demo-backend/check_availability"

    output = seed()

    assert {t["webhook_url"].rsplit("/", 1)[0] for t in demo_agent().tools} == {"http://127.0.0.1:8080/demo-backend"}
    assert "Demo backend:  http://127.0.0.1:8080/demo-backend/" in output

    seed("--base-url", "http://localhost:9001")
    assert demo_agent().tools[3]["webhook_url"] == "http://localhost:9001/demo-backend/reschedule_appointment"


def test_a_base_url_that_is_not_http_is_refused_before_anything_is_created():
    with pytest.raises(CommandError, match=re.escape("--base-url: 'ftp://example.com' is not an http(s) URL.")):
        seed("--base-url", "ftp://example.com")

    assert not Tenant.objects.exists()


def test_the_seed_warns_when_the_gateway_may_not_call_loopback(settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False

    assert "INTEGRATION_ALLOW_PRIVATE_NETWORKS is off" in seed()
