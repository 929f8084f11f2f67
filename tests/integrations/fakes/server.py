"""One HTTP server on 127.0.0.1 answering like each provider, for the calls the verification checks make.

The real SDKs talk to it, so it follows the wire formats of the providers' public APIs and of the
installed SDKs' source:

- Anthropic: GET /v1/models?limit=1 with `x-api-key` and `anthropic-version`; errors are
  {"type": "error", "error": {"type", "message"}, "request_id"}.
- Deepgram: GET /v1/projects with `Authorization: Token <key>`; errors are {"err_code", "err_msg", "request_id"}.
- GoTo's OAuth server: POST /oauth/token, client-credentials grant with HTTP Basic client authentication
  (RFC 6749 section 2.3.1); errors are {"error", "error_description"}.
- LiveKit: Twirp POST /twirp/livekit.RoomService/ListRooms with a protobuf body and `Authorization: Bearer
  <JWT>` (HS256 with the API secret, iss = API key, video.roomList); errors are Twirp JSON {"code", "msg"}.
- Twilio: GET /2010-04-01/Accounts/{AccountSid}.json with HTTP Basic (Account SID : auth token); the
  account resource answers with its `auth_token` in it, as Twilio's does, so scrubbing is tested; errors are
  {"code", "message", "more_info", "status"}.
- A tenant backend: GET /check with `Authorization: Bearer <value>`, or /check-key with `X-API-Key`. Its 401
  echoes the token it was given, as careless backends do, so that scrubbing is tested.
"""

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from livekit import api

CREDENTIALS = {
    "anthropic": {"api_key": "fake-ant-api03-valid-0123456789abcdefWXYZ"},
    "deepgram": {"api_key": "dg-valid-0123456789abcdef0123456789abcdefDGKY"},
    "gotoconnect": {"client_id": "goto-client-0001", "client_secret": "goto-secret-0123456789abcdefGOTO"},
    "livekit": {"api_key": "APIvalidKey0001", "api_secret": "lk-secret-0123456789abcdef0123456789abcdefLIVE"},
    "twilio": {"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef0123456789abTWIL"},
    "http": {"value": "backend-token-0123456789abcdefHTTP"},
}
TWILIO_ACCOUNT = f"/2010-04-01/Accounts/{CREDENTIALS['twilio']['account_sid']}.json"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


def _json(status: int, payload, **headers) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()


def anthropic_models(request: Request):
    if request.headers.get("x-api-key") != CREDENTIALS["anthropic"]["api_key"]:
        error = {"type": "authentication_error", "message": "invalid x-api-key"}
        return _json(401, {"type": "error", "error": error, "request_id": "req_fake01"}, **{"request-id": "req_fake01"})
    model = {
        "type": "model",
        "id": "claude-sonnet-4-20250514",
        "display_name": "Claude Sonnet 4",
        "created_at": "2025-05-22T00:00:00Z",
        "lifecycle": "active",
    }
    return _json(200, {"data": [model], "has_more": True, "first_id": model["id"], "last_id": model["id"]})


def deepgram_projects(request: Request):
    if request.headers.get("Authorization") != f"Token {CREDENTIALS['deepgram']['api_key']}":
        error = {"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "5b4bd0d2-fake"}
        return _json(401, error)
    return _json(200, {"projects": [{"project_id": "3f5e3c5e-fake", "name": "Acme Dental"}]})


def livekit_list_rooms(request: Request):
    if request.headers.get("Content-Type") != "application/protobuf":
        return _json(415, {"code": "malformed", "msg": "unexpected Content-Type"})
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return _json(401, {"code": "unauthenticated", "msg": "invalid token"})
    if issuer != CREDENTIALS["livekit"]["api_key"]:
        return _json(401, {"code": "unauthenticated", "msg": f"invalid API key: {issuer}"})
    try:
        claims = jwt.decode(token, CREDENTIALS["livekit"]["api_secret"], algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        # As LiveKit's server does, the refusal quotes the token it got (whose payload names the API key).
        return _json(401, {"code": "unauthenticated", "msg": f"invalid token: {token}, error: {exc}"})
    if not claims.get("video", {}).get("roomList"):
        return _json(403, {"code": "permission_denied", "msg": "permissions denied"})
    rooms = api.ListRoomsResponse(rooms=[api.Room(name="call-demo", sid="RM_fake")])
    return 200, {"Content-Type": "application/protobuf"}, rooms.SerializeToString()


def twilio_account(request: Request):
    account = CREDENTIALS["twilio"]
    basic = base64.b64encode(f"{account['account_sid']}:{account['auth_token']}".encode()).decode()
    if request.headers.get("Authorization") != f"Basic {basic}":
        error = {"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003"}
        return _json(401, {**error, "status": 401})
    return _json(
        200,
        {
            "auth_token": account["auth_token"],
            "date_created": "Thu, 03 Dec 2026 10:00:00 +0000",
            "date_updated": "Thu, 03 Dec 2026 10:00:00 +0000",
            "friendly_name": "Acme Dental",
            "owner_account_sid": account["account_sid"],
            "sid": account["account_sid"],
            "status": "active",
            "subresource_uris": {},
            "type": "Full",
            "uri": TWILIO_ACCOUNT,
        },
    )


def backend_check(request: Request, presented: str, expected: str):
    if presented != expected:
        return _json(401, {"error": f"token {presented!r} is not valid"})
    return _json(200, {"ok": True})


ROUTES = {
    ("GET", "/v1/models"): anthropic_models,
    ("GET", "/v1/projects"): deepgram_projects,
    ("POST", "/twirp/livekit.RoomService/ListRooms"): livekit_list_rooms,
    ("GET", TWILIO_ACCOUNT): twilio_account,
    ("GET", "/check"): lambda r: backend_check(
        r, r.headers.get("Authorization", ""), f"Bearer {CREDENTIALS['http']['value']}"
    ),
    ("GET", "/check-key"): lambda r: backend_check(r, r.headers.get("X-API-Key", ""), CREDENTIALS["http"]["value"]),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: tests read FakeProviders.requests instead
        pass

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def _answer(self, method: str):
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(method, parts.path, parse_qs(parts.query), _Headers(self.headers.items()), body)
        self.server.fake.requests.append(request)
        route = ROUTES.get((method, parts.path))
        status, headers, payload = route(request) if route else (404, {}, b"no such route")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Headers(dict):
    """Request headers, looked up case-insensitively like HTTP's."""

    def __init__(self, items):
        super().__init__((name.lower(), value) for name, value in items)

    def get(self, name, default=None):
        return super().get(name.lower(), default)


@dataclass
class FakeProviders:
    url: str
    requests: list[Request] = field(default_factory=list)

    def secret(self, provider: str) -> dict:
        """A secret the fake accepts, with its URLs pointing here."""
        urls = {"livekit": {"url": self.url}, "http": {"check_url": f"{self.url}/check"}}
        return {**CREDENTIALS[provider], **urls.get(provider, {})}


_server: ThreadingHTTPServer | None = None


def fake_providers() -> FakeProviders:
    """The process's one fake server, started on first use (a daemon thread, gone with the process)."""
    global _server
    if _server is None:
        _server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        _server.daemon_threads = True
        _server.fake = FakeProviders(url=f"http://127.0.0.1:{_server.server_address[1]}")
        threading.Thread(target=_server.serve_forever, daemon=True).start()
    return _server.fake


@pytest.fixture(name="providers")
def providers_fixture(settings):
    """Point every provider setting at the fake server; import this into a test module to use `providers`."""
    fake = fake_providers()
    fake.requests.clear()
    settings.ANTHROPIC_BASE_URL = fake.url
    settings.DEEPGRAM_BASE_URL = fake.url
    settings.TWILIO_API_BASE_URL = fake.url
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True  # the fake listens on 127.0.0.1
    return fake
