"""Per-tenant API rate limits from the tenant's plan, shared by every process through the cache.

Requests per minute use a fixed one-minute window (`ratelimit:{tenant}:{window}`, seed 9.3) counted
with the cache's atomic increment (INCR on Redis). Concurrent requests use an in-flight counter
incremented on entry and decremented on exit. Hand-written: the rate-limit libraries for Django
(django-ratelimit) do not send the X-RateLimit headers or count requests in flight.
"""

import contextlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from billing.selectors import plan_for_tenant
from tenants.models import Tenant

WINDOW_SECONDS = 60
LIMITS_CACHE_SECONDS = 60
INFLIGHT_TTL_SECONDS = 60  # a crashed process's in-flight count fades after this


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


def tenant_limits(tenant: Tenant) -> tuple[int, int]:
    """(requests per minute, concurrent requests) from the tenant's plan, cached for a minute."""

    def load() -> tuple[int, int]:
        plan = plan_for_tenant(tenant=tenant)
        if plan is None:
            return settings.API_RATE_LIMIT_PER_MINUTE, settings.API_BURST_LIMIT
        return plan.api_rate_limit_per_minute, plan.api_burst_limit

    return tuple(cache.get_or_set(f"ratelimit-limits:{tenant.pk}", load, LIMITS_CACHE_SECONDS))


def _atomic_incr(key: str, ttl: int) -> int:
    for _attempt in range(3):
        cache.add(key, 0, timeout=ttl)
        try:
            return cache.incr(key)
        except ValueError:
            continue  # expired between add and incr
    raise RuntimeError(f"could not increment {key}")


def rate_limit_hit(tenant: Tenant) -> RateLimitState:
    """Count one request against the tenant's per-minute limit."""
    limit, _burst = tenant_limits(tenant)
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    count = _atomic_incr(f"ratelimit:{tenant.pk}:{window}", WINDOW_SECONDS + 5)
    reset_at = (window + 1) * WINDOW_SECONDS
    return RateLimitState(limit=limit, remaining=max(0, limit - count), reset_at=reset_at, allowed=count <= limit)


def inflight_enter(tenant: Tenant) -> bool:
    """Take one of the tenant's concurrent-request slots; False (and nothing held) if none is free."""
    _limit, burst = tenant_limits(tenant)
    key = f"ratelimit-inflight:{tenant.pk}"
    if _atomic_incr(key, INFLIGHT_TTL_SECONDS) > burst:
        inflight_exit(tenant)
        return False
    cache.touch(key, INFLIGHT_TTL_SECONDS)
    return True


def inflight_exit(tenant: Tenant) -> None:
    with contextlib.suppress(ValueError):  # the counter expired meanwhile
        cache.decr(f"ratelimit-inflight:{tenant.pk}")
