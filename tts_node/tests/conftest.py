"""The node served by uvicorn on 127.0.0.1 and a free port, with the offline piper engine.

A real server, not an in-process transport, so streaming is observed as a client sees it.
"""

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx2
import numpy as np
import pytest
import soundfile
import uvicorn

from tts_node.app import create_app
from tts_node.settings import Settings

TOKEN = "node-test-token"  # noqa: S105 (a test server's token)


class LiveNode:
    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.node = self.app.state.node
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, *, token: str | None = TOKEN) -> httpx2.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx2.Client(base_url=self.url, headers=headers, timeout=60)

    def __enter__(self) -> "LiveNode":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started or not self.node.engine.loaded:
            if time.monotonic() > deadline or self.node.load_error:
                raise RuntimeError(f"node did not start: {self.node.load_error}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def piper_settings(tmp: Path, **overrides) -> Settings:
    return replace(Settings(voices_dir=tmp / "voices", api_token=TOKEN, engine="piper"), **overrides)


@pytest.fixture(scope="session")
def node(tmp_path_factory) -> Iterator[LiveNode]:
    with LiveNode(piper_settings(tmp_path_factory.mktemp("node"))) as live:
        yield live


@pytest.fixture
def client(node) -> Iterator[httpx2.Client]:
    with node.client() as c:
        yield c


def speech_like(seconds: float, rate: int = 24000) -> np.ndarray:
    """A voiced, amplitude-modulated tone: enough like speech for format and length checks."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def audio_file(path: Path, seconds: float, *, rate: int = 24000, fmt: str = "WAV") -> bytes:
    soundfile.write(path, speech_like(seconds, rate), rate, format=fmt)
    return path.read_bytes()
