"""Talk to an agent without a phone: one inbound call through the real session on the configured providers.

    python manage.py simulate_call --agent "Appointment Scheduler" --tenant demo-dental \\
        --say "When are you open?" --say "Goodbye" --out agent.wav

The caller's lines come from WAV files (--caller-wav) or are spoken by the offline TTS (--say). They
are fed into the call in real time (or --fast), with the line kept open in silence while the agent
answers. The call is stored like a real one (ringing -> connected -> conversing -> ended, turns,
tool calls, events); the agent's side of the conversation goes to a WAV file on the call's timeline.
"""

import asyncio
import json
import logging
import statistics
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.core.management.base import BaseCommand, CommandError
from livekit import rtc
from livekit.agents import TurnHandlingOptions

from agents.models import Agent
from calls import services as call_services
from calls.models import Call, CallEvent, ToolCall
from calls.state_machine import CallStatus
from tenants.models import Tenant

# The engines' livekit plugins register themselves when first imported, and only on the main thread;
# the call runs in async_to_sync's worker thread, so handle() loads them first (engines.load_plugins).
from voice import engines
from voice.io import CallAudioInput, CallAudioOutput
from voice.session import AgentNotFound, InProcessMedia, PipelineModels, create_call_session, find_agent

RATE = 16000  # the caller's audio, as a phone leg's decoded audio would reach the session
AGENT_RATE = 24000  # the agent's audio in --out
FRAME = RATE // 50  # 20 ms
SETTLE = 0.8  # seconds of agent quiet after its reply before the caller says the next line
# Wall-clock seconds the caller waits for an answer. Not shortened by --fast: that paces the audio,
# while transcribing and synthesizing take what they take (longer on a busy machine).
REPLY_TIMEOUT = 30.0
PAUSE = 0.25  # seconds of the agent's timeline: a later frame than this after the last one starts after a pause
FAST = 3.0

END_REASONS = {
    "caller_hangup": "you hung up",
    "agent_hangup": "the agent ended the call",
    "transferred": "transferred to a person",
    "idle_timeout": "nobody spoke for too long",
    "max_duration": "the maximum call duration was reached",
    "error": "the agent could not go on",
}


@dataclass
class Utterance:
    label: str
    samples: np.ndarray  # int16 mono at RATE


def to_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE or not len(samples):
        return samples.astype(np.int16)
    resampler = rtc.AudioResampler(rate, RATE, quality=rtc.AudioResamplerQuality.HIGH)
    frames = resampler.push(rtc.AudioFrame(samples.astype(np.int16).tobytes(), rate, 1, len(samples)))
    frames += resampler.flush()
    return np.frombuffer(b"".join(bytes(f.data) for f in frames), dtype=np.int16)


def read_wav(path: str) -> Utterance:
    try:
        with wave.open(path, "rb") as wav:
            if wav.getsampwidth() != 2:
                raise CommandError(f"{path}: only 16-bit PCM WAV files are supported.")
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
            mono = pcm.reshape(-1, wav.getnchannels()).mean(axis=1).astype(np.int16)
            return Utterance(label=Path(path).name, samples=to_rate(mono, wav.getframerate()))
    except (OSError, wave.Error, EOFError) as exc:
        raise CommandError(f"Cannot read {path}: {exc}") from exc


def synthesize(text: str) -> Utterance:
    """The caller's line spoken by the offline TTS (piper)."""
    from voice.engines.piper_tts import get_voice, speakable

    chunks = list(get_voice().synthesize(speakable(text)))
    if not chunks:
        raise CommandError(f"The offline TTS could not say {text!r}.")
    pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in chunks])
    return Utterance(label=text, samples=to_rate(pcm, chunks[0].sample_rate))


def write_wav(path: str, samples: np.ndarray, rate: int) -> None:
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())


class AgentTrack:
    """The agent's audio placed on the call's timeline, so pauses and barge-ins sound as they happened."""

    def __init__(self, *, speed: float, clock=time.monotonic):
        self.speed, self._clock = speed, clock
        self.pieces: list[tuple[int, np.ndarray]] = []
        self._end = 0  # just after the last piece laid
        self.start()

    def start(self) -> None:
        self.t0, self.wall_t0 = self._clock(), time.time()

    def now(self) -> float:
        return (self._clock() - self.t0) * self.speed

    def at(self, wall_time: float | None) -> float:
        """A wall-clock time (the framework's metrics) on the call's timeline."""
        return (wall_time - self.wall_t0) * self.speed if wall_time else self.now()

    def sink(self, frame: rtc.AudioFrame) -> None:
        samples = np.frombuffer(frame.data, dtype=np.int16).copy()
        due = max(int(self.now() * AGENT_RATE) - len(samples), 0)
        # The frames of a reply follow each other: ones the playout hands over late and at once (the
        # loop was busy) go end to end, not on top of each other; only a real pause leaves silence.
        start = due if due > self._end + PAUSE * AGENT_RATE else self._end
        self.pieces.append((start, samples))
        self._end = start + len(samples)

    def render(self) -> np.ndarray:
        end = max((s + len(p) for s, p in self.pieces), default=0)
        track = np.zeros(end, dtype=np.int16)
        for start, piece in self.pieces:
            track[start : start + len(piece)] = piece
        return track

    @property
    def spoken_seconds(self) -> float:
        return sum(len(p) for _, p in self.pieces) / AGENT_RATE


@dataclass
class Simulation:
    """One simulated call; `run()` returns the call id and how it ended."""

    tenant: Tenant
    agent: Agent
    utterances: list[Utterance]
    speed: float
    write: Callable[[str], None]  # line printer
    caller_number: str = "+15550199999"
    models: PipelineModels | None = None  # None: the configured providers
    turn_handling: TurnHandlingOptions | None = None
    track: AgentTrack = field(init=False)
    latencies: list[float] = field(default_factory=list)

    async def run(self):
        self.track = AgentTrack(speed=self.speed)
        call = await database_sync_to_async(self._answer)()
        media = InProcessMedia(
            CallAudioInput(),
            CallAudioOutput(sink=self.track.sink, sample_rate=AGENT_RATE, speed=self.speed),
            self.speed,
        )
        session = await create_call_session(
            tenant_id=self.tenant.pk, call_id=call.pk, media=media, models=self.models, turn_handling=self.turn_handling
        )
        self._describe_engines(session)
        session.session.on("conversation_item_added", lambda ev: self._print_turn(ev.item))
        self._watch_tools(session)
        self.track.start()
        await session.start()
        await self._converse(session, media.audio_input)
        if not session.done:
            session.hangup()
        outcome = await session.aclose()
        if outcome.reason == Call.EndReason.TRANSFERRED:
            await database_sync_to_async(self._complete_transfer)(call)
        return call.pk, outcome

    # --- the bridge's part: answer, and finish a transfer ------------------------------------------

    def _answer(self) -> Call:
        number = self.agent.phone_numbers.filter(tenant=self.tenant).order_by("e164").first()
        call = call_services.call_create(
            tenant=self.tenant,
            agent=self.agent,
            direction=Call.Direction.INBOUND,
            from_number=self.caller_number,
            to_number=number.e164 if number else "",
            phone_number=number,
            metadata={"simulated": True},
        )
        call_services.call_transition(call=call, to_status=CallStatus.RINGING)
        return call_services.call_transition(call=call, to_status=CallStatus.CONNECTED)

    def _complete_transfer(self, call: Call) -> None:
        # With no PBX, the transfer "succeeds" at once: the call leaves the agent as transferred.
        call_services.call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.TRANSFERRED)

    # --- the caller's part --------------------------------------------------------------------------

    async def _converse(self, session, line: CallAudioInput) -> None:
        await self._wait_for_reply(session, line, turns_before=0)
        for utterance in self.utterances:
            if session.done:
                break
            before = self._agent_turns(session)
            await self._feed(line, utterance.samples)
            await self._wait_for_reply(session, line, turns_before=before)

    async def _feed(self, line: CallAudioInput, samples: np.ndarray) -> None:
        for start in range(0, len(samples), FRAME):
            chunk = samples[start : start + FRAME]
            line.push_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))
            await asyncio.sleep(len(chunk) / RATE / self.speed)

    async def _wait_for_reply(self, session, line: CallAudioInput, *, turns_before: int) -> None:
        """Keep the line open (silence) until the agent has answered and gone quiet."""
        silence = np.zeros(FRAME, dtype=np.int16)
        deadline, quiet_since = time.monotonic() + REPLY_TIMEOUT, None
        while not session.done and time.monotonic() < deadline:
            answered = self._agent_turns(session) > turns_before or not self.agent.greeting_message
            quiet = self._quiet(session)
            quiet_since = (quiet_since or time.monotonic()) if quiet else None
            if answered and quiet_since and time.monotonic() - quiet_since >= SETTLE / self.speed:
                return
            await self._feed(line, silence)

    @staticmethod
    def _quiet(session) -> bool:
        s = session.session
        return s.agent_state in ("listening", "idle") and s.user_state != "speaking" and not session.tools.running

    @staticmethod
    def _agent_turns(session) -> int:
        return sum(1 for m in session.session.history.messages() if m.role == "assistant")

    # --- printing -----------------------------------------------------------------------------------

    def _describe_engines(self, session) -> None:
        models = session.models
        labels = engines.provider_labels(stt=models.stt, llm=models.llm, tts=models.tts)
        parts = [
            f"{stage.upper()} {info['provider']}{' (offline)' if info['offline'] else ''}"
            for stage, info in labels.items()
        ]
        self.write(f"Engines: {', '.join(parts)}")

    def _print_turn(self, item) -> None:
        if getattr(item, "role", None) not in ("user", "assistant") or not (item.text_content or "").strip():
            return
        report = item.metrics or {}
        at = self.track.at(report.get("started_speaking_at"))
        who = "Caller" if item.role == "user" else "Agent "
        text = item.text_content.strip() + (" [interrupted: the rest was not played]" if item.interrupted else "")
        self.write(f"  {int(at // 60)}:{at % 60:04.1f}  {who}  {text}")
        note = self._latency_note(item.role, report)
        if note:
            self.write(f"{'':17}{note}")

    def _latency_note(self, role: str, report: dict) -> str:
        ms = {k: round(v * 1000) for k, v in report.items() if isinstance(v, float) and not k.endswith("_at")}
        if role == "user" and "transcription_delay" in ms:
            return f"(transcribed {ms['transcription_delay']} ms after you stopped)"
        if role == "assistant" and "e2e_latency" in ms:
            self.latencies.append(report["e2e_latency"])
            return (
                f"(answered {ms['e2e_latency']} ms after you stopped: "
                f"LLM first token {ms.get('llm_node_ttft', '?')} ms, first audio {ms.get('tts_node_ttfb', '?')} ms)"
            )
        return ""

    def _watch_tools(self, session) -> None:
        record = session.tools.ctx.record

        def print_and_record(call) -> None:
            self._print_tool(call)
            record(call)

        session.tools.ctx.record = print_and_record

    def _print_tool(self, call) -> None:
        outcome = json.dumps(call.result)[:100] if call.status == "succeeded" else call.error[:100]
        status = f"{call.status} (HTTP {call.http_status})" if call.http_status else call.status
        arguments = json.dumps(call.arguments)
        self.write(f"{'':17}tool {call.tool_name}({arguments}): {status} in {call.duration_ms} ms: {outcome}")


class Command(BaseCommand):
    help = "Simulate one inbound call to an agent: caller lines in (WAV or text), agent audio out, stored like a real call."

    def add_arguments(self, parser):
        parser.add_argument("--agent", required=True, help="The agent's id or exact name.")
        parser.add_argument(
            "--tenant", help="The tenant's slug (needed when several tenants have an agent of that name)."
        )
        parser.add_argument(
            "--caller-wav", nargs="+", default=[], metavar="WAV", help="Caller lines as WAV files, in order."
        )
        parser.add_argument(
            "--say", action="append", default=[], metavar="TEXT", help="A caller line, spoken by the offline TTS."
        )
        parser.add_argument("--out", help="Write the agent's audio to this WAV file.")
        parser.add_argument("--fast", action="store_true", help=f"Run {FAST:g} times faster than real time.")
        parser.add_argument("--speed", type=float, help="Run this many times faster than real time.")
        parser.add_argument("--from", dest="caller_number", default="+15550199999", help="The caller's number.")

    def handle(self, *args, **options):
        engines.load_plugins()  # on the main thread: the session below runs in async_to_sync's thread
        tenant, agent = self._agent(options["agent"], options.get("tenant"))
        utterances = [read_wav(p) for p in options["caller_wav"]] + [synthesize(t) for t in options["say"]]
        speed = options.get("speed") or (FAST if options["fast"] else 1.0)
        if speed <= 0:
            raise CommandError("--speed must be positive.")
        self.stdout.write(self.style.MIGRATE_HEADING(f"Calling {agent.name!r} of {tenant.name} ({tenant.slug})"))
        simulation = Simulation(
            tenant=tenant,
            agent=agent,
            utterances=utterances,
            speed=speed,
            write=self.stdout.write,
            caller_number=options["caller_number"],
        )
        # The pipeline's own progress logs would drown the transcript; -v 2 shows them.
        logging.disable(logging.WARNING if options["verbosity"] < 2 else logging.NOTSET)
        try:
            # async_to_sync: the session's database work runs in this (the command's) thread.
            call_id, outcome = async_to_sync(simulation.run)()
        finally:
            logging.disable(logging.NOTSET)
        self._summary(call_id, outcome, simulation, options.get("out"))

    def _agent(self, ref: str, slug: str | None) -> tuple[Tenant, Agent]:
        tenants = Tenant.objects.filter(slug=slug) if slug else Tenant.objects.filter(status=Tenant.Status.ACTIVE)
        if slug and not tenants.exists():
            raise CommandError(f"No tenant with the slug {slug!r}.")
        found = []
        for tenant in tenants:
            try:
                found.append((tenant, find_agent(tenant=tenant, agent_ref=ref)))
            except AgentNotFound:
                continue
        if not found:
            raise CommandError(
                f"No agent {ref!r}{f' in tenant {slug!r}' if slug else ''} (try `python manage.py seed_demo`)."
            )
        if len(found) > 1:
            raise CommandError(
                f"Several tenants have an agent {ref!r}: {', '.join(t.slug for t, _ in found)}. Add --tenant."
            )
        tenant, agent = found[0]
        if agent.status != Agent.Status.ACTIVE:
            raise CommandError(f"The agent {agent.name!r} is paused.")
        return tenant, agent

    def _summary(self, call_id: uuid.UUID, outcome, simulation: Simulation, out: str | None) -> None:
        tenant = simulation.tenant
        call = Call.objects.for_tenant(tenant).get(pk=call_id)
        states = list(
            CallEvent.objects.for_tenant(tenant)
            .filter(call=call, event_type__in=["call.ringing", "call.connected", "call.status_changed", "call.ended"])
            .order_by("sequence")
            .values_list("event_type", "payload")
        )
        path = [p.get("to_status") or t.removeprefix("call.") for t, p in states]
        tools = ToolCall.objects.for_tenant(tenant).filter(call=call).count()
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Call ended: {END_REASONS.get(call.end_reason, call.end_reason)} ({call.end_reason}).")
        )
        self.stdout.write(f"  States:  {' -> '.join(path)}")
        self.stdout.write(
            f"  Stored:  call {call.pk}: {call.turns.count()} turns, {tools} tool calls (GET /v1/calls/{call.pk})"
        )
        if simulation.latencies:
            median, worst = statistics.median(simulation.latencies), max(simulation.latencies)
            self.stdout.write(
                f"  Latency: end of caller speech to first agent audio, median {median * 1000:.0f} ms, "
                f"worst {worst * 1000:.0f} ms"
            )
        if out:
            write_wav(out, simulation.track.render(), AGENT_RATE)
            self.stdout.write(
                f"  Audio:   {out} ({simulation.track.spoken_seconds:.1f} s of agent speech, {AGENT_RATE} Hz mono)"
            )
