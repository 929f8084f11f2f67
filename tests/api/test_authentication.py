"""API keys and dashboard sessions: who may call, for which tenant, with which permissions."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import Agent
from tenants.models import ApiKey, Membership
from tenants.services import api_key_create, api_key_revoke, tenant_set_status
from tests import factories
from tests.api.conftest import key_client

pytestmark = pytest.mark.django_db
AGENT = {"name": "Night line", "system_prompt": "Answer after hours."}


def error_of(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["type"], body["code"]


def test_a_valid_key_reads_its_tenant(api_client, tenant):
    factories.AgentFactory(tenant=tenant, name="Front desk")
    response = api_client.get("/v1/agents")
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["results"]] == ["Front desk"]


def test_no_credentials_is_401_with_a_challenge():
    response = APIClient().get("/v1/agents")
    assert error_of(response) == (401, "authentication_error", "not_authenticated")
    assert response["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("nonsense", "api_key_malformed"),
        ("vk_live_short", "api_key_malformed"),
        ("sk_live_" + "a" * 43, "api_key_malformed"),
        ("vk_live_" + "a" * 43, "api_key_invalid"),
    ],
)
def test_bad_keys_are_refused(key, code):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert error_of(client.get("/v1/agents")) == (401, "authentication_error", code)


def test_revoked_key_is_refused(tenant):
    issued = api_key_create(tenant=tenant, name="k")
    api_key_revoke(api_key=issued.api_key)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.secret)
    assert error_of(client.get("/v1/agents")) == (401, "authentication_error", "api_key_revoked")


def test_expired_key_is_refused(tenant):
    issued = api_key_create(tenant=tenant, name="k", expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.secret)
    assert error_of(client.get("/v1/agents")) == (401, "authentication_error", "api_key_expired")


def test_suspended_tenant_is_refused_and_nothing_is_written(api_client, tenant):
    tenant_set_status(tenant=tenant, status="suspended")
    response = api_client.post("/v1/agents", AGENT, format="json")
    assert error_of(response) == (401, "authentication_error", "tenant_suspended")
    assert not Agent.objects.dangerously_unscoped().exists()


def test_last_used_at_is_recorded(api_client, tenant):
    api_client.get("/v1/agents")
    assert ApiKey.objects.for_tenant(tenant).get().last_used_at is not None


@pytest.mark.parametrize(
    ("scopes", "get", "post", "keys"),
    [
        (["read"], 200, 403, 403),
        (["write"], 200, 201, 403),
        (["admin"], 200, 201, 200),
    ],
)
def test_key_scopes_decide_read_write_admin(tenant, scopes, get, post, keys):
    client = key_client(tenant, scopes)
    assert client.get("/v1/agents").status_code == get
    assert client.post("/v1/agents", AGENT, format="json").status_code == post
    assert client.get("/v1/api-keys").status_code == keys


def test_a_refused_write_changes_nothing(tenant):
    response = key_client(tenant, ["read"]).post("/v1/agents", AGENT, format="json")
    assert error_of(response) == (403, "permission_error", "insufficient_permissions")
    assert not Agent.objects.dangerously_unscoped().exists()


def session_client(tenant, role, *, csrf=False) -> Client:
    user = factories.UserFactory()
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "post", "keys"),
    [("viewer", 403, 403), ("member", 201, 403), ("admin", 201, 200), ("owner", 201, 200)],
)
def test_membership_roles_decide_what_a_session_may_do(tenant, role, post, keys):
    client = session_client(tenant, role)
    assert client.get("/v1/agents").status_code == 200
    assert client.post("/v1/agents", AGENT, content_type="application/json").status_code == post
    assert client.get("/v1/api-keys").status_code == keys


def test_session_writes_need_the_csrf_token(tenant):
    client = session_client(tenant, "owner", csrf=True)
    response = client.post("/v1/agents", AGENT, content_type="application/json")
    assert error_of(response) == (403, "permission_error", "permission_denied")
    assert "CSRF" in response.json()["error"]["message"]
    assert not Agent.objects.dangerously_unscoped().exists()


def test_a_user_in_several_tenants_names_one(tenant, other_tenant):
    user = factories.UserFactory()
    Membership.objects.create(tenant=tenant, user=user, role="owner")
    Membership.objects.create(tenant=other_tenant, user=user, role="viewer")
    factories.AgentFactory(tenant=other_tenant, name="Globex agent")
    client = Client()
    client.force_login(user)
    assert error_of(client.get("/v1/agents")) == (401, "authentication_error", "tenant_required")
    response = client.get("/v1/agents", HTTP_X_TENANT=other_tenant.slug)
    assert [a["name"] for a in response.json()["results"]] == ["Globex agent"]
    by_id = client.post("/v1/agents", AGENT, content_type="application/json", HTTP_X_TENANT=str(other_tenant.pk))
    assert by_id.status_code == 403  # a viewer there


def test_a_session_cannot_name_a_tenant_it_is_not_in(tenant, other_tenant):
    client = session_client(tenant, "owner")
    response = client.get("/v1/agents", HTTP_X_TENANT=other_tenant.slug)
    assert error_of(response) == (401, "authentication_error", "tenant_not_found")


def test_a_user_without_a_tenant_is_refused(db):
    client = Client()
    client.force_login(factories.UserFactory())
    assert error_of(client.get("/v1/agents")) == (401, "authentication_error", "tenant_not_found")
