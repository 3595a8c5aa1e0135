"""What a projection is: the contract every read model folded from the log keeps.

Why a contract: the live path (:func:`eventlog.store.append_many`) and the rebuild
(:mod:`eventlog.rebuild`) fold every projection without knowing which one it is; they go
through the registry (:data:`eventlog.projection_set.PROJECTIONS`), which lists one
:class:`Projection` of each fold module.  What a projection can do beyond folding a batch is
said here, by attributes, not found out by probing the module:

* :meth:`Projection.apply_many` folds a batch of its events in the caller's transaction — a
  fold that is commutative and idempotent (each module's docstring says how);
* :meth:`Projection.reducer` folds a long run of the log (a rebuild's): by default batch by
  batch as it comes (:class:`BatchReducer`); a projection with a real :class:`Reducer` holds
  the whole run in memory and writes each row once;
* :attr:`Reducer.hands_over`: the reducer can give its rows up instead of writing them
  (:meth:`Reducer.take_rows`), for a rebuild to write straight to the live tables;
* :attr:`Projection.splittable`: its reducer merges rows reduced from other ranges of the log
  (:meth:`Reducer.merge_rows`), so a rebuild may fold its events in ranges side by side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Table

#: A row of a projection table, by column name.
Row = dict[str, Any]


class Reducer(ABC):
    """A fold of a long run of the log: :meth:`add` batches in log order, then :meth:`write`
    (or :meth:`take_rows`) once.  It may read the rows already stored through the connection
    its projection made it with."""

    #: whether :meth:`take_rows` hands the reduced rows over (rows of tables that held none
    #: before this fold) instead of :meth:`write` writing them
    hands_over: ClassVar[bool] = False

    @abstractmethod
    def add(self, events: Iterable[Any]) -> None:
        """Fold events of this projection, in the order given (log order)."""

    @abstractmethod
    def write(self, connection: Connection) -> None:
        """Write what was reduced into ``connection``'s tables."""

    def take_rows(self) -> dict[Table, list[Row]]:
        """What was reduced, by table, handed over instead of written (only if
        :attr:`hands_over`); the reducer is empty afterwards."""
        raise NotImplementedError(f"{type(self).__name__} does not hand its rows over")

    def merge_rows(self, table: Table, rows: Iterable[Row]) -> None:
        """Merge rows of ``table`` reduced from another range of the log (only for a
        :attr:`Projection.splittable` projection)."""
        raise NotImplementedError(f"{type(self).__name__} does not merge rows")


class Projection(ABC):
    """One fold module's read model: its tables, the detail-types it folds, how it folds."""

    #: its name in the registry (a rebuild's ``only``, its fold processes' shares)
    name: ClassVar[str]
    #: the tables it owns, in the order a rebuild empties them
    tables: ClassVar[tuple[Table, ...]]
    #: detail-type -> fold: read at call time, so a fold added there is dispatched as it is
    folds: ClassVar[Mapping[str, Callable[[Connection, Any], None]]]
    #: whether its reducer merges rows reduced from other ranges of the log
    splittable: ClassVar[bool] = False

    def __init__(self, *, cost: float = 1.0) -> None:
        #: CPU per event folded, relative to the other projections of the registry: what a
        #: parallel rebuild balances its processes by (:func:`eventlog.rebuild._plan`)
        self.cost = cost

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cost={self.cost})"

    @property
    def detail_types(self) -> frozenset[str]:
        return frozenset(self.folds)

    @abstractmethod
    def apply_many(self, connection: Connection, events: Sequence[Any]) -> None:
        """Fold a batch of stored events (in log order), in the caller's transaction."""

    def reducer(self, connection: Connection) -> Reducer:
        """A fold of a long run of the log into ``connection``'s tables (a rebuild's)."""
        return BatchReducer(self, connection)

    def fold(self, connection: Connection, events: Sequence[Any]) -> int:
        """Fold the events this projection cares about, in the given order; returns how many."""
        folds = self.folds
        relevant = [event for event in events if event.detail_type in folds]
        if relevant:
            self.apply_many(connection, relevant)
        return len(relevant)


class BatchReducer(Reducer):
    """The reducer of a projection that has none of its own: each batch is folded as it comes
    (:meth:`Projection.apply_many`), so there is nothing left to write at the end."""

    def __init__(self, projection: Projection, connection: Connection) -> None:
        self.projection = projection
        self.connection = connection

    def add(self, events: Iterable[Any]) -> None:
        batch = list(events)
        if batch:
            self.projection.apply_many(self.connection, batch)

    def write(self, connection: Connection) -> None:
        del connection  # written as it was folded
