"""Appending to the log, owing work in the outbox, and dead-lettering — the only writers.

Everything here takes an open :class:`sqlalchemy.Connection` inside the caller's transaction, so
that "append the event and its work" or "record the outcome and finish the work" commit together
or not at all.  Nothing here knows Celery: publishing is the caller's business, after commit.

Dead letters are written by :mod:`eventlog.dead_lettering` (its names are re-exported here).

Idempotence is the database's, not ours: ``events.event_id`` is unique and appends use
``INSERT … ON CONFLICT DO NOTHING RETURNING`` on both PostgreSQL and SQLite, which reports which
rows were new without a read-then-write race.

Log order: on PostgreSQL, ``seq`` comes from a sequence, and two transactions may commit their
numbers out of order — a reader following the log would skip the later-committing, lower
number.  Appends therefore take a transaction-scoped advisory lock first, so ``seq`` order is
commit order (the eventsourcing library does the same with a table lock).  SQLite serialises
writers anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Connection, and_, func, or_, select, update

from eventlog import dialect, projection_set
from eventlog.dead_lettering import MAX_REASON_CHARS as MAX_REASON_CHARS
from eventlog.dead_lettering import dead_letter as dead_letter
from eventlog.dead_lettering import printable as printable
from eventlog.dead_lettering import reject as reject

# rows as values live in eventlog/entries.py (no SQLAlchemy there, for replay workers); their
# names are the store's too ("X as X": re-exported, PEP 484)
from eventlog.entries import PIPELINE_NAMESPACE as PIPELINE_NAMESPACE
from eventlog.entries import PIPELINE_SOURCE as PIPELINE_SOURCE
from eventlog.entries import LogEntry as LogEntry
from eventlog.entries import StoredEvent as StoredEvent
from eventlog.entries import as_utc as as_utc
from eventlog.entries import copy_line
from eventlog.entries import derived_id as derived_id
from eventlog.entries import stored_event as stored_event
from eventlog.entries import utcnow as utcnow
from eventlog.tables import events, outbox

#: How long unpublished outbox work waits before the sweeper assumes its publisher died.
UNPUBLISHED_GRACE = timedelta(seconds=10)


@dataclass(frozen=True)
class OutboxItem:
    """A piece of work owed: run ``stage`` for ``event_id``."""

    id: int
    event_id: str
    stage: str
    publish_count: int
    #: when it was last published; None while owed (never published, or deferred)
    published_at: datetime | None = None


def append(
    connection: Connection,
    entry: LogEntry,
    stages: Sequence[str] = (),
    *,
    not_before: datetime | None = None,
) -> bool:
    """Append one event and the work it owes; True if it was new, False for a duplicate."""
    return bool(append_many(connection, [(entry, stages)], not_before=not_before))


def append_many(
    connection: Connection,
    entries: Iterable[tuple[LogEntry, Sequence[str]]],
    *,
    not_before: datetime | None = None,
    fold: bool = True,
) -> set[str]:
    """Append a batch in one statement; returns the ids that were new.

    Work is written to the outbox only for new events: a duplicate delivery owes nothing.
    ``fold=False`` leaves the projections behind the log: only for a bulk load that ends with
    a rebuild (``omics-events replay``, eventlog/rebuild.py).
    """
    batch: dict[str, tuple[LogEntry, Sequence[str]]] = {}
    for entry, stages in entries:
        batch.setdefault(entry.event_id, (entry, stages))
    if not batch:
        return set()
    now = utcnow()
    dialect.lock_appends(connection)
    rows = _log_rows(batch.values(), now)
    new_seqs = _insert_new(connection, rows)
    new_ids = set(new_seqs)
    # projections move with the log, in this transaction, in log order: the same folds as the
    # rebuild (eventlog/projection_set.py)
    if fold:
        fresh = [
            StoredEvent(seq=new_seqs[row["event_id"]], **row)
            for row in rows
            if row["event_id"] in new_ids
        ]
        projection_set.apply_all(connection, sorted(fresh, key=lambda event: event.seq))
    work = [
        {
            "event_id": event_id,
            "stage": stage,
            "created_at": now,
            "not_before": not_before or now,
            "publish_count": 0,
        }
        for event_id in new_ids
        for stage in batch[event_id][1]
    ]
    if work:
        owe(connection, work)
    return new_ids


def _log_rows(
    entries: Iterable[tuple[LogEntry, Sequence[str]]], now: datetime
) -> list[dict[str, Any]]:
    """The ``events`` rows of a batch, all received ``now`` (their ``seq`` is the database's)."""
    return [
        {
            "event_id": entry.event_id,
            "origin": entry.origin,
            "source": entry.source,
            "detail_type": entry.detail_type,
            "resource_arn": entry.resource_arn,
            "resource_id": entry.resource_id,
            "status": entry.status,
            "event_time": as_utc(entry.event_time),
            "received_at": now,
            "caused_by": entry.caused_by,
            "payload": entry.payload,
        }
        for entry, _ in entries
    ]


def _insert_new(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert ``rows`` into ``events``, duplicates skipped; returns ``seq`` by new event id."""
    if dialect.copies(connection) and len(rows) >= BULK_FROM:
        return _append_copied(connection, rows)
    # executemany (SQLAlchemy's insertmanyvalues batches it): one cached statement, where
    # a multi-row VALUES would be compiled afresh for every batch (2 to 10 times slower)
    statement = (
        dialect.insert(connection, events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(events.c.event_id, events.c.seq)
        .execution_options(insertmanyvalues_page_size=100)  # psycopg parses big ones slowly
    )
    return {event_id: seq for event_id, seq in connection.execute(statement, rows)}


#: Rows from which a PostgreSQL append goes through ``COPY`` (:func:`_append_copied`).
BULK_FROM = 50
#: The columns an append writes, in ``COPY`` order (``seq`` is the log's to give).
_APPENDED = (
    "event_id",
    "origin",
    "source",
    "detail_type",
    "resource_arn",
    "resource_id",
    "status",
    "event_time",
    "received_at",
    "caused_by",
    "payload",
)
_COLUMNS = ", ".join(_APPENDED)
#: A per-session staging table shaped like ``events`` (``LIKE``: it follows the migrations);
#: its ``seq`` holds the row's place in the batch, and it empties itself at every commit.
_STAGE_SQL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS events_incoming (LIKE events) ON COMMIT DELETE ROWS;"
    " DELETE FROM events_incoming"
)
_COPY_STAGED_SQL = f"COPY events_incoming (seq, {_COLUMNS}) FROM STDIN"
_COPY_SQL = f"COPY events ({_COLUMNS}) FROM STDIN"
_MOVE_SQL = (
    f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_incoming ORDER BY seq"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id, seq"
)


def _append_copied(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Append a big batch on PostgreSQL: ``COPY`` it into a temporary staging table, then one
    ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` — the same rows, order (``seq`` in
    batch order), idempotence and answer as the executemany, without its client cost (≈ 46 µs
    a row building and sending paged multi-row INSERTs, against a few for a ``COPY`` row) or
    one statement execution per page on the server.  Runs in the caller's transaction, under
    its append lock.  Returns event id -> seq of the rows that were new."""
    received = {row["received_at"] for row in rows}
    stamp = received.pop().isoformat() if len(received) == 1 else None
    text = "".join(
        copy_line(
            LogEntry(
                **{name: row[name] for name in _APPENDED if name != "received_at"},
            ),
            json.dumps(row["payload"], ensure_ascii=False),
            stamp or row["received_at"].isoformat(),
        )
        for row in rows
    )
    return _move_staged(connection, text.encode("utf-8"))


def _move_staged(connection: Connection, data: bytes) -> dict[str, int]:
    """COPY text of rows (:func:`copy_line`) through the staging table into ``events``."""
    with dialect.driver(connection).cursor() as cursor:
        cursor.execute(_STAGE_SQL)
        with cursor.copy(_COPY_STAGED_SQL) as copy:
            for place, line in enumerate(data.splitlines(keepends=True), 1):
                copy.write(b"%d\t%s" % (place, line))
        cursor.execute(_MOVE_SQL)
        return dict(cursor.fetchall())


def append_copy(connection: Connection, data: bytes, event_ids: Sequence[str]) -> set[str]:
    """Append rows given as ``COPY`` text (:func:`copy_line`, one per event id, ids distinct);
    returns the ids that were new.  PostgreSQL only: the bulk door of a replay.

    Why not :func:`append_many`: a replay's rows are formatted in worker processes
    (producers/replay_prepare.py), and the rows a replay appends are almost always all new (it
    checked the log before fetching them).  So they are copied straight into ``events`` —
    PostgreSQL's cheapest way in, ≈ 25 % less of its time than the staging table — inside a
    savepoint; only if one of them is already there (a producer appended it meanwhile) is the
    batch copied again through the staging table, which skips what the log has.  Owes no work
    and folds nothing: the replay rebuilds when it ends.  Takes the append lock.
    """
    if not event_ids:
        return set()
    dialect.lock_appends(connection)
    driver = dialect.driver(connection)
    try:
        # transaction() inside SQLAlchemy's transaction: a savepoint
        with driver.transaction(), driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
            copy.write(data)
        return set(event_ids)
    except psycopg.errors.UniqueViolation:
        return set(_move_staged(connection, data))


def owe(connection: Connection, work: list[dict[str, Any]]) -> None:
    """Insert outbox rows, ignoring ones already owed."""
    connection.execute(
        dialect.insert(connection, outbox)
        .values(work)
        .on_conflict_do_nothing(index_elements=["event_id", "stage"])
    )


def schedule(
    connection: Connection, event_id: str, stage: str, *, not_before: datetime | None = None
) -> None:
    """Owe ``stage`` for an event already in the log (a next stage, or a delayed retry)."""
    now = utcnow()
    owe(
        connection,
        [
            {
                "event_id": event_id,
                "stage": stage,
                "created_at": now,
                "not_before": not_before or now,
                "publish_count": 0,
            }
        ],
    )


def get(connection: Connection, event_id: str) -> StoredEvent | None:
    row = connection.execute(select(events).where(events.c.event_id == event_id)).one_or_none()
    return stored_event(row) if row is not None else None


def get_for_stage(
    connection: Connection, event_id: str, stage: str
) -> tuple[StoredEvent | None, bool]:
    """(the event, whether ``stage`` is done for it) in one round trip: what every stage task
    reads first (:func:`get` and :func:`is_done` were two)."""
    row = connection.execute(
        select(events, outbox.c.done_at.label("stage_done_at"))
        .outerjoin(outbox, and_(outbox.c.event_id == events.c.event_id, outbox.c.stage == stage))
        .where(events.c.event_id == event_id)
    ).one_or_none()
    if row is None:
        return None, False
    return stored_event(row), row.stage_done_at is not None


def read(connection: Connection, *, after_seq: int = 0, limit: int = 1000) -> list[StoredEvent]:
    """Events in log order, for folds and inspection."""
    rows = connection.execute(
        select(events).where(events.c.seq > after_seq).order_by(events.c.seq).limit(limit)
    )
    return [stored_event(row) for row in rows]


# --- outbox ----------------------------------------------------------------------------------


def defer(connection: Connection, event_id: str, stage: str, not_before: datetime) -> None:
    """Put unfinished work back to wait until ``not_before``; the sweeper publishes it then.

    This is how a stage waits longer than a Celery countdown may (callback backoff, quota
    waits): the task returns, its message is acknowledged, and the wait lives in the database.
    """
    connection.execute(
        update(outbox)
        .where(outbox.c.event_id == event_id, outbox.c.stage == stage, outbox.c.done_at.is_(None))
        .values(not_before=as_utc(not_before), published_at=None, outcome=None)
    )


def is_done(connection: Connection, event_id: str, stage: str) -> bool:
    done = connection.execute(
        select(outbox.c.done_at).where(outbox.c.event_id == event_id, outbox.c.stage == stage)
    ).scalar_one_or_none()
    return done is not None


def complete(connection: Connection, event_id: str, stage: str, outcome: str) -> bool:
    """Mark work finished; True only for the call that finished it."""
    result = connection.execute(
        update(outbox)
        .where(outbox.c.event_id == event_id, outbox.c.stage == stage, outbox.c.done_at.is_(None))
        .values(done_at=utcnow(), outcome=outcome[:64])
    )
    return result.rowcount == 1


def mark_published(connection: Connection, ids: Sequence[int]) -> None:
    if ids:
        connection.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)))
            .values(published_at=utcnow(), publish_count=outbox.c.publish_count + 1)
        )


def pending_for(
    connection: Connection, event_ids: Sequence[str], *, unpublished_only: bool = False
) -> list[OutboxItem]:
    """Unfinished, due work of the given events (what a producer or a stage just committed)."""
    if not event_ids:
        return []
    query = (
        select(outbox.c.id, outbox.c.event_id, outbox.c.stage, outbox.c.publish_count)
        .where(outbox.c.event_id.in_(list(event_ids)), outbox.c.done_at.is_(None))
        .where(outbox.c.not_before <= utcnow())
        .order_by(outbox.c.id)
    )
    if unpublished_only:
        query = query.where(outbox.c.published_at.is_(None))
    return [OutboxItem(*row) for row in connection.execute(query)]


def claim_due(
    connection: Connection,
    *,
    redeliver_after: timedelta,
    limit: int = 500,
    after_id: int = 0,
) -> list[OutboxItem]:
    """Unfinished, due work that may need publishing, in id order from ``after_id``.

    Due means: ``not_before`` has passed, and either it was never published (and its producer
    had the grace period to do so), or it was deferred and is due again (made due by a stage
    that publishes it itself, marked by an ``outcome`` on unfinished work — a callback woken by
    the status before it — only after that grace period too), or it was published
    longer ago than ``redeliver_after`` (``published_at`` set: whether its message is really
    gone is the sweeper's question to the broker, workers/outbox.py).  On PostgreSQL concurrent
    sweepers skip each other's rows (``FOR UPDATE SKIP LOCKED``).
    """
    now = utcnow()
    grace = min(UNPUBLISHED_GRACE, redeliver_after)
    query = (
        select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.stage,
            outbox.c.publish_count,
            outbox.c.published_at,
        )
        .where(outbox.c.done_at.is_(None), outbox.c.not_before <= now, outbox.c.id > after_id)
        .where(
            or_(
                and_(outbox.c.published_at.is_(None), outbox.c.created_at <= now - grace),
                and_(
                    outbox.c.published_at.is_(None),
                    outbox.c.not_before > outbox.c.created_at,
                    # marked (a callback woken by its predecessor): its waker publishes it
                    or_(outbox.c.outcome.is_(None), outbox.c.not_before <= now - grace),
                ),
                outbox.c.published_at <= now - redeliver_after,
            )
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [
        OutboxItem(item_id, event_id, stage, count, as_utc(published) if published else None)
        for item_id, event_id, stage, count, published in connection.execute(
            dialect.skip_locked(connection, query)
        )
    ]


def has_overdue(connection: Connection, *, redeliver_after: timedelta) -> bool:
    """Whether any unfinished work was published longer ago than ``redeliver_after``: only then
    is the broker worth asking what it still holds."""
    now = utcnow()
    query = (
        select(outbox.c.id)
        .where(outbox.c.done_at.is_(None), outbox.c.not_before <= now)
        .where(outbox.c.published_at <= now - redeliver_after)
        .limit(1)
    )
    return connection.execute(query).first() is not None


def unfinished_count(connection: Connection) -> int:
    return int(
        connection.execute(
            select(func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
        ).scalar_one()
    )


def logged_counts(
    connection: Connection, event_ids: Sequence[str], through_seq: int
) -> tuple[int, int]:
    """How many of the events are in the log, and how many of those sit at or below
    ``through_seq`` (a follower's cursor): what a caller waiting on the archive still owes."""
    logged = covered = 0
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        chunk = events.c.event_id.in_(ids[start : start + 500])
        row = connection.execute(
            select(
                func.count(),
                func.count().filter(events.c.seq <= through_seq),
            ).where(chunk)
        ).one()
        logged += int(row[0])
        covered += int(row[1])
    return logged, covered


def unfinished_for(connection: Connection, event_ids: Sequence[str]) -> int:
    """How much work the given events still owe."""
    total = 0
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        total += int(
            connection.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.event_id.in_(chunk), outbox.c.done_at.is_(None))
            ).scalar_one()
        )
    return total
