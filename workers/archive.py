"""The archive pool: follows the log and puts it in the archive as batches.

Why batches: an object per event cost two PutObject, a Celery task and three transactions per
event (and one more of each per pipeline fact), most of the pipeline's CPU, and left the data
lake with millions of small files.  Instead the pool follows the log with a cursor, as the
metrics pool does (:mod:`eventlog.cursors`: a lease so exactly one follower writes, commit order
so a row that commits late is never skipped), and every ``ARCHIVE_BATCH_SECONDS`` — at once
when ``ARCHIVE_BATCH_EVENTS`` rows are waiting — writes the rows after its cursor as one gzip
JSON-lines object (:func:`encode_batch`) under a key named by their log range
(:func:`workers.storage.batch_key`), then moves the cursor.

One line per log row, in log order, each carrying what a replay needs
(:mod:`producers.replay_sources` reads them):

* an event as received: ``{"seq", "received_at", "event": <the EventBridge event>}``;
* a pipeline fact (an enrichment, a callback attempt, an import step, a reconciliation):
  ``{"seq", "received_at", "fact": <its log row, :func:`fact_record`>}``.

Exactly once: before the put, the range is recorded in the cursor's state (``pending``) in the
transaction that read it; the cursor moves past it, and the pending range is cleared, in one
transaction after the put succeeded.  A follower that dies in between — or a put that fails —
leaves the range pending, and whoever follows next writes exactly those rows again, under the
same key: the object is overwritten, never duplicated, and a batch never straddles two keys.

Never in the way: no event owes archive work any more (no outbox row, no Celery task), so an S3
outage holds up nothing but the cursor, which stays put while the same batch is retried every
interval (botocore retries inside each attempt).  Whether an event is archived is
``seq <= the archive cursor`` (:func:`archived_through`); there is no *Event Archived* fact.

With ``ARCHIVE_LEGACY_FLATTENED=true`` the pool also writes, before the batch, the flattened
record of each ``Run Status Change`` of the batch under the legacy per-event key, for data-lake
tables that crawl those (:func:`workers.storage.flattened_key`).  An id that cannot be part of
such a key (:class:`workers.storage.UnsafeKey`) gets a dead letter instead; the batch keeps it.

Where it runs: in every worker that consumes queue ``archive`` (``omics-events worker --pool
archive``, or the embedded default), as a worker bootstep (:class:`ArchivePoolStep`).

Archives written before 2026-12 (an object per event) stay readable by ``replay``; an
``archive`` outbox row left over from that time is finished by the ``archive`` task
(:func:`archive_event`) without writing anything, since the follower archives every row.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from celery import Celery
from sqlalchemy import Connection, func, select

from eventlog import cursors, store
from eventlog.store import StoredEvent, as_utc
from eventlog.tables import events
from schemas.flatten import FLATTEN_STYLES
from schemas.parsing import OMICS_SOURCE, canonical_json
from schemas.vocabulary import Stage
from workers.follower_loop import Followed, FollowerLoop, FollowerStep, follower_id
from workers.runtime import Runtime, runtime_of
from workers.storage import BATCH_CONTENT_TYPE, UnsafeKey, batch_key, flattened_key

log = logging.getLogger(__name__)

STAGE = Stage.ARCHIVE
QUEUE = Stage.ARCHIVE.value
CURSOR = "archive"
#: How long a follower's lease lasts without renewal (renewed every pass), at least: a worker
#: killed mid-put holds up the archive no longer than this.  Two followers writing at once
#: (a pass outlived its lease) is harmless: the range pending in the cursor names one key.
LEASE = timedelta(seconds=15)
#: … and in passes: a slow interval gets a longer lease.
LEASE_PASSES = 10
#: Full batches written in one pass at most before the loop checks whether it should stop.
DRAIN = 20


def flattened_record(payload: dict[str, Any], style: str) -> bytes:
    flat = FLATTEN_STYLES[style](payload)
    return json.dumps(flat, ensure_ascii=False, sort_keys=True, default=str).encode()


def _fact_row(event: StoredEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "event_id": event.event_id,
        "origin": event.origin,
        "source": event.source,
        "detail_type": event.detail_type,
        "event_time": as_utc(event.event_time).isoformat(),
        "resource_arn": event.resource_arn,
        "resource_id": event.resource_id,
        "status": event.status,
        "caused_by": event.caused_by,
        "payload": event.payload,
    }


def fact_record(event: StoredEvent) -> bytes:
    """A fact as its log row (all but the reception time), which a replay appends as it is."""
    return canonical_json(_fact_row(event))


def batch_line(event: StoredEvent) -> bytes:
    """One log row as a line of a batch object (module docstring)."""
    body = "fact" if event.origin == "pipeline" else "event"
    line = {
        "seq": event.seq,
        "received_at": as_utc(event.received_at).isoformat(),
        body: _fact_row(event) if body == "fact" else event.payload,
    }
    return orjson.dumps(line, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def encode_batch(rows: list[StoredEvent]) -> bytes:
    """The batch object of ``rows``: the same rows always give the same bytes (``mtime=0``)."""
    return gzip.compress(b"".join(batch_line(row) for row in rows), compresslevel=6, mtime=0)


# --- where the archive has got to ----------------------------------------------------------------


def archived_through(connection: Connection) -> int:
    """The last log position known to be in the archive (every row up to it is)."""
    cursor = cursors.read(connection, CURSOR)
    return cursor.last_seq if cursor is not None else 0


def archive_status(connection: Connection) -> dict[str, Any]:
    """Where the archive follower is, for ``omics-events status`` and the demo."""
    newest = connection.execute(select(func.max(events.c.seq))).scalar_one_or_none() or 0
    cursor = cursors.read(connection, CURSOR)
    through = cursor.last_seq if cursor is not None else 0
    archived = connection.execute(
        select(func.count()).select_from(events).where(events.c.seq <= through)
    ).scalar_one()
    return {
        "log_seq": int(newest),
        "archived_through": through,
        "archived_rows": int(archived),
        "batches": cursor.state.get("batches", 0) if cursor is not None else 0,
        "pending": cursor.state.get("pending") if cursor is not None else None,
        "owner": cursor.owner if cursor is not None else None,
    }


# --- the follower ---------------------------------------------------------------------------------


@dataclass
class ArchiveStats:
    """What this process wrote (the durable position is the cursor)."""

    batches: int = 0
    rows: int = 0
    puts: int = 0
    failures: int = 0
    last_error: str | None = None


def _read(connection: Connection, cursor: cursors.Cursor, limit: int) -> list[StoredEvent]:
    pending = cursor.state.get("pending")
    query = select(events).order_by(events.c.seq)
    if pending:  # a batch recorded but not written: exactly those rows again, for the same key
        first, last = int(pending[0]), int(pending[1])
        query = query.where(events.c.seq >= first, events.c.seq <= last)
    else:
        query = query.where(events.c.seq > cursor.last_seq).limit(limit)
    return [store.stored_event(row) for row in connection.execute(query).all()]


class ArchiveFollower:
    """Follows the log into the archive; :meth:`run_once` writes one batch."""

    def __init__(self, runtime: Runtime, *, owner: str | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.owner = owner or follower_id()
        self.stats = ArchiveStats()
        interval = self.settings.archive_batch_seconds
        self.lease = max(LEASE, timedelta(seconds=LEASE_PASSES * interval))
        self._failing = False
        #: The last pass wrote a full batch: more may be waiting right now.
        self.backlog = False

    def run_once(self) -> int:
        """One pass: read the rows after the cursor, put them as one object, move the cursor;
        returns the rows archived.  Archive trouble is logged and retried next pass (the range
        stays pending); database trouble propagates to the loop."""
        self.backlog = False
        limit = self.settings.archive_batch_events
        with self.runtime.engine.begin() as connection:
            cursor = cursors.lease(connection, CURSOR, self.owner, self.lease)
            if cursor is None:
                return 0  # another worker follows
            rows = _read(connection, cursor, limit)
            if not rows:
                return 0
            state = {**cursor.state, "pending": [rows[0].seq, rows[-1].seq]}
            if cursor.state.get("pending") != state["pending"]:
                cursors.advance(
                    connection,
                    CURSOR,
                    self.owner,
                    last_seq=cursor.last_seq,
                    last_dead_letter_id=cursor.last_dead_letter_id,
                    state=state,
                )
        try:
            unsafe = self._put(rows)
        except (ClientError, BotoCoreError, OSError) as error:
            self._failed(rows, error)
            return 0
        with self.runtime.engine.begin() as connection:
            for event, reason in unsafe:
                store.dead_letter(
                    connection,
                    kind="stage",
                    stage=STAGE,
                    event_id=event.event_id,
                    detail_type=event.detail_type,
                    reason=reason,
                    raw=b"",
                )
            cursors.advance(
                connection,
                CURSOR,
                self.owner,
                last_seq=max(rows[-1].seq, cursor.last_seq),
                last_dead_letter_id=cursor.last_dead_letter_id,
                emitted=len(rows),
                state={"batches": int(cursor.state.get("batches", 0)) + 1},
            )
        if self._failing:
            log.warning("the archive is reachable again: archiving resumed")
            self._failing = False
        _touch(self.settings.health_file)  # progress, for `omics-events health`
        self.stats.batches += 1
        self.stats.rows += len(rows)
        self.backlog = len(rows) >= limit
        return len(rows)

    def _put(self, rows: list[StoredEvent]) -> list[tuple[StoredEvent, str]]:
        """Write the legacy objects (when on), then the batch; the ids refused as keys."""
        archive = self.runtime.archive
        unsafe: list[tuple[StoredEvent, str]] = []
        if self.settings.archive_legacy_flattened:
            style = self.settings.archive_flatten_style
            for event in rows:
                if not _is_run_event(event):
                    continue
                try:
                    key = flattened_key(archive.prefix, event.event_id, event.event_time)
                except UnsafeKey as error:
                    unsafe.append((event, error.reason))
                    continue
                archive.put(key, flattened_record(event.payload, style))
                self.stats.puts += 1
        key = batch_key(archive.prefix, rows[0].seq, rows[-1].seq, as_utc(rows[0].received_at))
        archive.put(key, encode_batch(rows), content_type=BATCH_CONTENT_TYPE)
        self.stats.puts += 1
        return unsafe

    def _failed(self, rows: list[StoredEvent], error: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{type(error).__name__}: {error}"
        if not self._failing:
            log.warning(
                "archive put of log rows %d-%d failed (%s); retried every %.1f s, nothing else "
                "waits for it",
                rows[0].seq,
                rows[-1].seq,
                error,
                self.settings.archive_batch_seconds,
            )
            self._failing = True

    def close(self) -> None:
        with self.runtime.engine.begin() as connection:
            cursors.release(connection, CURSOR, self.owner)


def _touch(path: str | None) -> None:
    if path:
        try:
            Path(path).touch()
        except OSError as error:
            log.debug("cannot touch health file %s: %s", path, error)


def _is_run_event(event: StoredEvent) -> bool:
    return (
        event.origin != "pipeline"
        and event.source == OMICS_SOURCE
        and event.detail_type == "Run Status Change"
    )


# --- the loop and the worker bootstep -------------------------------------------------------------


class ArchivePoolStep(FollowerStep):
    """Runs the :class:`ArchiveFollower` every ``ARCHIVE_BATCH_SECONDS`` in a worker that
    consumes queue ``archive`` (:mod:`workers.follower_loop`)."""

    label = "archive-pool"
    queue = QUEUE

    def create(self, parent: Any) -> FollowerLoop:
        runtime = runtime_of(parent.app)
        follower = Followed(STAGE, ArchiveFollower(runtime), drain=DRAIN)
        return FollowerLoop("archive-pool", runtime.settings.archive_batch_seconds, [follower])


def install(app: Celery) -> None:
    """Make every worker of ``app`` that consumes queue ``archive`` run the archive pool."""
    app.steps["worker"].add(ArchivePoolStep)


def archive_event(runtime: Runtime, event_id: str) -> str:
    """An ``archive`` outbox row left from before batches: the follower archives every log row,
    so the work is only marked done."""
    with runtime.engine.begin() as connection:
        store.complete(connection, event_id, STAGE, "batched")
    return "batched"
