"""Benchmark of the agent session: N concurrent simulated calls in one process, on fake providers.

    .venv/bin/python bench/pipeline.py                 # N = 1, 10, 50; 3 caller turns per call
    .venv/bin/python bench/pipeline.py --database-url postgres://postgres@127.0.0.1:5432/voiceapp_bench \
        --redis-url redis://127.0.0.1:6379/13          # as in production; that Redis db is emptied at the end
    .venv/bin/python bench/pipeline.py --stt batch --no-gc-freeze --frame-ms 40 --turns 5 --calls 50

Every call runs the real session (`voice.session.create_call_session`): the framework's
AgentSession with turn-taking, the in-process media link paced in real time, the context shaping,
the tools, the recorder writing every turn to the database, the metrics. Only the engines are fakes
with fixed delays, so what is measured is what the platform adds:

- caller speech: 1 s per turn in 20 ms frames (`--frame-ms`), in real time, then silence until the
  agent has answered; calls start spread over one turn cycle, as independent calls would;
- the VAD works at Silero's cadence (32 ms) without its model cost; end of speech after `--vad-silence`;
- the STT streams like Deepgram and answers `--stt-delay` after its own end of speech (`--stt batch`:
  like Whisper, one request per VAD segment through the framework's StreamAdapter);
- the LLM's first token comes `--llm-ttft` after its request, the TTS's first audio `--tts-ttfb` after its.

Per caller turn it takes the end of the caller's speech (the last loud frame pushed) to the first
agent frame handed to the phone leg, and subtracts the configured path: the later of the VAD
silence plus the STT delay and the endpointing delay, then the LLM's first token and the TTS's
first audio. What is left is the platform's own added latency, printed as p50/p95/max, with the CPU
time per call (share of one core, all threads) and the worst 20 ms frame lateness. A one-call
warm-up run comes first, then `prepare_worker()` (gc.freeze) unless `--no-gc-freeze`. Without
`--redis-url` the event bus is in memory and the post-call jobs run in this process (eager Celery),
which production leaves to the workers. It asserts nothing.
"""

import argparse
import asyncio
import base64
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RATE = 16000
ENDPOINTING = 0.5  # the session's endpointing delay (framework default, not overridden by the platform)


def setup_django(database_url: str, redis_url: str = "") -> None:
    # With Redis, as in production: the event bus on the Redis channel layer, and the post-call jobs
    # queued for Celery workers instead of run in this process.
    os.environ["REDIS_URL"] = redis_url
    if database_url == "sqlite":
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-pipeline-')}/db.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    # Production settings: DEBUG off (no query log on every write).
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-" + uuid.uuid4().hex * 2)
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    os.environ.setdefault("INTEGRATION_CRYPTO_KEY", f"bench:{base64.b64encode(os.urandom(32)).decode()}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # Import the pipeline now, so that its import time is not counted as the first run's CPU.
    import voice.session  # noqa: F401


# --- fake providers with fixed delays -------------------------------------------------------------


def loud(frame) -> bool:
    """The fakes' speech test: one sample (the bench's caller speaks a constant level, or silence)."""
    return frame.data[0] != 0


def fake_models(args):
    from livekit.agents import llm, stt, tts, vad
    from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

    from voice.session import PipelineModels

    class LevelVAD(vad.VAD):
        """Silero's cadence (one inference per 32 ms of audio) without its model cost."""

        def __init__(self):
            super().__init__(capabilities=vad.VADCapabilities(update_interval=0.032))

        def stream(self):
            return LevelStream(self)

    class LevelStream(vad.VADStream):
        async def _main_task(self):
            state = {"speaking": False, "speech": 0.0, "quiet": 0.0, "frames": [], "pending": 0.0}
            async for frame in self._input_ch:
                if isinstance(frame, self._FlushSentinel):
                    state.update(speaking=False, speech=0.0, quiet=0.0, frames=[])
                    continue
                for event in vad_step(state, frame):
                    self._event_ch.send_nowait(event)

    def vad_step(state, frame) -> list:
        is_loud = loud(frame)
        state["speech" if is_loud else "quiet"] += frame.duration
        if is_loud:
            state["quiet"] = 0.0
        if is_loud or state["speaking"]:
            state["frames"].append(frame)
        state["pending"] += frame.duration
        if state["pending"] < 0.032:
            return []
        state["pending"] = 0.0
        events = [vad_event(vad.VADEventType.INFERENCE_DONE, state, [frame], is_loud)]
        if is_loud and not state["speaking"] and state["speech"] >= 0.1:
            state["speaking"] = True
            events.append(vad_event(vad.VADEventType.START_OF_SPEECH, state, state["frames"], is_loud))
        elif state["speaking"] and state["quiet"] >= args.vad_silence:
            events.append(vad_event(vad.VADEventType.END_OF_SPEECH, state, state["frames"], is_loud))
            state.update(speaking=False, speech=0.0, frames=[])
        elif not state["speaking"] and not is_loud:
            state.update(speech=0.0, frames=[])
        return events

    def vad_event(kind, state, frames, is_loud):
        return vad.VADEvent(
            type=kind,
            samples_index=0,
            timestamp=time.time(),
            speech_duration=state["speech"],
            silence_duration=state["quiet"],
            frames=list(frames),
            probability=float(is_loud),
            speaking=is_loud,
            raw_accumulated_speech=state["speech"] if is_loud else 0.0,
            raw_accumulated_silence=state["quiet"],
        )

    def transcript() -> stt.SpeechEvent:
        data = stt.SpeechData(language="en", text="When are you open on Saturday?", confidence=0.9)
        return stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[data])

    class BatchSTT(stt.STT):
        """Whisper's shape: one request per VAD segment (the framework's StreamAdapter)."""

        def __init__(self):
            super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))

        async def _recognize_impl(self, buffer, *, language=None, conn_options=None):
            await asyncio.sleep(args.stt_delay)
            return transcript()

    class StreamingSTT(stt.STT):
        """Deepgram's shape: audio streams out, the final transcript comes `stt_delay` after the
        provider's own end of speech (`vad_silence` of quiet)."""

        def __init__(self):
            super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))

        async def _recognize_impl(self, buffer, *, language=None, conn_options=None):
            return transcript()

        def stream(self, *, language=None, conn_options=DEFAULT_API_CONNECT_OPTIONS):
            return Listening(stt=self, conn_options=conn_options)

    class Listening(stt.RecognizeStream):
        async def _run(self):
            speaking, quiet = False, 0.0
            async for frame in self._input_ch:
                if isinstance(frame, self._FlushSentinel):
                    continue
                if loud(frame):
                    if not speaking:
                        self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
                    speaking, quiet = True, 0.0
                elif speaking:
                    quiet += frame.duration
                    if quiet >= args.vad_silence:
                        speaking = False
                        asyncio.get_running_loop().call_later(args.stt_delay, self._final)

        def _final(self):
            if not self._event_ch.closed:
                self._event_ch.send_nowait(transcript())
                self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))

    class DelayLLM(llm.LLM):
        def chat(self, *, chat_ctx, tools=None, conn_options=DEFAULT_API_CONNECT_OPTIONS, **kwargs):
            return DelayStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    class DelayStream(llm.LLMStream):
        async def _run(self):
            await asyncio.sleep(args.llm_ttft)
            text = "We are open Saturday mornings from nine to noon."
            self._event_ch.send_nowait(llm.ChatChunk(id="r", delta=llm.ChoiceDelta(role="assistant", content=text)))

    class DelayTTS(tts.TTS):
        def __init__(self):
            super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=RATE, num_channels=1)

        def synthesize(self, text, *, conn_options=DEFAULT_API_CONNECT_OPTIONS):
            return DelayChunks(tts=self, input_text=text, conn_options=conn_options)

    class DelayChunks(tts.ChunkedStream):
        async def _run(self, output_emitter):
            await asyncio.sleep(args.tts_ttfb)
            output_emitter.initialize(request_id="r", sample_rate=RATE, num_channels=1, mime_type="audio/pcm")
            output_emitter.push(np.full(int(args.reply_seconds * RATE), 300, dtype=np.int16).tobytes())

    speech = StreamingSTT() if args.stt == "streaming" else BatchSTT()
    return PipelineModels(stt=speech, llm=DelayLLM(), tts=DelayTTS(), vad=LevelVAD())


# --- one simulated call -----------------------------------------------------------------------------


class BenchCall:
    def __init__(self, call, args):
        from voice.io import CallAudioInput, CallAudioOutput

        self.call, self.args = call, args
        self.input = CallAudioInput()
        self.output = CallAudioOutput(sink=self._sink, sample_rate=RATE)
        self.frames: list[float] = []  # monotonic time of every agent frame handed over
        self.latencies: list[float] = []
        self.speech_ended: float | None = None

    def _sink(self, frame) -> None:
        now = time.monotonic()
        if self.speech_ended is not None:
            self.latencies.append(now - self.speech_ended)
            self.speech_ended = None
        self.frames.append(now)

    async def run(self) -> None:
        from voice.session import InProcessMedia, create_call_session

        media = InProcessMedia(self.input, self.output)
        session = await create_call_session(
            tenant_id=self.call.tenant_id, call_id=self.call.pk, media=media, models=fake_models(self.args)
        )
        await session.start()
        size = RATE * self.args.frame_ms // 1000
        loud, quiet = np.full(size, 3000, dtype=np.int16), np.zeros(size, dtype=np.int16)
        for _ in range(self.args.turns):
            await self._push(loud, seconds=1.0)
            self.speech_ended = time.monotonic()
            await self._push(quiet, seconds=self._turn_gap())
        session.hangup()
        await session.aclose()

    def _turn_gap(self) -> float:
        a = self.args
        return max(a.vad_silence + a.stt_delay, ENDPOINTING) + a.llm_ttft + a.tts_ttfb + a.reply_seconds + 1.0

    async def _push(self, samples, *, seconds: float) -> None:
        from livekit import rtc

        start, step = time.monotonic(), len(samples) / RATE
        for n in range(round(seconds / step)):
            # like a phone leg: a frame arrives once its audio has been captured
            await asyncio.sleep(max(0.0, start + (n + 1) * step - time.monotonic()))
            self.input.push_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, len(samples)))

    def lateness(self) -> list[float]:
        """How late each 20 ms frame came after the one before it, within a reply."""
        gaps = np.diff(self.frames)
        return [g - 0.02 for g in gaps if g < 0.5]


# --- the run ----------------------------------------------------------------------------------------


def make_calls(n: int):
    from agents.models import Agent
    from calls import services
    from calls.models import Call
    from calls.state_machine import CallStatus
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name="Bench Dental", slug=f"bench-{uuid.uuid4().hex[:8]}")
    agent = Agent.objects.create(
        tenant=tenant, name="Bench agent", system_prompt="You are a receptionist.", greeting_message=""
    )
    calls = []
    for _ in range(n):
        call = services.call_create(tenant=tenant, agent=agent, direction=Call.Direction.INBOUND)
        services.call_transition(call=call, to_status=CallStatus.RINGING)
        calls.append(services.call_transition(call=call, to_status=CallStatus.CONNECTED))
    return calls


async def run_calls(calls, args) -> tuple[list["BenchCall"], float, float]:
    bench = [BenchCall(call, args) for call in calls]
    cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    # Calls start spread over one turn cycle, as independent calls would be: their turns do not
    # all end on the same second.
    cycle = 1.0 + bench[0]._turn_gap()
    await asyncio.gather(*(_staggered(b, cycle * i / len(bench)) for i, b in enumerate(bench)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return bench, cpu_seconds, time.monotonic() - wall


async def _staggered(call: BenchCall, delay: float) -> None:
    await asyncio.sleep(delay)
    await call.run()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(n: int, bench, cpu_seconds: float, wall: float, args) -> None:
    ideal = max(args.vad_silence + args.stt_delay, ENDPOINTING) + args.llm_ttft + args.tts_ttfb
    latencies = [x for b in bench for x in b.latencies]
    added = [x - ideal for x in latencies]
    late = [x for b in bench for x in b.lateness()]
    per_call = cpu_seconds / n / wall * 100
    print(
        f"{n:>5} {len(latencies):>6} {statistics.median(latencies) * 1000:>9.0f} "
        f"{percentile(added, 50) * 1000:>9.1f} {percentile(added, 95) * 1000:>9.1f} {max(added) * 1000:>9.1f} "
        f"{per_call:>10.2f}% {percentile(late, 99) * 1000:>9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--vad-silence", type=float, default=0.3)
    parser.add_argument("--stt-delay", type=float, default=0.2)
    parser.add_argument("--llm-ttft", type=float, default=0.3)
    parser.add_argument("--tts-ttfb", type=float, default=0.1)
    parser.add_argument("--reply-seconds", type=float, default=1.5)
    parser.add_argument("--frame-ms", type=int, default=20, help="Caller audio packet size (the phone leg's is 20 ms)")
    parser.add_argument(
        "--stt",
        choices=["streaming", "batch"],
        default="streaming",
        help="Deepgram's shape, or Whisper's (VAD segments)",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "sqlite"))
    parser.add_argument(
        "--redis-url", default="", help="Redis as in production (a database of its own: it is emptied at the end)"
    )
    parser.add_argument("--no-gc-freeze", action="store_true", help="Skip session.prepare_worker() (gc.freeze).")
    args = parser.parse_args()
    setup_django(args.database_url, args.redis_url)
    ideal = max(args.vad_silence + args.stt_delay, ENDPOINTING) + args.llm_ttft + args.tts_ttfb
    print(
        f"cores: {os.cpu_count()}, database: {args.database_url.split('@')[-1]}, "
        f"redis: {args.redis_url or 'none (in-memory bus, post-call jobs in-process)'}, STT: {args.stt}, "
        f"gc.freeze: {'no' if args.no_gc_freeze else 'yes'}, "
        f"turns per call: {args.turns}"
    )
    print(
        f"configured path per turn: max(VAD {args.vad_silence:g} s + STT {args.stt_delay:g} s, endpointing "
        f"{ENDPOINTING:g} s) + LLM {args.llm_ttft:g} s + TTS {args.tts_ttfb:g} s = {ideal * 1000:.0f} ms"
    )
    print(
        f"{'calls':>5} {'turns':>6} {'e2e p50':>9} {'added p50':>9} {'added p95':>9} {'added max':>9} {'CPU/call':>11} {'frame p99':>9}"
    )
    print(f"{'':>5} {'':>6} {'ms':>9} {'ms':>9} {'ms':>9} {'ms':>9} {'of a core':>11} {'late ms':>9}")
    asyncio.run(run_calls(make_calls(1), args))  # warm-up: first-use costs are not a call's
    if not args.no_gc_freeze:
        from voice.session import prepare_worker

        prepare_worker()
    for n in args.calls:
        calls = make_calls(n)
        bench, cpu_seconds, wall = asyncio.run(run_calls(calls, args))
        report(n, bench, cpu_seconds, wall, args)
    if args.redis_url:
        from bench.redis_dbs import flush

        flush(args.redis_url)  # the queued post-call jobs no worker will run


if __name__ == "__main__":
    main()
