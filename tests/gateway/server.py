"""A scripted HTTP/1.1 server on 127.0.0.1 for the gateway tests, running in its own thread.

Each path answers from a script: a list of Reply objects used in turn (the last one repeats), or a
function of the request. A Reply can delay (to trip timeouts) or cut the connection mid-body. Using
a real socket server instead of mocking httpx exercises the actual connect/read/timeout paths.
"""

import asyncio
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    peer: str = ""  # the client certificate's common name, over mTLS

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    json: object = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    cut: bool = False  # send the headers and half the body, then reset the connection

    def encode(self) -> tuple[bytes, bytes]:
        body = json.dumps(self.json).encode() if self.json is not None else self.body
        headers = {"Content-Type": "application/json" if self.json is not None else "text/plain", **self.headers}
        headers["Content-Length"] = str(len(body) if not self.cut else len(body) + 100)
        head = f"HTTP/1.1 {self.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        return head.encode(), body


def _common_name(cert: dict | None) -> str:
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


class Server:
    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.ssl_context = ssl_context
        self.scripts: dict[str, list[Reply] | Callable[[Request], Reply]] = {}
        self.requests: list[Request] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def script(self, path: str, *replies) -> None:
        """Answer `path` with these replies in turn (the last repeats), or with a function of the request."""
        self.scripts[path] = replies[0] if len(replies) == 1 and callable(replies[0]) else list(replies)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        self.scripts.clear()
        self.requests.clear()

    def start(self) -> "Server":
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await self._read(reader):
                request.peer = _common_name(writer.get_extra_info("peercert"))
                self.requests.append(request)
                if not await self._answer(request, writer):
                    return
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _ = line.decode().split(" ", 2)
        headers = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, value = header.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        return Request(method, target, headers, body)

    def _reply_for(self, request: Request) -> Reply:
        script = self.scripts.get(request.path)
        if script is None:
            return Reply(404, json={"error": "no script"})
        if callable(script):
            return script(request)
        return script.pop(0) if len(script) > 1 else script[0]

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        reply = self._reply_for(request)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        head, body = reply.encode()
        writer.write(head + (body[: len(body) // 2] if reply.cut else body))
        await writer.drain()
        if reply.cut:
            writer.transport.abort()
            return False
        return True
