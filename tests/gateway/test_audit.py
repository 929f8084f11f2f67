"""Audit rows, log lines and metrics of gateway calls; redaction everywhere they appear.

These tests are synchronous and drive the gateway through async_to_sync, the way a Celery task does:
the audit write then runs on the test's own database connection, inside its transaction.
"""

import io
import json
import logging

import pytest
from asgiref.sync import async_to_sync
from prometheus_client import REGISTRY

from core.logging import JsonFormatter
from integrations.gateway import GatewayConfigError, GatewayHTTPError, GatewayRateLimited, GatewayUnavailable
from integrations.gateway.client import Gateway, request_sync
from integrations.models import OutboundRequest
from tests.gateway.conftest import DictResolver, Sleeps, make_service
from tests.gateway.server import Reply

SECRETS = {"API_TOKEN": "tok-3f9a7c1e", "PASSWORD": "hunter2-pass"}
SENSITIVE = ["tok-3f9a7c1e", "hunter2-pass", "4111111111111111", "123-45-6789", "s3cr3t-in-query"]


@pytest.fixture
def resolver():
    return DictResolver(SECRETS)


@pytest.fixture
def log_output():
    """The gateway's log lines as the platform's JSON formatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("integrations.gateway")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def call(service, tenant, resolver, **kwargs):
    async def go():
        async with Gateway(redis_url="", sleep=Sleeps(), rand=lambda: 1.0) as gateway:
            return await gateway.request(service, tenant_id=tenant.id, resolver=resolver, **kwargs)

    return async_to_sync(go)()


def rows(tenant):
    return list(OutboundRequest.objects.for_tenant(tenant).order_by("created_at", "id"))


def test_one_row_per_call_with_every_attempt_counted(server, tenant, resolver):
    server.script("/r", Reply(503), Reply(200, json={"id": 1}))
    service = make_service(server.url, name="ticketing")
    call(service, tenant, resolver, path="/r", method="GET", params={"q": "x"}, call_session_id="abc-123-def")
    (row,) = rows(tenant)
    assert (row.service, row.method, row.url) == ("ticketing", "GET", f"{server.url}/r?q=x")
    assert (row.call_session_id, row.outcome, row.status_code, row.retry_count) == ("abc-123-def", "ok", 200, 1)
    assert row.duration_ms >= 0 and row.error == ""
    assert (row.request_headers, row.request_body, row.response_body) == (None, None, None)


def test_failed_calls_are_audited_with_their_outcome(server, tenant, resolver):
    server.script("/r", Reply(404, body=b"no such ticket"))
    service = make_service(server.url, circuit_breaker={"threshold": 1}, retry={"max_attempts": 1})
    with pytest.raises(GatewayHTTPError):
        call(service, tenant, resolver, path="/r")
    server.script("/r", Reply(500))
    with pytest.raises(GatewayHTTPError):
        call(service, tenant, resolver, path="/r")
    with pytest.raises(GatewayUnavailable):
        call(service, tenant, resolver, path="/r")
    missing = make_service(server.url, name="other", headers={"X-Key": "${NOPE}"})
    with pytest.raises(GatewayConfigError):
        call(missing, tenant, resolver, path="/r")
    audited = [(r.service, r.outcome, r.status_code) for r in rows(tenant)]
    assert audited == [
        ("backend", "http_error", 404),
        ("backend", "http_error", 500),
        ("backend", "circuit_open", None),
        ("other", "config_error", None),
    ]
    assert rows(tenant)[0].error == "Service 'backend' answered HTTP 404 (1 attempt(s)). no such ticket"
    assert "${NOPE}" in rows(tenant)[3].error


def test_a_rate_limited_call_is_audited(server, tenant, resolver):
    server.script("/r", Reply(200))
    service = make_service(server.url, rate_limit={"requests_per_second": 1, "burst": 1, "queue_depth": 0})
    call(service, tenant, resolver, path="/r")
    with pytest.raises(GatewayRateLimited):
        call(service, tenant, resolver, path="/r")
    assert [r.outcome for r in rows(tenant)] == ["ok", "rate_limited"]


def echo(request):
    return Reply(200, json={"echo": request.json(), "auth": request.headers.get("authorization")})


def test_redacted_values_appear_nowhere(server, tenant, resolver, log_output):
    server.script("/r", echo)
    service = make_service(
        server.url,
        headers={"Authorization": "Bearer ${API_TOKEN}", "X-Password": "${PASSWORD}", "X-Trace": "t-1"},
        logging={"include_payload": True, "include_headers": True, "redact": ["password", "ssn", "credit_card"]},
    )
    payload = {
        "user": {"name": "Ann", "Password": "hunter2-pass", "cards": [{"creditCard": "4111111111111111"}]},
        "SSN": "123-45-6789",
        "note": "the token tok-3f9a7c1e was pasted here",
    }
    call(service, tenant, resolver, path="/r", json=payload, params={"ssn": "s3cr3t-in-query", "page": "2"})
    (row,) = rows(tenant)
    recorded = json.dumps([row.url, row.error, row.request_headers, row.request_body, row.response_body])
    for value in SENSITIVE:
        assert value not in recorded
        assert value not in log_output.getvalue()
    assert row.request_body == {
        "user": {"name": "Ann", "Password": "[REDACTED]", "cards": [{"creditCard": "[REDACTED]"}]},
        "SSN": "[REDACTED]",
        "note": "the token [REDACTED] was pasted here",
    }
    assert row.response_body["echo"] == row.request_body
    assert row.response_body["auth"] == "Bearer [REDACTED]"
    assert row.request_headers["Authorization"] == "[REDACTED]"
    assert row.request_headers["X-Password"] == "[REDACTED]"
    assert row.request_headers["X-Trace"] == "t-1"
    assert row.url == f"{server.url}/r?ssn=[REDACTED]&page=2"


def test_the_log_line_has_the_seeds_fields(server, tenant, resolver, log_output):
    server.script("/r", Reply(200))
    call(make_service(server.url, name="ticketing"), tenant, resolver, path="/r", call_session_id="abc-123-def")
    line = json.loads(log_output.getvalue().splitlines()[-1])
    assert {k: line[k] for k in ("backend_service", "method", "call_session_id", "status", "retry_count")} == {
        "backend_service": "ticketing",
        "method": "POST",
        "call_session_id": "abc-123-def",
        "status": "OK",
        "retry_count": 0,
    }
    assert isinstance(line["duration_ms"], int)


def sample(name, tenant, service="backend", **labels):
    return REGISTRY.get_sample_value(name, {"tenant": str(tenant.id), "service": service, **labels}) or 0.0


def test_metrics_after_a_run(server, tenant, resolver):
    server.script("/r", Reply(503), Reply(200), Reply(503))
    service = make_service(server.url, retry={"max_attempts": 2}, circuit_breaker={"threshold": 1})
    call(service, tenant, resolver, path="/r", method="GET")  # 503, retried, 200
    with pytest.raises(GatewayHTTPError):
        call(service, tenant, resolver, path="/r", method="GET")  # 503 twice: the breaker opens
    with pytest.raises(GatewayUnavailable):
        call(service, tenant, resolver, path="/r", method="GET")
    assert sample("vg_integration_requests_total", tenant) == 3
    assert sample("vg_integration_retries_total", tenant) == 2
    assert sample("vg_integration_errors_total", tenant, outcome="http_error") == 1
    assert sample("vg_integration_errors_total", tenant, outcome="circuit_open") == 1
    assert sample("vg_integration_request_duration_seconds_count", tenant) == 3
    assert sample("vg_integration_circuit_breaker_state", tenant) == 1
    assert sample("vg_integration_rate_limited_total", tenant) == 0


def test_request_sync_for_celery_tasks(server, tenant, resolver):
    server.script("/r", Reply(200, json={"done": True}))
    service = make_service(server.url, headers={"Authorization": "Bearer ${API_TOKEN}"})
    response = request_sync(service, tenant_id=tenant.id, resolver=resolver, path="/r", json={"a": 1})
    assert (response.json(), response.attempts) == ({"done": True}, 1)
    assert [r.outcome for r in rows(tenant)] == ["ok"]
