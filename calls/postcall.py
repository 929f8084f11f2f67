"""Post-call processing (docs/webhooks.md#post-call-processing): final transcript, talk-time statistics, analysis.

Runs once per call: the result is stored on the call with `processed_at`, and transcript.completed and
call.analyzed are stored in the webhook outbox in the same transaction, so a redelivered task, or the
sweep of missed calls, neither repeats the work nor sends the events twice.
"""

import logging
from datetime import timedelta
from itertools import pairwise
from statistics import mean

from django.db import transaction
from django.utils import timezone

from calls import analysis
from calls.models import Call, TranscriptTurn
from calls.state_machine import CallStatus
from integrations.webhooks.outbox import webhook_emit

logger = logging.getLogger(__name__)


def call_process_transcript(*, call: Call) -> Call:
    """Finalize an ended call's transcript, compute its statistics and analysis, and send both (once)."""
    if call.status != CallStatus.ENDED or call.processed_at is not None:
        return call
    turns = list(TranscriptTurn.objects.for_tenant(call.tenant_id).filter(call=call).order_by("turn_number"))
    _finalize(call, turns)
    stats = talk_stats(call, turns)
    result = analysis.analyze(call, turns)  # outside the transaction: an LLM may take seconds
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk, tenant_id=call.tenant_id)
        if locked.processed_at is not None:
            return locked  # another worker finished first
        TranscriptTurn.objects.bulk_update(turns, ["ended_at"])
        locked.talk_stats, locked.analysis, locked.processed_at = stats, result, timezone.now()
        locked.save(update_fields=["talk_stats", "analysis", "processed_at", "updated_at"])
        _emit(locked, turns, stats, result)
    return locked


def _finalize(call: Call, turns: list[TranscriptTurn]) -> None:
    """Close turns left open: each ends when the next one starts, the last one when the call ended."""
    for turn, following in zip(turns, [*turns[1:], None][: len(turns)], strict=True):
        if turn.ended_at is None:
            end = following.started_at if following else (call.ended_at or turn.started_at)
            turn.ended_at = max(end, turn.started_at)


def talk_stats(call: Call, turns: list[TranscriptTurn]) -> dict:
    talk: dict[str, float] = {TranscriptTurn.Speaker.AGENT: 0.0, TranscriptTurn.Speaker.CALLER: 0.0}
    for turn in turns:
        if turn.speaker in talk and turn.ended_at:
            talk[turn.speaker] += (turn.ended_at - turn.started_at).total_seconds()
    agent, caller = talk[TranscriptTurn.Speaker.AGENT], talk[TranscriptTurn.Speaker.CALLER]
    latencies = [
        (answer.started_at - question.ended_at).total_seconds()
        for question, answer in pairwise(turns)
        if question.speaker == "caller" and answer.speaker == "agent" and question.ended_at
    ]
    return {
        "agent_seconds": round(agent, 1),
        "caller_seconds": round(caller, 1),
        "silence_seconds": round(max((call.duration_seconds or 0) - agent - caller, 0.0), 1),
        "turns": len(turns),
        "agent_turns": sum(t.speaker == "agent" for t in turns),
        "caller_turns": sum(t.speaker == "caller" for t in turns),
        "interruptions": sum(t.interrupted for t in turns),
        "caller_talk_ratio": round(caller / (agent + caller), 3) if agent + caller else 0.0,
        "average_response_seconds": round(mean(max(x, 0.0) for x in latencies), 2) if latencies else None,
    }


def _emit(call: Call, turns: list[TranscriptTurn], stats: dict, result: dict) -> None:
    base = {"call_id": str(call.pk), "agent_id": str(call.agent_id)}
    transcript = [
        {
            "turn_number": t.turn_number,
            "speaker": t.speaker,
            "text": t.text,
            "started_at": t.started_at,
            "ended_at": t.ended_at,
            "interrupted": t.interrupted,
        }
        for t in turns
    ]
    webhook_emit(
        tenant_id=call.tenant_id,
        event_type="transcript.completed",
        data={**base, "turns": transcript, "talk_stats": stats},
    )
    if result:
        webhook_emit(tenant_id=call.tenant_id, event_type="call.analyzed", data={**base, "analysis": result})


def calls_missing_processing(*, now=None, older_than=timedelta(minutes=5), within=timedelta(days=2)):
    """Ended calls whose processing never finished (a lost task): what the periodic sweep retries."""
    now = now or timezone.now()
    return (
        Call.objects.dangerously_unscoped()
        .filter(status=CallStatus.ENDED, processed_at__isnull=True)
        .filter(ended_at__lt=now - older_than, ended_at__gte=now - within)
    )
