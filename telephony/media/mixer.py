"""Mixing 16-bit PCM for a conference on the bridge: several parties' audio summed, with numpy only.

`mix` sums any number of int16 arrays (the shorter ones padded with silence) and clips the sum to the
int16 range instead of letting it wrap. `PcmBuffer` carries one party's audio to a leg that runs on
another clock (each leg paces itself in 20 ms slots): samples are pushed as they arrive and taken a
frame at a time; a buffer starts giving audio once `prebuffer` samples are there (two clocks' jitter),
gives silence for what it lacks, and drops its oldest samples beyond `max_samples`, so a party never
lags further behind than that however the clocks drift.
"""

import numpy as np

INT16_MIN, INT16_MAX = -32768, 32767


def mix(*parts: np.ndarray) -> np.ndarray:
    """The int16 sum of `parts`, as long as the longest (the others padded with silence), clipped to int16."""
    length = max((len(part) for part in parts), default=0)
    total = np.zeros(length, dtype=np.int32)
    for part in parts:
        total[: len(part)] += part.astype(np.int32, copy=False)
    return np.clip(total, INT16_MIN, INT16_MAX).astype(np.int16)


class PcmBuffer:
    """A bounded FIFO of int16 samples from another clock, read in frames (see the module docstring)."""

    def __init__(self, *, max_samples: int, prebuffer: int = 0):
        if max_samples <= 0 or not 0 <= prebuffer <= max_samples:
            raise ValueError("PcmBuffer needs 0 <= prebuffer <= max_samples and max_samples > 0")
        self.max_samples, self.prebuffer = max_samples, prebuffer
        self._data = bytearray()
        self._primed = False
        self.dropped = 0  # samples dropped because the reader fell behind
        self.short = 0  # samples of silence given because the writer fell behind

    def __len__(self) -> int:
        return len(self._data) // 2

    def push(self, pcm: np.ndarray) -> None:
        """Append `pcm`; beyond `max_samples` the oldest samples go."""
        self._data += pcm.astype(np.int16, copy=False).tobytes()
        excess = len(self) - self.max_samples
        if excess > 0:
            del self._data[: 2 * excess]
            self.dropped += excess
        if len(self) >= self.prebuffer:
            self._primed = True

    @property
    def ready(self) -> bool:
        """Whether the reader should take a frame now: primed by `prebuffer` samples and not yet run dry."""
        return self._primed

    def take(self, count: int) -> np.ndarray:
        """The next `count` samples, silence for what is missing (and none at all before it is primed)."""
        if not self._primed:
            return np.zeros(count, dtype=np.int16)
        available = min(count, len(self))
        head = np.frombuffer(bytes(self._data[: 2 * available]), dtype=np.int16)
        del self._data[: 2 * available]
        if available < count:
            self.short += count - available
            self._primed = False  # ran dry: wait for `prebuffer` again instead of stuttering frame by frame
            head = np.concatenate([head, np.zeros(count - available, dtype=np.int16)])
        return head

    def clear(self) -> None:
        self._data.clear()
        self._primed = False
