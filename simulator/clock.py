"""Time for the simulator: an injectable clock and the two timestamp formats HealthOmics uses.

Why a clock object instead of ``time.time()``: every status transition is scheduled at an
absolute time, and a test must be able to say "ten simulated minutes pass" and get exactly the
same events every time, without sleeping.  :class:`ManualClock` only moves when told to;
:class:`SystemClock` is the wall clock for the ``simulate`` command and real-time demos.

Two wire formats matter:

* EventBridge ``time`` is ISO-8601 UTC with **whole seconds** and a ``Z`` suffix
  (``2026-01-22T22:16:09Z``), so two transitions can share one timestamp (reference §1.1);
* API timestamps (``creationTime`` …) are the model's ``iso8601`` timestamp format, which botocore
  parses into timezone-aware ``datetime`` objects; we send milliseconds, like the real service.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

#: A fixed, realistic start for manual clocks: the first event of a real 2026 trace (NGS360).
DEFAULT_EPOCH = datetime(2026, 1, 22, 22, 16, 9, tzinfo=UTC).timestamp()


class Clock(Protocol):
    """Anything that tells the simulated time as POSIX seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only through :meth:`advance` or :meth:`set` (thread-safe)."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if isinstance(start, datetime):
            start = start.timestamp()
        self._now = float(DEFAULT_EPOCH if start is None else start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> float:
        with self._lock:
            self._now = max(self._now, float(when))
            return self._now


def event_time(when: float) -> str:
    """EventBridge ``time``: UTC, whole seconds, ``Z``."""
    return datetime.fromtimestamp(int(when), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_time(when: float | None) -> str | None:
    """An API timestamp in the model's ``iso8601`` format, with milliseconds."""
    if when is None:
        return None
    stamp = datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_time(value: object) -> float | None:
    """Read a timestamp sent by botocore (ISO-8601 string or epoch number) as POSIX seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
