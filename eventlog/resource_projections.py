"""Read models of stores and run tasks folded from the log: ``stores`` and ``tasks``.

Why folds: the log is the truth (docs/design.md §3 step 6); an operator asking which sequence store
is active, or which task of a run failed and how long it ran, gets an answer that ``omics-events
rebuild`` reproduces from the log alone.

Why a fact-and-merge shape: every event becomes a one-event *fact* (a would-be row), and a row
is the :func:`merge_task`/:func:`merge_store` of all its facts.  Each merge is commutative,
associative and idempotent — every field is a maximum or minimum under a total order, never
"last write wins" — so the same events in any order, duplicates included, give the same rows,
and a batch can be reduced in memory before it touches the database (:func:`apply_many`, what
the rebuild and the append path use) with exactly the result of folding one event at a time
(:func:`apply`):

* a task's status is the best of its status events by :func:`eventlog.projections.status_beats`,
  the runs' own order (higher rank wins; the first terminal status stands; DELETED is later);
  ``running_time`` is its first RUNNING, ``stop_time`` its first terminal status, and the
  duration their difference;
* a store's status is its newest status event (stores go back and forth: UPDATING, ACTIVE, …),
  except that a final status (DELETED, creation failed) beats any other; the rank orders a
  same-second pair and the event id breaks ties;
* descriptive fields (names, ARNs) are constant per resource; if two events disagreed, the
  smaller value is kept, so even that does not depend on arrival order.

Tasks are keyed by ``(run uuid, task id)``: task ids, like run ids, are not promised unique
forever.  Callers hold the append lock (:func:`eventlog.store.append_many` calls this inside the
appending transaction), so two folds of one row never race.  Odd content folds to nothing: a
projection must never refuse an event the log accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    insert,
    select,
    update,
)

from eventlog import dialect, projection_contract
from eventlog.projections import TERMINAL_RANK, rank_of, status_beats
from eventlog.tables import stores, tasks
from schemas.vocabulary import (
    TASK_STATUS_CHANGE,
)

OMICS_SOURCE = "aws.omics"
#: Detail-type -> ``stores.store_type``.
STORE_DETAIL_TYPES: dict[str, str] = {
    "Sequence Store Status Change": "sequence",
    "Reference Store Status Change": "reference",
    "Variant Store Status Change": "variant",
    "Annotation Store Status Change": "annotation",
}
#: Store status -> rank, for two statuses of the same second (lifecycle order).
STORE_RANK: dict[str, int] = {
    "CREATING": 1,
    "CREATED": 2,
    "UPDATING": 3,
    "UPDATED": 4,
    "ACTIVE": 5,
    "FAILED": 6,
    "CREATION_FAILED": 7,
    "DELETING": 8,
    "DELETED": 9,
}
#: Statuses a store never leaves.
STORE_FINAL = frozenset({"DELETED", "CREATION_FAILED"})

Row = projection_contract.Row
#: Rows per INSERT statement of an executemany: psycopg re-parses every statement longer than
#: 4 KB, at a cost that grows faster than its length (1,000 rows: 3.5x the CPU of 100).
PAGE = 100

# --- helpers ----------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:  # the common case, and the cheap one
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:limit]


def _detail(event: Any) -> dict[str, Any]:
    payload = event.payload if isinstance(event.payload, dict) else {}
    detail = payload.get("detail")
    return detail if isinstance(detail, dict) else {}


def normalise_status(value: Any) -> str | None:
    """``"creation failed"`` -> ``CREATION_FAILED`` (the schemas' rule); None if not a string."""
    if not isinstance(value, str):
        return None
    known = _NORMALISED.get(value)
    if known is not None:
        return known
    if not value.strip():
        return None
    normalised = "_".join(value.strip().upper().replace("-", " ").split())[:32]
    if len(_NORMALISED) < _NORMALISED_MAX:
        _NORMALISED[value] = normalised
    return normalised


#: Statuses already normalised: a log holds a handful of distinct ones, and a rebuild asks for
#: each event's (bounded, so a log of odd statuses cannot grow it without end).
_NORMALISED: dict[str, str] = {}
_NORMALISED_MAX = 4096


def _last_segment(arn: str | None) -> str | None:
    if not arn:
        return None
    tail = arn.rsplit(":", 1)[-1]
    return tail.rsplit("/", 1)[-1] or None


def _pick(a: Any, b: Any) -> Any:
    """The non-null one; the smaller if both are set (commutative, unlike "first wins")."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    a, b = _utc(a), _utc(b)
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# --- tasks ------------------------------------------------------------------------------------

TASK_FIELDS = ("arn", "run_id", "run_arn", "run_name", "workflow_id", "workflow_name")


def task_fact(event: Any) -> Row | None:
    """The row one Task Status Change would make on its own; None if it is not a task fact."""
    if event.detail_type != TASK_STATUS_CHANGE or event.source != OMICS_SOURCE:
        return None
    if event.origin != "aws":
        return None
    detail = _detail(event)
    arn = _text(detail.get("arn"), 2048) or event.resource_arn
    task_id = _text(_last_segment(arn) or event.resource_id, 64)
    status = normalise_status(detail.get("status")) or normalise_status(event.status)
    rank = rank_of(status)
    if not task_id or not status or not rank:
        return None
    when = _utc(event.event_time)
    return {
        "run_uuid": _text(detail.get("runUuid"), 64) or "",
        "task_id": task_id,
        "arn": arn,
        "run_id": _text(detail.get("runId"), 32),
        "run_arn": _text(detail.get("runArn"), 2048),
        "run_name": _text(detail.get("runName"), 256),
        "workflow_id": _text(detail.get("workflowId"), 64),
        "workflow_name": _text(detail.get("workflowName"), 256),
        "status": status,
        "status_rank": rank,
        "status_time": when,
        "status_event_id": event.event_id,
        "first_event_time": when,
        "running_time": when if status == "RUNNING" else None,
        "stop_time": when if rank == TERMINAL_RANK else None,
        "duration_seconds": None,
    }


def merge_task(a: Row, b: Row) -> Row:
    """The row of two facts (or rows) of one task; commutative, associative, idempotent."""
    merged = dict(a)
    _merge_task_into(merged, b)
    return merged


def _merge_task_into(row: Row, fact: Row) -> None:
    """:func:`merge_task` of ``row`` and ``fact``, written into ``row`` (a reducer's own row:
    a rebuild merges most task events into a row already there, and a new dict each time was
    a fifth of the fold)."""
    key_row = (row["status_rank"], _utc(row["status_time"]), row["status_event_id"])
    key_fact = (fact["status_rank"], _utc(fact["status_time"]), fact["status_event_id"])
    best = fact if status_beats(key_fact, key_row) else row
    for name in TASK_FIELDS:
        row[name] = _pick(row.get(name), fact.get(name))
    start = _earliest(row.get("running_time"), fact.get("running_time"))
    stop = _earliest(row.get("stop_time"), fact.get("stop_time"))
    row.update(
        status=best["status"],
        status_rank=best["status_rank"],
        status_time=_utc(best["status_time"]),
        status_event_id=best["status_event_id"],
        first_event_time=_earliest(row["first_event_time"], fact["first_event_time"]),
        running_time=start,
        stop_time=stop,
        duration_seconds=(
            max(0.0, (stop - start).total_seconds())
            if start is not None and stop is not None
            else None
        ),
    )


# --- stores -----------------------------------------------------------------------------------


def store_fact(event: Any) -> Row | None:
    """The row one store status event would make on its own; None if it is not a store fact."""
    store_type = STORE_DETAIL_TYPES.get(event.detail_type)
    if store_type is None or event.source != OMICS_SOURCE or event.origin != "aws":
        return None
    detail = _detail(event)
    arn = _text(detail.get("arn"), 2048) or event.resource_arn
    store_id = (
        _text(detail.get("storeId"), 256)
        or _text(detail.get("id"), 256)
        or _text(event.resource_id, 256)
        or _text(_last_segment(arn), 256)
    )
    status = normalise_status(event.status) or normalise_status(detail.get("status"))
    if not store_id or not status:
        return None
    when = _utc(event.event_time)
    return {
        "store_type": store_type,
        "store_id": store_id,
        "arn": arn,
        "store_name": _text(detail.get("storeName"), 256) or _text(detail.get("name"), 256),
        "status": status,
        "status_rank": STORE_RANK.get(status, 0),
        "status_final": int(status in STORE_FINAL),
        "status_time": when,
        "status_event_id": event.event_id,
        "status_message": _text(detail.get("statusMessage"), 4000),
        "first_event_time": when,
    }


def _store_order(row: Row) -> tuple[int, datetime | None, int, str]:
    return (
        row["status_final"],
        _utc(row["status_time"]),
        row["status_rank"],
        row["status_event_id"],
    )


def merge_store(a: Row, b: Row) -> Row:
    """The row of two facts (or rows) of one store; commutative, associative, idempotent."""
    best = b if _store_order(b) > _store_order(a) else a
    return {
        "store_type": a["store_type"],
        "store_id": a["store_id"],
        "arn": _pick(a.get("arn"), b.get("arn")),
        "store_name": _pick(a.get("store_name"), b.get("store_name")),
        "status": best["status"],
        "status_rank": best["status_rank"],
        "status_final": best["status_final"],
        "status_time": _utc(best["status_time"]),
        "status_event_id": best["status_event_id"],
        "status_message": best.get("status_message"),
        "first_event_time": _earliest(a["first_event_time"], b["first_event_time"]),
    }


# --- the fold ---------------------------------------------------------------------------------

Fact = Callable[[Any], Row | None]
Merge = Callable[[Row, Row], Row]
_KINDS: dict[str, tuple[Table, Fact]] = {
    TASK_STATUS_CHANGE: (tasks, task_fact),
    **{detail_type: (stores, store_fact) for detail_type in STORE_DETAIL_TYPES},
}

_MERGES: dict[Table, Merge] = {tasks: merge_task, stores: merge_store}


def _merge_store_into(row: Row, fact: Row) -> None:
    row.update(merge_store(row, fact))


#: The merges written into the first row (a reducer's own), by table.
_MERGES_INTO: dict[Table, Callable[[Row, Row], None]] = {
    tasks: _merge_task_into,
    stores: _merge_store_into,
}

#: detail-type -> its fold (the registry, :mod:`eventlog.projection_set`, dispatches on these).
FOLDS: dict[str, Callable[[Connection, Any], None]] = {}
#: Projection tables in the order a rebuild empties them.
TABLES = (tasks, stores)


def _key(table: Table, row: Row) -> tuple[Any, ...]:
    first, second = _KEY_NAMES[table]
    return (row[first], row[second])


#: Each table's primary key: two columns (:func:`_existing` relies on it too).
_KEY_NAMES: dict[Table, tuple[str, str]] = {
    table: (table.primary_key.columns[0].name, table.primary_key.columns[1].name)
    for table in (tasks, stores)
}


def _normalised(table: Table, row: Row) -> Row:
    """A row as read back, with SQLite's naive datetimes made UTC-aware."""
    out = dict(row)
    for name, value in out.items():
        if isinstance(value, datetime):
            out[name] = _utc(value)
    return out


def _existing(connection: Connection, table: Table, keys: Iterable[tuple[Any, ...]]) -> dict:
    """The stored rows of ``keys`` — (run uuid, task id) or (store type, store id) pairs —
    joined to the primary key's index, so each key costs one index search whatever the
    table's size, with statements of a constant text (compiled and parsed once:
    :func:`eventlog.dialect.key_pairs`)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    first, second = list(table.primary_key.columns)
    pairs = dialect.key_pairs(connection, wanted)
    query = select(table).join(pairs, and_(first == pairs.c.scope, second == pairs.c.ident))
    found: dict[tuple[Any, ...], Row] = {}
    for row in connection.execute(query):
        data = _normalised(table, dict(row._mapping))
        found[_key(table, data)] = data
    return found


def _write(
    connection: Connection, table: Table, facts: dict[tuple[Any, ...], Row], merge: Merge
) -> None:
    if not facts:
        return
    stored = _existing(connection, table, facts)
    new: list[Row] = []
    changed: list[Row] = []
    for key, fact in facts.items():
        row = stored.get(key)
        if row is None:
            new.append(fact)
            continue
        merged = merge(row, fact)
        if merged != row:
            changed.append(merged)
    if new:
        connection.execute(insert(table).execution_options(insertmanyvalues_page_size=PAGE), new)
    if changed:
        keys = [column.name for column in table.primary_key.columns]
        statement = update(table).where(
            and_(*(table.c[name] == bindparam(f"key_{name}") for name in keys))
        )
        connection.execute(
            statement,
            [
                {
                    **{f"key_{name}": row[name] for name in keys},
                    **{name: value for name, value in row.items() if name not in keys},
                }
                for row in changed
            ],
        )


class Reducer(projection_contract.Reducer):
    """Folds events in memory — one row per task or store, merged — and writes them once.

    ``apply_many`` is a reducer over one batch; a whole-log rebuild keeps one reducer for the
    whole log (:mod:`eventlog.projection_set`), so a task whose events are spread over the log
    (a log replayed from the archive is in key order, not time order) is written once, not
    once per batch it appears in.
    """

    hands_over = True

    def __init__(self, connection: Connection | None = None) -> None:
        # the stored rows are read once, at write(): a merge does not depend on them earlier
        del connection
        self.reduced: dict[Table, dict[tuple[Any, ...], Row]] = {}

    def add(self, events: Iterable[Any]) -> None:
        for event in events:
            kind = _KINDS.get(event.detail_type)
            if kind is None:
                continue
            table, fact_of = kind
            fact = fact_of(event)
            if fact is None:
                continue
            facts = self.reduced.setdefault(table, {})
            key = _key(table, fact)
            row = facts.get(key)
            if row is None:
                facts[key] = fact
            else:
                _MERGES_INTO[table](row, fact)

    def merge_rows(self, table: Table, rows: Iterable[Row]) -> None:
        """Merge rows that another reducer made of another part of the log (a rebuild folds
        the log in ranges side by side, :mod:`eventlog.rebuild`): merges are commutative and
        associative, so the parts' rows merged are the rows of the whole."""
        facts = self.reduced.setdefault(table, {})
        merge_into = _MERGES_INTO[table]
        for stored in rows:
            key = _key(table, stored)
            row = facts.get(key)
            if row is None:
                facts[key] = _normalised(table, stored)  # a copy: later merges write into it
            else:
                merge_into(row, stored)  # which reads naive datetimes as UTC itself

    def take_rows(self) -> dict[Table, list[Row]]:
        """What was reduced, as the rows of tables that held none (a rebuild's), handed over
        instead of written; the reducer is empty afterwards."""
        taken = {table: list(self.reduced.pop(table, {}).values()) for table in TABLES}
        return {table: rows for table, rows in taken.items() if rows}

    def write(self, connection: Connection) -> None:
        """Merge what was reduced into the stored rows (one read and one write per table)."""
        for table in TABLES:
            facts = self.reduced.pop(table, None)
            if facts:
                _write(connection, table, facts, _MERGES[table])


def apply_many(connection: Connection, events: Sequence[Any]) -> None:
    """Fold a batch of stored events: reduce per row in memory, then one read and one write
    per table (what the append path calls)."""
    reducer = Reducer()
    reducer.add(events)
    reducer.write(connection)


def apply(connection: Connection, event: Any) -> None:
    """Fold one stored event (:class:`eventlog.entries.StoredEvent`) into ``tasks``/``stores``."""
    apply_many(connection, [event])


FOLDS.update({detail_type: apply for detail_type in _KINDS})


class Resources(projection_contract.Projection):
    """``tasks`` and ``stores``: rows are merges of facts (:class:`Reducer`), so a rebuild may
    reduce ranges of the log side by side and merge them, and writes them straight."""

    name = "resources"
    tables = TABLES
    folds = FOLDS
    splittable = True

    def apply_many(self, connection: Connection, events: Sequence[Any]) -> None:
        apply_many(connection, events)

    def reducer(self, connection: Connection) -> Reducer:
        return Reducer(connection)
