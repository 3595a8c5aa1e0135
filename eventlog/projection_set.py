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

Each module defines its :class:`~eventlog.projection_contract.Projection` (its name, its
tables, the detail-types it folds, how it folds a batch and a whole log:
:mod:`eventlog.projection_contract`); :data:`PROJECTIONS` lists one of each, with its cost.
The detail-types are read from the module's ``FOLDS`` at call time, so a fold added there is
dispatched without touching this file.

``dead_letters`` is not a fold: it is written directly by whoever rejects or gives up on
something (:func:`eventlog.store.dead_letter`), so a rebuild leaves it alone; the checksum
covers it as it is (:data:`UNFOLDED_TABLES`).  ``run_checks`` (the reconciler's bookkeeping)
and ``log_cursors`` (where log followers are) are not read models at all and are in neither.

Folding an event twice is harmless (the imports pool also folds its own facts when it records
them; the second fold changes nothing).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table

from eventlog import import_projections, projections, resource_projections
from eventlog.projection_contract import Projection, Reducer, Row
from eventlog.tables import dead_letters

#: Every projection, in the order a rebuild folds and empties them.  The costs are CPU per
#: event folded, relative to ``resources`` (measured in a fold process on a simulated day of
#: 1M events: runs ≈ 78 µs, imports ≈ 800 µs — a few SQL statements each —, resources ≈ 55 µs):
#: what a parallel rebuild balances its processes by (:func:`eventlog.rebuild._plan`).
PROJECTIONS: tuple[Projection, ...] = (
    projections.Runs(cost=1.4),
    import_projections.Imports(cost=15.0),
    resource_projections.Resources(cost=1.0),
)
#: Read models that are written directly, not folded: in the checksum, never rebuilt.
UNFOLDED_TABLES: tuple[Table, ...] = (dead_letters,)
#: Every folded table by name.
PROJECTION_TABLES: dict[str, Table] = {t.name: t for p in PROJECTIONS for t in p.tables}


class LogFold:
    """Folds a long run of the log into the projections of ``only`` (all by default), batch
    by batch, for a rebuild: each projection's :meth:`~Projection.reducer` (a real one reduces
    the whole run in memory and writes once at :meth:`finish`; the default folds each batch as
    it comes, exactly as :func:`apply_all` does)."""

    def __init__(self, connection: Connection, only: Collection[str] | None = None) -> None:
        self.connection = connection
        self.projections = selected(only)
        self.reducers: dict[str, Reducer] = {
            p.name: p.reducer(connection) for p in self.projections
        }

    def fold(self, events: Sequence[Any]) -> None:
        for projection in self.projections:
            reducer = self.reducers.get(projection.name)
            if reducer is None:  # its rows were taken (take_rows): fold straight into the tables
                projection.fold(self.connection, events)
            else:
                folds = projection.folds
                reducer.add(event for event in events if event.detail_type in folds)

    def merges(self, table: str) -> bool:
        """Can rows of ``table`` folded from another part of the log be merged into this fold
        (:meth:`merge`)?  Only those of a :attr:`~Projection.splittable` projection: its rows
        are merges of facts, the same whatever ranges of the log they were reduced in."""
        return any(
            p.splittable and p.name in self.reducers and table in {t.name for t in p.tables}
            for p in self.projections
        )

    def merge(self, table: str, rows: Iterable[Row]) -> None:
        """Merge rows of ``table`` folded from another part of the log (see :meth:`merges`)."""
        for projection in self.projections:
            for owned in projection.tables:
                if owned.name == table:
                    self.reducers[projection.name].merge_rows(owned, rows)
                    return
        raise ValueError(f"{table} is not a table of this fold")

    def take_rows(self) -> dict[Table, list[Row]]:
        """The rows of the reducers that hand them over (:attr:`Reducer.hands_over`: the rows of
        tables that held none before this fold), which are then not written by :meth:`finish`:
        a rebuild copies them to the live tables itself instead of through its scratch tables."""
        taken: dict[Table, list[Row]] = {}
        for name, reducer in list(self.reducers.items()):
            if reducer.hands_over:
                taken.update(reducer.take_rows())
                del self.reducers[name]
        return taken

    def finish(self) -> None:
        for reducer in self.reducers.values():
            reducer.write(self.connection)


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
