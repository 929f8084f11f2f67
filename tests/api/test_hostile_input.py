"""Hostile input never finds a 500: every operation of the OpenAPI schema, every method, every kind of bad body.

The sweep reads /v1/schema and sends each path, with the seeded objects' ids, deeply nested JSON, a body
over the upload limit, wrong types, NUL bytes, invalid UTF-8, an unknown field and every HTTP method, with
DEBUG off and on. Every answer must be below 500 and, when it is an error, the API's one JSON error shape.
The targeted tests below pin the faults that were found, each with its expected status and code.
"""

import json
import re
import uuid

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers
from rest_framework.test import APIClient

from agents.models import Agent
from core.api.serializers import Input
from tests import factories
from tests.api.test_errors import assert_error
from tests.api.test_schemathesis import seeded, twilio_api  # noqa: F401 (fixtures: a tenant with one of everything, the fake Twilio its numbers import asks)

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
DEEP = "[" * 500 + "]" * 500  # about 1 KB
HUGE = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)


def hostile_bodies() -> dict[str, tuple[bytes, str]]:
    """(raw body, content type) by name."""
    return {
        "deep": (f'{{"name": {DEEP}}}'.encode(), "application/json"),
        "deep-object": (('{"a":' * 300 + "1" + "}" * 300).encode(), "application/json"),
        "huge": (json.dumps({"name": HUGE, "system_prompt": HUGE}).encode(), "application/json"),
        "array": (b"[1, 2, 3]", "application/json"),
        "string": (b'"hello"', "application/json"),
        "null": (b"null", "application/json"),
        "wrong-types": (
            json.dumps({k: {"nested": [1, {"x": None}]} for k in ("name", "agent_id", "to", "url", "type")}).encode(),
            "application/json",
        ),
        "nul": (b'{"name": "a\\u0000b", "description": "\\ud800"}', "application/json"),
        "invalid-utf8": (b'{"name": "\xff\xfe\xfd"}', "application/json"),
        "unknown-field": (b'{"zz_unknown_field": 1}', "application/json"),
        "form": (b"name=x&name=y", "application/x-www-form-urlencoded"),
        "multipart-garbage": (b"--xx\r\nnot a part", "multipart/form-data; boundary=xx"),
        "empty": (b"", "application/json"),
    }


def schema_operations(client) -> list[tuple[str, str]]:
    schema = client.get("/v1/schema?format=json").json()
    return [(path, method.upper()) for path, operations in schema["paths"].items() for method in operations]


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def assert_no_server_error(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.content[:500]!r}"
    if response.status_code >= 400 and what.split()[0] != "HEAD":
        assert response["Content-Type"].startswith("application/json"), f"{what}: {response['Content-Type']}"
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"type", "code", "message", "fields"}, what


@pytest.mark.fuzz
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_every_operation_survives_every_hostile_body_and_method(seeded, twilio_api, settings, debug):  # noqa: F811
    settings.DEBUG = debug
    client = APIClient(HTTP_X_API_KEY=seeded["secret"])
    operations = schema_operations(client)
    assert len(operations) >= 20
    paths = sorted({path for path, _ in operations}, key=lambda p: p.count("{"))
    # Deletes last, so the other requests still find the seeded objects.
    for method in sorted(METHODS, key=lambda m: m == "DELETE"):
        for path in paths:
            url = concrete(path, seeded["path_parameters"])
            if method in ("POST", "PUT", "PATCH"):
                for name, (body, content_type) in hostile_bodies().items():
                    response = client.generic(method, url, body, content_type=content_type)
                    assert_no_server_error(response, f"{method} {url} [{name}]")
            else:
                for query in ("", "?limit=null&offset=-1", "?status=&x=%00", "?started_after=%FF%FE"):
                    response = client.generic(method, url + query)
                    assert_no_server_error(response, f"{method} {url}{query}")
        for suffix in ("%0A", "%00", "/%0d%0aSet-Cookie:x=1", "/" + "a" * 5000):
            response = client.generic(method, f"/v1/agents{suffix}")
            assert_no_server_error(response, f"{method} /v1/agents{suffix}")


def test_every_request_body_refuses_fields_it_does_not_know():
    """A guard, not a habit: each operation's request serializer (and every nested one) is an `Input`."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    checked = []
    for path, path_regex, method, view in generator._get_paths_and_endpoints():
        if method not in ("POST", "PUT", "PATCH"):
            continue
        view.request = None
        view.schema.path, view.schema.path_regex, view.schema.method = path, path_regex, method
        serializer = view.schema.get_request_serializer()
        if serializer is None:
            continue
        for found in _serializers_in(serializer):
            assert isinstance(found, Input) or issubclass(type(found), Input), f"{method} {path}: {type(found)}"
        checked.append(f"{method} {path}")
    assert len(checked) >= 10, checked


def _serializers_in(serializer):
    if isinstance(serializer, dict):  # one serializer per content type
        for each in serializer.values():
            yield from _serializers_in(each)
        return
    serializer = serializer() if isinstance(serializer, type) else serializer
    if isinstance(serializer, serializers.ListSerializer):
        serializer = serializer.child
    yield serializer
    for field in serializer.fields.values():
        if isinstance(field, serializers.BaseSerializer):
            yield from _serializers_in(field)


# --- the faults that were found, one by one ---------------------------------------------------------


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_json_nested_hundreds_deep_is_a_400_on_every_json_write(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    body = '{"name": "x", "tools": ' + "[" * 400 + "]" * 400 + "}"
    for method, url in [("POST", "/v1/agents"), ("PATCH", f"/v1/agents/{agent.pk}"), ("POST", "/v1/calls")]:
        error = assert_error(api_client.generic(method, url, body, content_type="application/json"), 400, "parse_error")
        assert "deeper than" in error["message"]


@pytestmark_db
def test_json_nested_past_the_interpreters_stack_is_a_400_too(api_client):
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert_error(api_client.post("/v1/agents", body, content_type="application/json"), 400, "parse_error")


@pytestmark_db
def test_a_body_over_the_upload_limit_is_a_413_and_nothing_is_created(api_client, tenant):
    body = json.dumps({"name": "Big", "system_prompt": "a" * 2_700_000})
    error = assert_error(api_client.post("/v1/agents", body, content_type="application/json"), 413, "request_too_large")
    assert "2,621,440 bytes" in error["message"]
    assert not Agent.objects.for_tenant(tenant).exists()


@pytestmark_db
def test_a_multipart_body_with_too_many_fields_is_a_4xx(api_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    body = "&".join(f"f{i}=1" for i in range(50))
    response = api_client.generic("POST", "/v1/voices", body, content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500


@pytestmark_db
def test_options_on_a_detail_route_lists_the_methods_and_points_to_the_schema(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    response = api_client.options(f"/v1/agents/{agent.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["methods"] == ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"]
    assert body["schema"].endswith("/v1/schema")


@pytestmark_db
def test_options_on_another_tenants_object_reveals_nothing_more_than_a_missing_one(api_client, other_tenant):
    theirs = factories.AgentFactory(tenant=other_tenant)
    mine = api_client.options(f"/v1/agents/{theirs.pk}").json()
    missing = api_client.options(f"/v1/agents/{uuid.uuid4()}").json()
    assert mine == missing


@pytestmark_db
@pytest.mark.parametrize("suffix", ["%0A", "%0D%0A", "/x%0Ay"])
def test_a_path_with_an_encoded_newline_is_the_json_404_with_debug_on(api_client, settings, suffix):
    settings.DEBUG = True
    assert_error(api_client.get(f"/v1/agents{suffix}"), 404, "resource_missing")


@pytestmark_db
def test_unknown_body_fields_are_a_400_naming_them_and_nothing_is_created(api_client, tenant):
    body = {"name": "Front desk", "system_prompt": "Be kind.", "first_message": "hi", "colour": "blue"}
    error = assert_error(api_client.post("/v1/agents", body, format="json"), 400, "validation_error")
    assert set(error["fields"]) == {"first_message", "colour"}
    assert "greeting" in error["fields"]["first_message"][0]  # it lists what the operation accepts
    assert not Agent.objects.for_tenant(tenant).exists()


@pytestmark_db
def test_unknown_fields_are_refused_on_updates_too(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, greeting_message="Hello")
    error = assert_error(
        api_client.patch(f"/v1/agents/{agent.pk}", {"first_message": "Hi"}, format="json"), 400, "validation_error"
    )
    assert set(error["fields"]) == {"first_message"}
    agent.refresh_from_db()
    assert agent.greeting_message == "Hello"


@pytestmark_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("offset=null", "offset"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("status=", "status"),
        ("direction=", "direction"),
        ("agent_id=", "agent_id"),
        ("number=", "number"),
    ],
)
def test_invalid_query_values_are_a_400_naming_the_parameter(api_client, query, field):
    error = assert_error(api_client.get(f"/v1/calls?{query}"), 400, "validation_error")
    assert field in error["fields"]


@pytestmark_db
@pytest.mark.parametrize("url", ["/v1/agents?status=", "/v1/numbers?agent_id=", "/v1/agents?offset=x"])
def test_invalid_query_values_are_a_400_on_other_lists(api_client, url):
    assert_error(api_client.get(url), 400, "validation_error")


@pytestmark_db
def test_valid_paging_still_works_and_a_large_limit_is_capped(api_client, tenant):
    for n in range(3):
        factories.AgentFactory(tenant=tenant, name=f"Agent {n}")
    page = api_client.get("/v1/agents?limit=2&offset=1").json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert len(api_client.get("/v1/agents?limit=1000").json()["results"]) == 3


def test_the_schema_says_request_bodies_refuse_unknown_properties_and_may_be_413(db):
    schema = APIClient().get("/v1/schema?format=json").json()
    assert schema["components"]["schemas"]["AgentInputRequest"]["additionalProperties"] is False
    assert "413" in schema["paths"]["/v1/agents"]["post"]["responses"]


@pytestmark_db
def test_the_dashboard_shows_a_page_not_a_raw_error_for_a_document_over_the_limit(client, tenant):
    from tenants.models import Membership

    user = factories.UserFactory(username="owner")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    agent = factories.AgentFactory(tenant=tenant)
    client.force_login(user)
    body = {"document-title": "Everything", "document-content": "a" * 3_500_000}
    response = client.post(f"/agents/{agent.pk}/documents/", body)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "too large" in text and "2.6 MB" in text
    assert not agent.knowledge_documents.exists()


@pytestmark_db
def test_a_number_too_large_to_store_is_a_400_not_a_500(api_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    body = '{"agent_id": "AGENT", "to": "+15557654321", "metadata": {"x": 1e400}}'.replace("AGENT", str(agent.pk))
    error = assert_error(api_client.post("/v1/calls", body, content_type="application/json"), 400, "parse_error")
    assert "too large" in error["message"]


@pytestmark_db
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_filter_at_the_edge_of_the_calendar_is_a_400(api_client, value):
    assert_error(api_client.get(f"/v1/calls?started_after={value}"), 400, "validation_error")
