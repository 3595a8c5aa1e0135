"""Old home of the global rate limiter, kept so its importers need no change: see
:mod:`workers.limits` (the limiter, its Redis and memory backends, and the one switch)."""

from workers.limits import HEALTHOMICS_TPS, GlobalRateLimiter, RateLimitTimeout

__all__ = ["HEALTHOMICS_TPS", "GlobalRateLimiter", "RateLimitTimeout"]
