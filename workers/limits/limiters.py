"""The two limiters the workers use, each on a store from :func:`~workers.limits.backend_for`.

:class:`GlobalRateLimiter` keeps HealthOmics' TPS quotas (why: :mod:`workers.limits.rate`);
:class:`ConcurrencyLimiter` keeps its concurrent-job quota (why: :mod:`workers.limits.slots`).
Neither knows whether its store is Redis or memory: ``from_settings`` asks the one switch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from schemas.settings import Settings
from workers.limits.backends import backend_for
from workers.limits.rate import HEALTHOMICS_TPS, Rate, RateLimitTimeout, RateWindows
from workers.limits.slots import SlotStore


class GlobalRateLimiter:
    """Moving-window limits per operation, shared by every limiter on the same windows."""

    def __init__(
        self,
        windows: RateWindows,
        rates: Mapping[str, float],
        *,
        namespace: str = "omics",
        max_wait: float = 30.0,
        margin: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._windows = windows
        self._namespace = namespace
        self._rates = {operation: Rate.per_second(tps) for operation, tps in rates.items()}
        self._max_wait = max_wait
        #: ``margin`` > 0: count grants in windows ``margin`` seconds longer than the quota's,
        #: so calls granted at the quota still *arrive* within it after the scheduling and
        #: network delay between grant and arrival (the service counts arrivals).
        self._margin = margin
        self._clock = clock  # the deadline of ``wait`` (injectable, as is ``sleep``, for tests)
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, rates: Mapping[str, float] | None = None
    ) -> GlobalRateLimiter:
        """On the configured backend; ``rates`` default to the quotas with OMICS_RATE_LIMITS."""
        if rates is None:
            rates = {**HEALTHOMICS_TPS, **settings.omics_rate_overrides}
        windows = backend_for(settings).rate_windows()
        return cls(windows, rates, margin=settings.omics_rate_margin)

    def _acquire(self, operation: str) -> float:
        rate = self._rates.get(operation)
        if rate is None:  # unlisted operations are not limited
            return 0.0
        key = f"{self._namespace}:{operation}"
        return self._windows.acquire(key, rate.calls, rate.seconds + self._margin)

    def try_acquire(self, operation: str) -> bool:
        """Take a slot of ``operation`` if one is free now."""
        return self._acquire(operation) == 0.0

    def wait(self, operation: str) -> None:
        """Block until ``operation`` may be called; raises :class:`RateLimitTimeout`."""
        deadline = self._clock() + self._max_wait
        while (pause := self._acquire(operation)) > 0:
            if self._clock() + pause > deadline:
                raise RateLimitTimeout(f"no {operation} slot within {self._max_wait:.0f} s")
            self._sleep(min(1.0, pause) * random.uniform(1.0, 1.2))


class ConcurrencyLimiter:
    """``limit`` leased slots, shared by every limiter on the same store."""

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
        """Slots named ``name`` on the configured backend (``client``: that Redis client)."""
        return cls(backend_for(settings, client).slots(name), limit=limit, ttl=ttl)

    def acquire(self, holder: str) -> bool:
        """Take (or renew) ``holder``'s slot; False when all ``limit`` slots are held by others."""
        return self._slots.acquire(holder, self.limit, self.ttl)

    def release(self, holder: str) -> None:
        """Give ``holder``'s slot back (a no-op if it holds none)."""
        self._slots.release(holder)

    def holders(self) -> list[str]:
        """Who holds a slot now (expired leases dropped)."""
        return self._slots.holders()
