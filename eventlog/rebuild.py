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

This module is the driver (the plan of a parallel fold, the swap under the append lock, the
check); the pieces it drives live beside it: :mod:`eventlog.scratch_fold` (the fold loop, the
scratch tables, the copy to the live tables), :mod:`eventlog.fold_processes` (the fold
processes) and :mod:`eventlog.checksum` (canonical rows, the checksum, the comparison).  Every
name is still importable from here.

``dead_letters`` is not a fold (it is written directly, see :mod:`eventlog.projection_set`): the
rebuild leaves it as it is and the checksum covers it as it is.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    select,
)

from eventlog import dialect, projection_set
from eventlog.checksum import (
    COPY_BATCH,
    RECEPTION_COLUMNS,
    Checksum,
    Difference,
    TableSpec,
    TableSum,
    _snapshot,
    canonical,
    checksum,
    checksum_of,
    compare,
    render,
    table_spec,
    table_specs,
)
from eventlog.dialect import lift_statement_timeout
from eventlog.fold_processes import (
    Part,
    _child_main,
    _result,
    _start_child,
    counts_by_type,
    fold_elsewhere,
)
from eventlog.scratch_fold import (
    BATCH,
    Progress,
    _copy,
    _count_folded,
    _into,
    _last_seq,
    _Silent,
    _write_rows,
    fold_into,
    log_bounds,
    scratch,
)
from eventlog.tables import events

#: Every name this module has always offered, wherever it now lives.
__all__ = [
    "BATCH",
    "COPY_BATCH",
    "PARALLEL_FROM",
    "RECEPTION_COLUMNS",
    "START_COST",
    "CheckResult",
    "Checksum",
    "Difference",
    "Part",
    "Progress",
    "RebuildResult",
    "TableSpec",
    "TableSum",
    "canonical",
    "check",
    "checksum",
    "checksum_of",
    "compare",
    "counts_by_type",
    "fold_elsewhere",
    "fold_into",
    "log_bounds",
    "rebuild",
    "render",
    "scratch",
    "table_spec",
    "table_specs",
]


#: Folded events from which a rebuild folds its projections in parallel processes.
PARALLEL_FROM = 20_000
#: What a fold process costs beyond its events, in ``resources`` events (:attr:`eventlog.
#: projection_contract.Projection.cost` units) folded meanwhile: ≈ 0.75 s of CPU to start, less
#: what it saves this process (its rows come back as they are, written straight to the live
#: tables) — measured on 100k and 1M events of a simulated day: with 10,000 both processes
#: end their folds within 0.2 s of each other.  A parallel rebuild gives it that many fewer
#: than half (:func:`_plan`).
START_COST = 10_000


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
        nonlocal folded
        if children:
            folded += _gather(children, plan[1:], log_fold, handed, progress)

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


def _gather(
    children: Sequence[subprocess.Popen[bytes]],
    plan: Sequence[Sequence[Part]],
    log_fold: projection_set.LogFold,
    handed: dict[str, list[dict[str, Any]]],
    progress: Progress,
) -> int:
    """The children's rows (each folded its ``plan`` entry): merged into ``log_fold``, or kept
    beside it (``handed``); returns the events they folded."""
    folded = 0
    others = sorted({name for parts in plan for part in parts for name in part.names})
    progress.start(f"folding the log ({', '.join(others)}, in other processes)", len(others))
    for child, parts in zip(children, plan, strict=True):
        count, tables = _result(child)
        folded += count
        for name, rows in tables.items():
            if log_fold.merges(name):
                log_fold.merge(name, rows)
                continue
            handed.setdefault(name, []).extend(rows)
        progress.advance(len({name for part in parts for name in part.names}))
    return folded


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
        late, rows = _swap(engine, folded_rows, log_fold, handed, upto, batch, progress)
        folded += late
        log_events += late
    seconds = time.perf_counter() - started
    progress.start("checksum", None)
    return RebuildResult(log_events, folded, rows, seconds, checksum_of(engine))


def _swap(
    engine: Engine,
    folded_rows: Connection,
    log_fold: projection_set.LogFold,
    handed: dict[str, list[dict[str, Any]]],
    upto: int,
    batch: int,
    progress: Progress,
) -> tuple[int, dict[str, int]]:
    """Step 2 of a rebuild (module docstring), in one transaction under the append lock: fold
    what was appended after ``upto``, replace every projection row with the folded ones;
    returns (events folded late, rows written per table)."""
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
    return late, rows


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
