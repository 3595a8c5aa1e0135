"""Tables, keys and canonical rows of the projections; their checksum and their comparison.

Why its own module: the checksum is what a rebuild prints and ``rebuild --check`` compares
(:mod:`eventlog.rebuild`, whose docstring says what goes into it and what is left out); a
replay check and the benchmarks checksum databases too, without folding anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Table,
    select,
)

from eventlog import dialect, projection_set

#: Rows inserted per statement when the scratch rows are copied to the live tables.
COPY_BATCH = 2000
#: Columns left out of the checksum (not of ``--check``): when *this database* received
#: something, which a replay from the archive cannot reproduce (module docstring).
RECEPTION_COLUMNS: dict[str, frozenset[str]] = {
    "runs": frozenset({"first_seen_at", "last_seen_at"}),
    "dead_letters": frozenset({"created_at"}),
}


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


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection that sees one instant of the database for all its reads."""
    with engine.connect() as connection:
        dialect.begin_snapshot(connection)
        try:
            yield connection
        finally:
            connection.rollback()


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
