"""The request log: every HealthOmics API call the simulator answered.

Why: the workers' promises about HealthOmics quotas ("never more than 10 GetRun per second,
never more than 5 concurrent imports, no StartReadSetImportJob twice for one retry") can only be
checked from the service's side.  Each record has the operation name, a monotonic timestamp, the
HTTP status and the error code, so a test computes the peak rate per operation without timing
anything itself.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One API call."""

    operation: str
    #: ``time.monotonic()`` when the request arrived.
    at: float
    status: int
    error_code: str | None = None
    #: The identifying parameters (run id, job id, …), for debugging and assertions.
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class RequestLog:
    """Thread-safe, append-only list of :class:`RequestRecord`."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self._records.append(entry)

    def records(
        self, operation: str | None = None, *, status: int | None = None
    ) -> list[RequestRecord]:
        with self._lock:
            items = list(self._records)
        return [
            r
            for r in items
            if (operation is None or r.operation == operation)
            and (status is None or r.status == status)
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def count(self, operation: str | None = None, *, status: int | None = None) -> int:
        return len(self.records(operation, status=status))

    def counts(self) -> dict[str, Counter[int]]:
        """``{operation: Counter({status: n})}``."""
        out: dict[str, Counter[int]] = {}
        for r in self.records():
            out.setdefault(r.operation, Counter())[r.status] += 1
        return out

    def error_codes(self, operation: str | None = None) -> Counter[str]:
        return Counter(r.error_code for r in self.records(operation) if r.error_code)

    def max_calls_per_second(
        self,
        operation: str | None = None,
        *,
        accepted_only: bool = False,
        window: float = 1.0,
    ) -> int:
        """The most calls that arrived within any ``window`` seconds (sliding), for one operation.

        ``accepted_only`` counts only answered (2xx) calls; otherwise throttled ones count too, so
        the figure is what the client *attempted*.
        """
        stamps = sorted(r.at for r in self.records(operation) if (r.ok or not accepted_only))
        return _max_in_window(stamps, window)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def _max_in_window(stamps: Iterable[float], window: float) -> int:
    ordered = list(stamps)
    best = 0
    start = 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - window:
            start += 1
        best = max(best, end - start + 1)
    return best
