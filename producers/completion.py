"""Waiting until events sent into the pipeline owe nothing: ``omics-events send --wait``.

An event is done when its outbox rows are finished; with ``archived`` also when the archive
follower's cursor has passed it (it is inside a batch object).  The wait polls the log (the
only record of progress every deployment has) rather than Celery results, which the pipeline
does not keep.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Engine

from eventlog import store
from workers.archive import archived_through

#: seconds between two looks at the log
POLL_INTERVAL = 0.1


def owed(engine: Engine, event_ids: Sequence[str], *, archived: bool = False) -> int:
    """Work the events still owe (and, with ``archived``, how many are not yet archived)."""
    ids = list(event_ids)
    with engine.connect() as connection:
        left = store.unfinished_for(connection, ids)
        if archived and ids:
            logged, covered = store.logged_counts(connection, ids, archived_through(connection))
            left += logged - covered
    return left


def wait_until_done(
    engine: Engine, event_ids: Sequence[str], timeout: float, *, archived: bool = False
) -> int:
    """Poll until the events owe nothing or ``timeout`` seconds passed; returns what is owed."""
    deadline = time.monotonic() + timeout
    while True:
        left = owed(engine, event_ids, archived=archived)
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(POLL_INTERVAL)
