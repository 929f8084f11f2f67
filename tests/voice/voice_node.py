"""The real TTS node (tts_node, offline piper engine) as a subprocess of its own virtualenv.

The platform and the node never share a Python environment (the node's has torch), so the tests
that make them talk start `.venv-tts/bin/python -m tts_node` on 127.0.0.1 and a free port, exactly
as the platform reaches the node in production: over HTTP. Without .venv-tts (`make tts-install`)
these tests skip, unless TTS_NODE_REQUIRED=1 (as `make test` sets), when they fail instead.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_PYTHON = Path(os.environ.get("TTS_NODE_PYTHON", ROOT / ".venv-tts" / "bin" / "python"))
TOKEN = "platform-node-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeProcess:
    def __init__(self, voices_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TTS_ENGINE": "piper",
            "TTS_HOST": "127.0.0.1",
            "TTS_PORT": str(self.port),
            "TTS_VOICES_DIR": str(voices_dir),
            "TTS_API_TOKEN": TOKEN,
        }
        self.log = voices_dir.parent / "node.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(NODE_PYTHON), "-m", "tts_node"], cwd=ROOT, env=env, stdout=log, stderr=log
            )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tts_node exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"tts_node not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_node(tmp_path_factory) -> NodeProcess:
    """A ready node, or a skip (a failure when TTS_NODE_REQUIRED=1) without .venv-tts."""
    if not NODE_PYTHON.exists():
        message = f"no TTS node environment at {NODE_PYTHON}: run `make tts-install`"
        if os.environ.get("TTS_NODE_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    node = NodeProcess(tmp_path_factory.mktemp("tts-node") / "voices")
    try:
        node.wait_ready()
    except RuntimeError:
        node.stop()
        raise
    return node
