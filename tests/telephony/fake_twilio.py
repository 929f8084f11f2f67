"""A local fake Twilio on 127.0.0.1: the REST calls we use, signed webhooks, and its side of a media stream.

It follows Twilio's public documentation of Programmable Voice:

- Webhooks: an `application/x-www-form-urlencoded` POST with `X-Twilio-Signature`, the base64 HMAC-SHA1,
  keyed with the account's auth token, of the full URL followed by every POST parameter's name and value
  sorted by name (`sign` uses the SDK's `RequestValidator.compute_signature`, which is that algorithm).
- REST (`/2010-04-01/Accounts/{AccountSid}/...`, HTTP Basic with Account SID and auth token, form bodies,
  JSON answers, errors as {"code", "message", "more_info", "status"}): `Calls.json` (create),
  `Calls/{CallSid}.json` (update: `Twiml`, `Url`, `Status`), `IncomingPhoneNumbers.json` (list, paged),
  `IncomingPhoneNumbers/{Sid}.json` (update `VoiceUrl`).
- Media Streams (`StreamCaller`): Twilio connects to the <Stream> URL and sends JSON text frames:
  `connected`, `start` {streamSid, callSid, accountSid, tracks, customParameters, mediaFormat
  {encoding "audio/x-mulaw", sampleRate 8000, channels 1}}, `media` {track, chunk, timestamp, payload
  (base64 mu-law, 20 ms per frame)}, `dtmf` {track, digit}, `mark` {name} (echoing ours once played) and
  `stop`; every message has `event`, `sequenceNumber` and (after `connected`) `streamSid`. It receives
  `media`, `mark` and `clear` from us.
- A call we create with inline TwiML `<Connect><Stream>` (a conference's supervisor): `pick_up` plays its
  callee answering: the signed status callback (`CallStatus` in-progress, as for the `answered` event) to
  the call's `StatusCallback`, then the stream to the TwiML's URL with its `<Parameter>`s.
"""

import asyncio
import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import httpx
import numpy as np
from django.utils.datastructures import MultiValueDict
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosedOK

ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law


def sign(url: str, params: dict, auth_token: str = AUTH_TOKEN) -> str:
    """Twilio's signature: over every value of a repeated parameter (a list here), as Twilio signs them."""
    values = MultiValueDict({k: v if isinstance(v, list) else [v] for k, v in params.items()})
    return RequestValidator(auth_token).compute_signature(url, values)


def signed_form(url: str, params: dict, auth_token: str = AUTH_TOKEN) -> dict:
    """Headers and body of the POST Twilio would send to `url`."""
    return {"data": params, "headers": {"X-Twilio-Signature": sign(url, params, auth_token)}}


def voice_params(*, call_sid: str, to: str, from_: str, account_sid: str = ACCOUNT_SID) -> dict:
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": to,
        "Caller": from_,
        "Direction": "inbound",
        "From": from_,
        "To": to,
    }


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


# --- REST --------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    form: dict
    headers: dict


@dataclass
class FakeTwilio:
    """The REST API of one account; `calls` and `requests` record what our side asked."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    numbers: list[dict] = field(default_factory=list)
    calls: dict[str, dict] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    refuse_dial: dict | None = None  # an error body to answer the next create with (status in it)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> "FakeTwilio":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def add_number(self, e164: str, friendly_name: str = "") -> dict:
        number = {
            "sid": "PN" + uuid.uuid4().hex,
            "account_sid": self.account_sid,
            "phone_number": e164,
            "friendly_name": friendly_name or e164,
            "voice_url": "",
            "voice_method": "POST",
            "status_callback": "",
            "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
        }
        self.numbers.append(number)
        return number

    def add_inbound(self, call_sid: str, *, to: str, from_: str) -> None:
        """A call Twilio is carrying to one of our numbers (so that updates to it find it)."""
        self.calls[call_sid] = {
            "sid": call_sid,
            "status": "in-progress",
            "form": {"To": to, "From": from_},
            "updates": [],
        }

    # The routes: (method, path relative to the account) -> handler(request, *groups)
    def answer(self, request: Request) -> tuple[int, dict]:
        prefix = f"/2010-04-01/Accounts/{self.account_sid}"
        basic = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}" or not request.path.startswith(prefix):
            return 401, _error(20003, "Authenticate", 401)
        path = request.path.removeprefix(prefix)
        if (request.method, path) == ("POST", "/Calls.json"):
            return self._create_call(request.form)
        if request.method == "POST" and path.startswith("/Calls/") and path.endswith(".json"):
            return self._update_call(path.removeprefix("/Calls/").removesuffix(".json"), request.form)
        if (request.method, path) == ("GET", "/IncomingPhoneNumbers.json"):
            return 200, self._numbers_page()
        if request.method == "POST" and path.startswith("/IncomingPhoneNumbers/"):
            return self._update_number(path.removeprefix("/IncomingPhoneNumbers/").removesuffix(".json"), request.form)
        return 404, _error(20404, f"The requested resource {request.path} was not found", 404)

    def _create_call(self, form: dict) -> tuple[int, dict]:
        if self.refuse_dial is not None:
            body, self.refuse_dial = self.refuse_dial, None
            return body["status"], body
        if not form.get("To") or not form.get("From") or not (form.get("Twiml") or form.get("Url")):
            return 400, _error(21205, "To, From and Twiml or Url are required", 400)
        sid = new_call_sid()
        self.calls[sid] = {"sid": sid, "status": "queued", "form": form, "updates": []}
        return 201, self._call_resource(sid)

    def _update_call(self, sid: str, form: dict) -> tuple[int, dict]:
        call = self.calls.get(sid)
        if call is None:
            return 404, _error(20404, f"The requested resource Calls/{sid}.json was not found", 404)
        call["updates"].append(form)
        if form.get("Status") in ("completed", "canceled"):
            call["status"] = form["Status"]
        return 200, self._call_resource(sid)

    def _call_resource(self, sid: str) -> dict:
        call = self.calls[sid]
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": call["form"].get("To", ""),
            "from": call["form"].get("From", ""),
            "status": call["status"],
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
        }

    def _numbers_page(self) -> dict:
        uri = f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers.json"
        return {
            "incoming_phone_numbers": self.numbers,
            "page": 0,
            "page_size": 50,
            "first_page_uri": f"{uri}?PageSize=50&Page=0",
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": f"{uri}?PageSize=50&Page=0",
            "start": 0,
            "end": len(self.numbers),
        }

    def _update_number(self, sid: str, form: dict) -> tuple[int, dict]:
        for number in self.numbers:
            if number["sid"] == sid:
                number.update(voice_url=form.get("VoiceUrl", number["voice_url"]))
                if "StatusCallback" in form:
                    number["status_callback"] = form["StatusCallback"]
                return 200, number
        return 404, _error(20404, f"The requested resource IncomingPhoneNumbers/{sid}.json was not found", 404)

    # --- Twilio calling our webhooks ---------------------------------------------------------------

    def post_webhook(self, url: str, params: dict, *, auth_token: str | None = None) -> httpx.Response:
        """POST `params` to our webhook at `url`, signed as Twilio signs (with another token to forge)."""
        return httpx.post(url, **signed_form(url, params, auth_token or self.auth_token), timeout=10)

    async def report_status(self, sid: str, status: str) -> httpx.Response:
        """Twilio's status callback for a call we created: `status` is its CallStatus (in-progress, no-answer, ...)."""
        call = self.calls[sid]
        call["status"] = status
        form = call["form"]
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": form.get("From", ""),
            "To": form.get("To", ""),
            "SequenceNumber": str(len(call["updates"])),
        }
        url = form["StatusCallback"]
        async with httpx.AsyncClient() as client:
            return await client.post(url, **signed_form(url, params, self.auth_token), timeout=10)

    def stream_of(self, sid: str) -> tuple[str, dict]:
        """The <Connect><Stream> of a call created with inline TwiML: its URL and its <Parameter>s."""
        stream = ElementTree.fromstring(self.calls[sid]["form"]["Twiml"]).find("Connect/Stream")  # noqa: S314 (ours)
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        return stream.get("url"), parameters

    async def pick_up(self, sid: str) -> "StreamCaller":
        """The callee of a call we created answers: its status callback says so, then its media stream connects."""
        response = await self.report_status(sid, "in-progress")
        assert response.status_code == 204, response.text
        url, parameters = self.stream_of(sid)
        callee = StreamCaller(url, call_sid=sid, parameters=parameters, account_sid=self.account_sid)
        await callee.connect()
        return callee


def _error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeTwilio

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, method: str):
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = {key: values[-1] for key, values in parse_qs(body).items()}
        multi = parse_qs(body)
        if "StatusCallbackEvent" in multi:
            form["StatusCallbackEvent"] = multi["StatusCallbackEvent"]
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(method, parts.path, form, headers)
        self.fake.requests.append(request)
        status, payload = self.fake.answer(request)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- a media stream ------------------------------------------------------------------------------


def mulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 mu-law of 16-bit samples (the reference algorithm, written out so the test does not share ours)."""
    bias, clip = 0x84, 32635
    x = samples.astype(np.int32)
    sign_bit = (x < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(x), clip) + bias
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign_bit | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign_bit, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign_bit, -magnitude, magnitude).astype(np.int16)


class StreamCaller:
    """Twilio's side of one media stream: connects to our stream URL and plays a caller's audio into it."""

    def __init__(self, url: str, *, call_sid: str, parameters: dict, account_sid: str = ACCOUNT_SID):
        self.url, self.call_sid, self.parameters, self.account_sid = url, call_sid, parameters, account_sid
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.socket = None
        self.sequence = 0
        self.chunk = 0
        self.received: list[dict] = []
        self.heard = bytearray()  # the mu-law the agent sent us
        self.closed = asyncio.Event()
        self.error = ""
        self._reader: asyncio.Task | None = None

    async def connect(self, *, media_format: dict | None = None) -> None:
        import websockets

        self.socket = await websockets.connect(self.url, open_timeout=10)
        self._reader = asyncio.create_task(self._read())
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, with_sid=False)
        fmt = media_format or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        start = {
            "streamSid": self.stream_sid,
            "accountSid": self.account_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "customParameters": self.parameters,
            "mediaFormat": fmt,
        }
        await self.send({"event": "start", "start": start})

    async def send(self, message: dict, *, with_sid: bool = True) -> None:
        self.sequence += 1
        payload = {**message, "sequenceNumber": str(self.sequence)}
        if with_sid:
            payload["streamSid"] = self.stream_sid
        if self.closed.is_set():
            return  # our side ended the stream (the call ended or moved on): Twilio sends nothing more
        try:
            await self.socket.send(json.dumps(payload))
        except ConnectionClosedOK:
            return  # closed by our side a moment ago, before the reader saw it

    async def send_raw(self, text: str) -> None:
        await self.socket.send(text)

    async def play(self, samples_8k: np.ndarray, *, speed: float = 1.0) -> None:
        """Send 8 kHz 16-bit samples as 20 ms mu-law media frames, in real time (`speed` times faster)."""
        data = mulaw_encode(samples_8k)
        for offset in range(0, len(data), FRAME_BYTES):
            piece = data[offset : offset + FRAME_BYTES]
            self.chunk += 1
            media = {"track": "inbound", "chunk": str(self.chunk), "timestamp": str(self.chunk * 20)}
            await self.send({"event": "media", "media": {**media, "payload": base64.b64encode(piece).decode()}})
            await asyncio.sleep(0.02 / speed)

    async def silence(self, seconds: float, *, speed: float = 1.0) -> None:
        await self.play(np.zeros(int(8000 * seconds), dtype=np.int16), speed=speed)

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        await self.send({"event": "stop", "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
        await self.socket.close()

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                message = json.loads(text)
                self.received.append(message)
                if message.get("event") == "media":
                    self.heard.extend(base64.b64decode(message["media"]["payload"]))
                elif message.get("event") == "mark":  # played: Twilio echoes the mark back
                    await self.send({"event": "mark", "mark": {"name": message["mark"]["name"]}})
        except Exception as exc:  # our side closed the socket, cleanly or not: the call is over for Twilio
            self.error = repr(exc)
        finally:
            self.closed.set()

    @property
    def heard_seconds(self) -> float:
        return len(self.heard) / 8000

    def events(self, name: str) -> list[dict]:
        return [m for m in self.received if m.get("event") == name]

    def heard_samples(self) -> np.ndarray:
        return mulaw_decode(bytes(self.heard))
