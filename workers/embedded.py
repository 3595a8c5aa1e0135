"""Workers inside the current process, for the embedded default, the demo and tests.

Same tasks, same code paths as a ``celery worker`` process; only the transport differs (the
in-memory one when no ``REDIS_URL`` is set).  The worker runs Celery's ``solo`` pool in a
daemon thread and is stopped the way Celery's own test harness stops one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.worker import WorkController
from celery.worker import state as worker_state

from celeryconfig import QUEUES


class _ReadyWorkController(WorkController):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


@contextmanager
def embedded_worker(
    app: Celery,
    queues: Sequence[str] = QUEUES,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    hostname: str | None = None,
    start_timeout: float = 30.0,
) -> Iterator[WorkController]:
    """Run a worker consuming ``queues`` in a thread for the duration of the block."""
    worker = _ReadyWorkController(
        app=app,
        hostname=hostname or f"embedded-{threading.get_ident()}@localhost",
        queues=list(queues),
        pool=pool,
        concurrency=concurrency,
        loglevel="WARNING",
        ready_callback=None,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )

    def run() -> None:
        # Celery's tracer looks tasks up on the *current* app of the executing thread
        app.set_current()
        worker.start()

    app.set_default()
    thread = threading.Thread(target=run, name="embedded-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(start_timeout):
        raise RuntimeError("the embedded worker did not start (is the broker reachable?)")
    try:
        yield worker
    finally:
        worker_state.should_terminate = 0
        thread.join(30)
        worker_state.should_terminate = None
