"""The metrics pool: CloudWatch metrics derived from the event log, batched, never in the way.

Why from the log: every metric is a function of a fact in ``events`` (or a row of
``dead_letters``), so a count in CloudWatch can be checked against a count in the log, a lost
worker loses nothing, and a metric can be added later and computed for the past.  The pool
follows the log with a cursor (:mod:`eventlog.cursors`): every ``METRICS_FLUSH_INTERVAL``
seconds it reads what was appended since, turns it into datapoints by the catalogue's rules
(:mod:`workers.metrics_catalogue`), aggregates them per metric, dimensions and minute into
``StatisticValues`` (one metric datum can stand for thousands of events), sends them with
``PutMetricData`` in calls of at most ``METRICS_BATCH_SIZE`` (CloudWatch's limit is 1000), and
only then moves the cursor.  At shutdown it flushes once more.

Why it can never delay the pipeline: it owes no outbox work and no other stage waits for it.
While CloudWatch is unreachable the cursor simply stays where it is and the same batch is tried
again every interval (botocore retries inside each attempt); nothing else notices.  A batch that
keeps failing for ``METRICS_DROP_AFTER`` seconds is dropped — the cursor moves past it, the drop
is counted in ``log_cursors.dropped`` and logged as a warning — so a long outage cannot grow an
unbounded backlog either.

Where it runs: in every worker that consumes queue ``metrics`` (``omics-events worker --pool
metrics``, or the embedded default), as a worker bootstep (:mod:`workers.metrics_pool`).  Several
metrics workers may run; a lease on the cursor lets exactly one of them follow the log at a
time.  The same loop runs the alerts follower (:mod:`workers.alerts`), with its own cursor, so a
CloudWatch outage does not hold up alerts and an SNS outage does not hold up metrics.

``docs/metrics.md`` is the catalogue (:data:`~workers.metrics_catalogue.CATALOGUE`); a test
keeps the two in step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, func, select

from eventlog import cursors, store
from eventlog.store import as_utc, utcnow
from eventlog.tables import dead_letters, events
from workers.aws import client_config
from workers.follower_loop import LEASE, follower_id
from workers.metrics_catalogue import (
    CATALOGUE,
    METRICS,
    Datum,
    MetricSpec,
    catalogue_table,
    datums_for_dead_letter,
    datums_for_event,
    event_fact,
    needed_for,
)
from workers.runtime import Runtime

__all__ = [
    "CATALOGUE",
    "CURSOR",
    "METRICS",
    "QUEUE",
    "Aggregator",
    "Batch",
    "Datum",
    "EmitterStats",
    "MetricSpec",
    "MetricsEmitter",
    "catalogue_table",
    "datums_for_dead_letter",
    "datums_for_event",
    "metrics_status",
    "read_batch",
]

log = logging.getLogger(__name__)

QUEUE = "metrics"
CURSOR = "cloudwatch"
#: Events and dead letters read per pass at most (a backlog takes several passes).
READ_LIMIT = 5000
#: CloudWatch refuses datapoints older than two weeks.
MAX_AGE = timedelta(days=14) - timedelta(hours=1)


@dataclass
class _Stats:
    samples: float = 0.0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")


class Aggregator:
    """Datapoints summed per (metric, dimensions, minute) into CloudWatch ``StatisticValues``.

    A counter of 1,000 events becomes one datum with ``SampleCount=1000, Sum=1000``; a duration
    keeps its sum, minimum and maximum.  ``Sum`` and ``SampleCount`` in CloudWatch are then
    exactly what the individual datapoints would have given.
    """

    def __init__(self) -> None:
        self._stats: dict[tuple[str, tuple[tuple[str, str], ...], datetime], _Stats] = {}
        self.samples = 0

    def add(self, datum: Datum) -> None:
        minute = datum.timestamp.replace(second=0, microsecond=0)
        stats = self._stats.setdefault((datum.name, datum.dimensions, minute), _Stats())
        if METRICS[datum.name].unit == "Count":
            # a count of n is n samples of 1 (SampleCount = Sum = n)
            stats.samples += datum.value
            stats.total += datum.value
            stats.low = min(stats.low, 1.0)
            stats.high = max(stats.high, 1.0)
        else:
            stats.samples += 1
            stats.total += datum.value
            stats.low = min(stats.low, datum.value)
            stats.high = max(stats.high, datum.value)
        self.samples += 1

    def metric_data(self) -> list[dict[str, Any]]:
        data = []
        for (name, dims, minute), stats in sorted(self._stats.items(), key=_order):
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    "Timestamp": minute,
                    "StatisticValues": {
                        "SampleCount": stats.samples,
                        "Sum": stats.total,
                        "Minimum": stats.low,
                        "Maximum": stats.high,
                    },
                    "Unit": METRICS[name].unit,
                }
            )
        return data


def _order(item: tuple[tuple[str, tuple[tuple[str, str], ...], datetime], _Stats]) -> Any:
    (name, dims, minute), _ = item
    return (minute, name, dims)


# --- reading the log --------------------------------------------------------------------------


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _cause_times(connection: Connection, event_ids: set[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for chunk in _chunks(sorted(event_ids)):
        for event_id, when in connection.execute(
            select(events.c.event_id, events.c.event_time).where(events.c.event_id.in_(chunk))
        ):
            found[event_id] = as_utc(when)
    return found


def _run_starts(connection: Connection, run_keys: set[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for chunk in _chunks(sorted(run_keys)):
        for key, first in connection.execute(
            select(events.c.resource_id, func.min(events.c.event_time))
            .where(
                events.c.origin == "aws",
                events.c.detail_type == "Run Status Change",
                events.c.resource_id.in_(chunk),
            )
            .group_by(events.c.resource_id)
        ):
            found[key] = as_utc(first)
    return found


@dataclass
class Batch:
    """What one pass read, as metric data, and how far it reaches."""

    from_seq: int
    to_seq: int
    from_dead_letter: int
    to_dead_letter: int
    data: list[dict[str, Any]]
    samples: int
    full: bool
    sent_chunks: int = 0
    first_failure: float | None = None
    attempts: int = 0


def read_batch(connection: Connection, cursor: cursors.Cursor, *, limit: int = READ_LIMIT) -> Batch:
    """The log after ``cursor``, turned into aggregated metric data."""
    rows = connection.execute(
        select(events).where(events.c.seq > cursor.last_seq).order_by(events.c.seq).limit(limit)
    ).all()
    stored = [store.stored_event(row) for row in rows]
    letters = connection.execute(
        select(dead_letters.c.id, dead_letters.c.kind, dead_letters.c.created_at)
        .where(dead_letters.c.id > cursor.last_dead_letter_id)
        .order_by(dead_letters.c.id)
        .limit(limit)
    ).all()
    facts = [(e, event_fact(e)) for e in stored]  # what the catalogue's readers need looked up
    causes = _cause_times(
        connection,
        {e.caused_by for e, f in facts if e.caused_by and needed_for(f, "cause_time")},
    )
    starts = _run_starts(
        connection,
        {e.resource_id for e, f in facts if e.resource_id and needed_for(f, "run_started")},
    )
    aggregator = Aggregator()
    oldest = utcnow() - MAX_AGE
    for event in stored:
        for datum in datums_for_event(
            event,
            cause_time=causes.get(event.caused_by or ""),
            run_started=starts.get(event.resource_id or ""),
        ):
            if datum.timestamp >= oldest:
                aggregator.add(datum)
    for letter in letters:
        for datum in datums_for_dead_letter(letter.kind, as_utc(letter.created_at)):
            if datum.timestamp >= oldest:
                aggregator.add(datum)
    return Batch(
        from_seq=cursor.last_seq,
        to_seq=stored[-1].seq if stored else cursor.last_seq,
        from_dead_letter=cursor.last_dead_letter_id,
        to_dead_letter=int(letters[-1].id) if letters else cursor.last_dead_letter_id,
        data=aggregator.metric_data(),
        samples=aggregator.samples,
        full=len(rows) >= limit or len(letters) >= limit,
    )


# --- the emitter ------------------------------------------------------------------------------


@dataclass
class EmitterStats:
    """What this process sent (the durable totals are in ``log_cursors``)."""

    calls: int = 0
    metric_data: int = 0
    samples: int = 0
    failures: int = 0
    dropped: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class MetricsEmitter:
    """Follows the log into CloudWatch; :meth:`run_once` is one pass."""

    def __init__(self, runtime: Runtime, *, owner: str | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.owner = owner or follower_id()
        self.stats = EmitterStats()
        self._batch: Batch | None = None
        self._client: Any = None
        self._failing = False
        #: The last pass sent a full batch: more may be waiting right now.
        self.backlog = False

    @property
    def client(self) -> Any:
        """A CloudWatch client with short timeouts: a pass must not hang on a dead endpoint."""
        if self._client is None:
            session = boto3.session.Session(region_name=self.settings.aws_region)
            self._client = session.client(
                "cloudwatch",
                config=client_config(
                    self.settings,
                    "cloudwatch",
                    connect_timeout=2,
                    read_timeout=10,
                    retries={"mode": self.settings.aws_retry_mode, "max_attempts": 3},
                ),
            )
        return self._client

    def run_once(self) -> int:
        """One pass: read what is new, send it, move the cursor; returns samples sent.

        Never raises for CloudWatch trouble (the batch is kept and tried again next pass, or
        dropped after ``METRICS_DROP_AFTER``); database trouble propagates to the loop, which
        logs it and tries again next interval.
        """
        self.backlog = False
        if not self.settings.metrics_enabled:
            return 0
        with self.runtime.engine.begin() as connection:
            cursor = cursors.lease(connection, CURSOR, self.owner, LEASE)
            if cursor is None:
                self._batch = None  # someone else follows; anything we read is theirs to send
                return 0
            batch = self._batch
            if batch is None or batch.from_seq != cursor.last_seq:
                batch = self._batch = read_batch(connection, cursor)
        if batch.to_seq == batch.from_seq and batch.to_dead_letter == batch.from_dead_letter:
            self._batch = None
            return 0
        try:
            self._send(batch)
        except (ClientError, BotoCoreError) as error:
            return self._failed(batch, error)
        with self.runtime.engine.begin() as connection:
            cursors.advance(
                connection,
                CURSOR,
                self.owner,
                last_seq=batch.to_seq,
                last_dead_letter_id=batch.to_dead_letter,
                emitted=batch.samples,
            )
        self._batch = None
        self.backlog = batch.full
        if self._failing:
            log.warning("CloudWatch reachable again: metrics resumed")
            self._failing = False
        with self.stats.lock:
            self.stats.samples += batch.samples
        return batch.samples

    def _send(self, batch: Batch) -> None:
        size = self.settings.metrics_batch_size
        chunks = [batch.data[i : i + size] for i in range(0, len(batch.data), size)]
        while batch.sent_chunks < len(chunks):
            chunk = chunks[batch.sent_chunks]
            self.client.put_metric_data(Namespace=self.settings.metrics_namespace, MetricData=chunk)
            batch.sent_chunks += 1  # a chunk sent is never sent again, even if a later one fails
            with self.stats.lock:
                self.stats.calls += 1
                self.stats.metric_data += len(chunk)

    def _failed(self, batch: Batch, error: Exception) -> int:
        now = time.monotonic()
        batch.attempts += 1
        if batch.first_failure is None:
            batch.first_failure = now
        with self.stats.lock:
            self.stats.failures += 1
            self.stats.last_error = f"{type(error).__name__}: {error}"
        if not self._failing:
            log.warning(
                "PutMetricData failed (%s); the batch is kept and retried every %.0f s for %.0f s",
                error,
                self.settings.metrics_flush_interval,
                self.settings.metrics_drop_after,
            )
            self._failing = True
        if now - batch.first_failure < self.settings.metrics_drop_after:
            return 0
        unsent = sum(
            int(d["StatisticValues"]["SampleCount"])
            for d in batch.data[batch.sent_chunks * self.settings.metrics_batch_size :]
        )
        with self.runtime.engine.begin() as connection:
            cursors.advance(
                connection,
                CURSOR,
                self.owner,
                last_seq=batch.to_seq,
                last_dead_letter_id=batch.to_dead_letter,
                dropped=unsent,
            )
        with self.stats.lock:
            self.stats.dropped += unsent
        log.warning(
            "dropped %d metric samples (log seq %d-%d) after %d attempts over %.0f s: %s",
            unsent,
            batch.from_seq + 1,
            batch.to_seq,
            batch.attempts,
            now - batch.first_failure,
            error,
        )
        self._batch = None
        return 0

    def close(self) -> None:
        with self.runtime.engine.begin() as connection:
            cursors.release(connection, CURSOR, self.owner)


def metrics_status(connection: Connection) -> dict[str, Any]:
    """Where the metrics and alerts followers are, for ``omics-events`` and the demo."""
    newest = connection.execute(select(func.max(events.c.seq))).scalar_one_or_none() or 0
    status: dict[str, Any] = {"log_seq": int(newest)}
    for name in (CURSOR, "alerts"):
        cursor = cursors.read(connection, name)
        status[name] = (
            {
                "last_seq": cursor.last_seq,
                "emitted": cursor.emitted,
                "dropped": cursor.dropped,
                "owner": cursor.owner,
            }
            if cursor
            else None
        )
    return status
