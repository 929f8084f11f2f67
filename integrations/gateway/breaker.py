"""The circuit breaker per (tenant, service), in Redis (shared by all processes) or in process.

closed --threshold consecutive failures--> open --timeout--> half-open
half-open admits at most `half_open_requests` trial calls at a time; `success_threshold` trial
successes close it, any trial failure opens it again.

A call takes a Permit before it is sent and reports its outcome with it. The permit carries the
breaker's generation (bumped at every opening), so an answer that arrives after the breaker moved on,
say a slow call admitted while closed that fails after the breaker already opened and closed again,
is ignored instead of being counted against the new period. A trial slot held by a process that died
is given back after `lease` seconds, so a crash cannot wedge the breaker half-open.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from integrations.config import BreakerPolicy
from integrations.gateway.redisclock import NOW_LUA, now_arg

CLOSED, OPEN, HALF_OPEN = 0, 1, 2  # the values of vg_integration_circuit_breaker_state
SUCCESS, FAILURE, NEUTRAL = "s", "f", "n"  # NEUTRAL: the call never reached the backend (e.g. rate limited)
KEY_TTL_SECONDS = 86_400  # an idle breaker's hash is dropped after a day; absent means closed


@dataclass(frozen=True)
class Permit:
    key: str
    allowed: bool
    state: int
    trial: bool = False
    generation: int = 0


@dataclass
class _State:
    state: int = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    inflight: int = 0
    successes: int = 0
    generation: int = 0
    trial_at: float = 0.0


class LocalBreakers:
    """In-process breakers: the embedded default without REDIS_URL; shared by every Gateway of the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    async def acquire(self, key: str, policy: BreakerPolicy, lease: float) -> Permit:
        with self._lock:
            s, now = self._states.setdefault(key, _State()), self.clock()
            if s.state == CLOSED:
                return Permit(key, True, CLOSED, generation=s.generation)
            if s.state == OPEN:
                if now - s.opened_at < policy.timeout:
                    return Permit(key, False, OPEN, generation=s.generation)
                s.state, s.inflight, s.successes = HALF_OPEN, 0, 0
            if s.inflight >= policy.half_open_requests and now - s.trial_at > lease:
                s.inflight = 0
            if s.inflight >= policy.half_open_requests:
                return Permit(key, False, HALF_OPEN, generation=s.generation)
            s.inflight, s.trial_at = s.inflight + 1, now
            return Permit(key, True, HALF_OPEN, trial=True, generation=s.generation)

    async def record(self, permit: Permit, outcome: str, policy: BreakerPolicy) -> int:
        with self._lock:
            s = self._states.setdefault(permit.key, _State())
            if s.generation != permit.generation or s.state != (HALF_OPEN if permit.trial else CLOSED):
                return s.state
            if permit.trial:
                s.inflight = max(0, s.inflight - 1)
                s.successes += outcome == SUCCESS
                if s.successes >= policy.success_threshold:
                    s.state, s.failures, s.successes, s.inflight = CLOSED, 0, 0, 0
            else:
                s.failures = 0 if outcome == SUCCESS else s.failures + (outcome == FAILURE)
            if outcome == FAILURE and (permit.trial or s.failures >= policy.threshold):
                s.state, s.opened_at, s.generation, s.inflight = OPEN, self.clock(), s.generation + 1, 0
            return s.state

    async def state(self, key: str, policy: BreakerPolicy) -> int:
        with self._lock:
            s = self._states.get(key) or _State()
            if s.state == OPEN and self.clock() - s.opened_at >= policy.timeout:
                return HALF_OPEN
            return s.state

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


# KEYS[1]: breaker hash. ARGV: now, timeout, half_open_requests, lease. Returns {allowed, state, trial, generation}.
ACQUIRE_LUA = (
    NOW_LUA
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'inflight', 'gen', 'trial_at')
local state, gen = tonumber(h[1]) or 0, tonumber(h[4]) or 0
if state == 0 then return {1, 0, 0, gen} end
local inflight = tonumber(h[3]) or 0
if state == 1 then
  if now - tonumber(h[2]) < tonumber(ARGV[2]) then return {0, 1, 0, gen} end
  inflight = 0
  redis.call('HSET', KEYS[1], 'state', 2, 'inflight', 0, 'successes', 0)
end
local cap = tonumber(ARGV[3])
if inflight >= cap and now - (tonumber(h[5]) or 0) > tonumber(ARGV[4]) then inflight = 0 end
if inflight >= cap then return {0, 2, 0, gen} end
redis.call('HSET', KEYS[1], 'inflight', inflight + 1, 'trial_at', string.format('%.17g', now))
return {1, 2, 1, gen}
"""
)

# KEYS[1]: breaker hash. ARGV: now, outcome (s/f/n), trial (0/1), generation, threshold, success_threshold,
# ttl seconds. Returns the state after the outcome.
RECORD_LUA = (
    NOW_LUA
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'inflight', 'successes', 'gen')
local state, gen = tonumber(h[1]) or 0, tonumber(h[5]) or 0
local outcome, trial = ARGV[2], tonumber(ARGV[3])
local expected = 0
if trial == 1 then expected = 2 end
if gen ~= tonumber(ARGV[4]) or state ~= expected then return state end
local failures = tonumber(h[2]) or 0
if trial == 1 then
  local successes = (tonumber(h[4]) or 0)
  if outcome == 's' then successes = successes + 1 end
  if successes >= tonumber(ARGV[6]) then
    state, failures, successes = 0, 0, 0
    redis.call('HSET', KEYS[1], 'state', 0, 'failures', 0, 'successes', 0, 'inflight', 0)
  else
    redis.call('HSET', KEYS[1], 'inflight', math.max(0, (tonumber(h[3]) or 0) - 1), 'successes', successes)
  end
elseif outcome == 's' then
  if failures == 0 then return state end
  failures = 0
  redis.call('HSET', KEYS[1], 'failures', 0)
elseif outcome == 'f' then
  failures = failures + 1
  redis.call('HSET', KEYS[1], 'failures', failures)
end
if outcome == 'f' and (trial == 1 or failures >= tonumber(ARGV[5])) then
  state = 1
  redis.call('HSET', KEYS[1], 'state', 1, 'opened_at', string.format('%.17g', now), 'gen', gen + 1, 'inflight', 0)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
return state
"""
)

STATE_LUA = (
    NOW_LUA
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at')
local state = tonumber(h[1]) or 0
if state == 1 and now - tonumber(h[2]) >= tonumber(ARGV[2]) then return 2 end
return state
"""
)


class RedisBreakers:
    """Breakers as Redis hashes, every transition one Lua script: processes never race on a transition.

    Time is Redis's own clock, the same for every process; a test passes `clock` to drive it instead."""

    def __init__(self, redis, clock: Callable[[], float] | None = None):
        self.redis, self.clock = redis, clock
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._record = redis.register_script(RECORD_LUA)
        self._state = redis.register_script(STATE_LUA)

    async def acquire(self, key: str, policy: BreakerPolicy, lease: float) -> Permit:
        args = [self._now(), repr(policy.timeout), policy.half_open_requests, repr(lease)]
        allowed, state, trial, generation = await self._acquire(keys=[key], args=args)
        return Permit(key, bool(allowed), int(state), bool(trial), int(generation))

    async def record(self, permit: Permit, outcome: str, policy: BreakerPolicy) -> int:
        ttl = max(KEY_TTL_SECONDS, int(policy.timeout * 10))
        args = [self._now(), outcome, int(permit.trial), permit.generation, policy.threshold, policy.success_threshold]
        args.append(ttl)
        return int(await self._record(keys=[permit.key], args=args))

    async def state(self, key: str, policy: BreakerPolicy) -> int:
        return int(await self._state(keys=[key], args=[self._now(), repr(policy.timeout)]))

    def _now(self) -> str:
        return now_arg(self.clock)
