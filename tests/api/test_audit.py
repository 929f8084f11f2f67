"""Every write through the API leaves an audit row: tenant, actor, action, object, request id."""

import pytest

from calls.services import call_transition
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(tenant):
    agent = factories.AgentFactory(tenant=tenant, transfer_targets=[{"name": "Desk", "destination": "ext:1"}])
    call = factories.CallFactory(tenant=tenant, agent=agent)
    for status in ("ringing", "connected", "conversing"):
        call = call_transition(call=call, to_status=status)
    factories.SubscriptionFactory(tenant=tenant)
    return {
        "agent": agent,
        "call": call,
        "number": factories.PhoneNumberFactory(tenant=tenant, agent=agent),
        "key": factories.ApiKeyFactory(tenant=tenant),
    }


WRITES = [
    ("post", "/v1/agents", {"name": "New", "system_prompt": "x"}, "agent.create"),
    ("patch", "/v1/agents/{agent}", {"name": "Renamed"}, "agent.update"),
    ("put", "/v1/agents/{agent}", {"name": "Replaced", "system_prompt": "y"}, "agent.update"),
    ("delete", "/v1/agents/{agent}", None, "agent.delete"),
    ("post", "/v1/voices", {"name": "V", "provider_voice_id": "v1"}, "voice.create"),
    ("post", "/v1/numbers", {"e164": "+15550009999"}, "number.create"),
    ("patch", "/v1/numbers/{number}", {"friendly_name": "Main"}, "number.update"),
    ("post", "/v1/calls", {"agent_id": "{agent}", "to": "+15557654321"}, "call.start"),
    ("post", "/v1/calls/{call}/transfer", {"type": "blind", "target": "Desk"}, "call.transfer"),
    ("post", "/v1/api-keys", {"name": "K"}, "api_key.create"),
    ("delete", "/v1/api-keys/{key}", None, "api_key.revoke"),
]


@pytest.mark.parametrize(("method", "path", "body", "action"), WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES])
def test_each_write_is_audited(api_client, tenant, objects, method, path, body, action):
    ids = {name: obj.pk for name, obj in objects.items()}
    data = {k: v.format(**ids) if isinstance(v, str) else v for k, v in (body or {}).items()} or None
    response = getattr(api_client, method)(path.format(**ids), data, format="json", HTTP_X_REQUEST_ID=f"req-{action}")
    assert response.status_code < 300, response.content
    row = AuditLog.objects.for_tenant(tenant).filter(action=action).latest("created_at")
    assert row.request_id == f"req-{action}"
    assert row.actor_api_key.prefix.startswith("vk_live_")
    assert row.actor_label == f"api key {row.actor_api_key.prefix}"
    assert row.object_type and row.object_id
    assert row.ip_address == "127.0.0.1"
