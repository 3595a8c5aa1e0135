"""Folding the log into scratch tables and writing folded rows to the live tables.

Why its own module: the fold loop (read a batch of the log, hand it to the projections) and the
copy of scratch rows to the live tables are the hot paths of a rebuild (:mod:`eventlog.rebuild`
drives them); :mod:`eventlog.fold_processes` runs the same loop in fold processes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import (
    JSON,
    Connection,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.pool import StaticPool

from eventlog import dialect, projection_set
from eventlog.checksum import COPY_BATCH, _surrogate
from eventlog.entries import StoredEvent
from eventlog.resource_projections import PAGE
from eventlog.tables import events

#: Events read and folded per batch.
BATCH = 5000


class Progress(Protocol):
    """Where long steps report: ``start`` a stage of ``total`` units, ``advance`` through it."""

    def start(self, stage: str, total: int | None) -> None: ...

    def advance(self, units: int) -> None: ...


class _Silent:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, units: int) -> None:
        pass


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


def _into(target: Connection, handed: dict[str, list[dict[str, Any]]]) -> None:
    """Insert rows handed over by fold processes (:func:`_fold_log`) into ``target``'s tables."""
    for name, rows in handed.items():
        table = projection_set.PROJECTION_TABLES[name]
        for start in range(0, len(rows), COPY_BATCH):
            target.execute(insert(table), rows[start : start + COPY_BATCH])
    handed.clear()
