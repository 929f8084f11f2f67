"""The OpenAPI schema generates without a single warning and validates."""

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert "/v1/calls/{call_id}/transfer" in schema["paths"]
    for path, operation in [("/v1/calls", "post"), ("/v1/agents", "post"), ("/v1/numbers", "post")]:
        headers = [p["name"] for p in schema["paths"][path][operation].get("parameters", []) if p["in"] == "header"]
        assert headers == ["Idempotency-Key"], path
    assert schema["paths"]["/v1/calls"]["post"]["responses"]["202"]


@pytest.mark.django_db
def test_schema_lists_the_recording_download_and_the_end_operation(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target))
    paths = yaml.safe_load(target.read_text())["paths"]
    recording = paths["/v1/calls/{call_id}/recording"]["get"]
    assert recording["operationId"] == "calls_recording"
    assert set(recording["responses"]["200"]["content"]) == set(recording["responses"]["206"]["content"]) == {"audio/*"}
    assert (
        recording["responses"]["416"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
    )
    assert [p["name"] for p in recording["parameters"] if p["in"] == "header"] == ["Range"]
    end = paths["/v1/calls/{call_id}/end"]["post"]
    assert end["operationId"] == "calls_end"
    assert "requestBody" not in end
    assert set(end["responses"]) >= {"202", "404", "409"}
    assert [p["name"] for p in end["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]


@pytest.mark.django_db
def test_schema_lists_the_knowledge_document_operations(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target))
    paths = yaml.safe_load(target.read_text())["paths"]
    collection, item = paths["/v1/agents/{agent_id}/documents"], paths["/v1/agents/{agent_id}/documents/{document_id}"]
    assert {method: op["operationId"] for method, op in collection.items()} == {
        "get": "agents_documents_list",
        "post": "agents_documents_create",
    }
    assert {method: op["operationId"] for method, op in item.items()} == {
        "get": "agents_documents_retrieve",
        "patch": "agents_documents_update",
        "delete": "agents_documents_delete",
    }
    assert set(collection["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {p["name"] for p in collection["get"]["parameters"] if p["in"] == "query"} == {"limit", "offset"}
    assert [p["name"] for p in collection["post"]["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
