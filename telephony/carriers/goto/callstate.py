"""GoTo's call states -> the carrier events the bridge knows (`telephony.carrier_events`), each once.

GoTo reports a call as a sequence of states of its conversation space ("call-state": STARTING, ACTIVE,
ENDING, each with a `sequenceNumber` and the participants). Every media worker listens on its own
channel, so every worker receives every state: `CallStates.handle` claims (conversation space,
sequence number) first (Redis when REDIS_URL is set), and only the claimant translates it.

- A state whose sequence number skips some is preceded by the missing ones, fetched over REST
  (`GoToApi.recover_states`, a grade-D route: GoTo documents recovery without the route's shape).
- Participants are remembered per conversation space (GoTo sent ENDING with no participants in live
  calls), in the Django cache, shared by the workers like the claims.
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

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

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
    """

    def __init__(self, *, redis_url: str | None = _FROM_SETTINGS, local_name: str = LOCAL_STORE_NAME):
        from django.conf import settings

        self.redis_url = settings.REDIS_URL if redis_url is _FROM_SETTINGS else redis_url
        self._local = LocMemCache(local_name, {"OPTIONS": {"MAX_ENTRIES": LOCAL_DEDUP_MAX_ENTRIES}})
        self._redis: AsyncRedis | None = None

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
        await self.store.set(EXPECT_KEY.format(call_id), {"kind": kind, "target": target}, self.ttl)

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
        key = SPACE_KEY.format(state.conversation_space_id)
        space: dict = await self.store.get(key) or {}
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
        events: list[tuple[str, dict]] = []
        if call_id:
            space["call"] = call_id
            events = await self._events(space, call_id)
            self._track(state.conversation_space_id, space)
        else:  # GoTo may report a call before our request to place it has returned its leg id
            for participant_id in participants:
                await self.store.set(LEG_SPACE_KEY.format(participant_id), state.conversation_space_id, self.ttl)
        await self.store.set(key, space, self.ttl)
        for name, data in events:
            await self.emit(call_id, name, data)

    async def match(self, leg_id: str, call_id: str) -> None:
        """Our web call `call_id` is the participant `leg_id`: remember it, and catch up on states seen before."""
        if not leg_id:
            return
        await self.store.set(LEG_KEY.format(leg_id), call_id, self.ttl)
        space_id = await self.store.get(LEG_SPACE_KEY.format(leg_id))
        if not space_id:
            return
        key = SPACE_KEY.format(space_id)
        space = await self.store.get(key)
        if not space or space.get("call"):
            return
        space["call"] = call_id
        events = await self._events(space, call_id)
        self._track(space_id, space)
        await self.store.set(key, space, self.ttl)
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

    async def _events(self, space: dict, call_id: str) -> list[tuple[str, dict]]:
        """The carrier events the space's remembered participants now justify, each once."""
        participants: dict[str, dict] = space["participants"]
        ours = {pid for pid in participants if await self.store.get(LEG_KEY.format(pid)) == call_id}
        others = {pid: p for pid, p in participants.items() if pid not in ours}
        ending = bool(space.get("ending"))
        connected = [pid for pid, p in others.items() if p["status"] == wire.STATUS_CONNECTED]
        events: list[tuple[str, dict]] = []
        expected = await self.store.get(EXPECT_KEY.format(call_id))
        if expected and not ending:
            if expected["kind"] == "merge" and len(connected) >= 2:
                events.append((carrier_events.MERGED, {"call_id": call_id, "refer_id": expected["target"]}))
                await self.store.delete(EXPECT_KEY.format(call_id))
            elif expected["kind"] == "transfer" and not any(
                participants[pid]["status"] == wire.STATUS_CONNECTED for pid in ours
            ):
                events.append((carrier_events.TRANSFERRED, {"call_id": call_id, "transferred_to": expected["target"]}))
                await self.store.delete(EXPECT_KEY.format(call_id))
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
        return events
