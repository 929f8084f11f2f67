"""A fake GoTo OAuth server and the two account reads of the consent, on 127.0.0.1.

It speaks what GoTo documents (docs/telephony.md#connecting-goto):

- `GET /oauth/authorize?client_id&response_type=code&redirect_uri&scope&state`: the user "consents" at
  once (or refuses, with `deny`) and the browser is sent to `redirect_uri?code=...&state=...` (or
  `?error=access_denied&state=...`);
- `POST /oauth/token`, form-encoded, the client as HTTP Basic: `grant_type=authorization_code` (code,
  redirect_uri; a code works once) and `grant_type=refresh_token`. Answers carry access_token,
  token_type, expires_in, scope, principal and (see `refresh_mode`) refresh_token; refusals are
  RFC 6749 errors (`invalid_client` 401, `invalid_grant` 400);
- `GET /admin/rest/v1/me` -> {"accounts": [{"key"}], "email"} and `GET /users/v1/lines` ->
  {"items": [{"id", "number", "name", "organization": {"id", "name"}, "accountKey", "primary"}]},
  both with a Bearer token it issued.
"""

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "voiceapp-goto-client"
CLIENT_SECRET = "goto-client-secret-0123456789abcdefSECRET"
ACCOUNT_KEY = "4266642390208969477"
ORGANIZATION_ID = "0127d974-f9f3-0704-2dee-000100420001"
LINE_ID = "9bd2a3f2-6c44-4b41-8e1d-fake-line-0001"
EXTENSION = "1001"
PRINCIPAL = "admin@acme-dental.example"


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    form: dict


@dataclass
class FakeGoToOAuth:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    expires_in: int = 3600
    refresh_mode: str = "rotate"  # "rotate": a new refresh token each time, the old one dies; "omit": none sent
    deny: bool = False
    lines: list[dict] | None = None  # None: one primary line (EXTENSION)
    codes: dict[str, dict] = field(default_factory=dict)  # code -> {"redirect_uri", "scope"}
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # live refresh token -> scope
    access_tokens: set[str] = field(default_factory=set)
    issued: list[dict] = field(default_factory=list)  # every token answer, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    def revoke_all(self) -> None:
        """The user removed the app's access at GoTo: every refresh token stops working."""
        with self.lock:
            self.refresh_tokens.clear()

    def token_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path == "/oauth/token"]

    # --- routes ---------------------------------------------------------------------------------------

    def authorize(self, seen: Seen):
        query = {k: v[0] for k, v in seen.query.items()}
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return 400, {"Content-Type": "text/plain"}, b"invalid_request"
        back = {"state": query.get("state", "")}
        if self.deny:
            back = {"error": "access_denied", "error_description": "The user denied access", **back}
        else:
            code = secrets.token_urlsafe(16)
            with self.lock:
                self.codes[code] = {"redirect_uri": query.get("redirect_uri", ""), "scope": query.get("scope", "")}
            back = {"code": code, **back}
        return 302, {"Location": f"{query.get('redirect_uri', '')}?{urlencode(back)}"}, b""

    def token(self, seen: Seen):
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if seen.headers.get("authorization") != f"Basic {basic}":
            return _error(401, "invalid_client", "Bad client credentials")
        form = {k: v[0] for k, v in seen.form.items()}
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                pending = self.codes.pop(form.get("code", ""), None)
                if pending is None or pending["redirect_uri"] != form.get("redirect_uri"):
                    return _error(400, "invalid_grant", "Invalid authorization code")
                return self._issue(pending["scope"], refresh=True)
            if form.get("grant_type") == "refresh_token":
                scope = self.refresh_tokens.get(form.get("refresh_token", ""))
                if scope is None:
                    return _error(400, "invalid_grant", "Invalid refresh token")
                if self.refresh_mode == "rotate":
                    del self.refresh_tokens[form["refresh_token"]]
                return self._issue(scope, refresh=self.refresh_mode == "rotate")
        return _error(400, "unsupported_grant_type", "Unsupported grant type")

    def _issue(self, scope: str, *, refresh: bool):
        access = f"goto-at-{secrets.token_urlsafe(18)}"
        self.access_tokens.add(access)
        answer = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": scope,
            "principal": PRINCIPAL,
        }
        if refresh:
            answer["refresh_token"] = f"goto-rt-{secrets.token_urlsafe(18)}"
            self.refresh_tokens[answer["refresh_token"]] = scope
        self.issued.append(answer)
        return _json(200, answer)

    def _bearer_ok(self, seen: Seen) -> bool:
        return seen.headers.get("authorization", "").removeprefix("Bearer ") in self.access_tokens

    def me(self, seen: Seen):
        if not self._bearer_ok(seen):
            return _json(401, {"errorCode": "AUTHN_INVALID_TOKEN", "message": "Invalid token"})
        return _json(200, {"key": "8830312417", "email": PRINCIPAL, "accounts": [{"key": ACCOUNT_KEY, "name": "Acme"}]})

    def user_lines(self, seen: Seen):
        if not self._bearer_ok(seen):
            return _json(401, {"errorCode": "AUTHN_INVALID_TOKEN", "message": "Invalid token"})
        lines = self.lines
        if lines is None:
            lines = [
                {
                    "id": LINE_ID,
                    "number": EXTENSION,
                    "name": "Front desk",
                    "organization": {"id": ORGANIZATION_ID, "name": "Acme Dental"},
                    "accountKey": ACCOUNT_KEY,
                    "primary": True,
                }
            ]
        return _json(200, {"items": lines})

    # --- server ---------------------------------------------------------------------------------------

    def start(self) -> "FakeGoToOAuth":
        fake = self
        routes = {
            ("GET", "/oauth/authorize"): self.authorize,
            ("POST", "/oauth/token"): self.token,
            ("GET", "/admin/rest/v1/me"): self.me,
            ("GET", "/users/v1/lines"): self.user_lines,
        }

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def _answer(self, method):
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                form = parse_qs(body) if "form-urlencoded" in headers.get("content-type", "") else {}
                seen = Seen(method, parts.path, parse_qs(parts.query), headers, form)
                fake.requests.append(seen)
                route = routes.get((method, parts.path))
                status, answer_headers, payload = route(seen) if route else (404, {}, b"no such route")
                self.send_response(status)
                for name, value in answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json(status: int, body: dict):
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _error(status: int, error: str, description: str):
    return _json(status, {"error": error, "error_description": description})


def point_settings_at(fake: FakeGoToOAuth, settings) -> None:
    settings.GOTO_CLIENT_ID = CLIENT_ID
    settings.GOTO_CLIENT_SECRET = CLIENT_SECRET
    settings.GOTO_OAUTH_AUTHORIZE_URL = fake.authorize_url
    settings.GOTO_OAUTH_TOKEN_URL = fake.token_url
    settings.GOTO_ADMIN_API_BASE_URL = fake.url
    settings.GOTO_API_BASE_URL = fake.url
    settings.GOTO_OAUTH_REDIRECT_URI = ""
