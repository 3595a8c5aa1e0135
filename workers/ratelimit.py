"""Global rate limits: HealthOmics quotas are per account, so the limit is shared via Redis.

Celery's ``rate_limit`` is per worker instance (Celery's own docs say so), and two enrich
workers each allowed 10 GetRun/s make 20/s against a 10 TPS account quota.  A
:class:`GlobalRateLimiter` keeps one moving window per operation in Redis (the ``limits``
library's moving-window strategy), so every worker of every pool draws from the same budget.
With no Redis (the embedded default) the window is in memory — correct, since then every worker
is in this one process.

Use :meth:`GlobalRateLimiter.wait` before each call that a quota protects::

    limiter.wait("GetRun")          # blocks until a slot is free in the account-wide window
    omics.get_run(id=run_id)

Waiting is bounded (``max_wait``); past it :class:`RateLimitTimeout` is raised, which a task
treats as transient (it is retried later, never failed).

A quota is counted where the service receives the calls, and a call arrives some time after its
slot was granted (thread scheduling, the network).  ``OMICS_RATE_MARGIN`` pads every window by
that much, so N calls granted per padded window are still at most N per second on arrival
(:class:`_PaddedWindows`, a Lua moving window on Redis' own clock, since ``limits`` counts whole
seconds only).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from schemas.settings import Settings
from workers.redis_clients import redis_client

#: Default account quotas, in calls per second (reference §4.2).
HEALTHOMICS_TPS: Mapping[str, float] = {
    "GetRun": 10,
    "GetRunTask": 10,
    "ListRunTasks": 10,
    "ListRuns": 10,
    "ListTagsForResource": 5,
    "StartReadSetImportJob": 5,
    "GetReadSetImportJob": 5,
    "ListReadSetImportJobs": 5,
}


class RateLimitTimeout(RuntimeError):
    """No slot came free within the bound; the caller should retry later."""


#: One padded window on Redis: at most ARGV[1] grants within ARGV[2] seconds of Redis' own clock
#: (so hosts with skewed clocks still share one window); returns "0" when granted, else the
#: seconds until the oldest grant leaves the window.
_PADDED_ACQUIRE = """
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


class _PaddedWindows:
    """Moving windows of fractional length (``limits`` counts whole seconds only)."""

    def __init__(self, storage: Storage, namespace: str) -> None:
        self._namespace = namespace
        self._script: Any = None
        self._prefix = ""
        if isinstance(storage, RedisStorage):
            self._script = storage.get_connection().register_script(_PADDED_ACQUIRE)
            self._prefix = f"{storage.key_prefix}:padded"
        self._grants: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, operation: str, limit: int, window: float) -> float:
        """0 when granted, else the seconds to wait before a slot may be free."""
        if self._script is not None:
            key = f"{self._prefix}:{self._namespace}:{operation}"
            return float(self._script(keys=[key], args=[limit, window]))
        with self._lock:
            now = time.monotonic()
            grants = self._grants.setdefault(operation, deque())
            while grants and grants[0] <= now - window:
                grants.popleft()
            if len(grants) >= limit:
                return grants[0] + window - now
            grants.append(now)
            return 0.0


class GlobalRateLimiter:
    """Moving-window limits per operation, shared by every process through one storage."""

    def __init__(
        self,
        storage: Storage,
        rates: Mapping[str, float],
        *,
        namespace: str = "omics",
        max_wait: float = 30.0,
        margin: float = 0.0,
    ) -> None:
        self._strategy = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {}
        for operation, per_second in rates.items():
            self._items[operation] = _per_second(per_second, f"{namespace}:{operation}")
        self._max_wait = max_wait
        #: ``margin`` > 0: count grants in windows ``margin`` seconds longer than the quota's,
        #: so calls granted at the quota still *arrive* within it after the scheduling and
        #: network delay between grant and arrival (the service counts arrivals).
        self._margin = margin
        self._padded = _PaddedWindows(storage, namespace) if margin > 0 else None

    @classmethod
    def from_settings(
        cls, settings: Settings, rates: Mapping[str, float] | None = None
    ) -> GlobalRateLimiter:
        storage: Storage
        if settings.redis_url:
            # the pool of a client with timeouts: a dead Redis fails a wait, never hangs it
            storage = RedisStorage(
                settings.redis_url,
                connection_pool=redis_client(settings).connection_pool,
                key_prefix=f"{settings.redis_key_prefix}ratelimit",
            )
        else:
            storage = MemoryStorage()
        if rates is None:  # the documented quotas, as adjusted by OMICS_RATE_LIMITS
            rates = {**HEALTHOMICS_TPS, **settings.omics_rate_overrides}
        return cls(storage, rates, margin=settings.omics_rate_margin)

    def _padded_acquire(self, operation: str) -> float:
        item = self._items.get(operation)
        if item is None or self._padded is None:
            return 0.0
        return self._padded.acquire(operation, item.amount, item.get_expiry() + self._margin)

    def try_acquire(self, operation: str) -> bool:
        if self._padded is not None:
            return self._padded_acquire(operation) == 0.0
        item = self._items.get(operation)
        return True if item is None else bool(self._strategy.hit(item))

    def wait(self, operation: str) -> None:
        """Block until ``operation`` may be called; raises :class:`RateLimitTimeout`."""
        deadline = time.monotonic() + self._max_wait
        if self._padded is not None:
            while (pause := self._padded_acquire(operation)) > 0:
                if time.monotonic() + pause > deadline:
                    raise RateLimitTimeout(f"no {operation} slot within {self._max_wait:.0f} s")
                time.sleep(min(1.0, pause) * random.uniform(1.0, 1.2))
            return
        while not self.try_acquire(operation):
            if time.monotonic() > deadline:
                raise RateLimitTimeout(f"no {operation} slot within {self._max_wait:.0f} s")
            item = self._items[operation]
            reset, _remaining = self._strategy.get_window_stats(item)
            pause = max(0.01, min(1.0, reset - time.time()))
            time.sleep(pause * random.uniform(0.5, 1.0))


def _per_second(per_second: float, namespace: str) -> RateLimitItem:
    """``limits`` counts whole calls per window: 0.5/s becomes 1 per 2 s, 10/s 10 per 1 s."""
    if per_second >= 1:
        return RateLimitItemPerSecond(int(per_second), 1, namespace=namespace)
    return RateLimitItemPerSecond(1, max(1, round(1 / per_second)), namespace=namespace)
