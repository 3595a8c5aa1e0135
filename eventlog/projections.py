"""Read models folded from the log: ``runs`` and ``deliveries``.

Why folds: the log is the truth and every piece of derived state must be rebuildable from it
(docs/design.md §3 step 6).  :func:`apply_many` takes stored events and updates the projections they
concern; :func:`eventlog.store.append_many` calls it for the *new* events inside the appending
transaction, so a projection is never behind or ahead of the log, and a later ``rebuild`` drops
the tables and folds every event again in log order, through the same :class:`Reducer`.

Why the result does not depend on arrival order: EventBridge delivers out of order and twice,
and the pipeline appends its own facts (*Run Enriched*, *Callback Delivered*) in whatever order
the workers finish.  So every field is chosen by a *strict total order* over the facts that
could set it, never by "last write wins":

* a run's status is the best of its status events by :func:`status_beats`: higher rank wins
  (``PENDING < STARTING < RUNNING < STOPPING < COMPLETED|FAILED|CANCELLED < DELETED``); within a
  terminal rank the *earliest* event stands (a terminal status is never replaced, except by
  DELETED, a later fact); within a non-terminal rank the latest; the event id breaks ties;
* the enrichment fields (``WESRunId``, times, log URLs, outputs, messages) come whole from the
  best *API-backed* enrichment by the same order on the status it enriched; enrichments made
  without HealthOmics' answer (a deleted run) never overwrite them;
* the last delivered callback is the best *Callback Delivered* by the same order;
* ``deliveries`` gets one row per callback fact, keyed by the fact's own id.

A maximum under a total order is commutative and idempotent, so any order of the same events,
duplicates included, folds to the same rows — any order the log can hold, that is: HealthOmics'
events in any order, and each pipeline fact after the event it is about (a fact about a run the
projection has not seen is ignored, as it cannot be in the log before its cause).

:func:`apply` never raises for odd content (a status event without a run ``uuid`` is simply not
a run fact): it runs inside the intake's transaction, and a projection must not be able to
refuse an event the log accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from eventlog import dialect, projection_contract
from eventlog.tables import deliveries, runs
from schemas.vocabulary import (
    CALLBACK_DELIVERED,
    CALLBACK_FAILED,
    CALLBACK_OUTCOMES,
    CALLBACK_SKIPPED,
    CALLBACK_SUPERSEDED,
    RUN_ENRICHED,
    RUN_STATUS_CHANGE,
    RUN_STATUS_RECONCILED,
    TERMINAL_RANK,
    rank_of,
)

#: Longest run ``uuid`` a run row is kept for (a real one has 36 characters).
MAX_UUID = 64


def status_beats(new: tuple[int, datetime, str], old: tuple[int, datetime, str]) -> bool:
    """True if the fact ``new`` = (rank, event time, event id) supersedes ``old``.

    A strict total order (see the module docstring): ``status_beats(a, a)`` is False, and for
    two different facts exactly one beats the other.
    """
    new_rank, new_time, new_id = new
    old_rank, old_time, old_id = old
    if new_rank != old_rank:
        return new_rank > old_rank
    if new_time != old_time:
        if new_rank >= TERMINAL_RANK:
            return new_time < old_time  # the first terminal status stands
        return new_time > old_time
    return new_id < old_id


# --- helpers ----------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 text (``Z`` or an offset) as an aware UTC datetime; None if unreadable."""
    if isinstance(value, datetime):
        return _utc(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:limit] if limit else value


def _detail(payload: dict[str, Any]) -> dict[str, Any]:
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return detail if isinstance(detail, dict) else {}


# --- the folds, in memory ---------------------------------------------------------------------
#
# Why in memory: folding event by event in SQL cost two statements per run status event (a read
# and an insert or update, ≈ 250 µs each, mostly SQLAlchemy building them), the whole critical
# path of a rebuild.  So a :class:`Reducer` reads the stored rows of the runs a batch concerns
# once, runs the folds below on those rows as dicts — the same decisions, event by event, in
# log order, that the SQL fold made — and writes every changed row once.  The live path
# (:func:`apply_many`, one batch), a single event (:func:`apply`) and a whole-log rebuild (one
# reducer for the log, :class:`eventlog.projection_set.LogFold`) all go through it, so they
# cannot disagree.

Row = projection_contract.Row
#: Every column of a ``runs`` row: a new row starts with all of them None.
RUN_COLUMNS = tuple(column.name for column in runs.columns)
#: Runs read per statement (an IN list; far below SQLite's bound-parameter limit).
LOOKUP = 500
#: Rows per INSERT of an executemany: psycopg re-parses every long statement, at a cost that
#: grows faster than its length (eventlog/resource_projections.py).
PAGE = 100


def _status_run(event: Any) -> str | None:
    """The run a status event or an enrichment is about (None: not a run fact)."""
    run_uuid = _text(_detail(event.payload).get("uuid")) or event.resource_id
    return run_uuid if run_uuid and len(run_uuid) <= MAX_UUID else None


def _callback_run(event: Any) -> str | None:
    """The run a callback fact is about (cut, not refused, when too long: it is a delivery)."""
    return _text(_detail(event.payload).get("uuid"), MAX_UUID) or event.resource_id


def _new_run(run_uuid: str, **values: Any) -> Row:
    row = dict.fromkeys(RUN_COLUMNS)
    row.update(values, run_uuid=run_uuid)
    return row


def _fold_status(reducer: Reducer, event: Any) -> None:
    detail = _detail(event.payload)
    run_uuid = _text(detail.get("uuid")) or event.resource_id
    status = (_text(detail.get("status")) or event.status or "").upper()
    rank = rank_of(status)
    if not run_uuid or len(run_uuid) > MAX_UUID or not rank:
        return
    when = _utc(event.event_time)
    seen = _utc(event.received_at)
    facts = {
        "run_id": _text(detail.get("runId"), 32),
        "arn": _text(detail.get("arn"), 2048) or event.resource_arn,
        "run_name": _text(detail.get("runName"), 256),
        "workflow_id": _text(detail.get("workflowId"), 64),
        "workflow_name": _text(detail.get("workflowName"), 256),
        "run_output_uri": _text(detail.get("runOutputUri")),
    }
    row = reducer.rows.get(run_uuid)
    if row is None:
        reducer.put(
            _new_run(
                run_uuid,
                status=status,
                status_rank=rank,
                status_time=when,
                status_event_id=event.event_id,
                first_seen_at=seen,
                last_seen_at=seen,
                last_event_time=when,
                last_event_id=event.event_id,
                **facts,
            )
        )
        return
    changes: Row = {}
    current = (row["status_rank"], row["status_time"], row["status_event_id"])
    if status_beats((rank, when, event.event_id), current):
        changes.update(
            status=status, status_rank=rank, status_time=when, status_event_id=event.event_id
        )
    for name, value in facts.items():
        if value is not None and row[name] is None:
            changes[name] = value
    if seen < row["first_seen_at"]:
        changes["first_seen_at"] = seen
    if seen > row["last_seen_at"]:
        changes["last_seen_at"] = seen
    if (when, event.event_id) > (row["last_event_time"], row["last_event_id"]):
        changes.update(last_event_time=when, last_event_id=event.event_id)
    if changes:
        reducer.change(row, changes)


def _fold_enriched(reducer: Reducer, event: Any) -> None:
    detail = _detail(event.payload)
    run_uuid = _text(detail.get("uuid")) or event.resource_id
    if not run_uuid or len(run_uuid) > MAX_UUID or not detail.get("fromApi"):
        return  # no HealthOmics answer behind it: it must not overwrite one that had
    row = reducer.rows.get(run_uuid)
    if row is None:
        return  # the status event always lands first; a stray enrichment is not a run
    status = (_text(detail.get("status")) or "").upper()
    cause_time = parse_time(detail.get("eventTime")) or _utc(event.event_time)
    cause_id = _text(detail.get("causeEventId")) or event.caused_by or event.event_id
    key = (rank_of(status), cause_time, cause_id)
    if row["enriched_rank"] is not None and not status_beats(
        key, (row["enriched_rank"], row["enriched_time"], row["enriched_event_id"] or "")
    ):
        return
    tags = detail.get("tags") if isinstance(detail.get("tags"), dict) else None
    duration = detail.get("durationSeconds")
    reducer.change(
        row,
        {
            "enriched_event_id": cause_id,
            "enriched_rank": key[0],
            "enriched_time": cause_time,
            "wes_run_id": _text(detail.get("wesRunId"), 256),
            "tags": tags,
            "run_name": _text(detail.get("runName"), 256) or row["run_name"],
            "workflow_id": _text(detail.get("workflowId"), 64) or row["workflow_id"],
            "workflow_name": _text(detail.get("workflowName"), 256) or row["workflow_name"],
            "run_group_id": _text(detail.get("runGroupId"), 64),
            "run_output_uri": _text(detail.get("runOutputUri")) or row["run_output_uri"],
            "creation_time": parse_time(detail.get("creationTime")),
            "start_time": parse_time(detail.get("startTime")),
            "stop_time": parse_time(detail.get("stopTime")),
            "duration_seconds": duration if isinstance(duration, int | float) else None,
            "status_message": _text(detail.get("statusMessage")),
            "failure_reason": _text(detail.get("failureReason"), 256),
            "output_mapping": detail.get("outputMapping"),
            "log_urls": detail.get("logUrls"),
        },
    )


def _outcome(detail_type: str, detail: dict[str, Any]) -> str:
    if detail_type == CALLBACK_FAILED and detail.get("final"):
        return "dead-lettered"
    return CALLBACK_OUTCOMES[detail_type]


def _fold_callback(reducer: Reducer, event: Any) -> None:
    detail = _detail(event.payload)
    sent_id = _text(detail.get("eventId"), 256) or event.caused_by or event.event_id
    run_uuid = _text(detail.get("uuid"), MAX_UUID) or event.resource_id
    status = (_text(detail.get("status")) or "").upper() or None
    http_status = detail.get("httpStatus")
    attempts = detail.get("attempts")
    reducer.deliveries.setdefault(  # the first fact of an id stands, as ON CONFLICT DO NOTHING
        event.event_id,
        {
            "delivery_id": event.event_id,
            "event_id": sent_id,
            "caused_by": event.caused_by,
            "run_uuid": run_uuid,
            "run_id": _text(detail.get("runId"), 32),
            "wes_run_id": _text(detail.get("wesRunId"), 256),
            "status": status,
            "outcome": _outcome(event.detail_type, detail),
            "http_status": http_status if isinstance(http_status, int) else None,
            "response_body": _text(detail.get("responseBody"), 2000),
            "attempts": attempts if isinstance(attempts, int) else 1,
            "url": _text(detail.get("url"), 2048),
            "reason": _text(detail.get("reason"), 4000),
            "created_at": _utc(event.event_time),
        },
    )
    if event.detail_type != CALLBACK_DELIVERED or not run_uuid or not rank_of(status):
        return
    row = reducer.rows.get(run_uuid)
    if row is None:
        return
    sent_time = parse_time(detail.get("eventTime")) or _utc(event.event_time)
    key = (rank_of(status), sent_time, sent_id)
    if row["callback_rank"] is not None and not status_beats(
        key, (row["callback_rank"], row["callback_event_time"], row["callback_event_id"] or "")
    ):
        return
    reducer.change(
        row,
        {
            "callback_status": status,
            "callback_rank": key[0],
            "callback_event_id": sent_id,
            "callback_event_time": sent_time,
            "callback_delivered_at": _utc(event.event_time),
        },
    )


_IN_MEMORY: dict[str, Callable[[Reducer, Any], None]] = {
    RUN_STATUS_CHANGE: _fold_status,
    RUN_STATUS_RECONCILED: _fold_status,
    RUN_ENRICHED: _fold_enriched,
    CALLBACK_DELIVERED: _fold_callback,
    CALLBACK_FAILED: _fold_callback,
    CALLBACK_SKIPPED: _fold_callback,
    CALLBACK_SUPERSEDED: _fold_callback,
}


def is_run_fact(event: Any) -> bool:
    """Only HealthOmics' own run events (source ``aws.omics``) and the pipeline's facts are
    folded: a look-alike from another source is not a run fact."""
    if event.detail_type not in _IN_MEMORY:
        return False
    if event.detail_type == RUN_STATUS_CHANGE:
        return bool(event.source == "aws.omics")
    return bool(event.origin == "pipeline")


def _run_of(event: Any) -> str | None:
    if event.detail_type in CALLBACK_OUTCOMES:
        return _callback_run(event)
    return _status_run(event)


class Reducer(projection_contract.Reducer):
    """Folds events into ``runs``/``deliveries`` rows held in memory and writes each changed row
    once (:meth:`write`), or hands them over (:meth:`take_rows`).

    ``connection`` is where the rows already stored are read from, once per run, the first time
    a batch mentions it (None: nothing is stored, as in a fresh scratch table).  Between
    :meth:`add` and :meth:`write` the caller must hold the append lock (or be the only writer),
    as for any fold.
    """

    hands_over = True

    def __init__(self, connection: Connection | None = None) -> None:
        self.connection = connection
        #: run uuid -> its row; None: looked up, no such run (yet).
        self.rows: dict[str, Row | None] = {}
        self.stored: set[str] = set()  # rows the database has: updated, not inserted
        self.changed: dict[str, Row] = {}  # rows to write, by run uuid
        self.deliveries: dict[str, Row] = {}  # by delivery id, in log order
        self.written = False

    def put(self, row: Row) -> None:
        self.rows[row["run_uuid"]] = row
        self.changed[row["run_uuid"]] = row

    def change(self, row: Row, changes: Row) -> None:
        row.update(changes)
        self.changed[row["run_uuid"]] = row

    def add(self, events: Iterable[Any]) -> None:
        """Fold events, in the order given (log order)."""
        batch = [event for event in events if is_run_fact(event)]
        unknown = {run for run in map(_run_of, batch) if run and run not in self.rows}
        if unknown:
            self._load(unknown)
        for event in batch:
            _IN_MEMORY[event.detail_type](self, event)

    def _load(self, keys: set[str]) -> None:
        self.rows.update(dict.fromkeys(keys))
        if self.connection is None:
            return
        wanted = sorted(key for key in keys if len(key) <= MAX_UUID)  # no longer key is stored
        for start in range(0, len(wanted), LOOKUP):
            query = select(runs).where(runs.c.run_uuid.in_(wanted[start : start + LOOKUP]))
            for stored in self.connection.execute(query):
                row = {
                    name: _utc(value) if isinstance(value, datetime) else value
                    for name, value in stored._mapping.items()
                }
                self.rows[row["run_uuid"]] = row
                self.stored.add(row["run_uuid"])

    def take_rows(self) -> dict[Table, list[Row]]:
        """What was reduced, handed over instead of written, when nothing was stored before
        (a rebuild's scratch tables; :meth:`eventlog.projection_set.LogFold.take_rows`): runs
        in run-uuid order, deliveries in log order.  Writing them to the scratch tables and
        reading them back cost a rebuild more than folding them.  The reducer is empty after."""
        if self.stored or self.written:
            raise RuntimeError("rows were read from or written to the database: write() them")
        taken = {
            runs: [row for _, row in sorted(self.rows.items()) if row is not None],
            deliveries: list(self.deliveries.values()),
        }
        self.rows.clear()
        self.changed.clear()
        self.deliveries.clear()
        return {table: rows for table, rows in taken.items() if rows}

    def write(self, connection: Connection) -> None:
        """Insert the new rows, update the changed ones, insert the deliveries (first fact of an
        id wins, as before); then the reducer can go on from where it stands."""
        self.written = True  # take_rows() would no longer hand over every row
        new = [row for key, row in sorted(self.changed.items()) if key not in self.stored]
        old = [row for key, row in sorted(self.changed.items()) if key in self.stored]
        if new:
            connection.execute(insert(runs).execution_options(insertmanyvalues_page_size=PAGE), new)
        if old:
            connection.execute(
                update(runs).where(runs.c.run_uuid == bindparam("key_run_uuid")),
                [
                    {
                        "key_run_uuid": row["run_uuid"],
                        **{name: value for name, value in row.items() if name != "run_uuid"},
                    }
                    for row in old
                ],
            )
        if self.deliveries:
            connection.execute(
                dialect.insert(connection, deliveries)
                .on_conflict_do_nothing(index_elements=["delivery_id"])
                .execution_options(insertmanyvalues_page_size=PAGE),
                list(self.deliveries.values()),
            )
        self.stored.update(self.changed)
        self.changed.clear()
        self.deliveries.clear()


def apply_many(connection: Connection, events: Sequence[Any]) -> None:
    """Fold a batch of stored events (in log order): one read of the runs they concern, one
    write of the rows they changed (what the append path calls)."""
    reducer = Reducer(connection)
    reducer.add(events)
    reducer.write(connection)


def apply(connection: Connection, event: Any) -> None:
    """Fold one stored event (:class:`eventlog.entries.StoredEvent`) into the projections."""
    apply_many(connection, [event])


#: detail-type -> its fold (the registry, :mod:`eventlog.projection_set`, dispatches on these).
#: An unlisted detail-type folds to nothing (every event is still in the log).
FOLDS: dict[str, Callable[[Connection, Any], None]] = dict.fromkeys(_IN_MEMORY, apply)

#: Projection tables in the order a rebuild empties them.
TABLES = (deliveries, runs)


class Runs(projection_contract.Projection):
    """``runs`` and ``deliveries``: reduced in memory (:class:`Reducer`), rows handed over to a
    rebuild."""

    name = "runs"
    tables = TABLES
    folds = FOLDS

    def apply_many(self, connection: Connection, events: Sequence[Any]) -> None:
        apply_many(connection, events)

    def reducer(self, connection: Connection) -> Reducer:
        return Reducer(connection)
