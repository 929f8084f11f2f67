"""GoTo's call states -> the carrier events the bridge knows (`telephony.carrier_events`), each once.

GoTo reports a call as a sequence of states of its conversation space ("call-state": STARTING, ACTIVE,
ENDING, each with a `sequenceNumber` and the participants). Every media worker listens on its own
channel, so every worker receives every state: `CallStates.handle` claims (conversation space,
sequence number) first (Redis when REDIS_URL is set), and only the claimant translates it.

- A state whose sequence number skips some is preceded by the missing ones, fetched over REST
  (`GoToApi.recover_states`, a grade-D route: GoTo documents recovery without the route's shape).
- Participants are remembered per conversation space (GoTo sent ENDING with no participants in live
  calls), in the `SharedStore` (Redis when REDIS_URL is set), shared by the workers like the claims. A
  space's state is changed only by `SharedStore.update` (atomic: a Redis WATCH/MULTI transaction, or one
  update at a time in this process): two workers handling two states of one call at once, or a state and
  the bridge's `match`, never undo each other's change.
- Which conversation space is which of our web calls: the web call's `legId` (from placing or answering
  it, `remember_leg`) is looked for among the participants' ids. That participants carry the web-call leg
  id is our reading of GoTo's material (grade D), to check against a live account first.

Translation, for the web call a conversation space belongs to:
- another participant CONNECTED for the first time -> `call.connected`;
- ENDING after that -> `call.ended` (reason hangup); ENDING before it -> `call.failed` with the last
  status of the other party (RINGING: no_answer, BUSY: busy, ...);
- a transfer we asked for (`expect`) and our own participant gone or no longer connected ->
  `call.transferred`; a merge we asked for and two other parties connected -> `call.merged`.
"""

import asyncio
import hashlib
import json
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from django.core.cache.backends.locmem import LocMemCache

from telephony import carrier_events
from telephony.carriers.goto import metrics, wire
from telephony.carriers.goto.config import GoToConnectError

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis

logger = logging.getLogger(__name__)

_FROM_SETTINGS: Any = object()
LOCAL_DEDUP_NAME = "goto-event-dedup"  # LocMemCache instances with one name share their store
LOCAL_DEDUP_MAX_ENTRIES = 100_000
MAX_KEY_ID_CHARS = 128
MAX_RECOVERED = 50  # a gap wider than this is not fetched state by state
FAILURE_REASONS = {"RINGING": "no_answer", "BUSY": "busy", "VOICEMAIL": "voicemail", "REJECTED": "rejected"}
SPACE_KEY = "goto:space:{}"
LEG_KEY = "goto:leg:{}"
LEG_SPACE_KEY = "goto:legspace:{}"
EXPECT_KEY = "goto:expect:{}"
GONE = "GONE"  # our mark for a participant a later state no longer lists
LOCAL_STORE_NAME = "goto-call-states"

Emit = Callable[[str, str, dict], Awaitable[None]]  # (our web call id, carrier event name, data)
Recover = Callable[[str, int, int], Awaitable[list[Any]]]  # (conversation space, from, to) -> states
T = TypeVar("T")
# SharedStore.update's change: the stored value (None: none) -> (the value to store, None: leave it; a result)
Change = Callable[[Any], Awaitable[tuple[Any, T]]]


class EventDeduplicator:
    """Claims ids: `seen(id)` is False exactly once per id within the dedup window.

    With REDIS_URL the claim is a Redis SET NX EX, shared by every process; without it, an in-process
    TTL'd LRU (Django's LocMemCache). If Redis fails, the claim falls back to this process (a state may
    then be handled once per process, never lost).
    """

    def __init__(
        self,
        *,
        redis_url: str | None = _FROM_SETTINGS,
        ttl_seconds: int | None = None,
        key_prefix: str = "goto:state",
        local_name: str = LOCAL_DEDUP_NAME,
    ):
        from django.conf import settings

        self.redis_url = settings.REDIS_URL if redis_url is _FROM_SETTINGS else redis_url
        self.ttl = int(ttl_seconds or settings.GOTO_EVENT_DEDUP_SECONDS)
        self.key_prefix = key_prefix
        self._local = LocMemCache(
            local_name, {"TIMEOUT": self.ttl, "OPTIONS": {"MAX_ENTRIES": LOCAL_DEDUP_MAX_ENTRIES}}
        )
        self._redis: AsyncRedis | None = None

    def _key(self, event_id: str) -> str:
        if len(event_id) <= MAX_KEY_ID_CHARS and event_id.isprintable() and " " not in event_id:
            return f"{self.key_prefix}:{event_id}"
        return f"{self.key_prefix}:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"

    async def seen(self, event_id: str) -> bool:
        """Whether `event_id` was already claimed; claims it when not."""
        key = self._key(event_id)
        if self.redis_url:
            try:
                return not await self._client(self.redis_url).set(key, 1, nx=True, ex=self.ttl)
            except redis.RedisError:
                logger.warning("GoTo call-state dedup in process only: Redis failed", exc_info=True)
        return not self._local.add(key, 1, self.ttl)

    def _client(self, redis_url: str) -> "AsyncRedis":
        if self._redis is None:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(redis_url)
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class SharedStore:
    """What the workers share about calls (JSON values with an expiry): Redis with REDIS_URL, else this process.

    Called from the event loop directly (redis.asyncio, or the in-process LocMemCache, which does no I/O):
    never through sync_to_async, so it cannot wait behind a database call.

    A value several workers change (a conversation space's state) is changed with `update`, never by a
    `get` and a `set`: every worker receives every call state and the bridge matches its call meanwhile,
    so two of them may change one call at once, and the later `set` would undo the earlier one.
    """

    # In-process updates of one key wait for each other: one asyncio.Lock per (store name, key), dropped
    # with its last user.
    _local_locks: "weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock]" = weakref.WeakValueDictionary()

    def __init__(self, *, redis_url: str | None = _FROM_SETTINGS, local_name: str = LOCAL_STORE_NAME):
        from django.conf import settings

        self.redis_url = settings.REDIS_URL if redis_url is _FROM_SETTINGS else redis_url
        self.local_name = local_name
        self._local = LocMemCache(local_name, {"OPTIONS": {"MAX_ENTRIES": LOCAL_DEDUP_MAX_ENTRIES}})
        self._redis: AsyncRedis | None = None

    async def update(self, key: str, change: "Change[T]", ttl: int) -> T:
        """Change `key`'s value atomically: `change(value)` returns (the new value or None to leave it, a result).

        With Redis: an optimistic transaction (WATCH the key, read it, MULTI, SET, EXEC; redis-py's
        `transaction` runs `change` again on the value another worker wrote meanwhile), so `change` must
        do nothing but compute (reads of other keys are fine). In this process: one update of a key at a
        time. Returns the result of the `change` whose value was stored.
        """
        if self.redis_url:
            try:
                return await self._redis_update(key, change, ttl)
            except redis.RedisError:
                logger.warning("GoTo call store in process only: Redis failed", exc_info=True)
        lock = self._local_locks.setdefault((self.local_name, key), asyncio.Lock())
        async with lock:
            value, result = await change(self._local.get(key))  # LocMemCache hands out a copy
            if value is not None:
                self._local.set(key, value, ttl)
            return result

    async def _redis_update(self, key: str, change: "Change[T]", ttl: int) -> T:
        async def attempt(pipe: Any) -> T:
            raw = await pipe.get(key)  # WATCHed: immediate
            value, result = await change(json.loads(raw) if raw is not None else None)
            pipe.multi()
            if value is not None:
                pipe.set(key, json.dumps(value), ex=ttl)
            return result

        result: T = await self._client().transaction(attempt, key, value_from_callable=True)
        return result

    def _client(self) -> "AsyncRedis":
        if self._redis is None:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(str(self.redis_url))
        return self._redis

    async def get(self, key: str) -> Any:
        if self.redis_url:
            try:
                raw = await self._client().get(key)
                return json.loads(raw) if raw is not None else None
            except redis.RedisError:
                logger.warning("GoTo call store in process only: Redis failed", exc_info=True)
        return self._local.get(key)

    async def set(self, key: str, value: Any, ttl: int) -> None:
        if self.redis_url:
            try:
                await self._client().set(key, json.dumps(value), ex=ttl)
                return
            except redis.RedisError:
                logger.warning("GoTo call store in process only: Redis failed", exc_info=True)
        self._local.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        if self.redis_url:
            try:
                await self._client().delete(key)
                return
            except redis.RedisError:
                logger.warning("GoTo call store in process only: Redis failed", exc_info=True)
        self._local.delete(key)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class CallStates:
    """Claims, orders and translates one account's call states (see the module docstring)."""

    def __init__(self, *, emit: Emit, recover: Recover, dedup: EventDeduplicator, store: SharedStore, ttl_seconds: int):
        self.emit, self.recover, self.dedup, self.store, self.ttl = emit, recover, dedup, store, ttl_seconds
        self.active: set[str] = set()  # conversation spaces of our calls not ended yet (this process)

    async def catch_up(self) -> None:
        """After the channel was down: fetch what our calls' conversation spaces said meanwhile.

        GoTo does not replay a channel's notifications, and a call's last state (ENDING) is followed by no
        later one whose sequence number would reveal the gap.
        """
        for space_id in sorted(self.active):
            space = await self.store.get(SPACE_KEY.format(space_id)) or {}
            if space.get("ended"):
                self.active.discard(space_id)
                continue
            last = int(space.get("last", 0))
            await self._recover_range(space_id, last + 1, last + MAX_RECOVERED)

    async def expect(self, call_id: str, kind: str, target: str) -> None:
        """We are asking GoTo to transfer (kind "transfer") or merge ("merge") the web call `call_id`."""
        expectation = {"kind": kind, "target": target, "id": uuid.uuid4().hex}
        await self.store.set(EXPECT_KEY.format(call_id), expectation, self.ttl)

    async def unexpect(self, call_id: str) -> None:
        """GoTo refused the transfer or merge: nothing is awaited any more."""
        await self.store.delete(EXPECT_KEY.format(call_id))

    async def handle(self, content: Any) -> None:
        state = wire.call_state_of(content)
        if state is None:
            metrics.pbx_events_total.labels("call-state", "malformed").inc()
            logger.warning("GoTo call-state without conversation space, type or sequence number: ignored")
            return
        space = await self.store.get(SPACE_KEY.format(state.conversation_space_id)) or {}
        last = int(space.get("last", 0))
        if state.sequence > last + 1:  # missed states (also: the first state seen is not the call's first)
            await self._recover(state, last)
        await self._claimed(state)

    async def _recover(self, state: wire.CallState, last: int) -> None:
        first, upto = last + 1, state.sequence - 1
        if upto - first + 1 > MAX_RECOVERED:
            first = upto - MAX_RECOVERED + 1
        await self._recover_range(state.conversation_space_id, first, upto)

    async def _recover_range(self, space_id: str, first: int, upto: int) -> None:
        try:
            recovered = await self.recover(space_id, first, upto)
        except GoToConnectError as exc:
            logger.warning("GoTo call states %s-%s of %s could not be recovered (%s)", first, upto, space_id, exc.code)
            return
        missed = [s for s in map(wire.call_state_of, recovered) if s is not None]
        missed = [s for s in missed if s.conversation_space_id == space_id and first <= s.sequence <= upto]
        metrics.pbx_events_total.labels("call-state", "recovered").inc(len(missed))
        for missing in sorted(missed, key=lambda s: s.sequence):
            await self._claimed(missing)

    async def _claimed(self, state: wire.CallState) -> None:
        if await self.dedup.seen(f"{state.conversation_space_id}:{state.sequence}"):
            metrics.pbx_events_total.labels("call-state", "duplicate").inc()
            return
        try:
            await self._translate(state)
        except Exception:
            metrics.pbx_events_total.labels("call-state", "handler_error").inc()
            logger.exception("GoTo call state %s of %s: handling failed", state.sequence, state.conversation_space_id)
            return
        metrics.pbx_events_total.labels("call-state", "handled").inc()

    async def _translate(self, state: wire.CallState) -> None:
        space_id = state.conversation_space_id

        async def change(stored: dict | None) -> tuple[dict, tuple[dict, str, list[tuple[str, dict]], str]]:
            space: dict = stored or {}
            if state.sequence >= int(space.get("last", 0)):  # the newest state says where the call is
                space["type"], space["timestamp"] = state.type, state.timestamp
            space["last"] = max(int(space.get("last", 0)), state.sequence)
            space["ending"] = space.get("ending") or state.type == wire.STATE_ENDING  # ENDING is final
            participants: dict[str, dict] = space.setdefault("participants", {})
            if state.participants and state.type != wire.STATE_ENDING:
                for remembered in participants.values():  # whoever this state leaves out has left the call
                    remembered["status"] = GONE
            for p in state.participants:
                participants[p.id] = {"kind": p.kind, "status": p.status, "number": p.number}
            call_id: str = space.get("call") or await self._our_call(participants) or ""
            if not call_id:
                return space, (space, "", [], "")
            space["call"] = call_id
            events, used = await self._events(space, call_id)
            return space, (space, call_id, events, used)

        space, call_id, events, used = await self.store.update(SPACE_KEY.format(space_id), change, self.ttl)
        if not call_id:  # GoTo may report a call before our request to place it has returned its leg id
            for participant_id in space["participants"]:
                await self.store.set(LEG_SPACE_KEY.format(participant_id), space_id, self.ttl)
            # `match` writes the leg's call, then reads the leg's space; this wrote the space, now reads the
            # call: whichever order the two ran in, one of them sees the other's write (both: one adopts).
            call_id = await self._our_call(space["participants"]) or ""
            if call_id:
                await self._adopt(space_id, call_id)
            return
        await self._settled(space_id, space, call_id, events, used)

    async def match(self, leg_id: str, call_id: str) -> None:
        """Our web call `call_id` is the participant `leg_id`: remember it, and catch up on states seen before."""
        if not leg_id:
            return
        await self.store.set(LEG_KEY.format(leg_id), call_id, self.ttl)
        space_id = await self.store.get(LEG_SPACE_KEY.format(leg_id))
        if space_id:
            await self._adopt(space_id, call_id)

    async def _adopt(self, space_id: str, call_id: str) -> None:
        """The conversation space `space_id` is our call `call_id`'s: its states so far become its events."""

        async def change(space: dict | None) -> tuple[dict | None, tuple[dict, list[tuple[str, dict]], str] | None]:
            if not space or space.get("call"):
                return None, None
            space["call"] = call_id
            events, used = await self._events(space, call_id)
            return space, (space, events, used)

        outcome = await self.store.update(SPACE_KEY.format(space_id), change, self.ttl)
        if outcome is not None:
            await self._settled(space_id, outcome[0], call_id, outcome[1], outcome[2])

    async def _settled(
        self, space_id: str, space: dict, call_id: str, events: list[tuple[str, dict]], used: str
    ) -> None:
        """After a space's update is stored: track it, drop the expectation it fulfilled, emit its events."""
        self._track(space_id, space)
        if used:
            await self.store.delete(EXPECT_KEY.format(call_id))
        for name, data in events:
            await self.emit(call_id, name, data)

    def _track(self, space_id: str, space: dict) -> None:
        if space.get("ended"):
            self.active.discard(space_id)
        else:
            self.active.add(space_id)

    async def _our_call(self, participants: dict[str, dict]) -> str | None:
        for participant_id in participants:
            call_id = await self.store.get(LEG_KEY.format(participant_id))
            if call_id:
                return call_id
        return None

    async def _events(self, space: dict, call_id: str) -> tuple[list[tuple[str, dict]], str]:
        """The carrier events the space's remembered participants now justify, each once, and the id of the
        transfer or merge expectation they fulfil ("" for none). Changes `space` only: it runs inside an
        update, perhaps more than once."""
        participants: dict[str, dict] = space["participants"]
        ours = {pid for pid in participants if await self.store.get(LEG_KEY.format(pid)) == call_id}
        others = {pid: p for pid, p in participants.items() if pid not in ours}
        ending = bool(space.get("ending"))
        connected = [pid for pid, p in others.items() if p["status"] == wire.STATUS_CONNECTED]
        events: list[tuple[str, dict]] = []
        used = ""
        expected = await self.store.get(EXPECT_KEY.format(call_id))
        # An expectation is fulfilled once: its id is kept in the space until its key is deleted after the update.
        ident = str(expected.get("id") or json.dumps(expected, sort_keys=True)) if expected else ""
        if expected and not ending and ident != space.get("fulfilled"):
            if expected["kind"] == "merge" and len(connected) >= 2:
                events.append((carrier_events.MERGED, {"call_id": call_id, "refer_id": expected["target"]}))
                used = space["fulfilled"] = ident
            elif expected["kind"] == "transfer" and not any(
                participants[pid]["status"] == wire.STATUS_CONNECTED for pid in ours
            ):
                events.append((carrier_events.TRANSFERRED, {"call_id": call_id, "transferred_to": expected["target"]}))
                used = space["fulfilled"] = ident
        if not space.get("connected") and not ending and connected:
            space["connected"] = True
            events.append((carrier_events.CONNECTED, {"call_id": call_id, "answered_at": space.get("timestamp", "")}))
        if ending and not space.get("ended"):
            space["ended"] = True
            if space.get("connected"):
                events.append((carrier_events.ENDED, {"call_id": call_id, "reason": "hangup"}))
            else:
                last = next((p["status"] for p in others.values() if p["status"] not in ("", GONE)), "")
                events.append(
                    (carrier_events.FAILED, {"call_id": call_id, "reason": FAILURE_REASONS.get(last, "error")})
                )
        return events, used
