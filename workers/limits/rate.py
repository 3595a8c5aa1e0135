"""Global rate limits: HealthOmics quotas are per account, so one budget is shared by every worker.

Celery's ``rate_limit`` is per worker instance (Celery's own docs say so), and two enrich
workers each allowed 10 GetRun/s make 20/s against a 10 TPS account quota.  A
:class:`~workers.limits.limiters.GlobalRateLimiter` keeps one moving window per operation in a
:class:`RateWindows` backend (:mod:`workers.limits.backends`: Redis, or memory when every worker
is in this one process), so every worker of every pool draws from the same budget.

Use :meth:`GlobalRateLimiter.wait` before each call that a quota protects::

    limiter.wait("GetRun")          # blocks until a slot is free in the account-wide window
    omics.get_run(id=run_id)

Waiting is bounded (``max_wait``); past it :class:`RateLimitTimeout` is raised, which a task
treats as transient (it is retried later, never failed).

A quota is counted where the service receives the calls, and a call arrives some time after its
slot was granted (thread scheduling, the network).  ``OMICS_RATE_MARGIN`` pads every window by
that much, so N calls granted per padded window are still at most N per second on arrival.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import NamedTuple

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


class RateWindows(ABC):
    """Moving windows, one per key: at most ``limit`` grants within any ``window`` seconds.

    What a backend must do, and all it must do (``tests/contract/test_limits.py`` holds every
    backend to it): grant and count atomically, refuse without counting, and let a grant leave
    its window ``window`` seconds after it was made.
    """

    @abstractmethod
    def acquire(self, key: str, limit: int, window: float) -> float:
        """0.0 when granted (and counted), else the seconds until the oldest grant leaves."""


class Rate(NamedTuple):
    """Whole calls per window: 0.5/s is 1 per 2 s, 10/s is 10 per 1 s."""

    calls: int
    seconds: int

    @classmethod
    def per_second(cls, per_second: float) -> Rate:
        if per_second >= 1:
            return cls(int(per_second), 1)
        return cls(1, max(1, round(1 / per_second)))
