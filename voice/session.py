"""The agent session of one call: the one factory that builds it, and the running session.

    call_session = await create_call_session(tenant_id=..., call_id=..., media=InProcessMedia(inp, out))
    await call_session.start()          # agent.joined, call -> conversing, greeting
    outcome = await call_session.wait() # caller hung up, agent ended, transfer requested, or error
    await call_session.aclose()         # stores the rest, ends the call (unless it is being transferred)

The framework's `AgentSession` runs the conversation: VAD, STT, turn-taking, barge-in and
false-interruption recovery, preemptive generation, tool calls, per-turn metrics. Around it we
add what the platform needs: the agent's configuration loaded once (tenant-scoped), the context
shaping of `conversation.py`, the tools of `tools.py`, the write-behind recorder, Prometheus
metrics, the call's lifecycle (agent.joined, usage.minute, idle and maximum duration, end) and the
last step of the degradation order (docs/voice-pipeline.md#when-a-whole-stage-is-down) when every provider of a stage has failed.
"""

import asyncio
import gc
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from livekit import rtc
from livekit.agents import Agent, AgentSession, TurnHandlingOptions, llm
from livekit.agents.voice.events import CloseEvent, ErrorEvent

from calls import services as call_services
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus
from core import embeddings
from integrations.vault import secret_resolver
from tenants.models import Tenant
from voice import conversation, io, metrics
from voice.media import InProcessMedia, RoomMedia, livekit_configured, room_media
from voice.profile import (
    AgentNotFound,
    AgentProfile,
    CallNotFound,
    PipelineModels,
    build_models,
    find_agent,
    load_profile,
)
from voice.recorder import CallRecorder
from voice.tools import CallTools, ToolContext, ToolSettings

logger = logging.getLogger(__name__)

# The last degradation step, said when every engine of a stage has failed.
DEGRADED_LINES = {
    "llm_error": "I apologize, let me transfer you to someone who can help.",
    "stt_error": "I'm having trouble hearing you. Please hold for an agent.",
    "tts_error": None,  # nothing can be said: transfer at once
}
NO_TARGET_LINE = "I'm sorry, we are having technical difficulties. Please call back a little later."
WATCHDOG_SECONDS = 1.0
SECONDS_PER_MINUTE = 60  # usage.minute granularity (a constant, so tests can shorten it)


# --- the agent -----------------------------------------------------------------------------------


class VoiceAgent(Agent):
    """The framework agent with the platform's context shaping in front of the LLM: the history trimmed and
    summarised, and the agent's knowledge passages found for the caller's latest words (hybrid search over
    the call's knowledge snapshot, the words embedded off the event loop), their sources reported."""

    def __init__(self, *, instructions: str, tools: list, policy, knowledge=None, on_sources=None):
        super().__init__(instructions=instructions, tools=tools)
        self._policy, self._knowledge, self._on_sources = policy, knowledge, on_sources

    async def llm_node(self, chat_ctx: llm.ChatContext, tools, model_settings):
        hits = await self._search(conversation.last_caller_words(chat_ctx))
        shaped = conversation.prepare_context(chat_ctx, policy=self._policy, hits=hits)
        async for chunk in Agent.default.llm_node(self, shaped, tools, model_settings):
            yield chunk

    async def _search(self, said: str) -> list:
        knowledge = self._knowledge
        if knowledge is None or not knowledge.passages or not said.strip():
            return []
        try:
            vector = await embeddings.aquery(said) if knowledge.embedded else None
        except Exception:  # the engine failed: words alone still find passages
            logger.exception("knowledge search: the caller's words could not be embedded")
            vector = None
        hits = knowledge.search(said, vector, k=conversation.KNOWLEDGE_RESULTS)
        if self._on_sources is not None:
            self._on_sources([knowledge_source(hit) for hit in hits])
        return hits


def knowledge_source(hit) -> dict:
    """A knowledge hit as the agent turn's metadata keeps it (the call page shows its label)."""
    source = hit.source
    found = {"label": source.label, "document_id": source.document_id, "score": round(float(hit.score), 3)}
    return found | ({"page": source.page} if source.page else {})


@dataclass
class Outcome:
    """How the conversation ended, from the session's side."""

    reason: str  # a Call.EndReason value
    transfer: dict | None = None


DEFAULT_TURN_HANDLING: TurnHandlingOptions = {
    # VAD decides when the caller stopped: it works the same with streaming Deepgram and with Whisper.
    "turn_detection": "vad",
    "preemptive_generation": {"enabled": True},
}


class CallSession:
    """One call's running agent session. Create it with `create_call_session()`."""

    def __init__(
        self, *, profile, call_id, caller: dict, models, media, turn_handling, session_options=None, digit_sink=None
    ):
        self.profile, self.call_id, self.models, self.media = profile, str(call_id), models, media
        self._digit_sink = digit_sink  # plays keypad tones on the call (the bridge's), None: the agent cannot
        self.recorder = CallRecorder(
            call_id=self.call_id, tenant_id=profile.tenant_id, voice=(profile.voice or {}).get("provider_voice_id", "")
        )
        self.tools = CallTools(self._tool_context())
        self.session = self._agent_session(turn_handling, session_options or {})
        # First listener: every later one (the recorder, simulate_call) reads the turn's own latency.
        self.session.on("conversation_item_added", metrics.TurnLatency().on_item)
        self.agent = self._voice_agent(caller)
        self.outcome: Outcome | None = None
        self._done = asyncio.Event()
        self._synchronizer = None
        self._tasks: list[asyncio.Task] = []
        self._started_at = 0.0
        self._last_activity = 0.0
        self._degraded = False
        self._closed = False

    # --- construction ----------------------------------------------------------------------------

    def _tool_context(self) -> ToolContext:
        pipeline, tenant = self.profile.pipeline, Tenant(pk=self.profile.tenant_id)
        return ToolContext(
            call_id=self.call_id,
            tenant_id=self.profile.tenant_id,
            definitions=self.profile.tools,
            transfer_targets=self.profile.transfer_targets,
            resolver=secret_resolver(tenant),
            record=self.recorder.tool_call,
            control=self,
            settings=ToolSettings(
                webhook_timeout_seconds=pipeline["tools"]["webhook_timeout_seconds"],
                max_concurrent_tools=pipeline["tools"]["max_concurrent_tools"],
                transfer_enabled=pipeline["conversation"].get("transfer_enabled", True),
                digits_enabled=self._digit_sink is not None,
            ),
        )

    def _agent_session(self, turn_handling: TurnHandlingOptions | None, options: dict) -> AgentSession:
        defaults = {
            # Phone audio reaches us echo-cancelled: barge-in counts from the agent's first word.
            "aec_warmup_duration": None,
            "user_away_timeout": None,  # idleness is the platform's call policy (see _watchdog)
            # After a hangup, how long the caller's last words may take to transcribe.
            "session_close_transcript_timeout": 1.0,
        }
        return AgentSession(
            stt=self.models.stt,
            llm=self.models.llm,
            tts=self.models.tts,
            vad=self.models.vad,
            turn_handling={**DEFAULT_TURN_HANDLING, **(turn_handling or {})},
            **(defaults | options),
        )

    def _voice_agent(self, caller: dict) -> VoiceAgent:
        conv = self.profile.pipeline["conversation"]
        instructions = conversation.build_instructions(
            system_prompt=self.profile.system_prompt, caller=caller, transfer_targets=self._targets()
        )
        policy = conversation.ContextPolicy(
            max_history_tokens=conv["max_history_tokens"], summarize_after_turns=conv["summarize_after_turns"]
        )
        return VoiceAgent(
            instructions=instructions,
            tools=self.tools.build(),
            policy=policy,
            knowledge=self.profile.knowledge_snapshot,
            on_sources=self.recorder.knowledge_used,
        )

    def _targets(self) -> list[dict]:
        enabled = self.profile.pipeline["conversation"].get("transfer_enabled", True)
        return self.profile.transfer_targets if enabled else []

    # --- running ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the call: start the pipeline, record agent.joined, move the call to conversing, greet."""
        self.recorder.start()
        self.recorder.attach(self.session)
        self.session.on("close", self._on_close)
        self.session.on("error", self._on_error)
        self.session.on("user_state_changed", self._on_activity)
        self.session.on("agent_state_changed", self._on_activity)
        await self._start_session()
        self._started_at = self._last_activity = time.monotonic()
        self.recorder.event(CallEvent.Type.AGENT_JOINED, {"call_id": self.call_id, "agent_id": self.profile.agent_id})
        self.recorder.transition(CallStatus.CONVERSING)
        self._tasks.append(asyncio.create_task(self._watchdog(), name=f"watchdog-{self.call_id}"))
        if self.profile.greeting and self.profile.pipeline["conversation"].get("greeting_enabled", True):
            self.session.say(self.profile.greeting)

    async def _start_session(self) -> None:
        if isinstance(self.media, RoomMedia):
            options = io.room_options(caller_identity=self.media.caller_identity)
            await self.session.start(self.agent, room=self.media.room, room_options=options, record=False)
            return
        self._synchronizer = io.attach_in_process(
            self.session, self.media.audio_input, self.media.audio_output, speed=self.media.speed
        )
        await self.session.start(self.agent, record=False)

    async def wait(self) -> Outcome:
        """Until the conversation is over (hangup, end_call, transfer, timeout or failure)."""
        await self._done.wait()
        assert self.outcome is not None  # _done is set only by _finish, after the outcome
        return self.outcome

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def hangup(self, reason: str = Call.EndReason.CALLER_HANGUP) -> None:
        """The media side says the call is over (the caller hung up, by default)."""
        if isinstance(self.media, InProcessMedia):
            self.media.audio_input.close()
        self._finish(Outcome(reason=reason))

    def _finish(self, outcome: Outcome) -> Outcome:
        """End the conversation with `outcome` unless it already has one; the outcome it ends with."""
        if self.outcome is None:
            self.outcome = outcome
        self._done.set()
        return self.outcome

    # --- what the built-in tools ask (tools.CallControl) -----------------------------------------

    def request_end(self) -> None:
        self._finish(Outcome(reason=Call.EndReason.AGENT_HANGUP))

    def request_transfer(self, *, transfer_type: str, target: str, context: str) -> None:
        """End the session with a transfer the bridge carries out (its Outcome), stored on the way:
        call -> transferring, call.transfer_requested."""
        destination = call_services.transfer_destination(self.profile.transfer_targets, target)
        self.recorder.write(
            _transfer_request,
            call_id=self.call_id,
            tenant_id=self.profile.tenant_id,
            transfer_type=transfer_type,
            target=target,
            context=context,
        )
        self.session.input.set_audio_enabled(False)
        self._finish(
            Outcome(
                reason=Call.EndReason.TRANSFERRED,
                transfer={"type": transfer_type, "target": destination, "context": context},
            )
        )

    # --- what the bridge asks of the session (its whole interface to it) -------------------------

    def hold(self) -> None:
        """The caller is being put through (a transfer the agent did not ask for): stop listening and talking."""
        self.session.input.set_audio_enabled(False)
        self.session.interrupt()

    def set_status(self, status: str, end_reason: str = "") -> None:
        """Move the call to `status`, in order with the session's own writes."""
        self.recorder.transition(status, end_reason)

    def record(self, event_type: str, payload: dict) -> None:
        """Append a call event, in order with the session's own writes."""
        self.recorder.event(event_type, payload)

    def write(self, fn, **kwargs) -> None:
        """Any other database write, in order with the session's own."""
        self.recorder.write(fn, **kwargs)

    def resume(self, line: str | None = None) -> None:
        """The transfer did not happen: the caller is back with the agent (conversing), who says `line` first."""
        self.set_status(CallStatus.CONVERSING)
        self.outcome = None
        self._done.clear()
        self._last_activity = time.monotonic()
        self.session.input.set_audio_enabled(True)
        if line:
            self.session.say(line, add_to_chat_ctx=True)

    def send_digits(self, digits: str) -> None:
        """The agent's `send_digits` tool: keypad tones on the call (stored as a tool call like any other)."""
        self._last_activity = time.monotonic()
        if self._digit_sink is not None:
            self._digit_sink(digits)

    def caller_pressed(self, digits: str) -> None:
        """Keypad digits from the caller (DTMF): the agent hears them as the caller's turn and answers."""
        self._last_activity = time.monotonic()
        self.session.generate_reply(user_input=f"(The caller pressed {digits} on the keypad.)")

    async def synthesize(self, text: str) -> AsyncGenerator[rtc.AudioFrame, None]:
        """The agent's voice for `text`, frame by frame (a warm transfer's briefing, a voicemail)."""
        stream = self.models.tts.synthesize(text)
        try:
            async for audio in stream:
                yield audio.frame
        finally:
            await stream.aclose()

    # --- events ----------------------------------------------------------------------------------

    def _on_activity(self, _event) -> None:
        self._last_activity = time.monotonic()

    def _on_close(self, event: CloseEvent) -> None:
        self._finish(Outcome(reason=Call.EndReason.ERROR if event.error else Call.EndReason.CALLER_HANGUP))

    def _on_error(self, event: ErrorEvent) -> None:
        kind = getattr(event.error, "type", "")
        if getattr(event.error, "recoverable", True) or kind not in DEGRADED_LINES or self._degraded:
            return
        self._degraded = True
        logger.error("call %s: every %s engine failed; handing the caller over", self.call_id, kind[:3].upper())
        targets = self._targets()
        target = targets[0] if targets else None
        line = DEGRADED_LINES[kind] if target else (NO_TARGET_LINE if kind != "tts_error" else None)
        then = self._hand_over(target)
        if line is None:
            then()
            return
        handle = self.session.say(line, allow_interruptions=False, add_to_chat_ctx=True)
        handle.add_done_callback(lambda _: then())

    def _hand_over(self, target: dict | None):
        if target is None:
            return lambda: self._finish(Outcome(reason=Call.EndReason.ERROR))
        return lambda: self.request_transfer(
            transfer_type=target.get("type") or "warm", target=target["name"], context="The voice agent failed."
        )

    async def _watchdog(self) -> None:
        """usage.minute every minute of the call; the idle and maximum-duration limits."""
        minutes = 0
        while not self._done.is_set():
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = time.monotonic()
            if int((now - self._started_at) // SECONDS_PER_MINUTE) > minutes:
                minutes += 1
                payload = {"tenant_id": self.profile.tenant_id, "call_id": self.call_id, "minute_count": minutes}
                self.recorder.event(CallEvent.Type.USAGE_MINUTE, payload)
            if now - self._started_at >= settings.CALL_MAX_DURATION_SECONDS:
                self._finish(Outcome(reason=Call.EndReason.MAX_DURATION))
            elif self._idle() and now - self._last_activity >= settings.CALL_IDLE_TIMEOUT_SECONDS:
                self._finish(Outcome(reason=Call.EndReason.IDLE_TIMEOUT))

    def _idle(self) -> bool:
        return self.session.user_state != "speaking" and self.session.agent_state in ("listening", "idle")

    # --- the end ---------------------------------------------------------------------------------

    async def aclose(self) -> Outcome:
        """Stop the pipeline, store what is left and end the call (a transferring call is the bridge's to end)."""
        if self._closed:
            assert self.outcome is not None  # the first aclose finished the conversation
            return self.outcome
        self._closed = True
        outcome = self._finish(Outcome(reason=Call.EndReason.CALLER_HANGUP))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.session.aclose()
        await self._close_media()
        if outcome.reason != Call.EndReason.TRANSFERRED:
            self.recorder.transition(CallStatus.ENDED, end_reason=outcome.reason)
        await self.recorder.aclose()
        await self.models.aclose()
        return outcome

    async def _close_media(self) -> None:
        if self._synchronizer is not None:
            await self._synchronizer.aclose()
        if isinstance(self.media, InProcessMedia):
            await self.media.audio_output.aclose()


def _transfer_request(*, call_id, tenant_id, transfer_type: str, target: str, context: str) -> None:
    call = Call.objects.for_tenant(tenant_id).select_related("agent").get(pk=call_id)
    call_services.call_transfer_request(
        call=call, transfer_type=transfer_type, target=target, context=context, reason="agent_decision"
    )


async def _prewarm(models: PipelineModels) -> None:
    """Load the engines' model files (Whisper, piper) before the caller speaks, off the event loop."""
    for engine in (models.stt, models.tts):
        try:
            await asyncio.to_thread(engine.prewarm)
        except Exception:  # a cold engine still works, only its first turn is slower
            logger.exception("could not prewarm %s", engine)


def prepare_worker() -> None:
    """Call once per media process, after its imports and model loads, before taking calls.

    A full garbage collection walks every object in the process (about 400,000 once Django, the
    framework and the engines are loaded), which stalls the event loop, and every call on it, for
    0.2-0.35 s on this machine. Freezing what exists at startup leaves the collector only the calls'
    own objects to walk.
    """
    gc.collect()
    gc.freeze()


# --- the factory ---------------------------------------------------------------------------------


def _load_for_call(*, tenant_id, call_id, agent_ref: str | None) -> tuple[AgentProfile, dict]:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    call = Call.objects.for_tenant(tenant).filter(pk=call_id).first() if tenant else None
    if tenant is None or call is None:
        raise CallNotFound(f"Unknown call {call_id} for this tenant.")
    profile = load_profile(tenant=tenant, agent_ref=agent_ref or str(call.agent_id))
    if profile.agent_id != str(call.agent_id):
        raise AgentNotFound("This call belongs to another agent.")
    caller = {"caller_number": call.from_number if call.direction == Call.Direction.INBOUND else call.to_number}
    caller |= {k: v for k, v in (call.metadata or {}).items() if isinstance(v, str | int | float)}
    return profile, caller


async def create_call_session(
    *,
    tenant_id,
    call_id,
    media,
    agent_ref: str | None = None,
    models: PipelineModels | None = None,
    turn_handling: TurnHandlingOptions | None = None,
    session_options: dict | None = None,
    digit_sink=None,
) -> CallSession:
    """The one way to build a call's session: loads the agent for the call's tenant, builds its engines.

    `models` replaces the configured providers (tests, benchmarks); `turn_handling` overrides the
    framework's turn-taking options (endpointing, interruption, preemptive generation) and
    `session_options` any other `AgentSession` option; `digit_sink(digits)` lets the agent press keys.
    """
    profile, caller = await database_sync_to_async(_load_for_call)(
        tenant_id=tenant_id, call_id=call_id, agent_ref=agent_ref
    )
    if models is None:
        models = build_models(profile)
        await _prewarm(models)
    return CallSession(
        profile=profile,
        call_id=call_id,
        caller=caller,
        models=models,
        media=media,
        turn_handling=turn_handling,
        session_options=session_options,
        digit_sink=digit_sink,
    )


__all__ = [  # the session's public names, with those of the modules it is built from
    "AgentNotFound",
    "AgentProfile",
    "CallNotFound",
    "CallSession",
    "InProcessMedia",
    "Outcome",
    "PipelineModels",
    "RoomMedia",
    "build_models",
    "create_call_session",
    "find_agent",
    "livekit_configured",
    "load_profile",
    "prepare_worker",
    "room_media",
]
