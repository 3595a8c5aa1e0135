"""Every projection of the log, in one place: which tables, which folds.

Why one registry: the live path (:func:`eventlog.store.append_many`, inside the appending
transaction) and the rebuild (:mod:`eventlog.rebuild`) must fold with *the same* functions, or a
rebuild would quietly disagree with what the workers saw.  Both call :func:`apply_all`; the
modules that own the folds stay where they are:

==================  =========================================  ================================
projection          tables                                     folds
==================  =========================================  ================================
``runs``            ``runs``, ``deliveries``                   :mod:`eventlog.projections`
``imports``         ``import_jobs``, ``import_sources``,       :mod:`eventlog.import_projections`
                    ``read_sets``
``resources``       ``tasks``, ``stores``                      :mod:`eventlog.resource_projections`
==================  =========================================  ================================

Each module exposes ``FOLDS`` (detail-type -> fold), ``TABLES`` (in the order a rebuild empties
them) and ``apply(connection, stored_event)``, a fold that is commutative and idempotent; a
module may add ``apply_many(connection, events)`` for batches.  The detail-types are read from
``FOLDS`` at call time, so a fold added there is dispatched without touching this file.

``dead_letters`` is not a fold: it is written directly by whoever rejects or gives up on
something (:func:`eventlog.store.dead_letter`), so a rebuild leaves it alone; the checksum
covers it as it is (:data:`UNFOLDED_TABLES`).  ``run_checks`` (the reconciler's bookkeeping)
and ``log_cursors`` (where log followers are) are not read models at all and are in neither.

Folding an event twice is harmless (the imports pool also folds its own facts when it records
them; the second fold changes nothing).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, Table

from eventlog import import_projections, projections, resource_projections
from eventlog.tables import dead_letters


@dataclass(frozen=True)
class Projection:
    """One module of folds and the tables it owns."""

    name: str
    module: ModuleType
    #: CPU per event folded, relative to ``resources`` (measured in a fold process on a
    #: simulated day of 1M events: runs ≈ 78 µs, imports ≈ 800 µs — a few SQL statements
    #: each —, resources ≈ 55 µs): what a parallel rebuild balances its processes by
    #: (:func:`eventlog.rebuild._plan`).
    cost: float = 1.0

    @property
    def detail_types(self) -> frozenset[str]:
        return frozenset(self.module.FOLDS)

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(self.module.TABLES)

    def fold(self, connection: Connection, events: Sequence[Any]) -> int:
        """Fold the events this projection cares about, in the given order; returns how many."""
        folds = self.module.FOLDS
        relevant = [event for event in events if event.detail_type in folds]
        if not relevant:
            return 0
        many = getattr(self.module, "apply_many", None)
        if many is not None:
            many(connection, relevant)
        else:
            apply = self.module.apply
            for event in relevant:
                apply(connection, event)
        return len(relevant)


class LogFold:
    """Folds a long run of the log into the projections of ``only`` (all by default), batch
    by batch, for a rebuild: a projection module with a ``Reducer`` (``Reducer(connection)``,
    ``add(events)``, ``write(connection)``; it may read the rows already stored through the
    connection it is given) reduces the whole run in memory and writes once at :meth:`finish`;
    the others fold each batch as it comes, exactly as :func:`apply_all` does."""

    def __init__(self, connection: Connection, only: Collection[str] | None = None) -> None:
        self.connection = connection
        self.projections = selected(only)
        self.reducers = {
            p.name: p.module.Reducer(connection)
            for p in self.projections
            if hasattr(p.module, "Reducer")
        }

    def fold(self, events: Sequence[Any]) -> None:
        for projection in self.projections:
            reducer = self.reducers.get(projection.name)
            if reducer is None:
                projection.fold(self.connection, events)
            else:
                folds = projection.module.FOLDS
                reducer.add(event for event in events if event.detail_type in folds)

    def merges(self, table: str) -> bool:
        """Can rows of ``table`` folded from another part of the log be merged into this fold
        (:meth:`merge`)?  Only a projection whose reducer has ``merge_rows``: its rows are
        merges of facts, the same whatever ranges of the log they were reduced in."""
        return any(
            table in {t.name for t in p.tables} and hasattr(self.reducers.get(p.name), "merge_rows")
            for p in self.projections
        )

    def merge(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Merge rows of ``table`` folded from another part of the log (see :meth:`merges`)."""
        for projection in self.projections:
            for owned in projection.tables:
                if owned.name == table:
                    self.reducers[projection.name].merge_rows(owned, rows)
                    return
        raise ValueError(f"{table} is not a table of this fold")

    def take_rows(self) -> dict[Table, list[dict[str, Any]]]:
        """The rows of the reducers that can hand them over (``take_rows()``: the rows of a
        table that held none before this fold), which are then not written by :meth:`finish`: a
        rebuild copies them to the live tables itself instead of through its scratch tables."""
        taken: dict[Table, list[dict[str, Any]]] = {}
        for name, reducer in list(self.reducers.items()):
            if hasattr(reducer, "take_rows"):
                taken.update(reducer.take_rows())
                del self.reducers[name]
        return taken

    def finish(self) -> None:
        for reducer in self.reducers.values():
            reducer.write(self.connection)


def splittable(projection: Projection) -> bool:
    """May a rebuild fold this projection's events in ranges of the log, side by side, and
    merge the rows (:meth:`LogFold.merges`)?"""
    return hasattr(getattr(projection.module, "Reducer", None), "merge_rows")


PROJECTIONS: tuple[Projection, ...] = (
    Projection("runs", projections, cost=1.4),
    Projection("imports", import_projections, cost=15.0),
    Projection("resources", resource_projections, cost=1.0),
)
#: Read models that are written directly, not folded: in the checksum, never rebuilt.
UNFOLDED_TABLES: tuple[Table, ...] = (dead_letters,)
#: Every folded table by name.
PROJECTION_TABLES: dict[str, Table] = {t.name: t for p in PROJECTIONS for t in p.tables}


def selected(only: Collection[str] | None = None) -> tuple[Projection, ...]:
    """The projections named in ``only`` (all of them by default), in registry order."""
    if only is None:
        return PROJECTIONS
    unknown = set(only) - {p.name for p in PROJECTIONS}
    if unknown:
        raise ValueError(f"no projection named {', '.join(sorted(unknown))}")
    return tuple(p for p in PROJECTIONS if p.name in only)


def folded_detail_types(only: Collection[str] | None = None) -> frozenset[str]:
    """Every detail-type some projection folds (the rest of the log folds to nothing)."""
    return frozenset().union(*(p.detail_types for p in selected(only)))


def projection_tables(only: Collection[str] | None = None) -> tuple[Table, ...]:
    """Every folded table, in the order a rebuild empties them."""
    return tuple(table for p in selected(only) for table in p.tables)


def apply_all(
    connection: Connection, events: Sequence[Any], *, only: Collection[str] | None = None
) -> None:
    """Fold stored events (in log order) into every projection (or those in ``only``), in the
    caller's transaction.

    The projections own disjoint tables and read nothing of each other's, so folding each
    one's share of the batch in turn is the same as folding event by event — and a rebuild may
    fold them in separate processes (:mod:`eventlog.rebuild`).
    """
    for projection in selected(only):
        projection.fold(connection, events)


def apply(connection: Connection, event: Any) -> None:
    """Fold one stored event into every projection."""
    apply_all(connection, [event])
