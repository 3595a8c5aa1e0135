"""The Celery side of a stage: retries, dead letters and idempotence around a plain function.

A stage is a function ``(runtime, event_id) -> outcome``.  :class:`StageTask` wraps it with
Celery's own retry machinery (``autoretry_for`` with exponential backoff, jitter and a cap) and
with the two rules every pool follows:

* a :class:`~workers.errors.PermanentError` is dead-lettered at once and the work finished;
* a task that exhausts its retries is dead-lettered too (``on_failure``), so a failure is
  always visible in ``dead_letters`` rather than only in a log line.

Delays are capped by ``TASK_RETRY_BACKOFF_MAX`` (≤ 120 s) so that a retry countdown never
approaches the broker's visibility timeout; anything longer is stored in the outbox
(``not_before``): a stage raises :class:`~workers.errors.RetryLater` with the delay it wants, and
the task either retries through Celery (short delay, retries left) or defers the outbox row and
returns, leaving the sweeper to publish it when due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery, Task
from sqlalchemy import Connection

from eventlog import store
from eventlog.store import StoredEvent
from workers.errors import PermanentError, RetryLater
from workers.logs import event_context
from workers.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)

StageFunction = Callable[[Runtime, str], str]


class StageTask(Task):
    """Base class of every pipeline task; subclasses are made by :func:`register_stage`."""

    abstract = True
    stage: str = ""
    handler: StageFunction
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (Exception,)
    dont_autoretry_for = (PermanentError,)
    retry_backoff = True
    retry_jitter = True

    def run(self, event_id: str) -> str:
        with event_context(event_id, stage=self.stage):
            return self._run(event_id)

    def _run(self, event_id: str) -> str:
        runtime = runtime_of(self.app)
        try:
            outcome = type(self).handler(runtime, event_id)
        except PermanentError as error:
            self._dead_letter(runtime, event_id, error.reason, error.raw, "dead-lettered")
            return "dead-lettered"
        except RetryLater as wait:
            return self._later(runtime, event_id, wait)
        log.debug("%s %s: %s", self.stage, event_id, outcome)
        _touch(runtime.settings.health_file)  # progress, for `omics-events health`
        return outcome

    def _later(self, runtime: Runtime, event_id: str, wait: RetryLater) -> str:
        """A short wait is a Celery retry; a long one (or none left) is stored in the outbox."""
        short = wait.delay <= runtime.settings.task_retry_backoff_max
        if short and self.request.retries < (self.max_retries or 0) and not self.request.is_eager:
            raise self.retry(countdown=wait.delay, exc=wait)
        log.info(
            "%s waits %.0f s: %s",
            self.stage,
            wait.delay,
            wait.reason,
            extra={"event_id": event_id, "stage": self.stage},
        )
        with runtime.engine.begin() as connection:
            store.defer(
                connection, event_id, self.stage, store.utcnow() + timedelta(seconds=wait.delay)
            )
        return "deferred"

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        event_id = args[0] if args else kwargs.get("event_id", "")
        reason = f"{self.stage} failed after {self.request.retries} retries: {exc!r}"[:2000]
        try:
            self._dead_letter(runtime_of(self.app), event_id, reason, b"", "failed")
        except Exception:  # the database may be what failed; the sweeper will try again
            log.exception("could not dead-letter %s of %s", self.stage, event_id)

    def _dead_letter(
        self, runtime: Runtime, event_id: str, reason: str, raw: bytes, outcome: str
    ) -> None:
        log.warning(
            "%s dead-lettered: %s",
            self.stage,
            reason,
            extra={"event_id": event_id, "stage": self.stage},
        )
        with runtime.engine.begin() as connection:
            event = store.get(connection, event_id)
            store.dead_letter(
                connection,
                kind="stage",
                stage=self.stage,
                event_id=event_id,
                detail_type=event.detail_type if event else None,
                reason=reason,
                raw=raw,
            )
            woken: list[str] = []
            if event is not None and store.complete(connection, event_id, self.stage, outcome):
                woken = _wake_successors(connection, self.stage, event)
        runtime.publish(woken)


def register_stage(app: Celery, stage: str, handler: StageFunction, name: str) -> Task:
    """Register ``handler`` as the task ``name`` running on queue ``stage``."""
    settings = runtime_of(app).settings
    task_class = type(
        f"{stage.title()}Task",
        (StageTask,),
        {
            "name": name,
            "stage": stage,
            "handler": staticmethod(handler),
            "max_retries": settings.task_max_retries,
            "retry_backoff_max": settings.task_retry_backoff_max,
        },
    )
    return app.register_task(task_class())


def _wake_successors(connection: Connection, stage: str, event: StoredEvent) -> list[str]:
    """A run status given up on still lets the run's next callback go (workers/callback/
    sequences them): the callbacks it woke, to publish after commit."""
    from workers.callback import ENRICH_STAGE, STAGE, wake_callbacks  # the stage on top

    if stage not in {ENRICH_STAGE, STAGE} or not event.resource_id:
        return []
    return wake_callbacks(connection, event.resource_id)


def _touch(path: str | None) -> None:
    """Record progress: a worker that is up but finishes nothing is not healthy."""
    if path:
        try:
            Path(path).touch()
        except OSError as error:
            log.debug("cannot touch health file %s: %s", path, error)
