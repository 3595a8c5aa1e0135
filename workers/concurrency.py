"""Global concurrency limits: at most N holders of a resource at once, across every worker.

Why: HealthOmics allows 5 concurrent read-set import jobs per account (quota ``L-F57A8D18``),
and a job is not a call — it runs for minutes or hours after StartReadSetImportJob returned.  A
rate limiter cannot express that; a counting semaphore can.  It must be shared by every process
of every imports worker, so it lives in Redis (with no Redis, the embedded default, in memory:
then every worker is in this one process).

A slot is *leased*, not owned forever: the holder (an import plan's id) takes it before starting
the job and gives it back when the job's terminal event is handled.  HealthOmics events are best
effort, so a terminal event may never come; the lease then expires after ``ttl`` seconds and the
slot returns by itself.  Taking a slot one already holds renews it, so a retried task cannot
take two.  Time is Redis' own clock (``TIME`` inside the script), so workers with skewed clocks
agree on what has expired.

The limit is a courtesy to the service, not the last line of defence: HealthOmics itself
answers ``ServiceQuotaExceededException`` (402) past its quota, which the imports pool treats as
"wait", never as a failure.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import redis

from schemas.settings import Settings
from workers.redis_clients import redis_client

#: KEYS[1] = the holders' sorted set (score = lease expiry, in ms); ARGV = holder, limit, ttl ms.
_ACQUIRE = """
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

_HOLDERS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class SlotStore(Protocol):
    def acquire(self, holder: str, limit: int, ttl: float) -> bool: ...

    def release(self, holder: str) -> None: ...

    def holders(self) -> list[str]: ...


class RedisSlots:
    """Slots in one Redis sorted set, taken and expired atomically by a Lua script."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._acquire = client.register_script(_ACQUIRE)
        self._holders = client.register_script(_HOLDERS)

    def acquire(self, holder: str, limit: int, ttl: float) -> bool:
        ttl_ms = max(1, int(ttl * 1000))
        return bool(self._acquire(keys=[self._key], args=[holder, limit, ttl_ms]))

    def release(self, holder: str) -> None:
        self._client.zrem(self._key, holder)

    def holders(self) -> list[str]:
        return [h.decode() if isinstance(h, bytes) else str(h) for h in self._holders([self._key])]


class MemorySlots:
    """The same semantics for one process (the embedded default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def _expire(self, now: float) -> None:
        for holder in [h for h, until in self._expiry.items() if until <= now]:
            del self._expiry[holder]

    def acquire(self, holder: str, limit: int, ttl: float) -> bool:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if holder in self._expiry or len(self._expiry) < limit:
                self._expiry[holder] = now + ttl
                return True
            return False

    def release(self, holder: str) -> None:
        with self._lock:
            self._expiry.pop(holder, None)

    def holders(self) -> list[str]:
        with self._lock:
            self._expire(time.monotonic())
            return sorted(self._expiry)


class ConcurrencyLimiter:
    """``limit`` leased slots named ``name``, shared by every process using the same store."""

    def __init__(self, slots: SlotStore, *, limit: int, ttl: float) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._slots = slots
        self.limit = limit
        self.ttl = ttl

    @classmethod
    def from_settings(
        cls, settings: Settings, name: str, *, limit: int, ttl: float, client: Any = None
    ) -> ConcurrencyLimiter:
        slots: SlotStore
        if settings.redis_url:
            slots = RedisSlots(
                client or redis_client(settings), f"{settings.redis_key_prefix}concurrency:{name}"
            )
        else:
            slots = MemorySlots()
        return cls(slots, limit=limit, ttl=ttl)

    def acquire(self, holder: str) -> bool:
        """Take (or renew) ``holder``'s slot; False when all ``limit`` slots are held by others."""
        return self._slots.acquire(holder, self.limit, self.ttl)

    def release(self, holder: str) -> None:
        """Give ``holder``'s slot back (a no-op if it holds none)."""
        self._slots.release(holder)

    def holders(self) -> list[str]:
        """Who holds a slot now (expired leases dropped)."""
        return self._slots.holders()
