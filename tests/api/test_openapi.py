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
