"""TTS node benchmark: time to first audio (p50/p95), real-time factor and throughput under load.

    .venv-tts/bin/python bench/tts_node.py                    # the engine TTS_* configures, in-process
    .venv-tts/bin/python bench/tts_node.py --url http://gpu-1:8080 --token ...   # a running node
    .venv-tts/bin/python bench/tts_node.py --random-weights /tmp/turbo   # Chatterbox Turbo, real
                                                              # architecture, random weights (GPU)

For each concurrency level (1, 10, 100 by default) it sends that many streaming requests at once
(the node's body, docs/tts-node.md#api) and reads them as a client would. Time to first audio: from sending to the
first PCM byte. RTF: a request's wall time from send to last byte over its audio's duration (above 1
means a listener would hear gaps). Throughput: seconds of audio delivered per wall second, all
requests together. Prints numbers; asserts nothing.
"""

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx2

TEXT = "Thanks for calling, I'd be happy to help you with that [chuckle]. Let me check your account."
WAV_HEADER = 44
BENCH_TOKEN = secrets.token_urlsafe(16)


@dataclass
class Result:
    ttfa: float
    total: float
    audio_s: float
    status: int


async def one_request(client: httpx2.AsyncClient, body: dict) -> Result:
    started = time.perf_counter()
    first = None
    received = 0
    rate = 24000
    async with client.stream("POST", "/synthesize/stream", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return Result(0.0, time.perf_counter() - started, 0.0, response.status_code)
        rate = int(response.headers.get("x-sample-rate", rate))
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if first is None and received > WAV_HEADER:
                first = time.perf_counter() - started
    audio_s = max(0, received - WAV_HEADER) / 2 / rate
    return Result(first or 0.0, time.perf_counter() - started, audio_s, 200)


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def level(url: str, token: str, voice: str, concurrency: int, *, report: bool = True) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"text": TEXT, "voice_id": voice, "options": {"exaggeration": 0.5, "cfg_weight": 0.5, "streaming": True}}
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(one_request(client, body) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ok = [r for r in results if r.status == 200]
    refused = len(results) - len(ok)
    if not report:
        return
    if not ok:
        print(f"{concurrency:>5}  all {refused} refused")
        return
    ttfa = [r.ttfa * 1000 for r in ok]
    rtf = [r.total / r.audio_s for r in ok if r.audio_s]
    audio = sum(r.audio_s for r in ok)
    print(
        f"{concurrency:>5}  {percentile(ttfa, 50):>8.0f} {percentile(ttfa, 95):>8.0f}"
        f"  {percentile(rtf, 50):>7.2f} {percentile(rtf, 95):>7.2f}"
        f"  {audio / wall:>10.2f}  {wall:>7.1f}  {refused:>7}"
    )


def serve_in_process(args) -> tuple[str, str, object]:
    """Start the node as configured by TTS_* (or on random Turbo weights) on a free local port."""
    import socket

    import uvicorn

    from tts_node.app import create_app
    from tts_node.settings import load_settings

    settings = load_settings()
    if args.random_weights:
        folder = Path(args.random_weights)
        if not (folder / "t3_turbo_v1.safetensors").exists():
            from tts_node.tests.random_chatterbox import build_turbo_weights

            print(f"building random Chatterbox Turbo weights (full size) in {folder} ...", flush=True)
            build_turbo_weights(folder)
        settings = replace(settings, engine="chatterbox", model="turbo", weights_dir=folder)
    if args.max_tokens:
        settings = replace(settings, max_speech_tokens=args.max_tokens)
    settings = replace(settings, api_token=BENCH_TOKEN, voices_dir=Path(args.voices_dir or tempfile.mkdtemp()))
    app = create_app(settings)
    node = app.state.node
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not node.engine.loaded:
        if node.load_error:
            raise SystemExit(f"the model failed to load: {node.load_error}")
        time.sleep(0.1)
    print(f"engine {node.engine.model} on {node.engine.device}, max_active={settings.max_active}", flush=True)
    return f"http://127.0.0.1:{port}", BENCH_TOKEN, node


async def clone_voice(url: str, token: str) -> str:
    """Chatterbox needs a cloned voice (random weights ship no conds.pt): upload a tone as reference."""
    import io

    import numpy as np
    import soundfile

    t = np.arange(24000 * 6) / 24000
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000, format="WAV")
    async with httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as c:
        response = await c.post("/voices", files={"reference_audio": ("ref.wav", buffer.getvalue(), "audio/wav")})
        response.raise_for_status()
        return response.json()["id"]


async def main(args) -> None:
    url, token = args.url, args.token
    if not url:
        url, token, node = serve_in_process(args)
        voice = await clone_voice(url, token) if node.engine.supports_cloning else "default"
    else:
        voice = args.voice
    await level(url, token, voice, 1, report=False)  # warm-up (first-use costs)
    print(f"text: {len(TEXT)} characters")
    print("conc.  TTFA p50  p95 ms    RTF p50    p95  audio s/s   wall s  refused")
    for concurrency in args.levels:
        await level(url, token, voice, concurrency)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="", help="a running node; default: serve one in-process")
    parser.add_argument("--token", default=os.environ.get("TTS_API_TOKEN", ""))
    parser.add_argument("--voice", default="default")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--random-weights", default="", help="folder for full-size random Turbo weights")
    parser.add_argument("--max-tokens", type=int, default=0, help="cap speech tokens per sentence")
    parser.add_argument("--voices-dir", default="", help="default: a new temporary folder")
    asyncio.run(main(parser.parse_args()))
