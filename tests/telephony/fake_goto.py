"""A fake GoTo Connect on 127.0.0.1 speaking GoTo's documented shapes (docs/telephony.md#goto-connect).

It spells every path, field and event name itself, on purpose: a typo in the client's `wire` module
then fails the tests instead of being copied into its test double.

- Notification channels: POST /notification-channel/v1/channels/{nickname} {"channelType": "WebSockets"}
  -> 201 {channelId, channelNickname, channelData {channelType, channelURL, isConnected}, channelLifetime};
  PUT …/{nickname}/{channelId} -> 200 (refresh); DELETE -> 204 (404 when gone). The socket at channelURL
  takes no header and expects nothing from the client (a frame sent to it is recorded as a violation).
- Call events: POST /call-events/v1/subscriptions -> 207 {"accountKeys": [{"id", "status", ...}]};
  call-state frames {"event": "Notification", "eventId", "timestamp", "data": {"source": "call-events",
  "type": "call-state", "content": {metadata, state}}} with a sequence number per conversation space;
  GET /call-events/v1/conversation-spaces/{id}/events?sequenceFrom&sequenceTo -> {"items": [...]}.
- Web calls: devices, extensions, calls (our SDP offer in, its answer out), answer, hangup, hold,
  unhold, dtmf, blind-transfer, warm-transfer, merge; `incoming` notifications for inbound calls.
- Errors: {"reference", "errorCode", "message", "constraintViolations"}; `fail_next` injects them (429...).

    fake = FakeGoTo().start()             # sync tests: its own event loop in a background thread
    async with FakeGoTo() as fake: ...    # async tests: served on the test's own loop

Tokens: `issue_token()` makes a token valid, `expire_tokens()` invalidates all (REST answers 401).
Media hooks (async or plain, run on the fake's loop): `on_place_call(call_id, body) -> answer SDP`,
`on_incoming(call_id) -> offer SDP or None`, `on_answer(call_id, body) -> SDP or None` (the answer's body).
Call scripts: `place_script(call_id, body) -> list of steps` decides what follows a placed call (default
`answered()`); steps are {"state", "remote", "ours"?, "deliver"?}: each becomes a call state.
"""

import asyncio
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

CHANNELS = "/notification-channel/v1/channels"
SUBSCRIPTIONS = "/call-events/v1/subscriptions"
SPACES = "/call-events/v1/conversation-spaces"
WEB_CALLS = "/web-calls/v1"
DIAL_STRING = re.compile(r"^(\+[1-9][0-9]{1,14}|[0-9]{1,10})\Z")
TONES = re.compile(r"^[0-9*#A-D]+\Z")

# A syntactically valid audio SDP for tests that never negotiate media.
DEFAULT_SDP = (
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
    "a=setup:active\r\n"
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
    query: dict = field(default_factory=dict)
    status: int = 0


@dataclass
class _Failure:
    pattern: re.Pattern
    status: int
    times: int
    method: str | None
    code: str
    message: str = ""


@dataclass
class Channel:
    channel_id: str
    nickname: str
    sockets: list = field(default_factory=list)
    account_keys: set = field(default_factory=set)
    deleted: bool = False


@dataclass
class Call:
    """A web call: ours is the device's leg; the remote party is the other participant."""

    call_id: str
    leg_id: str
    space: str
    account_key: str
    direction: str
    dial_string: str
    remote_id: str
    state: str = "ringing"
    held: bool = False
    tones: list = field(default_factory=list)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def answered() -> list[dict]:
    """A placed call that rings and is picked up."""
    return [{"state": "STARTING", "remote": "RINGING"}, {"state": "ACTIVE", "remote": "CONNECTED"}]


def not_answered(status: str) -> list[dict]:
    """A placed call that ends before anyone picks up; the remote's last status is `status` (RINGING, BUSY...)."""
    return [{"state": "STARTING", "remote": status}, {"state": "ENDING", "remote": None}]


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"reference": secrets.token_hex(6), "errorCode": code, "message": message, "constraintViolations": []}
    return web.json_response(body, status=status)


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _hook(hook, *args):
    result = hook(*args)
    return await result if inspect.isawaitable(result) else result


class FakeGoTo:
    """See the module docstring. `accounts` maps account keys to {"organization_id", "extension"}."""

    def __init__(self, *, channel_lifetime: int = 10800):
        self.channel_lifetime = channel_lifetime
        self.accounts: dict[str, dict] = {}
        self.requests: list[Recorded] = []
        self.channels: dict[str, Channel] = {}
        self.devices: dict[str, dict] = {}  # device id -> {"channel", "extensions": {(org, number)}}
        self.calls: dict[str, Call] = {}
        self.states: dict[str, list[dict]] = {}  # conversation space -> every state content, in order
        self.refreshes: list[str] = []
        self.hangups: list[str] = []
        self.violations: list[str] = []  # frames a client sent on a channel socket
        self.subscription_failures: dict[str, int] = {}  # account key -> how many more subscribes fail
        self.on_place_call = self.on_incoming = self.on_answer = None
        self.place_script = None
        self.transfer_refused: str | None = None  # an errorCode GoTo answers transfers with
        self._instance = secrets.token_hex(3)
        self._numbers = itertools.count(1)
        self._tokens: set[str] = set()
        self._failures: list[_Failure] = []
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- addresses and accounts ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_account(self, account_key: str, *, organization_id: str, extension: str) -> None:
        self.accounts[account_key] = {"organization_id": organization_id, "extension": extension}

    def issue_token(self) -> str:
        token = f"fake-at-{secrets.token_hex(8)}"
        with self._lock:
            self._tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> "FakeGoTo":
        """Serve from a background thread with its own event loop (for sync tests)."""
        ready, failure = threading.Event(), []

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
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(CHANNELS + "/{nickname}", self._create_channel)
        app.router.add_put(CHANNELS + "/{nickname}/{channel_id}", self._refresh_channel)
        app.router.add_delete(CHANNELS + "/{nickname}/{channel_id}", self._delete_channel)
        app.router.add_get("/ws/{channel_id}", self._socket)
        app.router.add_post(SUBSCRIPTIONS, self._subscribe)
        app.router.add_get(SPACES + "/{space}/events", self._space_events)
        app.router.add_post(WEB_CALLS + "/devices", self._create_device)
        app.router.add_delete(WEB_CALLS + "/devices/{device_id}", self._delete_device)
        app.router.add_post(WEB_CALLS + "/devices/{device_id}/extensions", self._add_extension)
        app.router.add_post(WEB_CALLS + "/calls", self._place_call)
        app.router.add_delete(WEB_CALLS + "/calls/{call_id}", self._hangup)
        for action in ("answer", "hold", "unhold", "dtmf", "blind-transfer", "warm-transfer", "merge"):
            app.router.add_post(WEB_CALLS + "/calls/{call_id}/" + action, self._action)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for channel in list(self.channels.values()):
            for ws in list(channel.sockets):
                await ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()

    # --- test controls (thread-safe) -----------------------------------------------------------------
    def fail_next(
        self, path_pattern: str, status: int, times: int = 1, *, method: str | None = None, code: str = "", message=""
    ):
        """The next `times` requests whose path matches get `status` with GoTo's error body."""
        failure = _Failure(re.compile(path_pattern), status, times, method.upper() if method else None, code, message)
        with self._lock:
            self._failures.append(failure)

    def requests_to(self, path_pattern: str, method: str | None = None) -> list[Recorded]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.requests if pattern.search(r.path) and (method is None or r.method == method)]

    def live_channels(self) -> list[Channel]:
        with self._lock:
            return [c for c in self.channels.values() if not c.deleted]

    def sockets(self) -> int:
        with self._lock:
            return sum(len(c.sockets) for c in self.channels.values() if not c.deleted)

    def subscribed(self, account_key: str) -> int:
        """Open sockets of channels subscribed to `account_key`."""
        with self._lock:
            return sum(len(c.sockets) for c in self.live_channels() if account_key in c.account_keys)

    def registered(self, extension: str) -> int:
        """Devices with `extension` whose channel has an open socket."""
        with self._lock:
            return sum(
                1
                for device in self.devices.values()
                if any(number == extension for _, number in device["extensions"])
                and self.channels.get(device["channel"]) is not None
                and self.channels[device["channel"]].sockets
            )

    def send_housekeeping(self, kind: str) -> None:
        """WEBSOCKET_REFRESH_REQUIRED or WEBSOCKET_TO_BE_CLOSED on every socket."""
        self._in_loop(self._broadcast, {"source": "notification-websocket", "type": kind, "content": {}}, None)

    def send_raw(self, text: str) -> None:
        self._in_loop(self._send_raw, text)

    def drop_sockets(self) -> None:
        """Cut every channel socket without a close frame (a network failure)."""
        self._in_loop(self._abort_all)

    def emit_state(
        self,
        call_id: str,
        state: str,
        remote: str | None,
        *,
        ours: str | None = "CONNECTED",
        extra: list[dict] | None = None,
        deliver: bool = True,
        repeat: int = 1,
    ) -> int:
        """A call state of the call's conversation space (participants [] when remote and ours are None)."""
        return self._state(self.calls[call_id], state, remote, ours, extra or [], deliver, repeat)

    def ring(
        self, from_: str = "+15551234567", to: str = "+15559876543", *, account_key: str | None = None, repeat: int = 1
    ) -> str:
        """An inbound call to the account's extension: `incoming` (`repeat` times) on the devices' channels."""
        account_key = account_key or next(iter(self.accounts))
        call = self._new_call(account_key, "INBOUND", from_, from_)
        self._in_loop(self._spawn, self._announce(call, to, repeat))
        return call.call_id

    def hangup_remote(self, call_id: str) -> None:
        """The remote party hangs up: ENDING, with no participants (as GoTo sent it live)."""
        with self._lock:
            self.calls[call_id].state = "ended"
        self.emit_state(call_id, "ENDING", None, ours=None)

    async def until(self, condition, timeout: float = 10.0, what: str = "a condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    async def await_request(self, path_pattern: str, timeout: float = 10.0, *, method: str | None = None, count=1):
        await self.until(lambda: len(self.requests_to(path_pattern, method)) >= count, timeout, path_pattern)
        return self.requests_to(path_pattern, method)[count - 1]

    # --- plumbing ------------------------------------------------------------------------------------
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

    def _frame(self, data: dict) -> str:
        return json.dumps(
            {"event": "Notification", "eventId": secrets.token_hex(8), "timestamp": now_iso(), "data": data}
        )

    def _broadcast(self, data: dict, account_key: str | None, repeat: int = 1) -> None:
        text = self._frame({**data, "timestamp": now_iso()})
        with self._lock:
            targets = [
                ws
                for c in self.live_channels()
                if account_key is None or account_key in c.account_keys
                for ws in c.sockets
            ]
        for ws in targets:
            for _ in range(repeat):
                self._spawn(ws.send_str(text))

    def _send_raw(self, text: str) -> None:
        for channel in self.live_channels():
            for ws in channel.sockets:
                self._spawn(ws.send_str(text))

    def _abort_all(self) -> None:
        for channel in self.live_channels():
            for ws in list(channel.sockets):
                request = ws._req  # aiohttp keeps the request on the response
                if request is not None and request.transport is not None:
                    request.transport.abort()

    def _new_call(self, account_key: str, direction: str, dial_string: str, remote_number: str) -> Call:
        number = next(self._numbers)
        call = Call(
            call_id=f"call-{self._instance}-{number}",
            leg_id=f"leg-{self._instance}-{number}",
            space=f"space-{self._instance}-{number}",
            account_key=account_key,
            direction=direction,
            dial_string=dial_string,
            remote_id=f"remote-{self._instance}-{number}:{remote_number}",
        )
        with self._lock:
            self.calls[call.call_id] = call
            self.states[call.space] = []
        return call

    def _state(self, call: Call, state: str, remote, ours, extra, deliver: bool, repeat: int) -> int:
        with self._lock:
            sequence = len(self.states[call.space]) + 1
            participants = []
            if ours is not None:
                participants.append({"id": call.leg_id, "type": {"value": "LINE"}, "status": {"value": ours}})
            if remote is not None:
                number = call.remote_id.rpartition(":")[2]
                participants.append(
                    {
                        "id": call.remote_id,
                        "type": {"value": "PHONE_NUMBER", "callee": {"number": number}},
                        "status": {"value": remote},
                    }
                )
            participants.extend(extra)
            content = {
                "metadata": {
                    "conversationSpaceId": call.space,
                    "accountKey": call.account_key,
                    "direction": call.direction,
                    "dialString": call.dial_string,
                    "callCreated": now_iso(),
                },
                "state": {
                    "id": secrets.token_hex(6),
                    "type": state,
                    "sequenceNumber": sequence,
                    "timestamp": now_iso(),
                    "participants": participants if state != "ENDING" or remote or ours else [],
                },
            }
            self.states[call.space].append(content)
        if deliver:
            data = {"source": "call-events", "type": "call-state", "content": content}
            self._in_loop(self._broadcast, data, call.account_key, repeat)
        return sequence

    def _run_script(self, call: Call, steps: list[dict]) -> None:
        async def run():
            for step in steps:
                await asyncio.sleep(0)  # each step after what the client had to do for the previous one
                self._state(call, step["state"], step.get("remote"), step.get("ours", "CONNECTED"), [], True, 1)
                if step["state"] == "ENDING":
                    call.state = "ended"

        self._spawn(run())

    async def _announce(self, call: Call, to: str, repeat: int = 1) -> None:
        offer = await _hook(self.on_incoming, call.call_id) if self.on_incoming else None
        content = {"callId": call.call_id, "legId": call.leg_id, "caller": {"number": call.dial_string}}
        content["callee"] = {"number": to}
        if offer:
            content["sdp"] = offer
        data = {"source": "WebRTC", "type": "incoming", "usage": "VOIP", "ttl": 60, "content": content}
        text = self._frame(data)
        extension = self.accounts[call.account_key]["extension"]
        with self._lock:
            channel_ids = [
                d["channel"] for d in self.devices.values() if any(n == extension for _, n in d["extensions"])
            ]
            targets = [ws for cid in channel_ids if cid in self.channels for ws in self.channels[cid].sockets]
        for _ in range(repeat):
            for ws in targets:
                await ws.send_str(text)

    # --- REST: recording, injected failures, bearer check ---------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        if request.path.startswith("/ws/"):
            return await handler(request)
        try:
            body = await request.json() if request.body_exists else None
        except ValueError:
            return _error(400, "MALFORMED_REQUEST", "The body is not JSON.")
        record = Recorded(
            request.method, request.raw_path.split("?", 1)[0], body, _bearer(request), dict(request.query)
        )
        with self._lock:
            self.requests.append(record)
            failure = next(
                (f for f in self._failures if f.pattern.search(record.path) and f.method in (None, request.method)),
                None,
            )
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
            token_ok = record.token in self._tokens
        if failure is not None:
            response = _error(
                failure.status, failure.code or "INJECTED", failure.message or f"injected {failure.status}"
            )
        elif not token_ok:
            response = _error(401, "AUTHN_INVALID_TOKEN", "The access token is missing, invalid or expired.")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = _error(exc.status, "NOT_FOUND" if exc.status == 404 else "BAD_REQUEST", exc.reason)
        record.status = response.status
        return response

    # --- notification channels -----------------------------------------------------------------------
    async def _create_channel(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body != {"channelType": "WebSockets"}:
            return _error(400, "BAD_REQUEST", 'Expected {"channelType": "WebSockets"}.')
        nickname = unquote(request.match_info["nickname"])
        channel_id = f"WebSockets.{secrets.token_hex(8)}"
        with self._lock:
            self.channels[channel_id] = Channel(channel_id, nickname)
        url = f"ws://127.0.0.1:{self.port}/ws/{channel_id}"
        answer = {
            "channelId": channel_id,
            "channelNickname": nickname,
            "channelData": {"channelType": "WebSockets", "channelURL": url, "isConnected": False},
            "channelLifetime": self.channel_lifetime,
            "somethingNew": {"clients ignore": "unknown attributes"},
        }
        return web.json_response(answer, status=201)

    def _channel(self, request: web.Request) -> Channel | None:
        channel = self.channels.get(unquote(request.match_info["channel_id"]))
        if channel is None or channel.deleted or channel.nickname != unquote(request.match_info["nickname"]):
            return None
        return channel

    async def _refresh_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, "NOT_FOUND", "No such channel.")
        if await request.json() != {"channelType": "WebSockets"}:
            return _error(400, "BAD_REQUEST", 'Expected {"channelType": "WebSockets"}.')
        with self._lock:
            self.refreshes.append(channel.channel_id)
        return web.json_response({"channelId": channel.channel_id, "channelLifetime": self.channel_lifetime})

    async def _delete_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, "NOT_FOUND", "No such channel.")
        with self._lock:
            channel.deleted = True
        for ws in list(channel.sockets):
            await ws.close()
        return web.Response(status=204)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        channel = self.channels.get(request.match_info["channel_id"])
        if channel is None or channel.deleted:
            return web.Response(status=404)
        if "Authorization" in request.headers:
            self.violations.append("Authorization header on the channel socket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            channel.sockets.append(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self.violations.append(message.data)
        finally:
            with self._lock:
                if ws in channel.sockets:
                    channel.sockets.remove(ws)
        return ws

    # --- call events -----------------------------------------------------------------------------------
    async def _subscribe(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel = self.channels.get(str(body.get("channelId")))
        keys = body.get("accountKeys")
        if channel is None or channel.deleted or not isinstance(keys, list):
            return _error(400, "BAD_REQUEST", "channelId and accountKeys are required.")
        results = []
        for item in keys:
            key = item.get("id") if isinstance(item, dict) else None
            with self._lock:
                failing = self.subscription_failures.get(key, 0)
                if failing:
                    self.subscription_failures[key] = failing - 1
            if key not in self.accounts or failing:
                results.append(
                    {"id": key, "status": 403, "errorCode": "AUTHZ_INSUFFICIENT_SCOPE", "message": "Not allowed."}
                )
                continue
            with self._lock:
                channel.account_keys.add(key)
            results.append({"id": key, "status": 200, "message": "Success"})
        return web.json_response({"accountKeys": results}, status=207)

    async def _space_events(self, request: web.Request) -> web.Response:
        space = unquote(request.match_info["space"])
        if space not in self.states:
            return _error(404, "NOT_FOUND", "No such conversation space.")
        first, last = int(request.query.get("sequenceFrom", 1)), int(request.query.get("sequenceTo", 10**9))
        items = [s for s in self.states[space] if first <= s["state"]["sequenceNumber"] <= last]
        return web.json_response({"items": items})

    # --- devices and calls -----------------------------------------------------------------------------
    async def _create_device(self, request: web.Request) -> web.Response:
        body = await request.json()
        info, callbacks = body.get("clientInformation") or {}, body.get("callbackReference") or {}
        device_id, channel_id = info.get("deviceId"), callbacks.get("incomingCallChannelId")
        if not device_id or channel_id not in self.channels or info.get("platform") != "INTEGRATOR":
            return _error(400, "BAD_REQUEST", "clientInformation.deviceId and a known incomingCallChannelId.")
        with self._lock:
            self.devices[device_id] = {"channel": channel_id, "extensions": set()}
        return web.json_response({"clientInformation": info, "callbackReference": callbacks}, status=201)

    async def _delete_device(self, request: web.Request) -> web.Response:
        with self._lock:
            gone = self.devices.pop(unquote(request.match_info["device_id"]), None)
        return web.Response(status=204) if gone else _error(404, "NOT_FOUND", "No such device.")

    async def _add_extension(self, request: web.Request) -> web.Response:
        device = self.devices.get(unquote(request.match_info["device_id"]))
        body = await request.json()
        if device is None:
            return _error(404, "NOT_FOUND", "No such device.")
        organization, extensions = body.get("organizationId"), body.get("extensions") or []
        known = {(a["organization_id"], a["extension"]) for a in self.accounts.values()}
        for item in extensions:
            if (organization, item.get("number")) not in known:
                return _error(403, "UNAUTHORIZED", "Not an extension of this organization.")
            with self._lock:
                device["extensions"].add((organization, item["number"]))
        return web.json_response({"items": extensions}, status=201)

    async def _place_call(self, request: web.Request) -> web.Response:
        body = await request.json()
        device = self.devices.get(str(body.get("deviceId")))
        pair = (body.get("organizationId"), body.get("extensionNumber"))
        if device is None or pair not in device["extensions"]:
            return _error(400, "BAD_REQUEST", "deviceId with that organizationId and extensionNumber.")
        if not DIAL_STRING.match(str(body.get("dialString", ""))):
            return _error(400, "BAD_REQUEST", "dialString must be a number or an extension.")
        if body.get("inCallChannelId") not in self.channels or not str(body.get("sdp", "")).startswith("v=0"):
            return _error(400, "BAD_REQUEST", "inCallChannelId and an SDP offer are required.")
        account_key = next(k for k, a in self.accounts.items() if (a["organization_id"], a["extension"]) == pair)
        call = self._new_call(account_key, "OUTBOUND", body["dialString"], body["dialString"])
        sdp = await _hook(self.on_place_call, call.call_id, body) if self.on_place_call else DEFAULT_SDP
        steps = await _hook(self.place_script, call.call_id, body) if self.place_script else answered()
        self._run_script(call, steps)
        return web.json_response({"id": call.call_id, "legId": call.leg_id, "sdp": sdp, "state": "new"}, status=201)

    def _live(self, request: web.Request) -> Call | None:
        call = self.calls.get(unquote(request.match_info["call_id"]))
        return call if call is not None and call.state != "ended" else None

    async def _hangup(self, request: web.Request) -> web.Response:
        call = self._live(request)
        if call is None:
            return _error(404, "NOT_FOUND", "No such call.")
        with self._lock:
            call.state = "ended"
            self.hangups.append(call.call_id)
        self._state(call, "ENDING", None, None, [], True, 1)
        return web.Response(status=204)

    async def _action(self, request: web.Request) -> web.Response:
        call = self._live(request)
        if call is None:
            return _error(404, "NOT_FOUND", "No such call.")
        action = request.path.rsplit("/", 1)[1]
        body = await request.json() if request.body_exists else None
        body = body if isinstance(body, dict) else {}
        if action == "answer":
            return await self._answer(call, body)
        if action in ("hold", "unhold"):
            call.held = action == "hold"
            return web.Response(status=204)
        if action == "dtmf":
            if not TONES.match(str(body.get("tone", ""))):
                return _error(400, "BAD_REQUEST", "tone must be digits, *, # or A-D.")
            call.tones.append(body["tone"])
            return web.Response(status=204)
        if self.transfer_refused:
            return _error(409, self.transfer_refused, "The call cannot be transferred now.")
        if action == "blind-transfer":
            if not DIAL_STRING.match(str(body.get("dialString", ""))):
                return _error(400, "BAD_REQUEST", "dialString must be a number or an extension.")
            target = {"id": f"target-{call.call_id}", "type": {"value": "PHONE_NUMBER"}, "status": {"value": "RINGING"}}
            self._state(call, "ACTIVE", "CONNECTED", None, [target], True, 1)
            return web.Response(status=204)
        other = self.calls.get(str(body.get("referId")))
        if other is None or other.state == "ended":
            return _error(404, "NOT_FOUND", "referId names no live call.")
        consult = {"id": other.remote_id, "type": {"value": "PHONE_NUMBER"}, "status": {"value": "CONNECTED"}}
        if action == "warm-transfer":
            self._state(call, "ACTIVE", "CONNECTED", None, [consult], True, 1)
            other.state = "ended"
            self._state(other, "ENDING", None, None, [], True, 1)
        else:  # merge: the consult's party joins this call's conversation
            self._state(call, "ACTIVE", "CONNECTED", "CONNECTED", [consult], True, 1)
        return web.Response(status=204)

    async def _answer(self, call: Call, body: dict) -> web.Response:
        if call.direction != "INBOUND" or call.state != "ringing":
            return _error(409, "CONFLICT", "The call is not ringing.")
        if body.get("inCallChannelId") not in self.channels or not str(body.get("sdp", "")).startswith("v=0"):
            return _error(400, "BAD_REQUEST", "sdp and inCallChannelId are required.")
        sdp = await _hook(self.on_answer, call.call_id, body) if self.on_answer else None
        call.state = "connected"
        self._run_script(
            call, [{"state": "STARTING", "remote": "CONNECTED"}, {"state": "ACTIVE", "remote": "CONNECTED"}]
        )
        answer = {"id": call.call_id, "legId": call.leg_id}
        if sdp:
            answer["sdp"] = sdp
        return web.json_response(answer)


class FakeTokens:
    """A tenant grant's token source for tests (what `grant.tokens_for` gives): tokens the fake accepts.

    `revoke()` makes it raise goto_reconnect_required, as a revoked grant does.
    """

    def __init__(self, fake: FakeGoTo):
        self.fake, self.fetches, self.revoked = fake, 0, False
        self._token: str | None = None

    async def token(self) -> str:
        from telephony.carriers.goto.config import GoToConnectError

        if self.revoked:
            raise GoToConnectError("The GoTo grant was revoked: reconnect GoTo.", code="goto_reconnect_required")
        if self._token is None:
            self._token = self.fake.issue_token()
            self.fetches += 1
        return self._token

    def invalidate(self, token: str | None = None) -> None:
        if token is None or token == self._token:
            self._token = None

    @property
    def last_token(self) -> str | None:
        return self._token

    def revoke(self) -> None:
        self.revoked = True
