"""Read models of read-set imports folded from the log: ``import_jobs``, ``import_sources``,
``read_sets``.

Why folds: the log is the truth (docs/design.md §3 step 6), so what ``omics-events imports`` shows,
and what the imports pool reads to decide what to batch next, must be rebuildable from it.
:func:`apply` folds one stored event.  :func:`eventlog.store.append_many` calls it (through
:mod:`eventlog.projection_set`) for every new event in the appending transaction; the imports
pool folds its own facts once more when it records them, which changes nothing.  A rebuild
(:mod:`eventlog.rebuild`, or :func:`rebuild` for these tables alone) empties the tables and
folds the whole log again in log order.

Why arrival order does not matter: EventBridge delivers out of order and twice, two workers
append facts about the same source concurrently (a FASTQ pair's R1 and R2), and a rebuild folds
in log order what the live fold saw in another.  So every field is chosen by a total order over
the facts that can set it, never by "last write wins":

* a source's outcome is the maximum of ``(final, attempt, rank)`` over its facts, with
  ``waiting < orphaned < ready < planned < submitted < failed`` within one attempt, a later
  attempt above an earlier one, and the final outcomes (``imported``, ``dead``, ``rejected``)
  above everything: a source is never "un-imported";
* a FASTQ pair's fields come from its R1 when the R1 has been seen, else from its R2;
* a job's status is the maximum of ``(rank, status)``, ``SUBMITTED < IN_PROGRESS < CANCELLING <``
  the terminal statuses: a terminal status is never replaced;
* a read set's status is the maximum of ``(event time, rank, status)``: read sets go back and
  forth (ACTIVE ⇄ ARCHIVED), so time comes first, and the rank orders a same-second pair
  (PROCESSING_UPLOAD then ACTIVE).

A maximum under a total order is commutative and idempotent, so the same events in any order,
duplicates included, fold to the same rows, and folding an event twice is harmless.  :func:`apply`
never raises for odd content: an event it cannot read folds to nothing.

Where things are: this module holds the entry points (:data:`FOLDS`, :func:`apply`, the
:class:`Imports` projection, :func:`rebuild`, :func:`snapshot`) and re-exports every name it
always had; the folds themselves are in :mod:`eventlog.import_folds`, the ranks, row readers and
merges they share in :mod:`eventlog.import_rows`.

The pipeline facts folded here are appended by the imports pool (``workers/imports/``); their
detail-types are defined here, next to their folds, because ``eventlog`` may not import workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import DBAPIError

from eventlog import projection_contract
from eventlog.entries import stored_event
from eventlog.import_folds import (
    _fold_checked,
    _fold_failed,
    _fold_job_status,
    _fold_mate_missing,
    _fold_planned,
    _fold_read_set,
    _fold_registered,
    _fold_rejected,
    _fold_started,
)
from eventlog.import_rows import (
    FAILED_OUTCOMES,
    FINAL_OUTCOMES,
    OUTCOME_RANK,
    READ_SET_RANK,
    outcome_key,
)
from eventlog.tables import events, import_jobs, import_sources, read_sets
from schemas.vocabulary import (
    FILE_REGISTERED,
    FILE_REJECTED,
    IMPORT_JOB_STATUS_CHANGE,
    JOB_CHECKED,
    JOB_PLANNED,
    JOB_RANK,
    JOB_STARTED,
    JOB_TERMINAL,
    MATE_MISSING,
    READ_SET_STATUS_CHANGE,
    SOURCES_FAILED,
)

#: Every name this module has always offered, wherever it now lives (the detail-types too).
__all__ = [
    "AWS_DETAIL_TYPES",
    "FAILED_OUTCOMES",
    "FILE_REGISTERED",
    "FILE_REJECTED",
    "FINAL_OUTCOMES",
    "FOLDS",
    "IMPORT_JOB_STATUS_CHANGE",
    "JOB_CHECKED",
    "JOB_PLANNED",
    "JOB_RANK",
    "JOB_STARTED",
    "JOB_TERMINAL",
    "MATE_MISSING",
    "OUTCOME_RANK",
    "READ_SET_RANK",
    "READ_SET_STATUS_CHANGE",
    "SOURCES_FAILED",
    "TABLES",
    "Imports",
    "apply",
    "outcome_key",
    "rebuild",
    "snapshot",
]

log = logging.getLogger(__name__)

# --- the entry points ---------------------------------------------------------------------------

#: detail-type -> its fold.
FOLDS: dict[str, Callable[[Connection, Any], None]] = {
    FILE_REGISTERED: _fold_registered,
    FILE_REJECTED: _fold_rejected,
    MATE_MISSING: _fold_mate_missing,
    JOB_PLANNED: _fold_planned,
    JOB_STARTED: _fold_started,
    JOB_CHECKED: _fold_checked,
    SOURCES_FAILED: _fold_failed,
    IMPORT_JOB_STATUS_CHANGE: _fold_job_status,
    READ_SET_STATUS_CHANGE: _fold_read_set,
}
#: HealthOmics' own events among them; the rest must be the pipeline's facts.
AWS_DETAIL_TYPES = frozenset({IMPORT_JOB_STATUS_CHANGE, READ_SET_STATUS_CHANGE})

#: Projection tables in the order a rebuild empties them.
TABLES = (read_sets, import_sources, import_jobs)


def apply(connection: Connection, event: Any) -> None:
    """Fold one stored event (:class:`eventlog.entries.StoredEvent`) into the import projections.

    Idempotent and order-independent (module docstring); an unrelated event folds to nothing.
    """
    fold = FOLDS.get(event.detail_type)
    if fold is None:
        return
    if (event.detail_type in AWS_DETAIL_TYPES) != (event.origin == "aws"):
        return  # a pipeline look-alike of an AWS event, or an AWS look-alike of our facts
    try:
        fold(connection, event)
    except DBAPIError:
        raise  # the transaction is broken: the caller's retry folds it again
    except Exception:  # odd content: a projection must never refuse an event the log accepted
        log.exception(
            "could not fold %s %s into the import projections", event.detail_type, event.event_id
        )


class Imports(projection_contract.Projection):
    """``import_jobs``, ``import_sources``, ``read_sets``: folded event by event in SQL (each
    fold reads and locks the rows it changes), batch by batch in a rebuild too."""

    name = "imports"
    tables = TABLES
    folds = FOLDS

    def apply_many(self, connection: Connection, events: Sequence[Any]) -> None:
        for event in events:
            apply(connection, event)


def rebuild(connection: Connection, *, batch: int = 1000) -> int:
    """Empty the import projections and fold the log again, in log order; returns events folded."""
    for table in TABLES:
        connection.execute(delete(table))
    folded = 0
    after = 0
    while True:
        rows = connection.execute(
            select(events)
            .where(events.c.seq > after, events.c.detail_type.in_(list(FOLDS)))
            .order_by(events.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return folded
        for row in rows:
            apply(connection, stored_event(row))
            folded += 1
        after = rows[-1]._mapping["seq"]


def snapshot(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The projections' folded columns, sorted: equal after a rebuild (``updated_at`` aside,
    which is the newest fact's time and so equal too)."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        key = next(iter(table.primary_key.columns))
        rows: Iterable[Any] = connection.execute(select(table).order_by(key)).all()
        result[table.name] = [tuple(row) for row in rows]
    return result
