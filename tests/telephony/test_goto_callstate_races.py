"""Two updaters of one GoTo call's shared state at once (`callstate.SharedStore.update`): nothing is lost.

Each test interleaves deterministically: worker one's update of a call is paused after it has read the
call's state and before it has written it (the store's `get` of a leg, which the translation makes in
between, runs the other update first). No timing is involved.
"""

import asyncio
import uuid

import redis.asyncio

from telephony import carrier_events
from telephony.carriers.goto.callstate import LEG_KEY, SPACE_KEY, SharedStore
from tests.telephony.conftest import REDIS_URL
from tests.telephony.test_goto_events import Translated, local_dedup, state


class Interleaved(SharedStore):
    """A SharedStore that runs `meanwhile` once, at the next read of a leg's call (inside an update):
    before the read, or after it with `after`."""

    def __init__(self, **options):
        super().__init__(**options)
        self.meanwhile = None
        self.after = False

    async def get(self, key: str):
        if self.meanwhile is None or not key.startswith(LEG_KEY.format("")):
            return await super().get(key)
        meanwhile, self.meanwhile = self.meanwhile, None
        if not self.after:
            await meanwhile()
        value = await super().get(key)
        if self.after:
            await meanwhile()
        return value


async def test_two_workers_updating_one_call_at_once_through_redis_lose_no_update(redis_prefix):
    space, leg, call = f"{redis_prefix}-s", f"{redis_prefix}-leg", f"{redis_prefix}-call"

    def worker(store: SharedStore) -> Translated:  # each worker its own clients; only Redis is shared
        return Translated(dedup=local_dedup(), store=store)

    one = worker(Interleaved(redis_url=REDIS_URL, local_name=uuid.uuid4().hex))
    two = worker(SharedStore(redis_url=REDIS_URL, local_name=uuid.uuid4().hex))
    answered = state(space, 2, "ACTIVE", [(leg, "CONNECTED"), ("them", "CONNECTED")])
    still_answered = state(space, 3, "ACTIVE", [(leg, "CONNECTED"), ("them", "CONNECTED")])
    try:
        await one.states.match(leg, call)
        await one.states.handle(state(space, 1, "STARTING", [(leg, "CONNECTED"), ("them", "RINGING")]))

        async def meanwhile() -> None:  # worker two handles state 3 while worker one is inside state 2
            await two.states.handle(still_answered)

        one.states.store.meanwhile = meanwhile
        await one.states.handle(answered)
        stored = await two.states.store.get(SPACE_KEY.format(space))
    finally:
        for t in (one, two):
            await t.states.store.aclose()
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        await client.delete(LEG_KEY.format(leg), SPACE_KEY.format(space))
        await client.aclose()
    assert one.states.store.meanwhile is None  # the interleaving happened
    assert one.names() + two.names() == [carrier_events.CONNECTED]  # once, by whichever wrote first
    assert (stored["last"], stored["type"], stored["call"], stored["connected"]) == (3, "ACTIVE", call, True)


async def test_two_updates_of_one_call_at_once_in_one_process_lose_no_update():
    t = Translated(store=Interleaved(redis_url=None, local_name=uuid.uuid4().hex))
    await t.states.match("leg-1", "call-1")
    await t.states.handle(state("s1", 1, "STARTING", [("leg-1", "CONNECTED"), ("them", "RINGING")]))
    other: list[asyncio.Task] = []

    async def meanwhile() -> None:  # the other update runs as far as it can before this one goes on
        other.append(asyncio.create_task(t.states.handle(state("s1", 3, "ENDING", []))))
        for _ in range(100):  # a task that never suspends finishes in one step; a blocked one never does
            if other[0].done():
                break
            await asyncio.sleep(0)

    t.states.store.meanwhile = meanwhile
    await t.states.handle(state("s1", 2, "ACTIVE", [("leg-1", "CONNECTED"), ("them", "CONNECTED")]))
    await asyncio.wait_for(other[0], 10)
    stored = await t.states.store.get(SPACE_KEY.format("s1"))
    assert t.names() == [carrier_events.CONNECTED, carrier_events.ENDED]
    assert (stored["last"], stored["ended"], stored["participants"]["them"]["status"]) == (3, True, "CONNECTED")


async def test_a_call_matched_just_after_its_state_looked_for_it_is_still_matched_by_that_state():
    store = Interleaved(redis_url=None, local_name=uuid.uuid4().hex)
    t = Translated(store=store)

    async def meanwhile() -> None:  # placing the call returns its leg id right after the state looked for it
        await t.states.match("leg-1", "call-1")

    store.meanwhile, store.after = meanwhile, True
    await t.states.handle(state("s1", 1, "ACTIVE", [("leg-1", "CONNECTED"), ("them", "CONNECTED")]))
    assert store.meanwhile is None  # the interleaving happened
    assert t.emitted == [
        ("call-1", carrier_events.CONNECTED, {"call_id": "call-1", "answered_at": "2026-01-01T00:00:01Z"})
    ]
    await t.states.match("leg-1", "call-1")  # matched again (a repeated answer): nothing twice
    assert t.names() == [carrier_events.CONNECTED]
