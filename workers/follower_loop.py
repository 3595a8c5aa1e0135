"""Where a log follower runs: a thread in the worker that consumes its pool's queue.

The archive pool (:mod:`workers.archive`) and the metrics pool with its alerts
(:mod:`workers.metrics`, :mod:`workers.alerts`) are followers of the log, not tasks: each pass
reads what was appended since its cursor and writes it out in one unit (a batch object, a
PutMetricData call).  They need the same things of the worker they live in, so these live here
once:

* one pass at a time (the loop's, or the final one at shutdown), every ``interval`` seconds;
* a backlog drained a few full passes at a time (``drain``), then the next follower's turn, so
  one follower's backlog never starves another, and a stop request is seen between passes;
* a pass that fails (the database or the endpoint is down) is logged and tried again at the
  next interval; its cursor has not moved, so nothing is lost;
* a stopping worker waits at most :data:`SHUTDOWN_WAIT` for the thread and then for a final
  pass, so a dead endpoint cannot hold up a warm shutdown; then every follower gives its cursor
  lease up, and what was not written stays behind the cursor for the next worker;
* :class:`FollowerStep`: a worker bootstep that runs the loop only in workers that consume the
  pool's queue (or every queue, as the embedded default does).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from celery import bootsteps

log = logging.getLogger(__name__)

#: Longest a stopping worker waits for the loop's thread, and then for the final pass.
SHUTDOWN_WAIT = 10.0
#: How long a follower's cursor lease lasts without renewal (renewed every pass).
LEASE = timedelta(seconds=120)


def follower_id() -> str:
    """Who holds a cursor lease: host, process and a random part, so two followers in one
    process (a worker and a replay's quiet period) never take each other's lease for their own."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Follower(Protocol):
    """What a loop drives: one unit of work per pass, and its lease.  A follower taken more
    than one pass a turn (``drain`` > 1) also says whether more is waiting (``backlog``)."""

    def run_once(self) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Followed:
    """A follower in a loop: its name (for logs) and how many full passes a turn may take."""

    name: str
    follower: Follower
    drain: int = 1


class FollowerLoop:
    """Runs its followers every ``interval`` seconds in a thread named ``name``."""

    def __init__(self, name: str, interval: float, followers: Sequence[Followed]) -> None:
        self.name = name
        self.interval = interval
        self.followers = tuple(followers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._passes = threading.Lock()  # one pass at a time: the loop's or the final one

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """One turn of every follower; a backlog is taken ``drain`` full passes at a time."""
        if not self._passes.acquire(timeout=SHUTDOWN_WAIT):
            return  # a pass is stuck on a dead endpoint; what it holds is kept for the next
        try:
            for followed in self.followers:
                try:
                    for done in range(1, followed.drain + 1):
                        followed.follower.run_once()
                        if done == followed.drain or self._stop.is_set():
                            break
                        if not getattr(followed.follower, "backlog", False):
                            break
                except Exception:  # the database or the endpoint may be down: next interval
                    log.exception("%s follower pass failed", followed.name)
        finally:
            self._passes.release()

    def stop(self) -> None:
        """Stop the thread, then one final pass, each within :data:`SHUTDOWN_WAIT`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_WAIT)
            self._thread = None
        last = threading.Thread(target=self.flush, name=f"{self.name}-final-pass", daemon=True)
        last.start()
        last.join(timeout=SHUTDOWN_WAIT)
        if last.is_alive():
            log.warning(
                "the final %s pass did not finish within %.0f s; the next worker writes what "
                "is left",
                self.name,
                SHUTDOWN_WAIT,
            )

    def flush(self) -> None:
        """One last turn of every follower, then give their leases up."""
        self.tick()
        for followed in self.followers:
            try:
                followed.follower.close()
            except Exception:
                log.debug("could not release the %s cursor lease", followed.name)


class FollowerStep(bootsteps.StartStopStep):
    """Starts a pool's :class:`FollowerLoop` (``create``) in a worker consuming ``queue``."""

    requires = ("celery.worker.components:Pool",)
    queue: str

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        consumed = parent.app.amqp.queues.consume_from
        self.enabled = not consumed or self.queue in consumed
