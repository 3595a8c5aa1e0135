"""The in-memory backend of both limits, for the embedded default (no ``REDIS_URL``).

Then every worker is a thread of this one process, so a lock and a dict are the whole truth.
The clock is injectable (``time.monotonic`` by default), so the contract tests can move time
instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from workers.limits.rate import RateWindows
from workers.limits.slots import SlotStore

Clock = Callable[[], float]


class MemoryRateWindows(RateWindows):
    """Moving windows as a deque of grant times per key."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._grants: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int, window: float) -> float:
        with self._lock:
            now = self._clock()
            grants = self._grants.setdefault(key, deque())
            while grants and grants[0] <= now - window:
                grants.popleft()
            if len(grants) >= limit:
                return grants[-limit] + window - now
            grants.append(now)
            return 0.0


class MemorySlots(SlotStore):
    """Leases as a dict of holder to expiry time."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def _expire(self, now: float) -> None:
        for holder in [h for h, until in self._expiry.items() if until <= now]:
            del self._expiry[holder]

    def acquire(self, holder: str, limit: int, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
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
            self._expire(self._clock())
            return sorted(self._expiry)
