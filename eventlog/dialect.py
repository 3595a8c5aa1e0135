"""What PostgreSQL and SQLite do differently, as named operations: the one module of the
package that asks which database a connection is on.

Why one module: the log runs on PostgreSQL in production and on an SQLite file embedded (the
demo, small installs, most tests), and both must give the same log and the same projections.
The differences are few — how to lock, how to load rows in bulk, how to bound a statement —
and each caller wants the *operation* ("hold the append lock", "lock this row until commit"),
not the test of the dialect.  With them here, a reader of the store or of a fold sees what is
done, and this file shows everything that differs:

==============================  ==================================  ============================
operation                       PostgreSQL                          SQLite
==============================  ==================================  ============================
:func:`insert`                  ``INSERT … ON CONFLICT``            the same (its own dialect)
:func:`lock_appends`            transaction advisory lock           nothing: one writer at a
                                                                    time, the first write locks
:func:`locks_by_writing`        False                               True
:func:`for_update`              ``SELECT … FOR UPDATE``             plain ``SELECT``
:func:`skip_locked`             ``FOR UPDATE SKIP LOCKED``          plain ``SELECT``
:func:`lift_statement_timeout`  ``SET LOCAL statement_timeout = 0``  nothing (no timeout set)
:func:`copies`                  True: ``COPY … FROM STDIN``         False: an executemany
:func:`byte_order`              ``COLLATE "C"`` on text             as is (binary collation)
:func:`begin_snapshot`          ``REPEATABLE READ``, read only      ``BEGIN`` (a WAL snapshot)
:func:`key_pairs`               ``unnest`` of two arrays            a temporary table of keys
:func:`folds_in_parallel`       True                                False (small logs, a file)
==============================  ==================================  ============================

Engines themselves (drivers, pragmas, session settings) are built in :mod:`eventlog.db`, from a
URL rather than from a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from psycopg import Connection as DriverConnection
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy import (
    insert as plain_insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

#: Arbitrary constant naming the advisory lock that orders appends on PostgreSQL.
APPEND_LOCK_KEY = 0x0E1C_5EED

_Query = TypeVar("_Query", bound=Select[Any])


def _is_postgresql(bind: Connection | Engine) -> bool:
    return bind.dialect.name == "postgresql"


def insert(connection: Connection, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the connection's dialect (PostgreSQL or SQLite).

    Every idempotent write of the log and the projections goes through this one helper.
    """
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {name!r}")


def lock_appends(connection: Connection) -> None:
    """Hold the append lock until the transaction ends, so ``seq`` order is commit order (the
    store's docstring says why).  SQLite serialises writers: nothing to take here — the
    transaction's first write takes the database's lock (:func:`locks_by_writing`)."""
    if _is_postgresql(connection):
        connection.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))


def locks_by_writing(connection: Connection) -> bool:
    """Whether appends are held off by writing rather than by :func:`lock_appends` (SQLite):
    a step that must not let an append in must then write first."""
    return not _is_postgresql(connection)


def for_update(connection: Connection, query: _Query) -> _Query:
    """``query`` locking the rows it reads until commit (PostgreSQL), so that concurrent
    read-modify-writes of one row cannot lose updates; SQLite serialises writers anyway."""
    return query.with_for_update() if _is_postgresql(connection) else query


def skip_locked(connection: Connection, query: _Query) -> _Query:
    """``query`` locking its rows and skipping those another transaction holds (PostgreSQL's
    ``FOR UPDATE SKIP LOCKED``), so concurrent claimers take different rows."""
    return query.with_for_update(skip_locked=True) if _is_postgresql(connection) else query


def lift_statement_timeout(connection: Connection) -> None:
    """No statement timeout until the current transaction ends (PostgreSQL; else nothing).

    For work that is long by nature and has no dead peer to wait for: a rebuild's reads and
    swap, a migration.  ``SET LOCAL``: the pooled connection gets its limit back at the end.
    """
    if _is_postgresql(connection):
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")


def copies(connection: Connection) -> bool:
    """Whether rows can be loaded with ``COPY … FROM STDIN`` (:func:`driver`); else they go as
    an executemany."""
    return _is_postgresql(connection)


def driver(connection: Connection) -> DriverConnection[Any]:
    """The psycopg connection under ``connection``, for ``COPY`` (only where :func:`copies`)."""
    raw = connection.connection.driver_connection
    assert isinstance(raw, DriverConnection)
    return raw


def byte_order(connection: Connection, column: Column[Any]) -> ColumnElement[Any]:
    """``column`` for an ORDER BY in byte order, whatever the database's locale (a text column
    ``COLLATE "C"`` on PostgreSQL; SQLite compares bytes already)."""
    if _is_postgresql(connection) and isinstance(column.type, String | Text):
        return column.collate("C")
    return column


def begin_snapshot(connection: Connection) -> None:
    """Make ``connection``'s next reads one consistent, read-only view of the database, until
    it rolls back: ``REPEATABLE READ`` on PostgreSQL (with no statement timeout: one read of a
    whole table may take long); on SQLite a transaction opened by hand, since pysqlite opens
    none for SELECTs — a WAL snapshot."""
    if _is_postgresql(connection):
        connection.execution_options(isolation_level="REPEATABLE READ")
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        lift_statement_timeout(connection)
    else:
        connection.exec_driver_sql("BEGIN")


#: Where SQLite lookups put the keys they look for (a temporary table: per connection).
_WANTED = Table(
    "resource_fold_keys",
    MetaData(),
    Column("scope", String),
    Column("ident", String),
    prefixes=["TEMPORARY"],
)


def key_pairs(connection: Connection, pairs: Sequence[tuple[str, str]]) -> Any:
    """A selectable of ``pairs`` (columns ``scope``, ``ident``) to join a two-column key's index
    with, by a statement of constant text (compiled and parsed once, whatever the count):
    ``unnest`` of two arrays on PostgreSQL; a temporary table of the pairs on SQLite."""
    if _is_postgresql(connection):
        return (
            func.unnest(
                bindparam("scopes", [pair[0] for pair in pairs], type_=ARRAY(String)),
                bindparam("idents", [pair[1] for pair in pairs], type_=ARRAY(String)),
            )
            .table_valued("scope", "ident")
            .render_derived()
        )
    _WANTED.create(connection, checkfirst=True)
    connection.execute(delete(_WANTED))
    connection.execute(plain_insert(_WANTED), [{"scope": a, "ident": b} for a, b in pairs])
    return _WANTED


def folds_in_parallel(engine: Engine) -> bool:
    """Whether a rebuild may fold in several processes reading the database side by side
    (PostgreSQL); the embedded SQLite default has small logs in one file."""
    return _is_postgresql(engine)
