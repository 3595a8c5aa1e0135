"""Limits shared by every worker: HealthOmics' call rates and its concurrent-job quota.

Modules:

* :mod:`~workers.limits.rate` — the quotas, :class:`RateWindows` (the rate store's interface);
* :mod:`~workers.limits.slots` — :class:`SlotStore` (the leased-slot store's interface);
* :mod:`~workers.limits.memory` — both stores in this process's memory (the embedded default);
* :mod:`~workers.limits.redis_backend` — both stores in Redis, atomic Lua on Redis' clock;
* :mod:`~workers.limits.backends` — :func:`backend_for`, the one Redis-or-memory switch;
* :mod:`~workers.limits.limiters` — :class:`GlobalRateLimiter` and :class:`ConcurrencyLimiter`.

Every backend is held to one behaviour by ``tests/contract/test_limits.py``.
"""

from workers.limits.backends import LimitBackend, MemoryBackend, RedisBackend, backend_for
from workers.limits.limiters import ConcurrencyLimiter, GlobalRateLimiter
from workers.limits.memory import MemoryRateWindows, MemorySlots
from workers.limits.rate import HEALTHOMICS_TPS, Rate, RateLimitTimeout, RateWindows
from workers.limits.redis_backend import RedisRateWindows, RedisSlots
from workers.limits.slots import SlotStore

__all__ = [
    "HEALTHOMICS_TPS",
    "ConcurrencyLimiter",
    "GlobalRateLimiter",
    "LimitBackend",
    "MemoryBackend",
    "MemoryRateWindows",
    "MemorySlots",
    "Rate",
    "RateLimitTimeout",
    "RateWindows",
    "RedisBackend",
    "RedisRateWindows",
    "RedisSlots",
    "SlotStore",
    "backend_for",
]
