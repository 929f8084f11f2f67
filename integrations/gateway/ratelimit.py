"""Token buckets per service and per call session, in Redis (shared by all processes) or in process.

A bucket refills at `rate` tokens a second up to `burst`. A request takes a token; one that finds none
*reserves* the next one (the balance goes negative) and sleeps until it is due, so waiters are served
in order without polling. The number already waiting is the negative balance rounded up: when it has
reached `queue_depth`, the request is refused without reserving anything. Checking and reserving every
bucket of a request is one atomic step (one Lua script in Redis), so two processes never race.
"""

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from integrations.gateway.redisclock import NOW_LUA, now_arg

EPSILON = 1e-9


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens a second
    burst: int  # capacity
    queue_depth: int  # requests allowed to wait for a token


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait: float = 0.0  # seconds until the reserved tokens are due
    refused: Bucket | None = None  # the bucket whose queue was full


def take(tokens: float, bucket: Bucket) -> tuple[bool, float, float]:
    """(allowed, new balance, wait) for one request on a refilled balance; shared by both stores."""
    waiting = max(0, math.ceil(-tokens - EPSILON))
    if tokens < 1 - EPSILON and waiting >= bucket.queue_depth:
        return False, tokens, 0.0
    tokens -= 1
    return True, tokens, max(0.0, -tokens / bucket.rate)


class LocalRateLimiter:
    """In-process buckets: the embedded default without REDIS_URL; shared by every Gateway of the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()  # request_sync runs loops in other threads
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    def _refilled(self, bucket: Bucket, now: float) -> float:
        tokens, updated = self._buckets.get(bucket.key, (float(bucket.burst), now))
        return min(float(bucket.burst), tokens + max(0.0, now - updated) * bucket.rate)

    async def reserve(self, buckets: list[Bucket]) -> Reservation:
        with self._lock:
            now = self.clock()
            plans = []
            for bucket in buckets:
                allowed, tokens, wait = take(self._refilled(bucket, now), bucket)
                if not allowed:
                    return Reservation(False, refused=bucket)
                plans.append((bucket.key, tokens, wait))
            for key, tokens, _ in plans:
                self._buckets[key] = (tokens, now)
            return Reservation(True, wait=max(wait for *_, wait in plans))

    async def cancel(self, buckets: list[Bucket]) -> None:
        """Give back the tokens of a reservation whose caller stopped waiting."""
        with self._lock:
            now = self.clock()
            for bucket in buckets:
                self._buckets[bucket.key] = (min(float(bucket.burst), self._refilled(bucket, now) + 1), now)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


# KEYS: bucket keys. ARGV: now ("" for Redis's own clock, so processes on hosts with skewed clocks agree),
# then rate, burst, queue_depth for each key. Returns {0, index of the full bucket} or {1, wait in microseconds}.
RESERVE_LUA = (
    NOW_LUA
    + """
local plans = {}
local longest = 0
for i, key in ipairs(KEYS) do
  local rate, burst, depth = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  local waiting = math.max(0, math.ceil(-tokens - 1e-9))
  if tokens < 1 - 1e-9 and waiting >= depth then
    return {0, i}
  end
  tokens = tokens - 1
  local wait = math.max(0, -tokens / rate)
  if wait > longest then longest = wait end
  plans[i] = {tokens, math.ceil((burst - tokens) / rate * 1000) + 1000}
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', string.format('%.17g', plans[i][1]), 'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', key, plans[i][2])
end
return {1, math.ceil(longest * 1000000)}
"""
)

# KEYS: bucket keys. ARGV: now, then rate and burst for each key.
CANCEL_LUA = (
    NOW_LUA
    + """
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2*i]), tonumber(ARGV[2*i+1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  if state[1] then
    local tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate + 1)
    redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  end
end
return 1
"""
)


class RedisRateLimiter:
    """Buckets in Redis (hashes with a TTL), shared by every process that talks to the same Redis.

    Time is Redis's own clock; a test passes `clock` to drive it instead."""

    def __init__(self, redis, clock: Callable[[], float] | None = None):
        self.redis, self.clock = redis, clock
        self._reserve = redis.register_script(RESERVE_LUA)
        self._cancel = redis.register_script(CANCEL_LUA)

    async def reserve(self, buckets: list[Bucket]) -> Reservation:
        args: list[str | int] = [now_arg(self.clock)]
        args += [value for b in buckets for value in (repr(float(b.rate)), b.burst, b.queue_depth)]
        granted, value = await self._reserve(keys=[b.key for b in buckets], args=args)
        if not granted:
            return Reservation(False, refused=buckets[int(value) - 1])
        return Reservation(True, wait=int(value) / 1_000_000)

    async def cancel(self, buckets: list[Bucket]) -> None:
        args: list[str | int] = [now_arg(self.clock)]
        args += [value for b in buckets for value in (repr(float(b.rate)), b.burst)]
        await self._cancel(keys=[b.key for b in buckets], args=args)


async def acquire(limiter, buckets: list[Bucket], sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
    """Take a token from every bucket, waiting in line if needed; the refused Bucket, or None when through."""
    if not buckets:
        return None
    reservation = await limiter.reserve(buckets)
    if not reservation.granted:
        return reservation.refused
    if reservation.wait > 0:
        try:
            await sleep(reservation.wait)
        except asyncio.CancelledError:
            await asyncio.shield(limiter.cancel(buckets))
            raise
    return None
