"""``omics-events poll``: the SQS poller, the only door into the system in production.

An EventBridge rule (``source: aws.omics``, and ``aws.s3`` for auto-import) targets an SQS
queue; the message body is the event itself (or an SNS notification wrapping it).  For each
batch of up to 10 messages the poller:

1. hands the bodies to the :class:`~producers.intake.Intake`, which appends the accepted events
   and their outbox work and dead-letters the malformed ones, all in one transaction;
2. only after that commit deletes the whole batch with ``DeleteMessageBatch``, retrying the
   entries SQS reports as failed; an entry that still fails reappears after the queue's
   visibility timeout and deduplicates on its event id;
3. publishes the owed tasks (inside the intake, after commit).

So a message is never deleted before its event is durable, and a malformed message is
dead-lettered *and deleted*, never left to poison the queue.  That includes a message the parser
lets through but the database refuses (SQLSTATE class 22/23): the intake splits the batch's
commit until that one stands alone and dead-letters it, the rest commit, and the whole batch is
deleted (:mod:`producers.intake`).  Only errors that retrying may cure (the database is down)
keep a batch in SQS.

Around that loop:

* **Signals.** SIGTERM/SIGINT stop receiving; the batch in hand is finished; the process exits 0
  within one receive wait (20 s) plus one batch.  SIGKILL loses nothing: undeleted messages come
  back after their visibility timeout.
* **Backpressure.** While the unfinished outbox is above ``POLLER_MAX_OUTBOX`` the receivers
  pause: a stalled pool does not turn into an unbounded backlog in the database.
* **Errors** from SQS or the database are retried with capped exponential backoff and logged
  once per streak, not once per message; the process never dies on them.
* **Reports** every ``POLLER_REPORT_INTERVAL`` seconds and at exit: messages received per
  second, accepted, duplicates, rejected and lag (now minus event time).
* **Liveness.** ``HEALTH_FILE`` is touched after every receive cycle that completed
  (even an empty one); a container health check fails when it grows stale.
* **Sweeper.** The poller runs the outbox sweeper every ``SWEEP_INTERVAL`` seconds.
* **Reconciler.** With ``reconcile_interval`` (``RECONCILE_INTERVAL`` for ``omics-events poll``)
  it also asks HealthOmics about runs whose events stopped coming (:mod:`workers.reconciler`),
  and every ``RECONCILE_DISCOVER_INTERVAL`` lists all runs for ones no event ever named.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery

from eventlog import store
from producers.intake import Intake, Verdict
from schemas.parsing import ParsedEvent
from workers.outbox import sweep
from workers.reconciler import reconcile
from workers.runtime import runtime_of

log = logging.getLogger(__name__)

#: SQS's own limits.
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20


@dataclass
class PollerStats:
    """Counters shared by the receiver threads (guarded by ``lock``)."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    deleted: int = 0
    delete_failures: int = 0
    batches: int = 0
    lag_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            return {
                "received": self.received,
                "received_per_s": round(self.received / elapsed, 1),
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "rejected": self.rejected,
                "deleted": self.deleted,
                "delete_failures": self.delete_failures,
                "lag_s": None if self.lag_seconds is None else round(self.lag_seconds, 1),
            }


class ErrorStreak:
    """Backoff for a failing dependency, logged once when a streak starts and once when it ends."""

    def __init__(self, what: str, *, base: float = 0.5, cap: float = 30.0) -> None:
        self.what = what
        self.base = base
        self.cap = cap
        self.failures = 0
        self.since: float | None = None

    def failed(self, error: BaseException) -> float:
        """Record a failure; returns the delay before the next attempt."""
        if self.failures == 0:
            self.since = time.monotonic()
            log.warning("%s failing, retrying with backoff: %s", self.what, error)
        self.failures += 1
        return min(self.cap, self.base * 2 ** min(self.failures, 10)) * random.uniform(0.5, 1.0)

    def succeeded(self) -> None:
        if self.failures:
            lasted = time.monotonic() - (self.since or time.monotonic())
            log.warning(
                "%s recovered after %d failures in %.1f s", self.what, self.failures, lasted
            )
        self.failures = 0
        self.since = None


@dataclass
class PollerOptions:
    queue_urls: Sequence[str]
    receivers: int = 1
    wait_seconds: int = MAX_WAIT_SECONDS
    batch_size: int = MAX_BATCH
    max_outbox: int = 10_000
    report_interval: float = 30.0
    sweep_interval: float = 30.0
    liveness_file: Path | None = None
    visibility_timeout: int | None = None
    #: Seconds between reconciler rounds (runs whose events stopped coming); 0: none.
    reconcile_interval: float = 0.0


class Poller:
    """Long-poll SQS queues into the intake until told to stop."""

    def __init__(
        self,
        app: Celery,
        options: PollerOptions,
        *,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if not options.queue_urls:
            raise ValueError("no SQS queue to poll: set POLLER_QUEUE_URLS")
        self.app = app
        self.options = options
        self.runtime = runtime_of(app)
        self.intake = Intake(app)
        self.stats = PollerStats()
        self.stop_event = threading.Event()
        self._report = report or (lambda snapshot: log.info("poller: %s", snapshot))
        self._db_streak = ErrorStreak("database")
        self._sqs_streak = ErrorStreak("SQS")
        self._streak_lock = threading.Lock()
        self._discovered_at: float | None = None  # the reconciler's last full ListRuns

    # --- lifecycle ---------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    def stop(self) -> None:
        if not self.stop_event.is_set():
            log.info("poller stopping: finishing the batch in hand")
        self.stop_event.set()

    def run(self) -> PollerStats:
        """Receive until :meth:`stop`; returns the final counters."""
        threads = [
            threading.Thread(
                target=self._receive_loop, args=(url,), name=f"receiver-{n}", daemon=True
            )
            for url in self.options.queue_urls
            for n in range(self.options.receivers)
        ]
        helpers = [
            threading.Thread(
                target=self._every,
                args=(self.options.sweep_interval, self._sweep),
                name="sweeper",
                daemon=True,
            ),
            threading.Thread(
                target=self._every,
                args=(self.options.report_interval, self._emit_report),
                name="reporter",
                daemon=True,
            ),
        ]
        if self.options.reconcile_interval > 0:
            helpers.append(
                threading.Thread(
                    target=self._every,
                    args=(self.options.reconcile_interval, self._reconcile),
                    name="reconciler",
                    daemon=True,
                )
            )
        for thread in threads + helpers:
            thread.start()
        for thread in threads:
            thread.join()
        self.stop_event.set()
        for thread in helpers:
            thread.join(5)
        self._emit_report()
        return self.stats

    def _every(self, interval: float, action: Callable[[], None]) -> None:
        while not self.stop_event.wait(interval):
            try:
                action()
            except Exception as error:  # keep the helper alive; the next round may work
                log.warning("%s failed: %s", threading.current_thread().name, error)

    def _sweep(self) -> None:
        sweep(self.app)

    def _reconcile(self) -> None:
        every = self.runtime.settings.reconcile_discover_interval
        now = time.monotonic()
        discover = every > 0 and (self._discovered_at is None or now - self._discovered_at >= every)
        report = reconcile(self.app, discover=discover)
        if discover and not report.throttled:
            self._discovered_at = now

    def _emit_report(self) -> None:
        self._report(self.stats.snapshot())

    # --- the receive loop --------------------------------------------------------------

    def _receive_loop(self, queue_url: str) -> None:
        sqs = self.runtime.aws.sqs
        while not self.stop_event.is_set():
            if self._over_backpressure():
                self.stop_event.wait(1.0)
                self._touch_liveness()
                continue
            try:
                response = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=self.options.batch_size,
                    WaitTimeSeconds=self.options.wait_seconds,
                    AttributeNames=["ApproximateReceiveCount"],
                    **(
                        {"VisibilityTimeout": self.options.visibility_timeout}
                        if self.options.visibility_timeout
                        else {}
                    ),
                )
            except Exception as error:
                with self._streak_lock:
                    delay = self._sqs_streak.failed(error)
                self.stop_event.wait(delay)
                continue
            with self._streak_lock:
                self._sqs_streak.succeeded()
            messages = response.get("Messages", [])
            if messages:
                self._handle_batch(sqs, queue_url, messages)
            self._touch_liveness()

    def _handle_batch(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        bodies = [message.get("Body", "") for message in messages]
        parsed = self.intake.parse(bodies)
        # durable first: retry the commit until it works; the batch in hand is finished even
        # while stopping, but a stop during a database outage leaves it for SQS to redeliver
        while True:
            try:
                report = self.intake.submit_parsed(parsed)
            except Exception as error:
                with self._streak_lock:
                    delay = self._db_streak.failed(error)
                if self.stop_event.wait(delay) and self._db_streak.failures > 3:
                    log.warning(
                        "stopping during a database outage: %d messages left in SQS", len(messages)
                    )
                    return
                continue
            with self._streak_lock:
                self._db_streak.succeeded()
            break
        deleted, failed = self._delete(sqs, queue_url, messages)
        newest = max((item.time for item in parsed if isinstance(item, ParsedEvent)), default=None)
        with self.stats.lock:
            self.stats.batches += 1
            self.stats.received += len(messages)
            self.stats.accepted += report.count(Verdict.ACCEPTED)
            self.stats.duplicates += report.count(Verdict.DUPLICATE)
            self.stats.rejected += report.count(Verdict.REJECTED)
            self.stats.deleted += deleted
            self.stats.delete_failures += failed
            if newest is not None:
                self.stats.lag_seconds = (datetime.now(UTC) - newest).total_seconds()

    def _delete(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """Delete a committed batch; returns (deleted, still failing)."""
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        deleted = 0
        for attempt in range(4):
            try:
                response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            except Exception as error:
                with self._streak_lock:
                    delay = self._sqs_streak.failed(error)
                time.sleep(min(delay, 2.0 * (attempt + 1)))
                continue
            deleted += len(response.get("Successful", []))
            failed_ids = {entry["Id"] for entry in response.get("Failed", [])}
            if not failed_ids:
                return deleted, 0
            log.warning(
                "SQS could not delete %d messages (%s); retrying",
                len(failed_ids),
                response["Failed"][0].get("Message") or response["Failed"][0].get("Code"),
            )
            entries = [entry for entry in entries if entry["Id"] in failed_ids]
        # they will reappear after the visibility timeout and deduplicate on their event id
        return deleted, len(entries)

    def _over_backpressure(self) -> bool:
        try:
            with self.runtime.engine.connect() as connection:
                unfinished = store.unfinished_count(connection)
        except Exception:
            return False  # the commit path has its own retry; don't stall on a count
        if unfinished > self.options.max_outbox:
            log.debug("backpressure: %d unfinished outbox rows", unfinished)
            return True
        return False

    def _touch_liveness(self) -> None:
        path = self.options.liveness_file
        if path is not None:
            try:
                path.touch()
            except OSError as error:
                log.debug("cannot touch liveness file %s: %s", path, error)
