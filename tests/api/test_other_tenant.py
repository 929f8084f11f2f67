"""Every endpoint and verb, called with another tenant's ids, answers 404 exactly like a missing id and changes nothing."""

import uuid

import pytest
from django.urls import get_resolver

from agents.models import Agent, KnowledgeDocument, Voice
from billing.models import UsageReport
from calls.models import Call, CallEvent, Recording
from integrations.models import BackendService, ProviderCredential, WebhookDelivery, WebhookEndpoint
from telephony.models import PhoneNumber
from tenants.models import ApiKey, AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_tenant):
    """One of each object, owned by the other tenant."""
    agent = factories.AgentFactory(tenant=other_tenant, transfer_targets=[{"name": "Desk", "destination": "ext:1"}])
    call = factories.CallFactory(tenant=other_tenant, agent=agent, status="conversing", answered_at=None)
    factories.RecordingFactory(call=call)
    return {
        "agent": agent,
        "document": factories.KnowledgeDocumentFactory(agent=agent),
        "call": call,
        "number": factories.PhoneNumberFactory(tenant=other_tenant, agent=agent),
        "voice": factories.VoiceFactory(tenant=other_tenant),
        "api_key": factories.ApiKeyFactory(tenant=other_tenant),
        "credential": factories.ProviderCredentialFactory(tenant=other_tenant),
        "backend": BackendService.objects.create(tenant=other_tenant, name="crm", url="https://crm.example.com/api"),
        "webhook": (webhook := factories.WebhookEndpointFactory(tenant=other_tenant)),
        "delivery": factories.WebhookDeliveryFactory(endpoint=webhook),
        "report": factories.UsageReportFactory(tenant=other_tenant),
    }


# (method, path template, body): every route that takes an id.
ID_ROUTES = [
    ("get", "/v1/agents/{agent}", None),
    ("put", "/v1/agents/{agent}", {"name": "Stolen", "system_prompt": "x"}),
    ("patch", "/v1/agents/{agent}", {"name": "Stolen"}),
    ("delete", "/v1/agents/{agent}", None),
    ("get", "/v1/agents/{agent}/documents", None),
    ("post", "/v1/agents/{agent}/documents", {"title": "Stolen", "content": "x"}),
    ("get", "/v1/agents/{agent}/documents/{document}", None),
    ("patch", "/v1/agents/{agent}/documents/{document}", {"title": "Stolen"}),
    ("delete", "/v1/agents/{agent}/documents/{document}", None),
    ("post", "/v1/agents/{agent}/documents/{document}/retry", None),
    ("get", "/v1/calls/{call}", None),
    ("get", "/v1/calls/{call}/recording", None),
    ("post", "/v1/calls/{call}/end", None),
    ("post", "/v1/calls/{call}/transfer", {"type": "blind", "target": "Desk"}),
    ("get", "/v1/numbers/{number}", None),
    ("patch", "/v1/numbers/{number}", {"friendly_name": "Stolen"}),
    ("delete", "/v1/api-keys/{api_key}", None),
    ("get", "/v1/credentials/{credential}", None),
    ("patch", "/v1/credentials/{credential}", {"secret": {"api_key": "fake-ant-api03-stolen-000000000000"}}),
    ("delete", "/v1/credentials/{credential}", None),
    ("post", "/v1/credentials/{credential}/verify", None),
    ("get", "/v1/backend-services/{backend}", None),
    ("patch", "/v1/backend-services/{backend}", {"url": "https://stolen.example.com"}),
    ("delete", "/v1/backend-services/{backend}", None),
    ("get", "/v1/webhooks/{webhook}", None),
    ("patch", "/v1/webhooks/{webhook}", {"url": "https://stolen.example.com/hook"}),
    ("delete", "/v1/webhooks/{webhook}", None),
    ("post", "/v1/webhooks/{webhook}/rotate-secret", {}),
    ("get", "/v1/webhooks/{webhook}/deliveries", None),
    ("post", "/v1/webhooks/{webhook}/replay", {"since": "2026-01-01T00:00:00Z"}),
    ("get", "/v1/webhook-deliveries/{delivery}", None),
    ("post", "/v1/webhook-deliveries/{delivery}/replay", None),
    ("get", "/v1/usage/reports/{report}", None),
]


def snapshot() -> dict:
    models = [
        Agent,
        KnowledgeDocument,
        Call,
        CallEvent,
        Recording,
        PhoneNumber,
        Voice,
        ApiKey,
        AuditLog,
        ProviderCredential,
        BackendService,
        WebhookEndpoint,
        WebhookDelivery,
        UsageReport,
    ]
    return {m.__name__: sorted(map(str, m._base_manager.values_list("pk", "updated_at"))) for m in models}


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES, ids=[f"{m} {t}" for m, t, _ in ID_ROUTES])
def test_another_tenants_object_is_a_404_like_a_missing_one(api_client, theirs, method, template, body):
    before = snapshot()
    foreign = getattr(api_client, method)(template.format(**{k: o.pk for k, o in theirs.items()}), body, format="json")
    missing = getattr(api_client, method)(template.format(**{k: uuid.uuid4() for k in theirs}), body, format="json")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert foreign.json()["error"]["code"] == "resource_missing"
    assert snapshot() == before


# (path, body) of every create that refers to other objects by id.
REFERENCING_CREATES = [
    ("/v1/agents", {"name": "A", "system_prompt": "x", "voice_id": "{voice}"}, "voice_id"),
    ("/v1/calls", {"agent_id": "{agent}", "to": "+15557654321"}, "agent_id"),
    ("/v1/numbers", {"e164": "+15559990000", "agent_id": "{agent}"}, "agent_id"),
]


@pytest.mark.parametrize(("path", "body", "field"), REFERENCING_CREATES, ids=[p for p, _, _ in REFERENCING_CREATES])
def test_creates_cannot_point_at_another_tenants_objects(api_client, tenant, theirs, path, body, field):
    factories.PhoneNumberFactory(tenant=tenant)  # a caller id of our own
    before = snapshot()
    data = {k: (v.format(**{n: o.pk for n, o in theirs.items()}) if isinstance(v, str) else v) for k, v in body.items()}
    response = api_client.post(path, data, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {field: [f"Unknown {field.removesuffix('_id')}."]}
    assert snapshot() == before


def test_numbers_can_only_be_assigned_to_our_agents(api_client, tenant, theirs):
    ours = factories.PhoneNumberFactory(tenant=tenant)
    response = api_client.patch(f"/v1/numbers/{ours.pk}", {"agent_id": str(theirs["agent"].pk)}, format="json")
    assert response.status_code == 400
    ours.refresh_from_db()
    assert ours.agent.tenant == tenant


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents",
        "/v1/calls",
        "/v1/numbers",
        "/v1/api-keys",
        "/v1/usage",
        "/v1/credentials",
        "/v1/backend-services",
        "/v1/webhooks",
        "/v1/usage/reports",
    ],
)
def test_lists_never_show_another_tenants_rows(api_client, theirs, path):
    body = api_client.get(path).json()
    text = str(body)
    for obj in theirs.values():
        assert str(obj.pk) not in text
    if "count" in body:
        assert body["count"] == (1 if path == "/v1/api-keys" else 0)  # only the client's own key


def test_voices_list_shows_platform_voices_and_ours_only(api_client, tenant, theirs):
    platform = factories.VoiceFactory(tenant=None)
    ours = factories.VoiceFactory(tenant=tenant)
    ids = {v["id"] for v in api_client.get("/v1/voices").json()["results"]}
    assert ids == {str(platform.pk), str(ours.pk)}


def test_every_id_route_is_covered():
    """A new route with an id must be added to ID_ROUTES above."""
    resolver = get_resolver()
    routes = set()

    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif "<uuid:" in str(p.pattern):
                routes.add(prefix + str(p.pattern))

    walk(resolver.url_patterns)
    covered = {
        "v1/"
        + t.removeprefix("/v1/")
        .replace("{agent}", "<uuid:agent_id>")
        .replace("{document}", "<uuid:document_id>")
        .replace("{call}", "<uuid:call_id>")
        .replace("{number}", "<uuid:number_id>")
        .replace("{api_key}", "<uuid:key_id>")
        .replace("{credential}", "<uuid:credential_id>")
        .replace("{backend}", "<uuid:service_id>")
        .replace("{webhook}", "<uuid:webhook_id>")
        .replace("{delivery}", "<uuid:delivery_id>")
        .replace("{report}", "<uuid:report_id>")
        for _, t, _ in ID_ROUTES
    }
    assert {r for r in routes if r.startswith("v1/")} == covered
