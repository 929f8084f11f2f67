"""The benchmark's baseline: GET /v1/calls/{id} as a bare WSGI app, no framework.

It does the same work the platform does for that request, and nothing else: find the API key by the
SHA-256 of the X-API-Key header (refusing revoked or expired keys and suspended or closed tenants),
load the tenant's call with its transcript turns, events and tool calls from PostgreSQL with psycopg,
and answer the same JSON body. One connection per worker process, kept open (the platform keeps its
connection too: DATABASE_CONN_MAX_AGE). Served by the same gunicorn command as the platform, so the
difference between the two is what Django, DRF and the platform's middleware cost.

Run: gunicorn --pythonpath bench bare_wsgi:application (DATABASE_URL must be set).
"""

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime

import psycopg

DATABASE_URL = os.environ["DATABASE_URL"]
API_KEY_PREFIX = "vk_live_"

KEY_SQL = """
    SELECT k.tenant_id, k.revoked_at, k.expires_at, t.status, t.deleted_at
    FROM tenants_apikey k JOIN tenants_tenant t ON t.id = k.tenant_id
    WHERE k.key_hash = %s
"""
CALL_SQL = """
    SELECT id, agent_id, phone_number_id, direction, status, from_number, to_number, external_call_id, room_name,
           started_at, answered_at, ended_at, duration_seconds, end_reason, metadata, created_at
    FROM calls_call WHERE tenant_id = %s AND id = %s
"""
TURNS_SQL = """
    SELECT turn_number, speaker, text, confidence, started_at, ended_at, interrupted, metadata
    FROM calls_transcriptturn WHERE call_id = %s ORDER BY turn_number
"""
EVENTS_SQL = (
    "SELECT sequence, event_type, payload, occurred_at FROM calls_callevent WHERE call_id = %s ORDER BY sequence"
)
TOOL_CALLS_SQL = """
    SELECT id, tool_name, arguments, result, status, error, http_status, started_at, ended_at, duration_ms
    FROM calls_toolcall WHERE call_id = %s ORDER BY started_at, id
"""
CALL_FIELDS = [
    "id", "agent_id", "phone_number_id", "direction", "status", "from_number", "to_number", "external_call_id",
    "room_name", "started_at", "answered_at", "ended_at", "duration_seconds", "end_reason", "metadata", "created_at",
]  # fmt: skip
TURN_FIELDS = ["turn_number", "speaker", "text", "confidence", "started_at", "ended_at", "interrupted", "metadata"]
EVENT_FIELDS = ["sequence", "event_type", "payload", "occurred_at"]
TOOL_CALL_FIELDS = [
    "id", "tool_name", "arguments", "result", "status", "error", "http_status", "started_at", "ended_at", "duration_ms",
]  # fmt: skip

_connection: dict[str, psycopg.Connection] = {}  # one per worker process, opened on its first request


def _db() -> psycopg.Connection:
    connection = _connection.get("default")
    if connection is None or connection.closed:
        connection = _connection["default"] = psycopg.connect(DATABASE_URL, autocommit=True, options="-c TimeZone=UTC")
    return connection


def _value(value):
    """JSON values as DRF renders them: ISO-8601 times with Z, UUIDs as strings."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()  # as DRF's JSONRenderer


def _row(fields, row) -> dict:
    return {name: _value(value) for name, value in zip(fields, row, strict=True)}


def _error(start_response, status: str, type_: str, code: str, message: str) -> list[bytes]:
    body = _json({"error": {"type": type_, "code": code, "message": message, "fields": {}}})
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _tenant_for_key(cursor, raw_key: str):
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    cursor.execute(KEY_SQL, (hashlib.sha256(raw_key.encode()).hexdigest(),))
    found = cursor.fetchone()
    if found is None:
        return None
    tenant_id, revoked_at, expires_at, tenant_status, tenant_deleted_at = found
    if revoked_at is not None or (expires_at is not None and expires_at <= datetime.now(UTC)):
        return None
    if tenant_status != "active" or tenant_deleted_at is not None:
        return None
    return tenant_id


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/health":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if environ["REQUEST_METHOD"] != "GET" or not path.startswith("/v1/calls/"):
        return _error(start_response, "404 Not Found", "invalid_request_error", "resource_missing", "No such URL.")
    try:
        call_id = uuid.UUID(path.removeprefix("/v1/calls/"))
    except ValueError:
        return _error(start_response, "404 Not Found", "invalid_request_error", "resource_missing", "No such URL.")

    with _db().cursor() as cursor:
        tenant_id = _tenant_for_key(cursor, environ.get("HTTP_X_API_KEY", "").strip())
        if tenant_id is None:
            return _error(start_response, "401 Unauthorized", "authentication_error", "api_key_invalid", "Bad key.")
        cursor.execute(CALL_SQL, (tenant_id, call_id))
        call = cursor.fetchone()
        if call is None:
            return _error(start_response, "404 Not Found", "invalid_request_error", "resource_missing", "No such call.")
        body = _row(CALL_FIELDS, call)
        cursor.execute(TURNS_SQL, (call_id,))
        body["transcript"] = [_row(TURN_FIELDS, row) for row in cursor.fetchall()]
        cursor.execute(EVENTS_SQL, (call_id,))
        body["events"] = [_row(EVENT_FIELDS, row) for row in cursor.fetchall()]
        cursor.execute(TOOL_CALLS_SQL, (call_id,))
        body["tool_calls"] = [_row(TOOL_CALL_FIELDS, row) for row in cursor.fetchall()]

    payload = _json(body)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
