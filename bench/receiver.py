"""A minimal HTTP/1.1 server for the benchmarks: reads each request, answers 200 with a fixed JSON body.

Run in its own process (`start()`), so the benchmarked code and the server do not share an event loop
or a GIL: `python bench/receiver.py PORT [BODY]`.
"""

import asyncio
import contextlib
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"


def response_for(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: bytes) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
        while await reader.readline():
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(response)
            await writer.drain()
    writer.close()


async def serve(port: int, body: bytes) -> None:
    response = response_for(body)
    server = await asyncio.start_server(lambda r, w: _answer(r, w, response), HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start(body: bytes = b'{"ok":true}') -> tuple[subprocess.Popen, str]:
    """Start the server in a new process; returns (process, base URL)."""
    port = free_port()
    command = [sys.executable, __file__, str(port), body.decode()]  # our own interpreter and script
    process = subprocess.Popen(command, start_new_session=True)  # noqa: S603
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.1):
            return process, f"http://{HOST}:{port}"
        time.sleep(0.05)
    process.kill()
    sys.exit("error: the benchmark's local HTTP server did not start")


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2].encode() if len(sys.argv) > 2 else b'{"ok":true}'))
