"""Where the limits live, decided in one place: Redis when ``REDIS_URL`` is set, else memory.

A :class:`LimitBackend` builds both kinds of limit store (rate windows, leased slots) on one
medium, so a limiter never asks which medium it is on.  :func:`backend_for` is the only switch;
the limiters' ``from_settings`` go through it.  The Redis keys are
``{REDIS_KEY_PREFIX}ratelimit:padded:{namespace}:{operation}`` and
``{REDIS_KEY_PREFIX}concurrency:{name}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import redis

from schemas.settings import Settings
from workers.limits.memory import Clock, MemoryRateWindows, MemorySlots
from workers.limits.rate import RateWindows
from workers.limits.redis_backend import RedisRateWindows, RedisSlots
from workers.limits.slots import SlotStore
from workers.redis_clients import redis_client


class LimitBackend(ABC):
    """A medium for limits; the stores one backend returns share their state."""

    @abstractmethod
    def rate_windows(self) -> RateWindows: ...

    @abstractmethod
    def slots(self, name: str) -> SlotStore: ...


class MemoryBackend(LimitBackend):
    """This process's memory: one set of windows, one slot store per name."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._windows: MemoryRateWindows | None = None
        self._slots: dict[str, MemorySlots] = {}

    def _clocked(self) -> dict[str, Any]:
        return {} if self._clock is None else {"clock": self._clock}

    def rate_windows(self) -> RateWindows:
        if self._windows is None:
            self._windows = MemoryRateWindows(**self._clocked())
        return self._windows

    def slots(self, name: str) -> SlotStore:
        return self._slots.setdefault(name, MemorySlots(**self._clocked()))


class RedisBackend(LimitBackend):
    """One Redis, every key under ``prefix``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def rate_windows(self) -> RateWindows:
        return RedisRateWindows(self.client, f"{self.prefix}ratelimit:padded")

    def slots(self, name: str) -> SlotStore:
        return RedisSlots(self.client, f"{self.prefix}concurrency:{name}")


def backend_for(settings: Settings, client: redis.Redis | None = None) -> LimitBackend:
    """Redis (``client``, or one with the configured timeouts) if ``REDIS_URL`` is set."""
    if not settings.redis_url:
        return MemoryBackend()
    return RedisBackend(client or redis_client(settings), settings.redis_key_prefix)
