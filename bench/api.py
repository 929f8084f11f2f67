"""Benchmark of the REST API against a bare baseline, both served the production way.

    .venv/bin/python bench/api.py [--duration 10] [--connections 20] [--workers 1] [--profile]

Prepares PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/voiceapp_bench: created if
missing, migrated), seeds a fresh tenant on a plan without practical rate limits, with an API key, an agent
and one call carrying 20 transcript turns, 10 events and 2 tool calls. Then it starts, on free ports of
127.0.0.1:

- the platform: `gunicorn voiceapp.wsgi` with N sync workers, DEBUG=0, a random SECRET_KEY,
  ALLOWED_HOSTS=127.0.0.1, SECURE_SSL_REDIRECT=0, LOG_LEVEL=WARNING;
- the baseline: bench/bare_wsgi.py under the very same gunicorn command, which answers GET /v1/calls/{id}
  with the same body from the same four lookups (API key by hash, call, turns, events, tool calls) with
  psycopg and no framework. Same server, workers and database, so the ratio is the framework's cost.

and drives them with wrk (installed with apt-get when missing and running as root; otherwise a Python
asyncio load generator, noted in the output): GET /v1/calls/{id} on both, and POST /v1/agents on the
platform with a unique agent name per request. It prints requests/s, p50 and p99 latency and the
non-2xx responses of each scenario, and the platform/baseline ratio for GET. It asserts nothing.
The servers are stopped on exit, Ctrl-C included. --profile adds an in-process profile of one GET.
"""

import argparse
import asyncio
import base64
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
BIN = Path(sys.executable).parent  # the virtualenv running this script holds gunicorn too
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/voiceapp_bench"
HOST = "127.0.0.1"

# --- Processes we start, stopped on any exit ----------------------------------------------------------

_children: list[subprocess.Popen] = []


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # its own process group: gunicorn and its workers
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_children() -> None:
    while _children:
        _stop(_children.pop())


def _on_signal(signum, _frame):
    print(f"\n{signal.Signals(signum).name}: stopping the servers", file=sys.stderr)
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the servers


def spawn(argv: list[str], env: dict, log_path: Path | None = None, capture: bool = False) -> subprocess.Popen:
    output = open(log_path, "wb") if log_path else (subprocess.PIPE if capture else subprocess.DEVNULL)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 (our own commands)
        argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    _children.append(process)
    return process


# --- PostgreSQL -----------------------------------------------------------------------------------------


def prepare_database(url: str) -> None:
    """Create the database if it is missing; exit with a clear message if PostgreSQL cannot be reached."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        sys.exit(f"error: DATABASE_URL {url!r} is not a PostgreSQL connection string: {exc}")
    name = params.get("dbname") or "postgres"
    try:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                print(f"creating database {name}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.exit(
            f"error: PostgreSQL is not reachable at {make_conninfo(url, password=None)!r}: {message}\n"
            "Start PostgreSQL, or point DATABASE_URL (or --database-url) at a server this user may create databases on."
        )


def server_environment(args) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings",
        "DATABASE_URL": args.database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    # Production refuses to start without the credential vault's key: a throwaway one (`<id>:<base64 32 bytes>`).
    env.setdefault("INTEGRATION_CRYPTO_KEY", "bench:" + base64.b64encode(secrets.token_bytes(32)).decode())
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def setup_django(env: dict) -> None:
    """Django in this process, under the servers' settings: it migrates, seeds and (--profile) profiles."""
    os.environ.update(env)
    if "REDIS_URL" not in env:
        os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"database migrated ({time.perf_counter() - started:.1f} s)")


def seed() -> dict:
    """A fresh tenant per run: plan without practical limits, API key, agent, one call with its history."""
    from django.db import connections
    from django.utils import timezone

    from agents.services import agent_create
    from billing.models import Plan, Subscription
    from calls import services as call_services
    from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
    from calls.state_machine import CallStatus
    from telephony.services import phone_number_create
    from tenants.services import api_key_create, tenant_create

    run = secrets.token_hex(4)
    plan, _ = Plan.objects.get_or_create(
        slug="bench-unlimited",
        defaults={
            "name": "Benchmark (unlimited)",
            "api_rate_limit_per_minute": 10**9,
            "api_burst_limit": 10**6,
            "max_concurrent_calls": 10**6,
        },
    )
    tenant = tenant_create(name=f"Benchmark {run}", slug=f"bench-{run}")
    Subscription.objects.create(tenant=tenant, plan=plan, started_at=timezone.now())
    key = api_key_create(tenant=tenant, name="benchmark", scopes=["read", "write", "admin"])
    agent = agent_create(
        tenant=tenant,
        name="Benchmark receptionist",
        system_prompt="You answer the phone for a dental practice and book appointments.",
        greeting_message="Thanks for calling, how can I help?",
    )
    number = phone_number_create(tenant=tenant, e164=f"+1555{secrets.randbelow(10**7):07d}", agent=agent)
    call = call_services.call_create(
        tenant=tenant,
        agent=agent,
        direction=Call.Direction.INBOUND,
        from_number="+15557770001",
        to_number=number.e164,
        phone_number=number,
        metadata={"caller_name": "Ada Lovelace", "source": "benchmark"},
    )
    for status in (CallStatus.RINGING, CallStatus.CONNECTED, CallStatus.CONVERSING):  # 3 events
        call = call_services.call_transition(call=call, to_status=status)
    start = timezone.now()
    turns = TranscriptTurn.objects.bulk_create(
        TranscriptTurn(
            tenant=tenant,
            call=call,
            turn_number=n,
            speaker="agent" if n % 2 else "caller",
            text=f"Turn {n}: " + "I would like to book a cleaning next Tuesday morning, if you have a slot. " * 2,
            confidence=None if n % 2 else 0.91,
            started_at=start + timedelta(seconds=6 * n),
            ended_at=start + timedelta(seconds=6 * n + 5),
            metadata={"stt_ms": 180, "llm_ms": 420, "tts_ms": 150},
        )
        for n in range(1, 21)
    )
    for n in range(7):  # 10 events in all
        call_services.call_event_record(
            call=call, event_type=CallEvent.Type.TRANSCRIPT_TURN, payload={"turn_number": n + 1, "speaker": "caller"}
        )
    for n, tool in enumerate(("check_availability", "book_appointment")):
        ToolCall.objects.create(
            tenant=tenant,
            call=call,
            turn=turns[4 + 4 * n],
            tool_name=tool,
            arguments={"date": "2026-11-24", "time": "09:00"},
            result={"ok": True, "slots": ["09:00", "10:30"]},
            status=ToolCall.Status.SUCCEEDED,
            http_status=200,
            started_at=start + timedelta(seconds=30 + 30 * n),
            ended_at=start + timedelta(seconds=31 + 30 * n),
            duration_ms=640,
        )
    connections.close_all()  # the servers are other processes; hold no connection meanwhile
    return {"secret": key.secret, "call_id": str(call.pk), "run": run}


# --- Servers --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn(app: str, *, workers: int, env: dict, log: Path, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [
        str(BIN / "gunicorn"), app, *extra,
        "--bind", f"{HOST}:{port}", "--workers", str(workers), "--worker-class", "sync",
        "--log-level", "warning", "--backlog", "2048",
    ]  # fmt: skip
    return spawn(argv, env, log_path=log), f"http://{HOST}:{port}"


def wait_ready(process: subprocess.Popen, base_url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"error: the server at {base_url} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:  # noqa: S310 (http://127.0.0.1)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    sys.exit(
        f"error: the server at {base_url} did not answer /health within {timeout:.0f} s:\n{log.read_text()[-3000:]}"
    )


def fetch(base_url: str, path: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{base_url}{path}", headers={"X-API-Key": key})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- Load generation ------------------------------------------------------------------------------------

WRK_COMMON = r"""
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
  counter = 0
  run_id = args[1] or "run"
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      merged[code] = (merged[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    table.concat(parts, ","), e.connect, e.read, e.write, e.timeout))
end
"""

WRK_POST_AGENT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  counter = counter + 1
  local body = string.format(
    '{"name":"bench-%s-%d-%d","system_prompt":"You answer the phone for a dental practice.",' ..
    '"greeting_message":"Hello!"}', run_id, id, counter)
  return wrk.format(nil, nil, nil, body)
end
"""


def ensure_wrk(choice: str) -> str | None:
    if choice == "python":
        return None
    path = shutil.which("wrk")
    apt_get = shutil.which("apt-get")
    if path is None and os.geteuid() == 0 and apt_get:
        print("wrk is not installed: installing it with apt-get ...")
        install = [apt_get, "install", "-y", "-qq", "wrk"]
        quiet = {
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        }
        if subprocess.run(install, check=False, **quiet).returncode != 0:  # noqa: S603
            subprocess.run([apt_get, "update", "-qq"], check=False, **quiet)  # noqa: S603
            subprocess.run(install, check=False, **quiet)  # noqa: S603
        path = shutil.which("wrk")
    if path is None and choice == "wrk":
        sys.exit("error: wrk is not installed and could not be installed (apt-get install wrk, as root).")
    return path


def run_wrk(
    wrk: str, url: str, key: str, *, post_agents: bool, args, run_id: str, seconds: float, workdir: Path
) -> dict:
    script = workdir / ("post_agent.lua" if post_agents else "get.lua")
    script.write_text(WRK_COMMON + (WRK_POST_AGENT if post_agents else ""))
    argv = [
        wrk, "-t", str(min(args.threads, args.connections)), "-c", str(args.connections), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s", "-H", f"X-API-Key: {key}", "-s", str(script), url, "--", run_id,
    ]  # fmt: skip
    process = spawn(argv, os.environ.copy(), capture=True)
    output, _ = process.communicate()
    _children.remove(process)
    line = next((x for x in output.decode().splitlines() if x.startswith("WRK_JSON ")), None)
    if process.returncode != 0 or line is None:
        sys.exit(f"error: wrk failed ({process.returncode}):\n{output.decode()[-2000:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return {
        "requests": data["requests"],
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "statuses": {int(code): count for code, count in data["statuses"].items()},
        "errors": sum(data["errors"].values()),
    }


async def _python_connection(host, port, make_request, deadline, latencies, statuses, errors):
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            payload = make_request()
            started = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length, close, chunked = 0, False, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value == "close"
                elif name == "transfer-encoding":
                    chunked = "chunked" in value
            if chunked:
                while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
                    await reader.readexactly(size + 2)
                await reader.readline()
            else:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if close:
                writer.close()
                writer = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            errors.append(1)
            if writer is not None:
                writer.close()
                writer = None
    if writer is not None:
        writer.close()


def run_python(url: str, key: str, *, post_agents: bool, args, run_id: str, seconds: float) -> dict:
    """Fallback load generator (one asyncio loop in this process): slower than wrk, may cap the figures."""
    address, _, path = url.removeprefix("http://").partition("/")
    host, _, port = address.partition(":")
    counter = iter(range(1, 10**12))

    def make_request() -> bytes:
        if not post_agents:
            return f"GET /{path} HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {key}\r\n\r\n".encode()
        body = json.dumps(
            {
                "name": f"bench-{run_id}-{next(counter)}",
                "system_prompt": "You answer the phone.",
                "greeting_message": "Hello!",
            }
        ).encode()
        head = (
            f"POST /{path} HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: list[int] = []

    async def main():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _python_connection(host, int(port), make_request, deadline, latencies, statuses, errors)
                for _ in range(args.connections)
            )
        )

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = (
        (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (lambda q: 0.0)
    )
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "statuses": dict(statuses),
        "errors": len(errors),
    }


# --- Profile --------------------------------------------------------------------------------------------


def profile(call_id: str, key: str, requests: int = 300) -> None:
    """Where one GET /v1/calls/{id} spends its time, in this process, through the full Django stack."""
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST=HOST, HTTP_X_API_KEY=key)
    path = f"/v1/calls/{call_id}"
    for _ in range(20):
        client.get(path)  # warm: connection, caches, rate-limit plan
    queries: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append((time.perf_counter() - started, sql))

    started = time.perf_counter()
    for _ in range(requests):
        client.get(path)
    per_request = (time.perf_counter() - started) / requests * 1000
    with connection.execute_wrapper(timed):
        started = time.perf_counter()
        for _ in range(requests):
            response = client.get(path)
        with_wrapper = (time.perf_counter() - started) / requests * 1000
    db_ms = sum(seconds for seconds, _sql in queries) / requests * 1000
    print(
        f"\nprofile of GET {path} (in-process, django.test.Client, {requests} requests): status {response.status_code}"
    )
    print(f"  {per_request:.2f} ms per request; SQL: {len(queries) / requests:.1f} queries, {db_ms:.2f} ms per request")
    print(f"  (query timing itself: {with_wrapper - per_request:+.2f} ms per request)")
    for seconds, sql in queries[-round(len(queries) / requests) :]:
        print(f"    {seconds * 1000:6.2f} ms  {sql[:140]}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(path)
    profiler.disable()
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        total += tottime
        by_package[_package(filename)] += tottime
    print("  own time by package (cProfile):")
    for package, seconds in sorted(by_package.items(), key=lambda item: -item[1])[:10]:
        print(f"    {package:<28} {seconds / total * 100:5.1f} %")
    print("  functions by cumulative time (cProfile; the profiler inflates every figure):")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][3])
    shown = 0
    for (filename, line, name), (_cc, _calls, _tt, cumtime, _callers) in rows:
        if name.startswith("<") or "cProfile" in filename or filename.endswith("bench/api.py"):
            continue
        print(f"    {cumtime / requests * 1000:6.3f} ms/req  {_package(filename)}:{Path(filename).name}:{line} {name}")
        shown += 1
        if shown == 40:
            break


def _package(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if filename.startswith(str(ROOT)):
        return "project:" + Path(filename).relative_to(ROOT).parts[0]
    if filename.startswith("~") or "python3" in filename:
        return "stdlib/builtins"
    return Path(filename).parent.name or filename


# --- Main -----------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help="cache for the platform (default: none, local memory)",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per scenario (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of discarded load before each scenario (default 2)"
    )
    parser.add_argument("--connections", type=int, default=20, help="concurrent connections (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn sync workers per server (default 1)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: leaves the cores to the servers)"
    )
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--profile", action="store_true", help="also profile one GET /v1/calls/{id} in-process")
    args = parser.parse_args()
    if args.duration <= 0 or args.connections < 1 or args.workers < 1 or args.threads < 1:
        parser.error("--duration, --connections, --workers and --threads must be positive")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error(f"the benchmark runs on PostgreSQL; DATABASE_URL is {args.database_url!r}")
    return args


def main() -> None:
    args = parse_args()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)  # SIGINT too: a shell may start us with it ignored
    prepare_database(args.database_url)
    env = server_environment(args)
    setup_django(env)
    migrate()
    seeded = seed()
    wrk = ensure_wrk(args.load_generator)
    workdir = Path(tempfile.mkdtemp(prefix="voiceapp-bench-"))
    try:
        platform, platform_url = gunicorn(
            "voiceapp.wsgi:application", workers=args.workers, env=env, log=workdir / "platform.log"
        )
        baseline, baseline_url = gunicorn(
            "bare_wsgi:application",
            workers=args.workers,
            env=env,
            log=workdir / "baseline.log",
            extra=["--pythonpath", str(BENCH_DIR)],
        )
        wait_ready(platform, platform_url, workdir / "platform.log")
        wait_ready(baseline, baseline_url, workdir / "baseline.log")

        key, path = seeded["secret"], f"/v1/calls/{seeded['call_id']}"
        answers = {
            name: fetch(url, path, key) for name, url in (("platform", platform_url), ("baseline", baseline_url))
        }
        for name, (status, body) in answers.items():
            if status != 200:
                sys.exit(f"error: {name} answered GET {path} with {status}: {body[:500]!r}")
        same = json.loads(answers["platform"][1]) == json.loads(answers["baseline"][1])

        generator = (
            f"wrk ({wrk}, {args.threads} thread(s))"
            if wrk
            else "Python asyncio (wrk unavailable; it may cap the figures)"
        )
        print(
            f"\nmachine: {os.cpu_count()} CPU cores; servers: gunicorn, {args.workers} sync worker(s) each, on {HOST}\n"
            f"database: {env['DATABASE_URL']}; cache: {'Redis ' + args.redis_url if args.redis_url else 'local memory'}\n"
            f"load: {generator}, {args.connections} connections, {args.duration:g} s per scenario after {args.warmup:g} s warm-up\n"
            f"GET {path}: {len(answers['platform'][1])} bytes (platform), {len(answers['baseline'][1])} bytes (baseline), "
            f"same JSON: {'yes' if same else 'NO'}\n"
        )

        def load(url: str, post_agents: bool, run_id: str, seconds: float) -> dict:
            if wrk:
                return run_wrk(
                    wrk, url, key, post_agents=post_agents, args=args, run_id=run_id, seconds=seconds, workdir=workdir
                )
            return run_python(url, key, post_agents=post_agents, args=args, run_id=run_id, seconds=seconds)

        scenarios = [
            ("GET /v1/calls/{id}   platform", platform_url + path, False),
            ("GET /v1/calls/{id}   baseline", baseline_url + path, False),
            ("POST /v1/agents      platform", platform_url + "/v1/agents", True),
        ]
        results = {}
        for number, (name, url, post_agents) in enumerate(scenarios):
            if args.warmup > 0:
                load(url, post_agents, f"{seeded['run']}w{number}", args.warmup)
            results[name] = load(url, post_agents, f"{seeded['run']}r{number}", args.duration)
            print(f"  done: {name}")

        print(f"\n{'scenario':<32}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}{'socket errors':>15}")
        for name, result in results.items():
            non_2xx = sum(count for code, count in result["statuses"].items() if not 200 <= code < 300)
            print(
                f"{name:<32}{result['rps']:>12.0f}{result['p50_ms']:>10.2f}{result['p99_ms']:>10.2f}"
                f"{non_2xx:>10}{result['errors']:>15}"
            )
            if non_2xx:
                print(f"{'':<32}statuses: {dict(sorted(result['statuses'].items()))}")
        get_platform, get_baseline = results[scenarios[0][0]]["rps"], results[scenarios[1][0]]["rps"]
        ratio = get_platform / get_baseline if get_baseline else float("nan")
        per_worker = get_platform / args.workers
        print(
            f"\nplatform/baseline, GET /v1/calls/{{id}} requests/s: {ratio:.2f}"
            f"  (platform: {per_worker:.0f} requests/s per worker process)"
        )
        if args.profile:
            stop_children()  # give the cores back before profiling
            profile(seeded["call_id"], key)
    finally:
        stop_children()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
