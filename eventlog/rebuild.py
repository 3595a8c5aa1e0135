"""Rebuild the projections from the log, check them against it, and checksum them.

Why: the log is the truth and every read model is derived (docs/design.md §3 step 6, §6).  A lost
table, a fold that changed, a suspected bug: ``omics-events rebuild`` drops the projections and
folds the whole log again, in log order, with the folds the live path uses
(:mod:`eventlog.projection_set`), then prints a checksum that is the same every time and on
either database.  ``rebuild --check`` folds into scratch tables and names the first row and
column where the live projections differ from a fresh fold.

How a rebuild runs:

1. **Fold into scratch.**  The log up to its current end is folded into the projection tables
   of a private in-memory SQLite database (the folds support both dialects; folding there
   costs no network round trip per statement and leaves the live tables untouched meanwhile).
   Appends go on while this runs: ``seq`` is commit order (the append lock), so "every event up
   to ``seq`` S" is a consistent cut of the log.  Projections own disjoint tables and read
   nothing of each other's, so on PostgreSQL a big log is folded by several processes side by
   side (``python -m eventlog.rebuild`` children, one group of projections each, their rows
   sent back); a projection with a ``Reducer`` reduces the whole log in memory and writes each
   row once (:class:`eventlog.projection_set.LogFold`), or hands its rows over to be written
   straight to the live tables (``take_rows``: ``tasks``, ``stores``, ``runs``,
   ``deliveries``), as the children's rows are.
2. **Swap, under the append lock.**  One transaction on the live database takes the append lock
   (PostgreSQL advisory lock; on SQLite the first DELETE takes the write lock), folds whatever
   was appended after S (into the reducers held in memory, and into scratch for the rest — the
   children's rows go there first if anything was), deletes every projection row and inserts
   the new rows.  Readers see the old projections until the commit and the new ones after;
   appends wait only for this short step.
3. **Checksum** the result (:func:`checksum`).

The checksum is a sha256 over a canonical rendering of every row of every projection table and
of ``dead_letters``, each table ordered by its natural key (byte order, ``COLLATE "C"`` on
PostgreSQL, so locale collations cannot reorder it): datetimes as UTC ISO-8601 with
microseconds, JSON with sorted keys, integral floats as integers, bytes as their sha256.  Two
kinds of column are left out of it, and only of it (``--check`` compares them):

* surrogate ids (``deliveries.id``, ``dead_letters.id``): numbering, not content;
* *reception times*: ``runs.first_seen_at``/``last_seen_at`` (when this database received the
  events) and ``dead_letters.created_at``.  A replay from the archive receives every event
  again, so these differ after a replay while the history they summarise does not.

``dead_letters`` is not a fold (it is written directly, see :mod:`eventlog.projection_set`): the
rebuild leaves it as it is and the checksum covers it as it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Integer,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.pool import StaticPool

from eventlog import dialect, projection_set
from eventlog.db import create_db_engine
from eventlog.dialect import lift_statement_timeout
from eventlog.entries import StoredEvent
from eventlog.resource_projections import PAGE
from eventlog.tables import events

#: Events read and folded per batch.
BATCH = 5000
#: Rows inserted per statement when the scratch rows are copied to the live tables.
COPY_BATCH = 2000
#: Folded events from which a rebuild folds its projections in parallel processes.
PARALLEL_FROM = 20_000
#: What a fold process costs beyond its events, in ``resources`` events (:attr:`eventlog.
#: projection_contract.Projection.cost` units) folded meanwhile: ≈ 0.75 s of CPU to start, less
#: what it saves this process (its rows come back as they are, written straight to the live
#: tables) — measured on 100k and 1M events of a simulated day: with 10,000 both processes
#: end their folds within 0.2 s of each other.  A parallel rebuild gives it that many fewer
#: than half (:func:`_plan`).
START_COST = 10_000
#: Columns left out of the checksum (not of ``--check``): when *this database* received
#: something, which a replay from the archive cannot reproduce (module docstring).
RECEPTION_COLUMNS: dict[str, frozenset[str]] = {
    "runs": frozenset({"first_seen_at", "last_seen_at"}),
    "dead_letters": frozenset({"created_at"}),
}


class Progress(Protocol):
    """Where long steps report: ``start`` a stage of ``total`` units, ``advance`` through it."""

    def start(self, stage: str, total: int | None) -> None: ...

    def advance(self, units: int) -> None: ...


class _Silent:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, units: int) -> None:
        pass


# --- tables, keys, canonical rows -------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """How one table is ordered, compared and hashed."""

    table: Table
    key: tuple[str, ...]  # the natural key: row order and identity
    columns: tuple[str, ...]  # compared by --check (everything but a surrogate id)
    hashed: tuple[str, ...]  # in the checksum (also without reception times)
    folded: bool

    @property
    def name(self) -> str:
        return self.table.name


def _surrogate(table: Table) -> str | None:
    """The lone auto-increment integer primary key, if the table has one."""
    pk = list(table.primary_key.columns)
    if len(pk) == 1 and isinstance(pk[0].type, Integer) and pk[0].autoincrement in (True, "auto"):
        return pk[0].name
    return None


def _natural_key(table: Table) -> tuple[str, ...]:
    surrogate = _surrogate(table)
    if surrogate is None:
        return tuple(column.name for column in table.primary_key.columns)
    for column in table.columns:  # a surrogate id: the unique column is the real key
        if column.unique:
            return (column.name,)
    raise ValueError(f"table {table.name} has a surrogate id and no natural key")


def table_spec(table: Table, *, folded: bool) -> TableSpec:
    surrogate = _surrogate(table)
    columns = tuple(c.name for c in table.columns if c.name != surrogate)
    skip = RECEPTION_COLUMNS.get(table.name, frozenset())
    return TableSpec(
        table=table,
        key=_natural_key(table),
        columns=columns,
        hashed=tuple(c for c in columns if c not in skip),
        folded=folded,
    )


def table_specs() -> list[TableSpec]:
    """Every projection table and ``dead_letters``, in name order (the checksum's order)."""
    specs = [table_spec(t, folded=True) for t in projection_set.projection_tables()]
    specs += [table_spec(t, folded=False) for t in projection_set.UNFOLDED_TABLES]
    return sorted(specs, key=lambda spec: spec.name)


def canonical(value: Any) -> Any:
    """A value as the checksum sees it: the same on PostgreSQL and SQLite."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            return str(number)
        if number.is_integer() and abs(number) < 2**53:
            return int(number)
        return number
    if isinstance(value, datetime):
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def render(values: Sequence[Any]) -> str:
    return json.dumps(
        [canonical(v) for v in values],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
        allow_nan=False,
    )


def _ordered(connection: Connection, spec: TableSpec, columns: Sequence[str]) -> Any:
    """``columns`` of every row, in natural-key byte order, streamed."""
    order = [dialect.byte_order(connection, spec.table.c[name]) for name in spec.key]
    query = select(*(spec.table.c[c] for c in columns)).order_by(*order)
    return connection.execute(query.execution_options(yield_per=COPY_BATCH))


# --- the checksum -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSum:
    name: str
    rows: int
    digest: str


@dataclass(frozen=True)
class Checksum:
    digest: str
    tables: tuple[TableSum, ...]

    def __str__(self) -> str:
        return self.digest


def checksum(connection: Connection) -> Checksum:
    """The projections' checksum (module docstring): equal state, equal digest, any dialect."""
    sums: list[TableSum] = []
    total = hashlib.sha256()
    for spec in table_specs():
        digest = hashlib.sha256()
        digest.update(f"{spec.name}\t{','.join(spec.hashed)}\n".encode())
        rows = 0
        for row in _ordered(connection, spec, spec.hashed):
            digest.update(render(row).encode())
            digest.update(b"\n")
            rows += 1
        sums.append(TableSum(spec.name, rows, digest.hexdigest()))
        total.update(f"{spec.name}\t{rows}\t{digest.hexdigest()}\n".encode())
    return Checksum(total.hexdigest(), tuple(sums))


def checksum_of(engine: Engine) -> Checksum:
    """The checksum of a database, read in one consistent snapshot."""
    with _snapshot(engine) as connection:
        return checksum(connection)


# --- folding ----------------------------------------------------------------------------------


@contextmanager
def scratch() -> Iterator[Connection]:
    """Empty projection tables in a private in-memory SQLite database, in a transaction."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    event.listen(engine, "connect", _fast_sqlite)
    try:
        with engine.begin() as connection:
            for table in projection_set.projection_tables():
                table.create(connection)
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _fast_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=OFF")
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def _last_seq(connection: Connection) -> int:
    return int(connection.execute(select(func.max(events.c.seq))).scalar_one() or 0)


def log_bounds(connection: Connection) -> tuple[int, int]:
    """(number of events, highest seq) of the log now."""
    count, top = connection.execute(select(func.count(), func.max(events.c.seq))).one()
    return int(count or 0), int(top or 0)


def _stored_events(
    connection: Connection,
    *,
    after_seq: int,
    upto_seq: int | None,
    batch: int,
    only: Collection[str] | None = None,
) -> Iterator[list[StoredEvent]]:
    """The folded detail-types of the log in ``(after_seq, upto_seq]``, in log order, batched."""
    columns = [
        events.c.seq,
        events.c.event_id,
        events.c.origin,
        events.c.source,
        events.c.detail_type,
        events.c.resource_arn,
        events.c.resource_id,
        events.c.status,
        events.c.event_time,
        events.c.received_at,
        events.c.caused_by,
        events.c.payload,
    ]
    query = (
        select(*columns)
        .where(events.c.seq > after_seq)
        .where(events.c.detail_type.in_(sorted(projection_set.folded_detail_types(only))))
        .order_by(events.c.seq)
    )
    if upto_seq is not None:
        query = query.where(events.c.seq <= upto_seq)
    result = connection.execute(query.execution_options(yield_per=batch))
    for rows in result.partitions(batch):
        # positional, in the columns' order: keywords cost a frozen dataclass ≈ 1.3 µs more
        yield [StoredEvent(*row[:8], _utc(row[8]), _utc(row[9]), row[10], row[11]) for row in rows]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fold_into(
    target: Connection,
    source: Connection,
    *,
    after_seq: int = 0,
    upto_seq: int | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
    only: Collection[str] | None = None,
    before_finish: Callable[[projection_set.LogFold], None] | None = None,
    log_fold: projection_set.LogFold | None = None,
    finish: bool = True,
) -> tuple[int, int]:
    """Fold the log of ``source`` in ``(after_seq, upto_seq]`` into ``target``'s projection
    tables (those of the projections in ``only``; all by default), in log order; returns
    (events folded, last seq folded or ``after_seq``).  ``before_finish`` may merge rows folded
    elsewhere into the fold before its reducers write (:func:`_fold_log`).  ``log_fold``: go
    on with this fold (its projections, its target) instead of a new one; ``finish=False``:
    leave its reducers' rows in memory (:func:`rebuild` copies them to the live tables)."""
    folded, last = 0, after_seq
    log_fold = log_fold or projection_set.LogFold(target, only)
    names = [projection.name for projection in log_fold.projections]
    chunks = _stored_events(source, after_seq=after_seq, upto_seq=upto_seq, batch=batch, only=names)
    for chunk in chunks:
        log_fold.fold(chunk)
        folded += len(chunk)
        last = chunk[-1].seq
        if progress is not None:
            progress.advance(len(chunk))
    if before_finish is not None:
        before_finish(log_fold)
    if finish:
        log_fold.finish()
    return folded, last


def _count_folded(
    connection: Connection, after_seq: int, upto_seq: int, only: Collection[str] | None = None
) -> int:
    return int(
        connection.execute(
            select(func.count())
            .select_from(events)
            .where(events.c.seq > after_seq, events.c.seq <= upto_seq)
            .where(events.c.detail_type.in_(sorted(projection_set.folded_detail_types(only))))
        ).scalar_one()
    )


def _copy(source: Connection, target: Connection, table: Table, progress: Progress) -> int:
    """Insert every row of ``table`` from ``source`` into ``target`` (surrogate ids renumbered
    by the target, in the source's order)."""
    surrogate = _surrogate(table)
    names = [c.name for c in table.columns if c.name != surrogate]
    order = [table.c[surrogate]] if surrogate else list(table.primary_key.columns)
    result = source.execute(
        select(*(table.c[n] for n in names))
        .order_by(*order)
        .execution_options(yield_per=COPY_BATCH)
    )
    return _insert_rows(target, table, names, result.partitions(COPY_BATCH), progress)


def _write_rows(
    target: Connection, table: Table, rows: list[dict[str, Any]], progress: Progress
) -> int:
    """Insert rows a reducer handed over (:meth:`eventlog.projection_set.LogFold.take_rows`)
    as :func:`_copy` inserts scratch rows: in primary-key order, or, for a table with a
    surrogate id (numbered by the target), in the order handed over (log order)."""
    surrogate = _surrogate(table)
    names = [c.name for c in table.columns if c.name != surrogate]
    key = [c.name for c in table.primary_key.columns]
    ordered = rows if surrogate else sorted(rows, key=lambda row: tuple(row[k] for k in key))
    values = [tuple(row.get(name) for name in names) for row in ordered]
    pages = (values[start : start + COPY_BATCH] for start in range(0, len(values), COPY_BATCH))
    return _insert_rows(target, table, names, pages, progress)


def _insert_rows(
    target: Connection,
    table: Table,
    names: list[str],
    pages: Iterable[Sequence[Sequence[Any]]],
    progress: Progress,
) -> int:
    """Rows (value sequences in ``names`` order), page by page, into ``target``'s ``table``:
    ``COPY`` on PostgreSQL (:func:`_copy_rows`), an executemany on SQLite."""
    if dialect.copies(target):
        return _copy_rows(pages, target, table, names, progress)
    stamps = _datetime_columns(table)
    copied = 0
    for page in pages:
        chunk = []
        for row in page:
            values = dict(zip(names, row, strict=True))
            for name in stamps:
                if values[name] is not None:
                    values[name] = _utc(values[name])
            chunk.append(values)
        target.execute(insert(table).execution_options(insertmanyvalues_page_size=PAGE), chunk)
        copied += len(chunk)
        progress.advance(len(chunk))
    return copied


def _copy_rows(
    pages: Iterable[Sequence[Sequence[Any]]],
    target: Connection,
    table: Table,
    names: list[str],
    progress: Progress,
) -> int:
    """PostgreSQL's ``COPY … FROM STDIN`` in the target's transaction: the rows go as one
    stream, without a statement per page to build and parse (an INSERT executemany of the
    scratch rows cost ≈ 70 µs of client CPU per row, COPY a few).  Values are written as the
    INSERT would have bound them: datetimes as UTC, JSON values (None included: JSON ``null``,
    as SQLAlchemy's JSON type binds it) as JSONB."""
    json_columns = {
        index for index, name in enumerate(names) if isinstance(table.c[name].type, JSON)
    }
    copied = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with dialect.driver(target).cursor() as cursor, cursor.copy(statement) as stream:
        for page in pages:
            for row in page:
                values = list(row)
                for index, value in enumerate(values):
                    if index in json_columns:
                        values[index] = Jsonb(value)
                    elif isinstance(value, datetime):
                        values[index] = _utc(value)
                stream.write_row(values)
            copied += len(page)
            progress.advance(len(page))
    return copied


def _datetime_columns(table: Table) -> set[str]:
    out = set()
    for column in table.columns:
        try:
            if column.type.python_type is datetime:
                out.add(column.name)
        except NotImplementedError:  # SQLAlchemy: this column type has no Python type
            continue
    return out


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection that sees one instant of the database for all its reads."""
    with engine.connect() as connection:
        dialect.begin_snapshot(connection)
        try:
            yield connection
        finally:
            connection.rollback()


# --- folding in several processes ---------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A share of a parallel fold: the projections ``names`` over the log ``(after, upto]``."""

    names: tuple[str, ...]
    after: int
    upto: int


def counts_by_type(connection: Connection, upto: int) -> dict[str, int]:
    """Events of the log up to ``upto`` per detail-type (one scan, which both the plan and
    the progress bar's total are read from)."""
    return dict(
        connection.execute(
            select(events.c.detail_type, func.count())
            .where(events.c.seq <= upto)
            .group_by(events.c.detail_type)
        ).all()
    )


def _plan(
    connection: Connection, upto: int, workers: int, counts: dict[str, int] | None = None
) -> list[list[Part]]:
    """What each of ``workers`` processes folds, this process first.

    The projections are split into groups, the busiest (most events) first.  Then, when this
    process's group is one projection whose rows are merges of facts
    (:attr:`~eventlog.projection_contract.Projection.splittable` — ``tasks``/``stores``, most
    of a real log) and it outweighs the lightest other group, the first stretch of its events
    (by ``seq``) moves to that group, so that both carry about the same number of events: each
    reduces its range and this process merges the other's rows before writing
    (:func:`_fold_log`).
    """
    names = [p.name for p in projection_set.PROJECTIONS]
    workers = max(1, min(workers, len(names)))
    if workers == 1:
        return [[Part(tuple(names), 0, upto)]]
    counts = counts_by_type(connection, upto) if counts is None else counts
    load = {
        p.name: p.cost * sum(counts.get(kind, 0) for kind in p.detail_types)
        for p in projection_set.PROJECTIONS
    }
    groups: list[list[str]] = [[] for _ in range(workers)]
    weights = [0] * workers
    for name in sorted(names, key=lambda n: -load[n]):
        lightest = weights.index(min(weights))
        groups[lightest].append(name)
        weights[lightest] += load[name]
    busy = [(group, weight) for group, weight in zip(groups, weights, strict=True) if group]
    plan = [[Part(tuple(group), 0, upto)] for group, _ in busy]
    mine = busy[0][0]
    if len(plan) == 1 or len(mine) != 1:
        return plan
    projection = projection_set.selected(mine)[0]
    lightest = min(range(1, len(busy)), key=lambda index: busy[index][1])
    moved = int((busy[0][1] - busy[lightest][1] - START_COST) / 2 / projection.cost)
    if not projection.splittable or moved <= 0:
        return plan
    split = connection.execute(
        select(events.c.seq)
        .where(events.c.seq <= upto, events.c.detail_type.in_(sorted(projection.detail_types)))
        .order_by(events.c.seq)
        .offset(moved - 1)
        .limit(1)
    ).scalar_one()
    plan[0] = [Part(tuple(mine), split, upto)]
    plan[lightest].append(Part(tuple(mine), 0, split))
    return plan


def _default_workers(engine: Engine) -> int:
    if not dialect.folds_in_parallel(engine):
        return 1
    return min(os.cpu_count() or 1, len(projection_set.PROJECTIONS))


def fold_elsewhere(
    url: str, parts: Sequence[Part], batch: int
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """In a child process: fold ``parts`` of the log at ``url``; returns (events folded, the
    rows of their projections' tables, surrogate ids left out)."""
    engine = create_db_engine(url)
    try:
        with scratch() as folded_rows, engine.connect() as source:
            folded = 0
            tables: dict[str, list[dict[str, Any]]] = {}
            for part in parts:
                log_fold = projection_set.LogFold(folded_rows, part.names)
                folded += fold_into(
                    folded_rows,
                    source,
                    after_seq=part.after,
                    upto_seq=part.upto,
                    batch=batch,
                    log_fold=log_fold,
                    finish=False,
                )[0]
                # a reducer's rows go back as they are (a 1M-event log's share of tasks through
                # the scratch tables and back cost more than folding it); the rest is written
                for table, rows in log_fold.take_rows().items():
                    tables.setdefault(table.name, []).extend(rows)
                log_fold.finish()
            names = list(dict.fromkeys(name for part in parts for name in part.names))
            for table in projection_set.projection_tables(names):
                if table.name in tables:
                    continue
                surrogate = _surrogate(table)
                order = [table.c[surrogate]] if surrogate else list(table.primary_key.columns)
                tables[table.name] = [
                    {k: v for k, v in row._mapping.items() if k != surrogate}
                    for row in folded_rows.execute(select(table).order_by(*order))
                ]
            return folded, tables
    finally:
        engine.dispose()


def _fold_log(
    engine: Engine,
    source: Connection,
    folded_rows: Connection,
    upto: int,
    batch: int,
    progress: Progress,
    workers: int | None,
) -> tuple[int, projection_set.LogFold, dict[str, list[dict[str, Any]]]]:
    """Fold the log up to ``upto`` into the scratch tables, split over processes
    (:func:`_plan`): projections own disjoint tables and read nothing of each other's, so each
    can be folded on its own, in log order, and the results put side by side; a projection
    whose reducer merges (``tasks``/``stores``) may also be folded in two ranges of the log,
    whose rows this process merges.  Returns (events folded, this process's fold, the other
    processes' rows of the other projections by table), the fold *unfinished*: its reducers
    still hold their rows (the caller finishes it, or takes them), and the rows handed over
    are in no table yet (the caller writes them, or puts them in scratch: :func:`_into`)."""
    counts = counts_by_type(source, upto)
    total = sum(counts.get(kind, 0) for kind in projection_set.folded_detail_types())
    if workers is None:  # a process costs a second to start: worth it for big logs only
        workers = _default_workers(engine) if total >= PARALLEL_FROM else 1
    plan = _plan(source, upto, workers, counts)
    url = engine.url.render_as_string(hide_password=False)
    children = [_start_child(url, parts, batch) for parts in plan[1:]]
    (mine,) = plan[0]
    folded = 0
    log_fold = projection_set.LogFold(folded_rows, mine.names)
    handed: dict[str, list[dict[str, Any]]] = {}

    def gather(log_fold: projection_set.LogFold) -> None:
        """The children's rows: merged into this fold, or kept beside it (``handed``)."""
        nonlocal folded
        if not children:
            return
        others = sorted({name for parts in plan[1:] for part in parts for name in part.names})
        progress.start(f"folding the log ({', '.join(others)}, in other processes)", len(others))
        for child, parts in zip(children, plan[1:], strict=True):
            count, tables = _result(child)
            folded += count
            for name, rows in tables.items():
                if log_fold.merges(name):
                    log_fold.merge(name, rows)
                    continue
                handed.setdefault(name, []).extend(rows)
            progress.advance(len({name for part in parts for name in part.names}))

    try:
        progress.start(
            f"folding the log ({', '.join(mine.names)})" if children else "folding the log",
            _count_folded(source, mine.after, mine.upto, mine.names) if children else total,
        )
        folded += fold_into(
            folded_rows,
            source,
            after_seq=mine.after,
            upto_seq=mine.upto,
            batch=batch,
            progress=progress,
            before_finish=gather,
            log_fold=log_fold,
            finish=False,
        )[0]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return folded, log_fold, handed


def _into(target: Connection, handed: dict[str, list[dict[str, Any]]]) -> None:
    """Insert rows handed over by fold processes (:func:`_fold_log`) into ``target``'s tables."""
    for name, rows in handed.items():
        table = projection_set.PROJECTION_TABLES[name]
        for start in range(0, len(rows), COPY_BATCH):
            target.execute(insert(table), rows[start : start + COPY_BATCH])
    handed.clear()


def _start_child(url: str, parts: Sequence[Part], batch: int) -> subprocess.Popen[bytes]:
    """``python -m eventlog.rebuild``, told what to fold on its standard input (not its command
    line: the URL may hold a password).  A plain subprocess rather than multiprocessing, whose
    spawn re-imports the caller's main script."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.Popen(
        [sys.executable, "-m", "eventlog.rebuild"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdin is not None
    order = {
        "url": url,
        "parts": [[list(part.names), part.after, part.upto] for part in parts],
        "batch": batch,
    }
    child.stdin.write(json.dumps(order).encode())
    child.stdin.close()
    return child


def _result(child: subprocess.Popen[bytes]) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    assert child.stdout is not None
    data = child.stdout.read()
    if child.wait() != 0:
        raise RuntimeError(f"a fold process failed (exit {child.returncode}); see its errors")
    folded, tables = pickle.loads(data)  # our own child's answer
    return int(folded), tables


def _child_main() -> None:
    order = json.loads(sys.stdin.read())
    parts = [Part(tuple(names), int(after), int(upto)) for names, after, upto in order["parts"]]
    result = fold_elsewhere(order["url"], parts, int(order["batch"]))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()


# --- rebuild and check ------------------------------------------------------------------------


@dataclass
class RebuildResult:
    log_events: int
    folded: int
    rows: dict[str, int]
    seconds: float
    checksum: Checksum

    @property
    def rate(self) -> float:
        """Log events per second (the whole log is what a rebuild goes through)."""
        return self.log_events / self.seconds if self.seconds > 0 else 0.0


def rebuild(
    engine: Engine,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
    workers: int | None = None,
) -> RebuildResult:
    """Drop the projections and fold the whole log again (module docstring); then checksum.

    ``workers`` processes fold the projections side by side (default: one per core, up to one
    per projection, on PostgreSQL; one on SQLite).
    """
    progress = progress or _Silent()
    started = time.perf_counter()
    with scratch() as folded_rows:
        with engine.connect() as source:
            lift_statement_timeout(source)  # reading a big log is long by nature
            log_events, upto = log_bounds(source)
            folded, log_fold, handed = _fold_log(
                engine, source, folded_rows, upto, batch, progress, workers
            )
            source.rollback()
        rows: dict[str, int] = {}
        with engine.begin() as live:
            lift_statement_timeout(live)  # so is writing every projection row again
            tables = projection_set.projection_tables()
            if dialect.locks_by_writing(live):  # the first write holds appends off
                for table in tables:
                    live.execute(delete(table))
            dialect.lock_appends(live)
            # what was appended since: into this process's fold, and the rest into scratch
            late, _ = fold_into(
                folded_rows, live, after_seq=upto, batch=batch, log_fold=log_fold, finish=False
            )
            others = [p.name for p in projection_set.PROJECTIONS if p not in log_fold.projections]
            if others:
                if handed and _last_seq(live) > upto:  # late events may change handed rows
                    _into(folded_rows, handed)
                late += fold_into(folded_rows, live, after_seq=upto, batch=batch, only=others)[0]
            folded += late
            log_events += late
            # rows handed over by the reducers and the fold processes skip the scratch tables
            direct = {table.name: table_rows for table, table_rows in log_fold.take_rows().items()}
            direct.update(handed)
            log_fold.finish()
            if not dialect.locks_by_writing(live):
                for table in tables:
                    live.execute(delete(table))
            total = sum(len(table_rows) for table_rows in direct.values()) + sum(
                int(folded_rows.execute(select(func.count()).select_from(t)).scalar_one())
                for t in tables
                if t.name not in direct
            )
            progress.start("writing the projections", total)
            for table in reversed(tables):
                if table.name in direct:
                    rows[table.name] = _write_rows(live, table, direct[table.name], progress)
                else:
                    rows[table.name] = _copy(folded_rows, live, table, progress)
    seconds = time.perf_counter() - started
    progress.start("checksum", None)
    return RebuildResult(log_events, folded, rows, seconds, checksum_of(engine))


@dataclass(frozen=True)
class Difference:
    """The first place where the live projections differ from a fresh fold of the log."""

    table: str
    key: dict[str, Any]
    column: str | None  # None: the row exists on one side only
    live: Any
    rebuilt: Any

    def __str__(self) -> str:
        key = ", ".join(f"{k}={canonical(v)!r}" for k, v in self.key.items())
        if self.column is None:
            where = "live only" if self.rebuilt is None else "missing from live"
            return f"{self.table} [{key}]: row {where}"
        return (
            f"{self.table} [{key}] {self.column}: live {render([self.live])[1:-1]} "
            f"!= rebuilt {render([self.rebuilt])[1:-1]}"
        )


@dataclass
class CheckResult:
    difference: Difference | None
    log_events: int
    folded: int
    seconds: float
    checksum: Checksum | None = None
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.difference is None


def compare(live: Connection, rebuilt: Connection) -> tuple[Difference | None, dict[str, int]]:
    """The first difference between two databases' folded tables, table by table in name
    order, rows in natural-key order; and the rows compared per table."""
    counts: dict[str, int] = {}
    for spec in table_specs():
        if not spec.folded:
            continue
        width = len(spec.key)
        left = iter(_ordered(live, spec, spec.key + spec.columns))
        right = iter(_ordered(rebuilt, spec, spec.key + spec.columns))
        a, b = next(left, None), next(right, None)
        compared = 0
        while a is not None or b is not None:
            key_a = tuple(canonical(v) for v in a[:width]) if a is not None else None
            key_b = tuple(canonical(v) for v in b[:width]) if b is not None else None
            if key_b is None or (key_a is not None and key_a < key_b):
                return Difference(
                    spec.name, dict(zip(spec.key, a[:width], strict=True)), None, "present", None
                ), counts
            if key_a is None or key_b < key_a:
                return Difference(
                    spec.name, dict(zip(spec.key, b[:width], strict=True)), None, None, "present"
                ), counts
            for name, x, y in zip(spec.columns, a[width:], b[width:], strict=True):
                if canonical(x) != canonical(y):
                    return Difference(
                        spec.name, dict(zip(spec.key, a[:width], strict=True)), name, x, y
                    ), counts
            compared += 1
            a, b = next(left, None), next(right, None)
        counts[spec.name] = compared
    return None, counts


def check(
    engine: Engine,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
    workers: int | None = None,
) -> CheckResult:
    """Fold the log into scratch tables and compare them with the live projections, both as of
    one snapshot of the database; nothing live is written."""
    progress = progress or _Silent()
    started = time.perf_counter()
    with scratch() as folded_rows, _snapshot(engine) as live:
        log_events, upto = log_bounds(live)
        folded, log_fold, handed = _fold_log(
            engine, live, folded_rows, upto, batch, progress, workers
        )
        log_fold.finish()
        _into(folded_rows, handed)
        progress.start("comparing", None)
        difference, tables = compare(live, folded_rows)
        digest = checksum(live) if difference is None else None
    return CheckResult(
        difference, log_events, folded, time.perf_counter() - started, digest, tables
    )


if __name__ == "__main__":  # a fold process of a parallel rebuild (_start_child)
    _child_main()
