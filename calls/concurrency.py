"""Active calls per tenant (the Redis set `tenant:{id}:active_calls`) for the concurrent-call limit.

The set lives in Redis with REDIS_URL, in the local cache otherwise. The database stays the truth:
a missing set is rebuilt from it, a Redis error falls back to counting it, and before a call is
refused at the limit the set is rebuilt, so an id left behind by a crashed process never blocks calls.
"""

import logging
import threading
from functools import cache

import redis
from django.conf import settings
from django.core.cache import cache as local_cache

from calls.models import Call
from calls.state_machine import CallStatus

logger = logging.getLogger(__name__)
_local_lock = threading.Lock()


def key_for(tenant_id) -> str:
    return f"tenant:{tenant_id}:active_calls"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _active_ids(tenant_id) -> set[str]:
    """The truth: the tenant's calls that have not ended, from the database."""
    calls = Call.objects.for_tenant(tenant_id).exclude(status=CallStatus.ENDED)
    return {str(pk) for pk in calls.values_list("pk", flat=True)}


def active_calls_rebuild(*, tenant_id) -> int:
    """Replace the set with the database's active calls; returns how many there are."""
    ids = _active_ids(tenant_id)
    key = key_for(tenant_id)
    if settings.REDIS_URL:
        with _client(settings.REDIS_URL).pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if ids:
                pipe.sadd(key, *ids)
            pipe.execute()
    else:
        local_cache.set(key, ids, None)
    return len(ids)


def active_calls_count(*, tenant_id) -> int:
    """How many calls the tenant has active (rebuilt from the database if the set is missing)."""
    try:
        if settings.REDIS_URL:
            client = _client(settings.REDIS_URL)
            count = client.scard(key_for(tenant_id))
            return count if count or client.exists(key_for(tenant_id)) else active_calls_rebuild(tenant_id=tenant_id)
        members = local_cache.get(key_for(tenant_id))
        return len(members) if members is not None else active_calls_rebuild(tenant_id=tenant_id)
    except redis.RedisError:
        logger.warning("active calls of tenant %s counted in the database: Redis failed", tenant_id, exc_info=True)
        return len(_active_ids(tenant_id))


def active_calls_add(*, tenant_id, call_id) -> None:
    """Count a new call as active (a missing set is rebuilt, which includes it once it is saved)."""
    key = key_for(tenant_id)
    try:
        if settings.REDIS_URL:
            client = _client(settings.REDIS_URL)
            if client.exists(key):
                client.sadd(key, str(call_id))
            else:
                active_calls_rebuild(tenant_id=tenant_id)
            return
        with _local_lock:
            members = local_cache.get(key)
            if members is None:
                active_calls_rebuild(tenant_id=tenant_id)
            else:
                local_cache.set(key, members | {str(call_id)}, None)
    except redis.RedisError:
        logger.warning("could not count call %s as active; the set is rebuilt later", call_id, exc_info=True)


def active_calls_remove(*, tenant_id, call_id) -> None:
    """The call ended: it no longer counts (run after the end commits)."""
    key = key_for(tenant_id)
    try:
        if settings.REDIS_URL:
            _client(settings.REDIS_URL).srem(key, str(call_id))
            return
        with _local_lock:
            members = local_cache.get(key)
            if members is not None:
                local_cache.set(key, members - {str(call_id)}, None)
    except redis.RedisError:
        logger.warning("could not release active call %s; the set is rebuilt at the limit", call_id, exc_info=True)


def active_calls_at_limit(*, tenant_id, limit: int) -> int | None:
    """The number of active calls if the tenant is at `limit` (checked against the database), else None."""
    if active_calls_count(tenant_id=tenant_id) < limit:
        return None
    try:
        active = active_calls_rebuild(tenant_id=tenant_id)  # the set may hold ids a crashed process never removed
    except redis.RedisError:
        active = len(_active_ids(tenant_id))
    return active if active >= limit else None
