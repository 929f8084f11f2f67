"""/v1/agents and /v1/voices."""

import pytest

from agents.models import Agent
from telephony.models import PhoneNumber
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

TOOL = {
    "name": "check_availability",
    "description": "Open slots on a date.",
    "parameters": {"type": "object", "properties": {"date": {"type": "string"}}},
    "webhook_url": "https://crm.example.com/slots",
}


def test_create_returns_the_agent_and_audits_it(api_client, tenant):
    body = {
        "name": "Scheduler",
        "system_prompt": "Book appointments.",
        "greeting_message": "Hi!",
        "tools": [TOOL],
        "settings": {"llm": {"temperature": 0.2}},
        "transfer_targets": [{"name": "Desk", "destination": "ext:1001"}],
    }
    response = api_client.post("/v1/agents", body, format="json", HTTP_X_REQUEST_ID="req-create-1")
    assert response.status_code == 201
    data = response.json()
    agent = Agent.objects.for_tenant(tenant).get()
    assert data["id"] == str(agent.pk)
    assert (data["name"], data["status"], data["tools"], data["settings"]) == (
        "Scheduler",
        "active",
        [TOOL],
        {"llm": {"temperature": 0.2}},
    )
    assert data["created_at"].endswith("Z")
    audit = AuditLog.objects.for_tenant(tenant).get(action="agent.create")
    assert (audit.object_id, audit.request_id, audit.actor_label[:16]) == (
        str(agent.pk),
        "req-create-1",
        "api key vk_live_",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"system_prompt": "x"}, "name"),
        ({"name": "A"}, "system_prompt"),
        ({"name": "A", "system_prompt": ""}, "system_prompt"),
        ({"name": "A", "system_prompt": "x", "status": "sleeping"}, "status"),
        ({"name": "A", "system_prompt": "x", "tools": [{"name": "bad name!"}]}, "tools"),
        ({"name": "A", "system_prompt": "x", "settings": {"llm": {"temperature": 3}}}, "settings"),
        (
            {"name": "A", "system_prompt": "x", "transfer_targets": [{"name": "x", "destination": "555"}]},
            "transfer_targets",
        ),
        ({"name": "A", "system_prompt": "x", "voice_id": "not-a-uuid"}, "voice_id"),
        ({"name": "x" * 256, "system_prompt": "x"}, "name"),
    ],
)
def test_invalid_agents_get_a_400_naming_the_field(api_client, body, field):
    response = api_client.post("/v1/agents", body, format="json")
    error = response.json()["error"]
    assert response.status_code == 400
    assert (error["type"], error["code"]) == ("invalid_request_error", "validation_error")
    assert list(error["fields"]) == [field]
    assert error["message"].startswith(f"{field}: ")
    assert not Agent.objects.dangerously_unscoped().exists()


def test_duplicate_live_name_is_refused_but_a_deleted_name_is_free(api_client, tenant):
    factories.AgentFactory(tenant=tenant, name="Desk")
    response = api_client.post("/v1/agents", {"name": "Desk", "system_prompt": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"name": ["An agent with this name already exists."]}
    Agent.objects.dangerously_unscoped().filter(name="Desk").update(deleted_at="2026-01-01T00:00:00Z")
    assert api_client.post("/v1/agents", {"name": "Desk", "system_prompt": "x"}, format="json").status_code == 201


def test_platform_and_own_voices_can_be_used(api_client, tenant):
    platform, own = factories.VoiceFactory(tenant=None), factories.VoiceFactory(tenant=tenant)
    for voice in (platform, own):
        response = api_client.post(
            "/v1/agents", {"name": f"A{voice.pk}", "system_prompt": "x", "voice_id": str(voice.pk)}, format="json"
        )
        assert response.json()["voice_id"] == str(voice.pk)


def test_put_replaces_and_patch_changes_only_what_is_sent(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Desk", greeting_message="Hello", description="Front")
    patched = api_client.patch(f"/v1/agents/{agent.pk}", {"greeting_message": "Good morning"}, format="json").json()
    assert (patched["name"], patched["greeting_message"], patched["description"]) == ("Desk", "Good morning", "Front")
    replaced = api_client.put(
        f"/v1/agents/{agent.pk}", {"name": "Desk 2", "system_prompt": "New"}, format="json"
    ).json()
    assert (replaced["name"], replaced["greeting_message"], replaced["description"]) == ("Desk 2", "", "")
    assert api_client.put(f"/v1/agents/{agent.pk}", {"name": "x"}, format="json").status_code == 400
    actions = list(
        AuditLog.objects.for_tenant(tenant)
        .filter(action="agent.update")
        .order_by("created_at")
        .values_list("action", "changes")
    )
    assert actions == [
        ("agent.update", {"fields": ["greeting_message"]}),
        ("agent.update", {"fields": ["description", "greeting_message", "name", "system_prompt"]}),
    ]


def test_delete_is_soft_and_unroutes_its_numbers(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    number = factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    assert api_client.delete(f"/v1/agents/{agent.pk}").status_code == 204
    agent.refresh_from_db()
    assert agent.deleted_at is not None
    assert PhoneNumber.objects.dangerously_unscoped().get(pk=number.pk).agent is None
    assert api_client.get(f"/v1/agents/{agent.pk}").status_code == 404
    assert api_client.get("/v1/agents").json()["count"] == 0
    assert api_client.delete(f"/v1/agents/{agent.pk}").status_code == 404


def test_list_filters_and_paginates(api_client, tenant):
    for i in range(25):
        factories.AgentFactory(tenant=tenant, name=f"Agent {i:02d}", status="paused" if i % 5 == 0 else "active")
    first = api_client.get("/v1/agents").json()
    assert (first["count"], len(first["results"]), first["previous"]) == (25, 20, None)
    assert first["next"].endswith("/v1/agents?limit=20&offset=20")
    second = api_client.get(first["next"]).json()
    assert [a["name"] for a in second["results"]] == [f"Agent {i}" for i in range(20, 25)]
    assert api_client.get("/v1/agents?limit=1000").json()["results"].__len__() == 25  # capped at 100
    paused = api_client.get("/v1/agents?status=paused").json()
    assert [a["name"] for a in paused["results"]] == ["Agent 00", "Agent 05", "Agent 10", "Agent 15", "Agent 20"]
    assert api_client.get("/v1/agents?search=agent 1").json()["count"] == 10
    assert api_client.get("/v1/agents?status=bogus").status_code == 400


def test_page_size_is_capped_at_100(api_client, tenant):
    for i in range(105):
        factories.AgentFactory(tenant=tenant, name=f"A{i:03d}")
    assert len(api_client.get("/v1/agents?limit=500").json()["results"]) == 100


def test_voices_create_and_validate(api_client, tenant):
    body = {"name": "Warm", "provider_voice_id": "warm_1", "exaggeration": 0.7}
    created = api_client.post("/v1/voices", body, format="json")
    assert created.status_code == 201
    assert (created.json()["scope"], created.json()["cfg_weight"]) == ("tenant", 0.5)
    again = api_client.post("/v1/voices", body, format="json")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "voice_exists"
    bad = api_client.post("/v1/voices", {"name": "x", "provider_voice_id": "y", "exaggeration": 5}, format="json")
    assert list(bad.json()["error"]["fields"]) == ["exaggeration"]
