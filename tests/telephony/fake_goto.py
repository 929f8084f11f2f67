"""A fake GoToConnect on 127.0.0.1: the OAuth2 token endpoint, REST call control and the events WebSocket.

It speaks the wire contract of `telephony/goto/wire.py` but spells every path, field and event name
itself, on purpose: a typo in the client's wire module then fails the tests instead of being copied
into its test double.

    fake = FakeGoTo().start()             # sync tests: its own event loop in a background thread
    async with FakeGoTo() as fake: ...    # async tests: served on the test's own loop

Drive it from tests:
- `emit(name, data, repeat=1) -> id` sends an event to every subscriber (thread-safe); every event is
  logged, and a subscription with `since` replays the log after that id ("": all of it); the
  acknowledgement's `cursor` is the newest id at that moment ("" for an empty log);
- `ring(from_, to)` registers an inbound call and emits call.ringing; `hangup_remote(call_id)` call.ended;
- `fail_next(pattern, status, times=1, retry_after=None, delay=0.0)` injects errors (or stalls);
- `expire_tokens()` invalidates every token (REST answers 401, sockets close with 4001);
- `drop_connections()` cuts every socket without a close frame;
- hooks (async or plain callables, None for the default behaviour), run on the fake's own loop:
  `on_create_call(body) -> {"call_id"?, "events"?}`, `on_answer(call_id) -> offer SDP`,
  `on_sdp_answer(call_id, sdp)`, `on_blind_transfer(call_id, body)`, `on_warm_transfer(call_id, body)`,
  `on_merge(call_id, body)` (these three may return {"events": [...]}) and `on_hangup(call_id)`.
  "events" is a script: a list of {"event": name, "data": {...}, "after": seconds since the previous step}
  (call_id is filled in); see `dialing_then_connected()` and `dialing_then_failed()`.
- `requests`, `token_requests`, `calls` (call id -> state), `sdp_answers` record what happened;
  `wait_for_request` / `await_request` and `wait_for_subscribers` / `await_subscribers` wait for them.
"""

import asyncio
import base64
import inspect
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

CALLS = "/web-calls/v1/calls"
TOKEN_PATH = "/oauth/token"
EVENTS_PATH = "/realtime"
DIAL_STRING = re.compile(r"^(tel:\+[1-9][0-9]{1,14}|ext:[0-9]{1,10})\Z")
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_BAD_SUBSCRIBE = 4400

# A syntactically valid audio offer for tests that never negotiate media; media tests set `on_answer`.
DEFAULT_OFFER_SDP = (
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:fake\r\n"
    "a=ice-pwd:fakefakefakefakefakefake\r\n"
    "a=fingerprint:sha-256 "
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
)


@dataclass
class Recorded:
    """One REST request as it reached the fake (`path` as sent, percent-encoding kept)."""

    method: str
    path: str
    json: Any
    token: str | None
    status: int = 0


@dataclass
class TokenRequest:
    client_id: str
    grant_type: str
    scope: str
    status: int = 0


@dataclass
class _Failure:
    pattern: re.Pattern
    status: int | None
    times: int
    retry_after: str | None
    delay: float
    method: str | None
    message: str | None = None


@dataclass
class _Subscriber:
    ws: web.WebSocketResponse
    request: web.Request
    token: str
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def dialing_then_connected(connect_after: float = 0.05) -> list[dict]:
    """The default outbound script: call.dialing at once, call.connected a little later."""
    return [
        {"event": "call.dialing", "data": {}, "after": 0.0},
        {"event": "call.connected", "data": {"answered_at": None}, "after": connect_after},
    ]


def dialing_then_failed(reason: str, fail_after: float = 0.05) -> list[dict]:
    """An outbound call that does not connect: reason no_answer, busy, voicemail, rejected or error."""
    return [
        {"event": "call.dialing", "data": {}, "after": 0.0},
        {"event": "call.failed", "data": {"reason": reason}, "after": fail_after},
    ]


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


async def _call_hook(hook, *args):
    result = hook(*args)
    return await result if inspect.isawaitable(result) else result


class FakeGoTo:
    """See the module docstring."""

    def __init__(self, *, client_id: str = "fake-client-id", client_secret: str = "fake-client-secret"):  # noqa: S107
        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in = 3600
        self.requests: list[Recorded] = []
        self.token_requests: list[TokenRequest] = []
        self.events: list[dict] = []  # every event emitted, in order (the replay log)
        self.calls: dict[str, str] = {}  # call id -> ringing, dialing, connected, held, transferred, merged, ended
        self.sdp_answers: dict[str, str] = {}
        self.hangups: list[str] = []
        self.subscriptions: list[dict] = []  # {"token", "since"} of every accepted subscribe
        self.on_create_call = self.on_answer = self.on_sdp_answer = None
        self.on_blind_transfer = self.on_warm_transfer = self.on_merge = self.on_hangup = None
        self._instance = secrets.token_hex(4)  # event ids unique across fakes (dedup stores outlive a test)
        self._event_numbers = itertools.count(1)
        self._call_numbers = itertools.count(1)
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._failures: list[_Failure] = []
        self._subscribers: list[_Subscriber] = []
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- addresses -----------------------------------------------------------------------------------------
    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.api_base_url}{TOKEN_PATH}"

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{EVENTS_PATH}"

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> "FakeGoTo":
        """Serve from a background thread with its own event loop (for sync tests; async ones can use it too)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve():
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._open(loop))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-goto", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    async def __aenter__(self) -> "FakeGoTo":
        await self._open(asyncio.get_running_loop())
        return self

    async def __aexit__(self, *exc) -> None:
        await self._close()

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        app = web.Application(middlewares=[self._rest_middleware])
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_get(EVENTS_PATH, self._events_socket)
        app.router.add_post(CALLS, self._create_call)
        app.router.add_post(CALLS + "/{call_id}/answer", self._answer)
        app.router.add_post(CALLS + "/{call_id}/sdp-answer", self._sdp_answer)
        app.router.add_put(CALLS + "/{call_id}/hold", self._hold)
        app.router.add_delete(CALLS + "/{call_id}/hold", self._resume)
        app.router.add_post(CALLS + "/{call_id}/blind-transfer", self._blind_transfer)
        app.router.add_post(CALLS + "/{call_id}/warm-transfer", self._warm_transfer)
        app.router.add_post(CALLS + "/{call_id}/merge", self._merge)
        app.router.add_delete(CALLS + "/{call_id}", self._hangup)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sub in list(self._subscribers):
            await sub.ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()

    # --- test controls (thread-safe) ---------------------------------------------------------------------
    def emit(self, name: str, data: dict | None = None, *, repeat: int = 1) -> str:
        """Log an event and send it `repeat` times to every subscriber; returns its id."""
        event = {
            "type": "event",
            "id": f"evt-{self._instance}-{next(self._event_numbers):06d}",
            "event": name,
            "timestamp": now_iso(),
            "data": dict(data or {}),
        }
        self._in_loop(self._publish, event, repeat)
        return event["id"]

    def ring(self, from_: str = "+15551234567", to: str = "+15559876543", *, call_id: str | None = None) -> str:
        """An inbound call: registered as ringing, announced with call.ringing; returns its call id."""
        call_id = call_id or f"in-{self._instance}-{next(self._call_numbers)}"
        with self._lock:
            self.calls[call_id] = "ringing"
        self.emit("call.ringing", {"call_id": call_id, "from": from_, "to": to, "direction": "inbound"})
        return call_id

    def hangup_remote(self, call_id: str, reason: str = "hangup") -> str:
        """The remote party hangs up: call.ended."""
        with self._lock:
            self.calls[call_id] = "ended"
        return self.emit("call.ended", {"call_id": call_id, "reason": reason})

    def fail_next(
        self,
        path_pattern: str,
        status: int | None,
        times: int = 1,
        retry_after: float | str | None = None,
        *,
        delay: float = 0.0,
        method: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next `times` requests whose path matches the regex get `status` (after `delay` s).

        status None with a delay stalls the request and then serves it normally, as a slow PBX would.
        """
        failure = _Failure(
            re.compile(path_pattern),
            status,
            times,
            None if retry_after is None else str(retry_after),
            delay,
            method.upper() if method else None,
            message,
        )
        with self._lock:
            self._failures.append(failure)

    def send_raw(self, text: str) -> None:
        """Send a raw text frame to every subscriber (malformed messages); it is not logged for replay."""
        self._in_loop(self._send_raw, text)

    def expire_tokens(self) -> None:
        """Every token issued so far stops working: the next call gets 401, open sockets close with 4001."""
        with self._lock:
            self._tokens.clear()
        self._in_loop(self._close_all, CLOSE_TOKEN_EXPIRED)

    def drop_connections(self) -> None:
        """Cut every events socket without a close frame (a network failure)."""
        self._in_loop(self._abort_all)

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def requests_to(self, path_pattern: str, method: str | None = None) -> list[Recorded]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.requests if pattern.search(r.path) and (method is None or r.method == method)]

    def wait_for_request(
        self, path_pattern: str, timeout: float = 5.0, *, method: str | None = None, count: int = 1
    ) -> Recorded:
        """Block until `count` matching requests arrived (sync tests); returns the count-th."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests_to(path_pattern, method)) >= count, timeout):
                raise AssertionError(f"no request to {path_pattern!r} within {timeout} s: {self.requests}")
            return self.requests_to(path_pattern, method)[count - 1]

    async def await_request(
        self, path_pattern: str, timeout: float = 5.0, *, method: str | None = None, count: int = 1
    ) -> Recorded:
        """`wait_for_request` for async tests (never blocks the loop)."""
        await self.until(lambda: len(self.requests_to(path_pattern, method)) >= count, timeout, path_pattern)
        return self.requests_to(path_pattern, method)[count - 1]

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._subscribers) >= count, timeout):
                raise AssertionError(f"{len(self._subscribers)} of {count} subscribers within {timeout} s")

    async def await_subscribers(self, count: int = 1, timeout: float = 5.0) -> None:
        await self.until(lambda: self.subscriber_count() >= count, timeout, f"{count} subscribers")

    @staticmethod
    async def until(condition, timeout: float = 5.0, what: str = "a condition") -> None:
        """Wait (in async tests) until `condition()` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    # --- plumbing --------------------------------------------------------------------------------------------
    def _in_loop(self, fn, *args) -> None:
        if self._loop is None:
            raise RuntimeError("FakeGoTo is not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish(self, event: dict, repeat: int = 1) -> None:
        with self._lock:
            self.events.append(event)
            for sub in self._subscribers:
                for _ in range(repeat):
                    sub.queue.put_nowait(event)

    def _send_raw(self, text: str) -> None:
        with self._lock:
            for sub in self._subscribers:
                sub.queue.put_nowait(text)

    def _close_all(self, code: int) -> None:
        with self._lock:
            subs, self._subscribers = self._subscribers, []
        for sub in subs:
            self._spawn(sub.ws.close(code=code, message=b"token expired"))

    def _abort_all(self) -> None:
        with self._lock:
            subs, self._subscribers = self._subscribers, []
        for sub in subs:
            if sub.request.transport is not None:
                sub.request.transport.abort()

    def _token_valid(self, token: str | None) -> bool:
        with self._lock:
            expiry = self._tokens.get(token or "")
        return expiry is not None and time.monotonic() < expiry

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.pattern.search(path) and failure.method in (None, method):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    async def _injected(self, method: str, path: str) -> web.Response | None:
        failure = self._take_failure(method, path)
        if failure is None:
            return None
        if failure.delay:
            await asyncio.sleep(failure.delay)
        if failure.status is None:
            return None
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else None
        message = failure.message or f"injected failure {failure.status}"
        return _error(failure.status, "injected", message, headers)

    def _run_script(self, call_id: str, steps: list[dict]) -> None:
        async def run():
            for step in steps:
                await asyncio.sleep(float(step.get("after", 0.0)))
                data = {"call_id": call_id, **step.get("data", {})}
                if step["event"] == "call.connected" and not data.get("answered_at"):
                    data["answered_at"] = now_iso()
                self._set_state(call_id, step["event"])
                self._publish(
                    {
                        "type": "event",
                        "id": f"evt-{self._instance}-{next(self._event_numbers):06d}",
                        "event": step["event"],
                        "timestamp": now_iso(),
                        "data": data,
                    }
                )

        if steps:
            self._spawn(run())

    def _set_state(self, call_id: str, event: str) -> None:
        states = {"call.connected": "connected", "call.failed": "ended", "call.ended": "ended"}
        if event in states:
            with self._lock:
                self.calls[call_id] = states[event]

    # --- OAuth2 token endpoint ---------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = _basic(request)
        record = TokenRequest(client_id, str(form.get("grant_type", "")), str(form.get("scope", "")))
        with self._changed:
            self.token_requests.append(record)
        response = await self._injected("POST", request.path) or self._issue(record, secret)
        record.status = response.status
        with self._changed:
            self._changed.notify_all()
        return response

    def _issue(self, record: TokenRequest, secret: str) -> web.Response:
        if record.client_id != self.client_id or secret != self.client_secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Bad client credentials"}, status=401
            )
        if record.grant_type != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"fake-at-{secrets.token_hex(12)}"
        with self._lock:
            self._tokens[token] = time.monotonic() + self.expires_in
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    # --- REST: recording, injected failures, bearer check --------------------------------------------------
    @web.middleware
    async def _rest_middleware(self, request: web.Request, handler):
        if not request.path.startswith(CALLS):
            return await handler(request)
        body = await request.json() if request.can_read_body else None
        token = _bearer(request)
        record = Recorded(request.method, request.raw_path.split("?", 1)[0], body, token)
        with self._changed:
            self.requests.append(record)
        response = await self._injected(request.method, record.path)
        if response is None and not self._token_valid(token):
            response = _error(401, "invalid_token", "The access token is missing, invalid or expired.")
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # aiohttp's own 404/405 for paths outside the contract
                response = _error(exc.status, "not_found" if exc.status == 404 else "bad_request", exc.reason)
        record.status = response.status
        with self._changed:
            self._changed.notify_all()
        return response

    def _known(self, request: web.Request) -> tuple[str, web.Response | None]:
        call_id = unquote(request.match_info["call_id"])
        with self._lock:
            state = self.calls.get(call_id)
        if state is None or state == "ended":
            return call_id, _error(404, "call_not_found", f"No active call {call_id}.")
        return call_id, None

    # --- REST: call control ------------------------------------------------------------------------------
    async def _create_call(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not DIAL_STRING.match(str(body.get("dial_string", ""))):
            return _error(400, "invalid_dial_string", "dial_string must be tel:+E164 or ext:<digits>.")
        plan = await _call_hook(self.on_create_call, body) if self.on_create_call else None
        plan = plan or {}
        call_id = plan.get("call_id") or f"out-{self._instance}-{next(self._call_numbers)}"
        with self._lock:
            self.calls[call_id] = "dialing"
        self._run_script(call_id, plan["events"] if "events" in plan else dialing_then_connected())
        return web.json_response({"call_id": call_id}, status=201)

    async def _answer(self, request: web.Request) -> web.Response:
        call_id, missing = self._known(request)
        if missing:
            return missing
        offer = await _call_hook(self.on_answer, call_id) if self.on_answer else DEFAULT_OFFER_SDP
        with self._lock:
            self.calls[call_id] = "answering"
        return web.json_response({"sdp": offer, "type": "offer"})

    async def _sdp_answer(self, request: web.Request) -> web.Response:
        call_id, missing = self._known(request)
        if missing:
            return missing
        body = await request.json()
        if body.get("type") != "answer" or not isinstance(body.get("sdp"), str) or not body["sdp"]:
            return _error(400, "invalid_sdp", 'Expected {"type": "answer", "sdp": "..."}.')
        with self._lock:
            self.sdp_answers[call_id] = body["sdp"]
            self.calls[call_id] = "connected"
        if self.on_sdp_answer:
            await _call_hook(self.on_sdp_answer, call_id, body["sdp"])
        return web.Response(status=204)

    async def _hold(self, request: web.Request) -> web.Response:
        return self._set(request, "held")

    async def _resume(self, request: web.Request) -> web.Response:
        return self._set(request, "connected")

    def _set(self, request: web.Request, state: str) -> web.Response:
        call_id, missing = self._known(request)
        if missing:
            return missing
        with self._lock:
            self.calls[call_id] = state
        return web.Response(status=204)

    async def _blind_transfer(self, request: web.Request) -> web.Response:
        call_id, missing = self._known(request)
        if missing:
            return missing
        body = await request.json()
        if not DIAL_STRING.match(str(body.get("dial_string", ""))):
            return _error(400, "invalid_dial_string", "dial_string must be tel:+E164 or ext:<digits>.")
        default = [{"event": "call.transferred", "data": {"transferred_to": body["dial_string"]}}]
        return await self._scripted(call_id, self.on_blind_transfer, body, default, "transferred")

    async def _warm_transfer(self, request: web.Request) -> web.Response:
        return await self._refer(request, self.on_warm_transfer, "call.transferred", "transferred_to", "transferred")

    async def _merge(self, request: web.Request) -> web.Response:
        return await self._refer(request, self.on_merge, "call.merged", "refer_id", "merged")

    async def _refer(self, request: web.Request, hook, event: str, key: str, state: str) -> web.Response:
        call_id, missing = self._known(request)
        if missing:
            return missing
        body = await request.json()
        refer_id = body.get("refer_id")
        if not isinstance(refer_id, str) or not refer_id:
            return _error(400, "invalid_request", "refer_id is required.")
        with self._lock:
            if self.calls.get(refer_id) in (None, "ended"):
                return _error(404, "refer_call_not_found", f"No active call {refer_id} to refer to.")
        default = [{"event": event, "data": {key: refer_id}}]
        return await self._scripted(call_id, hook, body, default, state)

    async def _scripted(self, call_id: str, hook, body: dict, default: list[dict], state: str) -> web.Response:
        plan = await _call_hook(hook, call_id, body) if hook else None
        with self._lock:
            self.calls[call_id] = state
        self._run_script(call_id, plan["events"] if plan and "events" in plan else default)
        return web.Response(status=202)

    async def _hangup(self, request: web.Request) -> web.Response:
        call_id, missing = self._known(request)
        if missing:
            return missing
        with self._lock:
            self.calls[call_id] = "ended"
            self.hangups.append(call_id)
        if self.on_hangup:
            await _call_hook(self.on_hangup, call_id)
        return web.Response(status=204)

    # --- events WebSocket -----------------------------------------------------------------------------------
    async def _events_socket(self, request: web.Request) -> web.StreamResponse:
        token = _bearer(request)
        if not self._token_valid(token):
            return _error(401, "invalid_token", "The access token is missing, invalid or expired.")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sub = _Subscriber(ws, request, token or "")
        first = await ws.receive(timeout=10)
        if first.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return ws
        if not self._subscribe(sub, first):
            await ws.send_json({"type": "error", "code": "invalid_subscribe", "message": "Expected a subscribe."})
            await ws.close(code=CLOSE_BAD_SUBSCRIBE)
            return ws
        writer = asyncio.get_running_loop().create_task(self._write(sub))
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            with self._changed:
                if sub in self._subscribers:
                    self._subscribers.remove(sub)
                self._changed.notify_all()
        return ws

    def _subscribe(self, sub: _Subscriber, message) -> bool:
        """Queue "subscribed" and the replay, then register, in one step: no event can slip in between."""
        try:
            payload = json.loads(message.data) if message.type == WSMsgType.TEXT else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("type") != "subscribe":
            return False
        if "call-events" not in (payload.get("channels") or []):
            return False
        since = payload.get("since")
        with self._changed:
            ids = [event["id"] for event in self.events]
            start = 0 if since == "" else (ids.index(since) + 1 if since in ids else len(ids))  # "": the whole log
            backlog = self.events[start:]
            cursor = ids[-1] if ids else ""  # where this subscription begins
            ack = {"type": "subscribed", "channels": ["call-events"], "since": since, "cursor": cursor}
            sub.queue.put_nowait(ack)
            for event in backlog:
                sub.queue.put_nowait(event)
            self._subscribers.append(sub)
            self.subscriptions.append({"token": sub.token, "since": since})
            self._changed.notify_all()
        return True

    @staticmethod
    async def _write(sub: _Subscriber) -> None:
        while True:
            message = await sub.queue.get()
            if sub.ws.closed:
                return
            await sub.ws.send_str(message if isinstance(message, str) else json.dumps(message))


def _basic(request: web.Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return "", ""
    return unquote(user), unquote(password)
