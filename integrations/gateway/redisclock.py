"""The clock of the gateway's Redis scripts: Redis's own, or one a test drives.

Every Lua script of the breakers and the rate limiter takes `ARGV[1]`: the caller's clock reading, or ""
for Redis's `TIME` (production: one clock for every process, whatever the hosts' clocks say). A test
passes a clock so that nothing it asserts depends on how busy the machine is.
"""

from collections.abc import Callable

# Lua: sets `now` from ARGV[1], or from Redis's TIME when ARGV[1] is "".
NOW_LUA = (
    "local now = tonumber(ARGV[1]) "
    "if not now then local t = redis.call('TIME') now = tonumber(t[1]) + tonumber(t[2]) / 1000000 end "
)


def now_arg(clock: Callable[[], float] | None) -> str:
    """ARGV[1] for a script: the clock's reading, or "" for Redis's own clock."""
    return "" if clock is None else repr(clock())
