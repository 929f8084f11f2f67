"""The carrier's events about a call and its second legs, kept so that a waiter never misses an early one.

Every carrier adapter reports its calls with these names (GoTo Connect's own event names are the same;
another carrier's adapter translates into them), on the call's bus group, where the bridge reads them.
"""

import asyncio

CONNECTED = "call.connected"  # {call_id, answered_at}
FAILED = "call.failed"  # {call_id, reason}: never answered (no_answer, busy, voicemail, ...)
ENDED = "call.ended"  # {call_id, reason}: the remote party hung up
TRANSFERRED = "call.transferred"  # {call_id, transferred_to}
TRANSFER_FAILED = "call.transfer_failed"  # {call_id, reason}
MERGED = "call.merged"  # {call_id, refer_id}


class CarrierEvents:
    """The events of one call's legs, in arrival order; `wait` finds one at or after a position."""

    def __init__(self):
        self._seen: list[tuple[str, str, dict]] = []
        self._changed = asyncio.Condition()

    async def add(self, external_id: str, name: str, data: dict) -> None:
        async with self._changed:
            self._seen.append((external_id, name, data))
            self._changed.notify_all()

    async def wait(self, external_id: str, names: set[str], timeout: float, *, after: int = 0) -> tuple[str, dict]:
        """The first event named in `names` for `external_id` at or after position `after`."""

        def find():
            for ext, name, data in self._seen[after:]:
                if ext == external_id and name in names:
                    return name, data
            return None

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(find), timeout)
            return find()

    @property
    def mark(self) -> int:
        return len(self._seen)
