"""Old home of the concurrency limiter, kept so its importers need no change: see
:mod:`workers.limits` (the limiter, its Redis and memory backends, and the one switch)."""

from workers.limits import ConcurrencyLimiter, MemorySlots, RedisSlots, SlotStore

__all__ = ["ConcurrencyLimiter", "MemorySlots", "RedisSlots", "SlotStore"]
