"""Per-tenant API rate limits from the tenant's plan, shared by every process.

Requests per minute use a fixed one-minute window (`ratelimit:{tenant}:{window}`, expiring with the window); requests
in flight use a counter taken on entry and given back on exit. With REDIS_URL each check is one
round trip to Redis (a Lua script does the increment, the expiry and the limit check atomically);
on embedded defaults the same logic runs on the local-memory cache. Hand-written: the rate-limit
libraries for Django (django-ratelimit) neither send the X-RateLimit headers nor count requests in
flight.
"""

import math
import threading
import time
from dataclasses import dataclass
from functools import cache as memoize

import redis
from django.conf import settings
from django.core.cache import cache

from tenants.models import Tenant

WINDOW_SECONDS = 60
LIMITS_CACHE_SECONDS = 30  # a plan change reaches every process within this
INFLIGHT_TTL_SECONDS = 60  # a crashed process's in-flight count fades after this

# KEYS[1] counter; ARGV[1] ttl seconds. Returns the count after this request.
_HIT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"
# KEYS[1] counter; ARGV[1] limit, ARGV[2] ttl. Takes a slot if one is free: 1 taken, 0 refused.
_ENTER = (
    "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[2]) "
    "if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end return 1"
)
# Gives a slot back, never below zero (the key may have expired meanwhile).
_EXIT = (
    "if redis.call('GET', KEYS[1]) and tonumber(redis.call('GET', KEYS[1])) > 0 then redis.call('DECR', KEYS[1]) end"
)


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the window ends
    allowed: bool

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class _RedisCounters:
    def __init__(self, url: str):
        client = redis.Redis.from_url(url)
        self._hit, self._enter, self._exit = (client.register_script(s) for s in (_HIT, _ENTER, _EXIT))

    def hit(self, key: str, ttl: int) -> int:
        return int(self._hit(keys=[key], args=[ttl]))

    def enter(self, key: str, limit: int, ttl: int) -> bool:
        return bool(self._enter(keys=[key], args=[limit, ttl]))

    def exit(self, key: str) -> None:
        self._exit(keys=[key])


class _CacheCounters:
    """The same counters on Django's local-memory cache (one process: embedded defaults)."""

    _lock = threading.Lock()

    def hit(self, key: str, ttl: int) -> int:
        with self._lock:
            cache.add(key, 0, timeout=ttl)
            return cache.incr(key)

    def enter(self, key: str, limit: int, ttl: int) -> bool:
        with self._lock:
            current = cache.get(key, 0)
            if current >= limit:
                return False
            cache.set(key, current + 1, timeout=ttl)
            return True

    def exit(self, key: str) -> None:
        with self._lock:
            current = cache.get(key, 0)
            if current > 0:
                cache.set(key, current - 1, timeout=INFLIGHT_TTL_SECONDS)


@memoize
def _counters(redis_url: str) -> _RedisCounters | _CacheCounters:
    return _RedisCounters(redis_url) if redis_url else _CacheCounters()


def counters() -> _RedisCounters | _CacheCounters:
    return _counters(settings.REDIS_URL)


_limits: dict[str, tuple[float, tuple[int, int]]] = {}
# Who knows a tenant's plan limits (the billing app registers it at start-up): tenant -> (per minute, burst),
# or None for the platform defaults (API_RATE_LIMIT_PER_MINUTE, API_BURST_LIMIT).
_plan_limits = None


def register_plan_limits(lookup) -> None:
    """Called once by the app that owns plans, so the rate limiter needs no import of it."""
    global _plan_limits
    _plan_limits = lookup


def tenant_limits(tenant: Tenant) -> tuple[int, int]:
    """(requests per minute, concurrent requests) from the tenant's plan, kept in memory for 30 s."""
    now = time.monotonic()
    cached = _limits.get(str(tenant.pk))
    if cached and cached[0] > now:
        return cached[1]
    planned = _plan_limits(tenant) if _plan_limits is not None else None
    limits = planned or (settings.API_RATE_LIMIT_PER_MINUTE, settings.API_BURST_LIMIT)
    _limits[str(tenant.pk)] = (now + LIMITS_CACHE_SECONDS, limits)
    return limits


def forget_limits() -> None:
    """Drop the in-memory plan limits (tests, or after a plan change that must apply at once)."""
    _limits.clear()


def rate_limit_hit(tenant: Tenant, limit: int) -> RateLimitState:
    """Count one request against the tenant's per-minute limit."""
    window = int(time.time() // WINDOW_SECONDS)
    count = counters().hit(f"ratelimit:{tenant.pk}:{window}", WINDOW_SECONDS + 5)
    reset_at = (window + 1) * WINDOW_SECONDS
    return RateLimitState(limit=limit, remaining=max(0, limit - count), reset_at=reset_at, allowed=count <= limit)


def inflight_enter(tenant: Tenant, burst: int) -> bool:
    """Take one of the tenant's concurrent-request slots; False (and nothing held) if none is free."""
    return counters().enter(f"ratelimit-inflight:{tenant.pk}", burst, INFLIGHT_TTL_SECONDS)


def inflight_exit(tenant: Tenant) -> None:
    counters().exit(f"ratelimit-inflight:{tenant.pk}")
