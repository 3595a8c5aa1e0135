"""The fold processes of a parallel rebuild: what each folds (:class:`Part`) and how it runs.

Why its own module: a child (``python -m eventlog.rebuild``) folds its share of the log into
its own scratch tables and sends the rows back, pickled, on its standard output; this is that
child's side and the parent's way of starting it and reading its answer.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    select,
)

from eventlog import projection_set
from eventlog.checksum import _surrogate
from eventlog.db import create_db_engine
from eventlog.scratch_fold import fold_into, scratch
from eventlog.tables import events


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
