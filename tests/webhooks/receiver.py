"""A local webhook receiver on 127.0.0.1 that records every request and answers as scripted.

`behaviour` decides each answer: a status code, ("sleep", seconds, status), or "reset" (close the
connection without answering). The receiver verifies nothing itself; tests verify what it recorded.
"""

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    behaviour: object = 200  # or a callable (Received) -> answer
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, received: Received):
        return self.behaviour(received) if callable(self.behaviour) else self.behaviour


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
            with receiver.lock:
                receiver.requests.append(received)
            answer = receiver.answer_for(received)
            if answer == "reset":
                # RST instead of FIN: the client sees a reset connection, not a clean close.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if isinstance(answer, tuple):
                _, seconds, answer = answer
                time.sleep(seconds)
            payload = b'{"ok": true}' if answer < 300 else b'{"error": "nope"}'
            self.send_response(answer)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler


class ReceiverServer:
    """`with ReceiverServer() as server:` serves on a free port; `server.url`, `server.receiver`."""

    def __init__(self, behaviour=200):
        self.receiver = Receiver(behaviour=behaviour)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.receiver))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"

    def __enter__(self) -> "ReceiverServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
