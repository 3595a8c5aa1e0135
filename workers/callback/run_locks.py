"""The run lock: one callback of a run in flight at a time, across worker processes.

Why: the server remembers only the last ``event_id`` it was sent, so two callbacks of one run
racing each other could land in the wrong order.  :func:`run_lock` serialises them.  With Redis
(several worker processes) it is a Redis lease that expires on its own if its holder dies, and
that a live holder renews every third of ``LOCK_LEASE`` for as long as its delivery takes; in
the embedded default every worker is a thread of this process and a local lock is enough.
Neither holds a database connection while the request is in flight.  Which status may go next
is decided in the database, under this lock (:mod:`workers.callback.sequence`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from workers.errors import RetryLater
from workers.redis_clients import redis_client
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: Seconds a run's callback lock outlives a dead holder.  A live holder renews it every third
#: of that for as long as its delivery takes, so the lease need not cover the slowest delivery
#: and a worker killed mid-delivery holds up its run's next callbacks for seconds, not minutes.
LOCK_LEASE = 15.0


class _LocalLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


@contextmanager
def run_lock(runtime: Runtime, run_uuid: str, timeout: float) -> Iterator[None]:
    """Hold the run's callback lock; :class:`RetryLater` if it stays taken for ``timeout``.

    With Redis (several worker processes) the lock is a Redis lease that expires on its own if
    its holder dies; without Redis every worker is a thread of this process and a local lock is
    enough.  Neither holds a database connection while the request is in flight.
    """
    settings = runtime.settings
    if settings.redis_url:
        client = runtime.resource("redis", lambda rt: redis_client(rt.settings))
        lease = client.lock(
            f"{settings.redis_key_prefix}callback-lock:{run_uuid}",
            timeout=LOCK_LEASE,
            blocking_timeout=timeout,
            thread_local=False,  # the renewing thread must see the holder's token
        )
        if not lease.acquire():
            raise RetryLater(f"run {run_uuid} is busy with another callback", 1.0)
        done = threading.Event()
        renewer = threading.Thread(
            target=_renew, args=(lease, done, run_uuid), name="callback-lock", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            try:
                lease.release()
            except redis.exceptions.LockError:  # the lease expired: nothing left to release
                log.warning("callback lock of run %s expired while held", run_uuid)
        return
    lock = runtime.resource("callback-locks", lambda _rt: _LocalLocks()).get(run_uuid)
    if not lock.acquire(timeout=timeout):
        raise RetryLater(f"run {run_uuid} is busy with another callback", 1.0)
    try:
        yield
    finally:
        lock.release()


def _renew(lease: Any, done: threading.Event, run_uuid: str) -> None:
    """Keep the lease of a live holder from expiring until ``done``."""
    while not done.wait(LOCK_LEASE / 3):
        try:
            lease.extend(LOCK_LEASE, replace_ttl=True)
        except redis.exceptions.LockError:
            log.warning("callback lock of run %s was lost while held", run_uuid)
            return
        except redis.RedisError as error:  # Redis away for a moment: try again next round
            log.warning("renewing the callback lock of run %s failed: %s", run_uuid, error)


__all__ = ["LOCK_LEASE", "run_lock"]
