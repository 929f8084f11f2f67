"""Request ids and structured JSON logs (docs/operations.md#observability)."""

import io
import json
import logging

import pytest
from django.test import override_settings

from core.logging import ContextFilter, JsonFormatter, call_id_var, tenant_id_var


@pytest.fixture
def json_log():
    """Attach the platform's JSON handler to the root logger and return its output buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


@pytest.mark.django_db
def test_request_id_is_generated_and_returned(client):
    response = client.get("/health")
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_a_callers_request_id_is_echoed(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="trace-abc.123")
    assert response["X-Request-ID"] == "trace-abc.123"


@pytest.mark.django_db
@pytest.mark.parametrize("bad_id", ["has space", "x" * 129, "line\nbreak", "<script>"])
def test_an_unsafe_request_id_is_replaced(client, bad_id):
    response = client.get("/health", HTTP_X_REQUEST_ID=bad_id)
    assert response["X-Request-ID"] != bad_id
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_log_lines_inside_a_request_carry_its_request_id(client, json_log):
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    with override_settings(CACHES=caches):
        response = client.get("/ready", HTTP_X_REQUEST_ID="req-42")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    warning = next(line for line in lines if line["message"].startswith("readiness check cache failed"))
    assert response.status_code == 503
    assert warning["request_id"] == "req-42"
    assert warning["level"] == "WARNING"
    assert warning["logger"] == "core.health"
    assert warning["service"] == "voiceapp"
    assert {"timestamp", "instance", "tenant_id", "call_id"} <= set(warning)


def test_tenant_and_call_ids_come_from_the_context(json_log):
    tenant_token, call_token = tenant_id_var.set("t-1"), call_id_var.set("c-9")
    try:
        logging.getLogger("voiceapp.test").warning("turn stored")
    finally:
        tenant_id_var.reset(tenant_token)
        call_id_var.reset(call_token)
    line = json.loads(json_log.getvalue().splitlines()[-1])
    assert (line["tenant_id"], line["call_id"], line["message"]) == ("t-1", "c-9", "turn stored")


def test_a_token_quoted_in_a_log_line_is_masked(json_log):
    import jwt

    token = jwt.encode({"iss": "APIsomeKey123"}, "a-secret-of-at-least-thirty-two-bytes", algorithm="HS256")
    logging.getLogger("livekit").warning("refused: invalid token: %s, error: bad signature", token)
    line = json.loads(json_log.getvalue().splitlines()[-1])
    assert line["message"] == "refused: invalid token: ••••, error: bad signature"
    assert "eyJ" not in json_log.getvalue()
