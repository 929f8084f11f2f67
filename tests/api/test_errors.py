"""Every error leaves in one JSON shape: malformed JSON, wrong media type, 404, 405, 500."""

import pytest
from django.urls import get_resolver
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_400(api_client):
    response = api_client.post("/v1/agents", data='{"name": "x",', content_type="application/json")
    error = assert_error(response, 400, "parse_error")
    assert error["type"] == "invalid_request_error"


def test_a_json_array_body_is_a_400_not_a_500(api_client):
    response = api_client.post("/v1/agents", data="[1, 2]", content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_form_bodies_are_a_415(api_client):
    response = api_client.post("/v1/agents", data="name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_urls_are_a_json_404(api_client):
    assert_error(api_client.get("/v1/nothing-here"), 404, "resource_missing")
    assert_error(APIClient().get("/v1/agents/"), 404, "resource_missing")


def test_a_malformed_id_is_a_404(api_client):
    assert_error(api_client.get("/v1/agents/not-a-uuid"), 404, "resource_missing")


def test_wrong_method_is_a_405(api_client):
    response = api_client.delete("/v1/agents")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_an_unexpected_failure_is_a_json_500_without_details(api_client, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("database password is hunter2")

    # Load every URLconf (and the views that import agent_list by name) before patching it: a view module
    # first imported while the patch is in place would keep the exploding function for the rest of the run.
    get_resolver().url_patterns  # noqa: B018
    monkeypatch.setattr("agents.selectors.agent_list", explode)
    response = api_client.get("/v1/agents")
    error = assert_error(response, 500, "internal_error")
    assert error["type"] == "api_error"
    assert "hunter2" not in response.content.decode()


def test_errors_carry_the_request_id(api_client):
    response = api_client.get("/v1/agents/not-a-uuid", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_responses_are_json_only(api_client):
    response = api_client.get("/v1/agents", HTTP_ACCEPT="text/html")
    assert_error(response, 406, "not_acceptable")


def test_schema_and_docs_are_served(client):
    schema = client.get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A tenant API key: vk_live_…",
    }
    assert {"/v1/agents", "/v1/calls", "/v1/calls/{call_id}/transfer", "/v1/numbers", "/v1/voices", "/v1/usage"} <= set(
        spec["paths"]
    )
    assert "429" in spec["paths"]["/v1/agents"]["get"]["responses"]
    docs = client.get("/v1/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


def test_a_write_to_an_unknown_url_is_a_json_404_not_a_csrf_page(tenant, owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert_error(client.delete("/v1/agents/not-a-uuid"), 404, "resource_missing")


def test_any_utc_offset_in_a_date_filter_works(api_client):
    # PostgreSQL refuses offsets beyond ±15:59; the filter compares in UTC.
    assert api_client.get("/v1/calls?started_after=2026-01-01T00:00:00%2B17:00").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        '{"name": "Desk", "system_prompt": "x", "description": "nul \\u0000 here"}',
        '{"name": "Desk", "system_prompt": "x", "settings": {"\\ud800": 1}}',
        '{"name": "Desk", "system_prompt": "x", "tools": [{"name": "t", "description": "\\udfff"}]}',
    ],
)
def test_text_no_database_can_store_is_a_400(api_client, raw):
    # PostgreSQL cannot store NUL in text or JSON, and a lone surrogate is not UTF-8 at all.
    response = api_client.post("/v1/agents", data=raw, content_type="application/json")
    error = assert_error(response, 400, "parse_error")
    assert "NUL character" in error["message"]
