"""Idempotency-Key: replay within 24 h, refuse a different body, dial an outbound call only once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from calls.models import Call
from tenants.models import IdempotencyKey
from tests import factories

pytestmark = pytest.mark.django_db
AGENT = {"name": "Desk", "system_prompt": "Help."}


def test_a_retry_replays_the_first_response(api_client, tenant):
    first = api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Agent.objects.for_tenant(tenant).count() == 1


def test_the_same_key_with_another_body_is_a_422(api_client):
    api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = api_client.post("/v1/agents", {**AGENT, "name": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 422
    assert response.json()["error"] == {
        "type": "idempotency_error",
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was used with a different request; use a new key for a new request.",
        "fields": {},
    }
    assert Agent.objects.dangerously_unscoped().count() == 1


def test_validation_errors_are_replayed_too(api_client):
    first = api_client.post("/v1/agents", {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    second = api_client.post("/v1/agents", {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == second.status_code == 400
    assert first.json() == second.json()


def test_a_request_still_in_progress_is_a_409(api_client, tenant):
    IdempotencyKey.objects.create(
        tenant=tenant,
        key="busy",
        request_method="POST",
        request_path="/v1/agents",
        request_fingerprint=__import__("hashlib")
        .sha256(b"POST\0/v1/agents\0" + b'{"name":"Desk","system_prompt":"Help."}' + b"\0")
        .hexdigest(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    response = api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_key_in_use")
    assert not Agent.objects.dangerously_unscoped().exists()


def test_keys_expire_after_24_hours(api_client, tenant):
    api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.dangerously_unscoped().update(expires_at=timezone.now() - timedelta(seconds=1))
    Agent.objects.dangerously_unscoped().all().delete()
    response = api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Agent.objects.dangerously_unscoped().count() == 1


def test_keys_belong_to_one_tenant(api_client, other_api_client):
    assert api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    theirs = other_api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert Agent.objects.dangerously_unscoped().count() == 2


def test_a_failure_on_our_side_is_not_stored(api_client, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("agents.services.agent_create", explode)
    assert api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="k-5").status_code == 500
    assert not IdempotencyKey.objects.dangerously_unscoped().exists()
    monkeypatch.undo()
    assert api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY="k-5").status_code == 201


@pytest.mark.parametrize("key", ["", " ", "x" * 256])
def test_bad_keys_are_refused(api_client, key):
    response = api_client.post("/v1/agents", AGENT, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "idempotency_key_invalid")
    assert not Agent.objects.dangerously_unscoped().exists()


def test_starting_a_call_twice_with_one_key_dials_once(
    api_client, tenant, django_capture_on_commit_callbacks, monkeypatch
):
    agent = factories.AgentFactory(tenant=tenant)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    factories.SubscriptionFactory(tenant=tenant)
    dialled = []
    monkeypatch.setattr("calls.tasks.call_initiate.delay", lambda **kwargs: dialled.append(kwargs))
    body = {"agent_id": str(agent.pk), "to": "+15557654321"}
    with django_capture_on_commit_callbacks(execute=True):
        first = api_client.post("/v1/calls", body, format="json", HTTP_IDEMPOTENCY_KEY="dial-1")
        second = api_client.post("/v1/calls", body, format="json", HTTP_IDEMPOTENCY_KEY="dial-1")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert Call.objects.dangerously_unscoped().count() == 1
    assert dialled == [{"call_id": first.json()["call_id"], "tenant_id": str(tenant.pk)}]
