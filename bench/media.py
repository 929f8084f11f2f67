"""Benchmark of one media worker process: N concurrent calls with full Opus media both ways.

    .venv/bin/python bench/media.py --quick            # N = 1, 10, 25, 50; 15 s each; about 2 minutes
    .venv/bin/python bench/media.py                    # N = 1, 10, 25, 50, 75, 100; 30 s each
    .venv/bin/python bench/media.py --calls 50 --seconds 60 --no-record --session-rate 48000
    .venv/bin/python bench/media.py --carrier twilio --quick   # Twilio Media Streams instead (bench/media_twilio.py)

Each call is what a media worker runs for a phone call on the in-process link:

    caller peer (aiortc, another process) <-Opus/DTLS-SRTP/UDP-> PhoneLeg <-> CallAudioInput/Output <-> agent session

The callers are real aiortc peers (`tests/telephony/peer.py`) in separate processes (`--per-process`
each), so the measured process is only the worker; they say a piper sentence every `--every`
seconds, starting spread over one cycle as independent calls would, replaying Opus packets encoded
once (`preencoded`) to leave the worker as much of the machine as they can. The worker runs, per call, a
`PhoneLeg` (decode, resample, paced Opus out, the recording mix unless `--no-record`) and a real
agent session (`create_call_session` with the fake providers of bench/pipeline.py: fixed delays, no
model cost; the TTS answers with a 1.5 s tone), after `prepare_worker()` (gc.freeze) as a media
worker does after start-up. A one-call warm-up round comes first.

Per N it prints, over the steady part of the calls (from 2 s after every session started to 1 s
before the callers hang up): the outbound track's pacing jitter (how late each 20 ms frame left
after its slot on the schedule) p50/p99/max, underruns (frames with audio queued that left more than
a frame late), skipped slots (stalls over 100 ms: frames never sent), dropouts inside a reply,
caller frames received per second per call (50 when nothing is lost), caller audio the session
dropped for lagging, agent audio sent, the worker's CPU seconds per call per second of call (all its
threads: aiortc decodes on a thread per leg, the ORM runs on worker threads) and the callers'
processes' CPU (cores) for context. The knee is the first N where p99 jitter reaches 20 ms or frames are
dropped (skipped, or caller audio dropped). It asserts nothing. The callers share the machine's
cores with the worker: on a small machine they cost it CPU time, so the knee found is a floor.
"""

import argparse
import asyncio
import math
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
SENTENCE = "Hello, I would like to know when you are open on Saturday."
SETTLE = 2.0  # seconds after the last session started before measuring
TAIL = 1.0  # seconds before the callers hang up when measuring stops


# --- the callers' processes -----------------------------------------------------------------------


def caller_process(conn, count: int, speech: str, every: float, seconds: float) -> None:
    """Runs `count` caller peers: offers out, answers in, speech every `every` s, hang up after `seconds`."""
    asyncio.run(_callers(conn, count, speech, every, seconds))


async def _callers(conn, count: int, speech: str, every: float, seconds: float) -> None:
    from tests.telephony.peer import CallerPeer

    peers = [CallerPeer(record=False, preencoded=True) for _ in range(count)]
    conn.send([await peer.create_offer() for peer in peers])
    answers = await asyncio.to_thread(conn.recv)
    for peer, answer in zip(peers, answers, strict=True):
        await peer.accept_answer(answer)
    start = time.monotonic()
    speakers = [
        asyncio.create_task(_speak(peer, speech, every, every * i / count, start + seconds))
        for i, peer in enumerate(peers)
    ]
    await asyncio.sleep(seconds)
    for task in speakers:
        task.cancel()
    for peer in peers:
        await peer.hangup()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send({"heard": [peer.heard_seconds for peer in peers], "cpu": usage.ru_utime + usage.ru_stime})


async def _speak(peer, speech: str, every: float, offset: float, until: float) -> None:
    await asyncio.sleep(offset)
    while time.monotonic() + every < until:
        peer.say(speech)
        await asyncio.sleep(every)


# --- the worker side ------------------------------------------------------------------------------


def tone_tts(reply_seconds: float):
    """The bench's TTS: first audio after `--tts-ttfb`, then a 440 Hz tone the callers can hear."""
    from livekit.agents import tts
    from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

    rate = 16000
    samples = (np.sin(2 * np.pi * 440 * np.arange(int(reply_seconds * rate)) / rate) * 6000).astype(np.int16)

    class ToneTTS(tts.TTS):
        def __init__(self, ttfb: float):
            super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=rate, num_channels=1)
            self.ttfb = ttfb

        def synthesize(self, text, *, conn_options=DEFAULT_API_CONNECT_OPTIONS):
            return ToneChunks(tts=self, input_text=text, conn_options=conn_options)

    class ToneChunks(tts.ChunkedStream):
        async def _run(self, output_emitter):
            await asyncio.sleep(self._tts.ttfb)
            output_emitter.initialize(request_id="r", sample_rate=rate, num_channels=1, mime_type="audio/pcm")
            output_emitter.push(samples.tobytes())

    return ToneTTS


class MediaCall:
    """One call in the worker: the phone leg, the in-process link and the agent session."""

    def __init__(self, call, args, recordings: str):
        from telephony.media import CallMix, PhoneLeg
        from voice.io import CallAudioInput, CallAudioOutput

        self.call, self.args = call, args
        self.input = CallAudioInput()
        self.mix = CallMix(directory=recordings) if args.record else None
        self.leg = PhoneLeg(
            label=str(call.pk), on_audio=self.input.push_frame, session_sample_rate=args.session_rate, mix=self.mix
        )
        self.output = CallAudioOutput(sink=self.leg.play)
        self.session = None

    async def start(self) -> None:
        import pipeline

        from voice.session import InProcessMedia, create_call_session

        models = pipeline.fake_models(self.args)
        models.tts = tone_tts(self.args.reply_seconds)(self.args.tts_ttfb)
        media = InProcessMedia(self.input, self.output)
        self.session = await create_call_session(
            tenant_id=self.call.tenant_id, call_id=self.call.pk, media=media, models=models
        )
        await self.session.start()

    async def finish(self) -> str:
        """After the caller hangs up: end the session, close the leg, drop the recording file."""
        reason = await self.leg.wait_closed()
        if self.session is not None:
            self.session.hangup()
            await self.session.aclose()
        await self.leg.aclose()
        if self.mix is not None and (result := self.mix.close()) is not None:
            os.remove(result[0])
        return reason

    def snapshot(self) -> dict:
        stats = self.leg.stats
        return {**stats, "dropped": self.input.dropped}


@dataclass
class Round:
    n: int
    jitter: np.ndarray
    underruns: int
    skipped: int
    gaps: int
    fps_in: float
    dropped: float
    agent_seconds: float
    cpu_per_call: float
    caller_cpu: float
    heard: float
    failed: int

    @property
    def knee(self) -> bool:
        return bool(len(self.jitter) and np.percentile(self.jitter, 99) >= 20.0) or self.skipped > 0 or self.dropped > 0


def start_callers(n: int, args, speech: str) -> list[tuple]:
    context = multiprocessing.get_context("spawn")
    groups, per = [], args.per_process
    for first in range(0, n, per):
        mine, theirs = context.Pipe()
        count = min(per, n - first)
        process = context.Process(target=caller_process, args=(theirs, count, speech, args.every, args.seconds))
        process.start()
        groups.append((process, mine, count))
    return groups


async def run_round(n: int, args, speech: str, recordings: str) -> Round:
    import pipeline

    calls = await asyncio.to_thread(pipeline.make_calls, n)
    media = [MediaCall(call, args, recordings) for call in calls]
    groups = start_callers(n, args, speech)
    offers = [offer for _, conn, _ in groups for offer in await asyncio.to_thread(conn.recv)]
    answers = [await call.leg.accept(offer) for call, offer in zip(media, offers, strict=True)]
    position = 0
    for _, conn, count in groups:
        conn.send(answers[position : position + count])
        position += count
    called = time.monotonic()
    await asyncio.gather(*(call.start() for call in media))
    finishing = [asyncio.create_task(call.finish()) for call in media]
    measure_from, measure_to = time.monotonic() + SETTLE, called + args.seconds - TAIL
    await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
    before, cpu_before, began = [call.snapshot() for call in media], _cpu(), time.monotonic()
    await asyncio.sleep(max(0.0, measure_to - time.monotonic()))
    after, cpu_after, window = [call.snapshot() for call in media], _cpu(), time.monotonic() - began
    reasons = await asyncio.gather(*finishing)
    results = [await asyncio.to_thread(conn.recv) for _, conn, _ in groups]
    for process, _, _ in groups:
        process.join()
    return summarize(n, before, after, cpu_after - cpu_before, window, results, reasons)


def summarize(n, before, after, cpu, window, results, reasons) -> Round:
    def delta(key):
        return sum(b[key] - a[key] for a, b in zip(before, after, strict=True))

    jitter = np.asarray([ms for a, b in zip(before, after, strict=True) for ms in _new(a, b)])
    heard = [seconds for result in results for seconds in result["heard"]]
    return Round(
        n=n,
        jitter=jitter,
        underruns=delta("underruns"),
        skipped=delta("skipped"),
        gaps=delta("gaps"),
        fps_in=delta("frames_in") / n / window,
        dropped=delta("dropped"),
        agent_seconds=delta("audio_frames_out") * 0.02 / n,
        cpu_per_call=cpu / n / window,
        caller_cpu=sum(result["cpu"] for result in results),
        heard=float(np.mean(heard)) if heard else 0.0,
        failed=sum(reason != "remote_hangup" for reason in reasons),
    )


def _new(before: dict, after: dict) -> list[float]:
    """The jitter samples recorded between two snapshots (a leg keeps the last minute's)."""
    added = min(after["frames_out"] - before["frames_out"], len(after["jitter_ms"]))
    return after["jitter_ms"][-added:] if added else []


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(r: Round, args) -> None:
    p50, p99, top = np.percentile(r.jitter, [50, 99, 100]) if len(r.jitter) else (math.nan,) * 3
    print(
        f"{r.n:>5} {p50:>8.2f} {p99:>8.2f} {top:>8.1f} {r.underruns:>9} {r.skipped:>7} {r.gaps:>5} "
        f"{r.fps_in:>7.1f} {r.dropped:>8.2f} {r.agent_seconds:>8.1f} {r.cpu_per_call:>10.4f} "
        f"{r.caller_cpu / args.seconds:>8.2f} {r.heard:>7.1f} {r.failed:>6}" + ("   <- knee" if r.knee else ""),
        flush=True,
    )


def header(args) -> None:
    print(
        f"carrier: {args.carrier}, cores: {os.cpu_count()}, calls per caller process: {args.per_process}, {args.seconds:g} s per round, "
        f"a sentence every {args.every:g} s, session rate {args.session_rate} Hz, "
        f"recording mix: {'on' if args.record else 'off'}, gc.freeze: yes, "
        f"GIL switch interval: {args.switch_interval or sys.getswitchinterval() * 1000:g} ms"
    )
    print(
        f"{'calls':>5} {'jit p50':>8} {'jit p99':>8} {'jit max':>8} {'underruns':>9} {'skipped':>7} {'gaps':>5} "
        f"{'in fps':>7} {'dropped':>8} {'agent s':>8} {'CPU s/s':>10} {'callers':>8} {'heard':>7} {'failed':>6}"
    )
    print(
        f"{'':>5} {'ms':>8} {'ms':>8} {'ms':>8} {'frames':>9} {'frames':>7} {'':>5} {'per call':>7} {'s':>8} "
        f"{'per call':>8} {'per call':>10} {'cores':>8} {'s/call':>7} {'legs':>6}"
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carrier", choices=["webrtc", "twilio"], default="webrtc", help="The call's media path")
    parser.add_argument("--quick", action="store_true", help="N = 1, 10, 25, 50 for 15 s each (about 2 minutes)")
    parser.add_argument("--calls", type=int, nargs="+", default=None)
    parser.add_argument("--seconds", type=float, default=None, help="Length of each call (default 30, --quick 15)")
    parser.add_argument("--every", type=float, default=6.0, help="The caller says its sentence every this many s")
    parser.add_argument("--per-process", type=int, default=25, help="Caller peers per caller process")
    parser.add_argument("--session-rate", type=int, default=16000, help="Caller audio rate handed to the session")
    parser.add_argument("--no-record", dest="record", action="store_false", help="Without the recording mix")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0,
        help="sys.setswitchinterval in ms (Python's default is 5): how long the event loop may wait for the GIL",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "sqlite"))
    # the fake providers' delays (bench/pipeline.py)
    parser.add_argument("--vad-silence", type=float, default=0.3)
    parser.add_argument("--stt-delay", type=float, default=0.2)
    parser.add_argument("--llm-ttft", type=float, default=0.3)
    parser.add_argument("--tts-ttfb", type=float, default=0.1)
    parser.add_argument("--reply-seconds", type=float, default=1.5)
    args = parser.parse_args()
    args.stt = "streaming"
    args.calls = args.calls or ([1, 10, 25, 50] if args.quick else [1, 10, 25, 50, 75, 100])
    args.seconds = args.seconds or (15.0 if args.quick else 30.0)
    return args


def main() -> None:
    args = parse_args()
    from tests.telephony.peer import speech_wav

    speech = str(speech_wav(SENTENCE))  # piper, once (cached across runs)
    import pipeline

    pipeline.setup_django(args.database_url)
    recordings = tempfile.mkdtemp(prefix="bench-media-")
    header(args)
    round_of = run_round
    if args.carrier == "twilio":
        import media_twilio

        round_of = media_twilio.run_round
    try:
        warm = argparse.Namespace(**{**vars(args), "seconds": 8.0})
        asyncio.run(round_of(1, warm, speech, recordings))  # first-use costs are not a call's
        from voice.session import prepare_worker

        prepare_worker()
        if args.switch_interval:
            sys.setswitchinterval(args.switch_interval / 1000)
        knee = None
        for n in args.calls:
            result = asyncio.run(round_of(n, args, speech, recordings))
            report(result, args)
            knee = knee or (n if result.knee else None)
        print(f"knee: {knee if knee else f'not reached (up to {max(args.calls)} calls)'}")
    finally:
        shutil.rmtree(recordings, ignore_errors=True)


if __name__ == "__main__":
    main()
