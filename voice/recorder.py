"""Stores the call as it happens, without ever making the audio loop wait on the database.

The session's callbacks only put small records on an in-memory queue; one background task per call
drains it in order through `database_sync_to_async`. Each record becomes its rows and its bus
event in one transaction (`CallEvent` plus a push on the event bus after commit):

- every finished turn -> `TranscriptTurn` (an interrupted agent turn holds what was actually
  played, with `interrupted=True`) + `transcript.turn`
- every tool call -> `ToolCall` + `tool.called`
- `agent.joined`, `usage.minute` and the call's status changes, in the order they happened.

Interim caller text (`transcript.partial`) is not stored: it goes straight to the call's live viewers.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from channels.db import database_sync_to_async
from livekit.agents import llm

from calls import services as call_services
from calls.models import Call, TranscriptTurn
from core import events
from voice import metrics

logger = logging.getLogger(__name__)

PARTIAL_EVENT = "transcript.partial"  # interim caller text for live viewers (not in the stored catalog)
SPEAKERS = {"user": TranscriptTurn.Speaker.CALLER, "assistant": TranscriptTurn.Speaker.AGENT}


@dataclass
class TurnRecord:
    speaker: str
    text: str
    started_at: datetime
    ended_at: datetime | None = None
    interrupted: bool = False
    confidence: float | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class ToolCallRecord:
    tool_name: str
    arguments: dict
    started_at: datetime
    ended_at: datetime
    status: str
    result: object = None
    error: str = ""
    http_status: int | None = None

    @property
    def duration_ms(self) -> int:
        return max(0, round((self.ended_at - self.started_at).total_seconds() * 1000))


def stamp(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


# --- the writes (sync: they run in the database thread), all through the calls app's services ---------


def next_turn_number(call_id, tenant_id) -> int:
    return call_services.turn_next_number(call_id=call_id, tenant_id=tenant_id)


def write_turn(*, call_id, tenant_id, turn_number: int, record: TurnRecord) -> UUID:
    turn = call_services.turn_record(
        call_id=call_id,
        tenant_id=tenant_id,
        turn_number=turn_number,
        speaker=record.speaker,
        text=record.text,
        confidence=record.confidence,
        started_at=record.started_at,
        ended_at=record.ended_at,
        interrupted=record.interrupted,
        metadata=record.metadata,
    )
    return turn.pk


def write_tool_call(*, call_id, tenant_id, record: ToolCallRecord, turn_id=None) -> None:
    # The calls app's service: ToolCall + tool.called (+ the tenant's tool.failed webhook on failure).
    call_services.tool_call_record(
        call=Call(pk=call_id, tenant_id=tenant_id),
        tool_name=record.tool_name,
        arguments=record.arguments,
        status=record.status,
        started_at=record.started_at,
        ended_at=record.ended_at,
        result=record.result,
        error=record.error,
        http_status=record.http_status,
        duration_ms=record.duration_ms,
        turn=TranscriptTurn(pk=turn_id, tenant_id=tenant_id) if turn_id else None,
    )


def write_event(*, call_id, tenant_id, event_type: str, payload: dict) -> None:
    call_services.call_event(call_id=call_id, tenant_id=tenant_id, event_type=event_type, payload=payload)


def write_transition(*, call_id, tenant_id, to_status: str, end_reason: str = "") -> None:
    call = Call.objects.for_tenant(tenant_id).get(pk=call_id)
    if call.status != to_status:
        call_services.call_transition(call=call, to_status=to_status, end_reason=end_reason)


# --- the queue -----------------------------------------------------------------------------------


class CallRecorder:
    """One call's write-behind queue; `attach()` it to the session to record every turn."""

    def __init__(self, *, call_id, tenant_id, voice: str = "", first_turn: int = 1):
        self.call_id, self.tenant_id, self.voice = call_id, str(tenant_id), voice
        self._turn_number = first_turn
        self._last_caller_turn: UUID | None = None  # tool calls are linked to the caller turn that led to them
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._pushes: set[asyncio.Task] = set()  # interim transcripts on their way to the bus
        self._knowledge: list[dict] = []  # sources of the passages before the LLM's next reply
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name=f"recorder-{self.call_id}")

    def attach(self, session) -> None:
        session.on("conversation_item_added", self._on_item)
        session.on("user_input_transcribed", self._on_transcribed)

    def _on_transcribed(self, event) -> None:
        """Interim (and final) caller text as the STT hears it: pushed to live viewers, never stored."""
        text = (event.transcript or "").strip()
        if not text:
            return
        data = {"call_id": str(self.call_id), "speaker": TranscriptTurn.Speaker.CALLER, "text": text}
        data["is_final"] = bool(event.is_final)
        task = asyncio.create_task(events.apublish_transient(PARTIAL_EVENT, data, call_id=self.call_id))
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    # -- what the session reports (never blocks) --

    def _on_item(self, event) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage) or item.role not in SPEAKERS:
            return
        text = (item.text_content or "").strip()
        if not text:
            return
        timings = item.metrics or {}
        report = dict(timings)
        metrics.observe(tenant=self.tenant_id, role=item.role, report=report, voice=self.voice)
        self.turn(
            TurnRecord(
                speaker=SPEAKERS[item.role],
                text=text,
                started_at=stamp(timings.get("started_speaking_at")) or datetime.fromtimestamp(item.created_at, tz=UTC),
                ended_at=stamp(timings.get("stopped_speaking_at")),
                interrupted=item.interrupted,
                confidence=item.transcript_confidence if item.role == "user" else None,
                metadata=self._with_knowledge(item.role, metrics.turn_metadata(item.role, report)),
            )
        )

    def _with_knowledge(self, role: str, metadata: dict) -> dict:
        if role != "assistant" or not self._knowledge:
            return metadata
        sources, self._knowledge = self._knowledge, []
        return metadata | {"knowledge": sources}

    def knowledge_used(self, sources: list[dict]) -> None:
        """The knowledge passages put before the LLM's next reply: its agent turn's metadata names them."""
        self._knowledge = sources

    def turn(self, record: TurnRecord) -> None:
        number, self._turn_number = self._turn_number, self._turn_number + 1
        self._put(self._write_turn, number, record)

    def tool_call(self, record: ToolCallRecord) -> None:
        self._put(self._write_tool_call, record)

    def event(self, event_type: str, payload: dict) -> None:
        self._put(write_event, call_id=self.call_id, event_type=event_type, payload=payload, tenant_id=self.tenant_id)

    def transition(self, to_status: str, end_reason: str = "") -> None:
        self._put(
            write_transition, call_id=self.call_id, tenant_id=self.tenant_id, to_status=to_status, end_reason=end_reason
        )

    def write(self, fn, **kwargs) -> None:
        """Queue any other write (a sync function of the database) behind the records before it."""
        self._put(fn, **kwargs)

    def _put(self, fn, *args, **kwargs) -> None:
        self._queue.put_nowait((fn, args, kwargs))

    # -- the background writer --

    def _write_turn(self, number: int, record: TurnRecord) -> None:
        turn_id = write_turn(call_id=self.call_id, tenant_id=self.tenant_id, turn_number=number, record=record)
        if record.speaker == TranscriptTurn.Speaker.CALLER:
            self._last_caller_turn = turn_id

    def _write_tool_call(self, record: ToolCallRecord) -> None:
        write_tool_call(call_id=self.call_id, tenant_id=self.tenant_id, record=record, turn_id=self._last_caller_turn)

    async def _drain(self) -> None:
        while True:
            fn, args, kwargs = await self._queue.get()
            try:
                await database_sync_to_async(fn)(*args, **kwargs)
            except Exception:
                self.failures += 1  # one lost row must not end the call or stop the rows after it
                logger.exception("could not store a record of call %s", self.call_id)
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def flush(self) -> None:
        """Wait until everything queued so far is stored."""
        await self._queue.join()

    async def aclose(self, *, timeout: float = 30.0) -> None:
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            logger.error("call %s: %s records were not stored in %s s", self.call_id, self.pending, timeout)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
