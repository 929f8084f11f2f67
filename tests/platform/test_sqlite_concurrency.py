"""The embedded default (one SQLite file) is safe for the processes `make run` starts together.

The REST API, `run_outbox` and `simulate_call` run at the same time as separate processes on one
SQLite file, with a real webhook receiver on 127.0.0.1. None of them may fail on a lock: every
outbound call is accepted (202), its post-call processing (run on commit) finishes, and every webhook
is sent exactly once, its attempt recorded (a failed write after a send would send it again).
"""

import collections
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
CALLS = 25
DRAIN_TIMEOUT = 240  # generous: the outbox is slow only when the machine is; the test never measures time

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="the embedded-default test runs in the SQLite pass of the suite"
    ),
]


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the outbox sends batches at once: never refuse a connection of ours

    def __init__(self):
        self.received: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received[self.headers["webhook-id"]] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _env(db_path: Path, media: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env |= {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings",
        "MEDIA_ROOT": str(media),
        "API_RATE_LIMIT_PER_MINUTE": "10000",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _run(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def _result(proc) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def _manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def _load(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.platform.sqlite_load", *args]


def test_api_outbox_and_a_simulated_call_share_the_sqlite_file_without_errors(tmp_path):
    env = _env(tmp_path / "db.sqlite3", tmp_path / "media")
    migrated = _run(_manage("migrate", "--noinput"), env)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert _run(_manage("setup_periodic_tasks"), env).returncode == 0

    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        setup = _result(_run(_load("setup", f"http://127.0.0.1:{receiver.server_port}/hook"), env))
        outbox = subprocess.Popen(
            _manage("run_outbox", "--interval", "0.05"),
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stop = tmp_path / "stop"
            api = subprocess.Popen(
                _load("api", setup["key"], setup["agent_id"], str(CALLS), str(stop)),
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            simulated = _run(
                _manage(
                    "simulate_call",
                    *("--tenant", "demo-dental", "--agent", "Appointment Scheduler"),
                    *("--say", "When are you open?", "--say", "Goodbye", "--fast"),
                ),
                env,
            )
            stop.touch()  # the API goes on until the simulated call is over
            api_out, api_err = api.communicate(timeout=600)
            expected = _wait_for_deliveries(env, receiver)
        finally:
            outbox.terminate()
            _, outbox_err = outbox.communicate(timeout=60)
    finally:
        receiver.shutdown()

    assert outbox.returncode == -15, f"run_outbox ended on its own:\n{outbox_err[-4000:]}"  # SIGTERM, from us
    calls = _result(subprocess.CompletedProcess(api.args, api.returncode, api_out, api_err))
    assert calls["errors"] == []
    assert set(calls["statuses"]["create"]) == {202}, calls
    assert set(calls["statuses"]["list"]) == {200}, calls
    assert simulated.returncode == 0, simulated.stderr[-4000:]
    for name, text in (("api", api_err), ("simulate_call", simulated.stderr), ("run_outbox", outbox_err)):
        assert "database is locked" not in text, f"{name}:\n{text[-4000:]}"
        assert "Traceback" not in text, f"{name}:\n{text[-4000:]}"

    final = expected
    assert len([c for c in final["calls"] if c["direction"] == "outbound"]) == len(calls["statuses"]["create"])
    assert all(c["status"] == "ended" and c["processed"] for c in final["calls"]), final["calls"]
    deliveries = final["deliveries"]
    assert deliveries and all(d["status"] == "succeeded" and d["attempts"] == 1 for d in deliveries), deliveries
    # Every delivery reached the receiver once: nothing lost, nothing sent twice.
    assert dict(receiver.received) == {d["message_id"]: 1 for d in deliveries}


def _wait_for_deliveries(env: dict, receiver: Receiver) -> dict:
    """The database's final report once no delivery is pending (or after DRAIN_TIMEOUT)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        state = _result(_run(_load("report"), env))
        pending = [d for d in state["deliveries"] if d["status"] == "pending"]
        if not pending or time.monotonic() > deadline:
            return state
        time.sleep(1)
