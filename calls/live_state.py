"""Live call state: `call:{id}:state` and `call:{id}:context`, derived from the stored events.

The stored `CallEvent` log is the truth; the live state is a projection of it that any process can
read in one round trip (the bridge, the dashboard, the API). Every stored event is applied here
once its transaction commits (`calls.services.call_event_record`), by one pure function,
`reduce()`, so the state after a Redis loss is rebuilt by replaying the same log (`rebuild()`,
`manage.py rebuild_call_state`).

Events are applied in sequence order: an event already applied is skipped, and one that arrives
ahead of a missing one (two processes committing at once) triggers a rebuild of that call from
the database instead of a guess. Writes are optimistic transactions (WATCH/MULTI) in Redis, and
under a lock in the local cache on embedded defaults.

TTLs: while a call runs, its keys live for the maximum call duration plus `CALL_STATE_TTL_SECONDS`
(so a crashed process leaves nothing forever); once it ends, `CALL_STATE_TTL_SECONDS` (one hour).
"""

import json
import logging
import threading
from datetime import timedelta
from functools import cache

import redis
from django.conf import settings
from django.core.cache import cache as local_cache
from django.db.models import Q
from django.utils import timezone

from calls.models import Call, CallEvent
from calls.state_machine import CallStatus

logger = logging.getLogger(__name__)
_local_lock = threading.Lock()
HISTORY_LIMIT = 50  # turns kept in the context; the database has them all
TOOL_LIMIT = 20

STATUS_OF_EVENT: dict[str, str] = {
    CallEvent.Type.CALL_RINGING: CallStatus.RINGING,
    CallEvent.Type.CALL_DIALING: CallStatus.DIALING,
    CallEvent.Type.CALL_CONNECTED: CallStatus.CONNECTED,
    CallEvent.Type.CALL_ENDED: CallStatus.ENDED,
}


def state_key(call_id) -> str:
    return f"call:{call_id}:state"


def context_key(call_id) -> str:
    return f"call:{call_id}:context"


# --- the projection ------------------------------------------------------------------------------


def empty() -> tuple[dict, dict]:
    return {}, {"conversation_history": "[]", "extracted_entities": "{}", "pending_tool_calls": "[]"}


def reduce(state: dict, context: dict, *, event_type: str, payload: dict, occurred_at: str, sequence: int) -> None:
    """Apply one event to the call's state and context hashes (string values, as Redis keeps them)."""
    state["last_sequence"] = str(sequence)
    state["updated_at"] = occurred_at
    state.setdefault("started_at", occurred_at)
    for field in ("tenant_id", "agent_id", "room_name", "direction"):
        if payload.get(field):
            state[field] = str(payload[field])
    for field in ("from", "to"):
        if payload.get(field):
            state[f"{field}_number"] = str(payload[field])
    status = STATUS_OF_EVENT.get(event_type) or (
        payload.get("to_status") if event_type == CallEvent.Type.CALL_STATUS_CHANGED else None
    )
    if status:
        state["status"] = str(status)
    if event_type == CallEvent.Type.CALL_CONNECTED:
        state["answered_at"] = payload.get("answered_at") or occurred_at
    elif event_type == CallEvent.Type.CALL_ENDED:
        state["ended_at"] = occurred_at
        state["end_reason"] = payload.get("end_reason", "")
    elif event_type == CallEvent.Type.CALL_TRANSFER_REQUESTED:
        transfer = {k: payload.get(k) for k in ("transfer_type", "target", "reason")}
        state["transfer"] = json.dumps(transfer)
    elif event_type == CallEvent.Type.CALL_TRANSFERRED:
        state["transferred_to"] = str(payload.get("transferred_to", ""))
    elif event_type == CallEvent.Type.TRANSCRIPT_TURN:
        history = json.loads(context.get("conversation_history") or "[]")
        history.append({k: payload.get(k) for k in ("turn_number", "speaker", "text", "timestamp", "interrupted")})
        context["conversation_history"] = json.dumps(history[-HISTORY_LIMIT:])
    elif event_type == CallEvent.Type.TOOL_CALLED:
        tools = json.loads(context.get("recent_tool_calls") or "[]")
        tools.append({k: payload.get(k) for k in ("tool_name", "input", "output", "status")})
        context["recent_tool_calls"] = json.dumps(tools[-TOOL_LIMIT:])


def _ttl(state: dict) -> int:
    if state.get("status") == CallStatus.ENDED:
        return settings.CALL_STATE_TTL_SECONDS
    return settings.CALL_MAX_DURATION_SECONDS + settings.CALL_SETUP_TIMEOUT_SECONDS + settings.CALL_STATE_TTL_SECONDS


def _event_fields(event: CallEvent) -> dict:
    return {
        "event_type": event.event_type,
        "payload": event.payload or {},
        "occurred_at": event.occurred_at.isoformat(),
        "sequence": event.sequence,
    }


# --- storage -------------------------------------------------------------------------------------


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


class _Gap(Exception):
    """The event is ahead of the stored state: something before it has not been applied."""


def _apply_redis(call_id, fields: dict) -> None:
    client = _client(settings.REDIS_URL)
    skey, ckey = state_key(call_id), context_key(call_id)
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(skey, ckey)
                state, context = pipe.hgetall(skey), pipe.hgetall(ckey)
                if not _ready(state, context, fields):
                    pipe.unwatch()
                    return
                reduce(state, context, **fields)
                pipe.multi()
                _write_redis(pipe, call_id, state, context)
                pipe.execute()
                return
            except redis.WatchError:
                continue  # another process applied an event meanwhile: read again


def _write_redis(pipe, call_id, state: dict, context: dict) -> None:
    skey, ckey, ttl = state_key(call_id), context_key(call_id), _ttl(state)
    pipe.delete(skey, ckey)
    pipe.hset(skey, mapping=state)
    pipe.hset(ckey, mapping=context)
    pipe.expire(skey, ttl)
    pipe.expire(ckey, ttl)


def _ready(state: dict, context: dict, fields: dict) -> bool:
    """True to apply; False if already applied; raises _Gap if an earlier event is missing."""
    last = int(state.get("last_sequence") or 0)
    if fields["sequence"] <= last:
        return False
    if fields["sequence"] != last + 1:
        raise _Gap
    if not context:
        context.update(empty()[1])
    return True


def _apply_local(call_id, fields: dict) -> None:
    with _local_lock:
        state = dict(local_cache.get(state_key(call_id)) or {})
        context = dict(local_cache.get(context_key(call_id)) or {})
        if not _ready(state, context, fields):
            return
        reduce(state, context, **fields)
        _write_local(call_id, state, context)


def _write_local(call_id, state: dict, context: dict) -> None:
    ttl = _ttl(state)
    local_cache.set(state_key(call_id), state, ttl)
    local_cache.set(context_key(call_id), context, ttl)


# --- the public functions ------------------------------------------------------------------------


def apply_event(event: CallEvent) -> None:
    """Apply a committed event to its call's live state (never raises: the database is the record)."""
    try:
        if settings.REDIS_URL:
            _apply_redis(event.call_id, _event_fields(event))
        else:
            _apply_local(event.call_id, _event_fields(event))
    except _Gap:
        rebuild(event.call_id)
    except Exception:
        logger.warning("live state of call %s not updated; rebuilt on the next event", event.call_id, exc_info=True)


def rebuild(call_id) -> dict:
    """Replace the call's live state with the projection of its stored events; returns the state."""
    state, context = empty()
    for event in CallEvent.objects.dangerously_unscoped().filter(call_id=call_id).order_by("sequence"):
        reduce(state, context, **_event_fields(event))
    if not state:
        return state
    if settings.REDIS_URL:
        with _client(settings.REDIS_URL).pipeline(transaction=True) as pipe:
            _write_redis(pipe, call_id, state, context)
            pipe.execute()
    else:
        with _local_lock:
            _write_local(call_id, state, context)
    return state


def rebuild_all(*, include_ended_within: int | None = None) -> int:
    """Rebuild every active call's state (and calls ended within the TTL): after a Redis loss."""
    since = timezone.now() - timedelta(seconds=include_ended_within or settings.CALL_STATE_TTL_SECONDS)
    calls = Call.objects.dangerously_unscoped().filter(~Q(status=CallStatus.ENDED) | Q(ended_at__gte=since))
    count = 0
    for call_id in calls.values_list("pk", flat=True).iterator():
        rebuild(call_id)
        count += 1
    return count


def get_state(call_id) -> dict:
    """The call's live state hash ({} if none)."""
    if settings.REDIS_URL:
        return _client(settings.REDIS_URL).hgetall(state_key(call_id))
    return dict(local_cache.get(state_key(call_id)) or {})


def get_context(call_id) -> dict:
    """The call's live context hash, JSON fields decoded ({} if none)."""
    if settings.REDIS_URL:
        raw = _client(settings.REDIS_URL).hgetall(context_key(call_id))
    else:
        raw = dict(local_cache.get(context_key(call_id)) or {})
    return {key: json.loads(value) for key, value in raw.items()}
