"""Fault knobs: the ways real AWS misbehaves that our workers must survive.

Why knobs rather than fixed chaos: each worker test wants exactly one kind of trouble (only
duplicates, only throttling, …) and a clean run otherwise, and a long-running demo wants to turn
trouble on and off while it runs.  So every knob is off by default, can be given at construction,
and can be changed at runtime through :meth:`FaultSettings.update` (thread-safe: the API server,
the ticker and the test thread all read them).

Knobs:

* ``duplicate_rate``: an event is delivered twice (same EventBridge ``id``), as SQS standard
  queues do;
* ``reorder_rate``: an event is held back and delivered after newer ones;
* ``drop_rate``: an event is never delivered (EventBridge is best effort), and the drop recorded;
  ``drop_types`` narrows it to those ``detail-type`` values (empty: every type);
* ``throttle``: per-operation TPS limits; a call past the limit gets ``ThrottlingException`` (429).
  ``True`` means the documented defaults (:data:`~.catalog.DEFAULT_TPS_LIMITS`);
* ``import_quota``: concurrent active read-set import jobs; StartReadSetImportJob past it gets
  ``ServiceQuotaExceededException`` (402).  Always on (it is a real quota), default 5;
* ``transient_source_failure_rate`` / ``permanent_source_failure_rate``: import sources that fail
  with a message that says "retry" / one that will fail again on every retry;
* ``api_error_rate``: any API call fails with ``InternalServerException`` (500);
* ``api_latency``: seconds every API call waits before it is answered (a remote service's round
  trip), so a bench can compare systems against a HealthOmics that is not instant.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from simulator.catalog import DEFAULT_IMPORT_QUOTA, DEFAULT_TPS_LIMITS

_RATES = (
    "duplicate_rate",
    "reorder_rate",
    "drop_rate",
    "transient_source_failure_rate",
    "permanent_source_failure_rate",
    "api_error_rate",
)


@dataclass(frozen=True)
class Faults:
    """An immutable snapshot of every fault knob."""

    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    drop_rate: float = 0.0
    drop_types: frozenset[str] = frozenset()
    #: ``None``/``False``: no throttling; ``True``: documented defaults; a mapping: operation ->
    #: TPS (operations not named are not throttled).
    throttle: bool | dict[str, float] | None = None
    import_quota: int = DEFAULT_IMPORT_QUOTA
    transient_source_failure_rate: float = 0.0
    permanent_source_failure_rate: float = 0.0
    api_error_rate: float = 0.0
    api_latency: float = 0.0

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value!r}")
        if self.transient_source_failure_rate + self.permanent_source_failure_rate > 1.0:
            raise ValueError("source failure rates add up to more than 1")
        if self.import_quota < 0:
            raise ValueError("import_quota must be >= 0")
        if self.api_latency < 0:
            raise ValueError(f"api_latency must be >= 0, got {self.api_latency!r}")
        if isinstance(self.throttle, dict):
            for op, tps in self.throttle.items():
                if tps <= 0:
                    raise ValueError(f"TPS limit for {op} must be > 0")

    def tps_limits(self) -> dict[str, float]:
        """The effective per-operation TPS limits (empty when throttling is off)."""
        if self.throttle is True:
            return dict(DEFAULT_TPS_LIMITS)
        if isinstance(self.throttle, dict):
            return dict(self.throttle)
        return {}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultSettings:
    """The live, thread-safe holder of the current :class:`Faults`."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()
        self._lock = threading.Lock()

    def get(self) -> Faults:
        with self._lock:
            return self._faults

    def update(self, **changes: Any) -> Faults:
        """Change some knobs; unknown names raise ``TypeError`` (from ``dataclasses.replace``)."""
        with self._lock:
            self._faults = replace(self._faults, **changes)
            return self._faults


@dataclass
class _Window:
    stamps: deque[float] = field(default_factory=deque)


class RateLimiter:
    """Per-operation sliding-window limiter over *accepted* calls (monotonic time).

    A sliding window rather than a token bucket so that "calls accepted in any one-second window"
    (what :meth:`RequestLog.max_calls_per_second` measures) can never exceed the limit: a test can
    then tell a worker that respects the quota (no 429s) from one that leans on retries.
    For a limit below 1 TPS the window widens to ``1 / tps`` seconds with room for one call.
    """

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def allow(self, operation: str, tps: float | None, now: float) -> bool:
        if not tps:
            return True
        if tps >= 1:
            span, capacity = 1.0, int(tps)
        else:
            span, capacity = 1.0 / tps, 1
        with self._lock:
            window = self._windows.setdefault(operation, _Window())
            while window.stamps and window.stamps[0] <= now - span:
                window.stamps.popleft()
            if len(window.stamps) >= capacity:
                return False
            window.stamps.append(now)
            return True
