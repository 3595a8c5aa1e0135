"""The Redis backend of both limits: one budget for every process of every worker pool.

Each limit is one Lua script, so a check and its grant are one atomic step however many workers
race for the last slot.  Time is Redis' own clock (``TIME`` inside the script), so workers on
hosts with skewed clocks agree on what has left a window and which lease has expired.
"""

from __future__ import annotations

from typing import Any

import redis

from workers.limits.rate import RateWindows
from workers.limits.slots import SlotStore

#: One moving window: at most ARGV[1] grants within ARGV[2] seconds (fractional: the margin);
#: returns "0" when granted, else the seconds until the oldest counted grant leaves the window.
_WINDOW_ACQUIRE = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local oldest = redis.call('LINDEX', KEYS[1], limit - 1)
if oldest and tonumber(oldest) > now - window then
    return tostring(tonumber(oldest) + window - now)
end
redis.call('LPUSH', KEYS[1], string.format('%.6f', now))
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return '0'
"""

#: KEYS[1] = the holders' sorted set (score = lease expiry, in ms); ARGV = holder, limit, ttl ms.
_SLOT_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local expires = now_ms + tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1])
    or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], expires, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))  -- the newest lease outlives the others
  return 1
end
return 0
"""

_SLOT_HOLDERS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class RedisRateWindows(RateWindows):
    """Moving windows as capped Redis lists of grant times, keyed ``{prefix}:{key}``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script: Any = client.register_script(_WINDOW_ACQUIRE)

    def acquire(self, key: str, limit: int, window: float) -> float:
        return float(self._script(keys=[f"{self._prefix}:{key}"], args=[limit, window]))


class RedisSlots(SlotStore):
    """Slots in one Redis sorted set, taken and expired atomically by a Lua script."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._acquire = client.register_script(_SLOT_ACQUIRE)
        self._holders = client.register_script(_SLOT_HOLDERS)

    def acquire(self, holder: str, limit: int, ttl: float) -> bool:
        ttl_ms = max(1, int(ttl * 1000))
        return bool(self._acquire(keys=[self._key], args=[holder, limit, ttl_ms]))

    def release(self, holder: str) -> None:
        self._client.zrem(self._key, holder)

    def holders(self) -> list[str]:
        return [h.decode() if isinstance(h, bytes) else str(h) for h in self._holders([self._key])]
