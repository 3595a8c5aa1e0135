"""How a stage says what kind of failure it hit.

The split decides between retrying and dead-lettering, the two things a task may do with an
error (docs/design.md §4):

* :class:`PermanentError` — retrying cannot help (a 403, a missing resource, bad input):
  dead-letter now with the reason, finish the work, move on;
* anything else is presumed transient and retried by Celery with exponential backoff and
  jitter, up to the retry cap; exhausting the cap dead-letters too, so nothing fails silently;
* :class:`RetryLater` — a known wait (throttling, a quota, a callback server down): the stage
  names the delay and is run again after it, however long, without spending the retry cap.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying will not help; the reason is kept in the dead letter."""

    def __init__(self, reason: str, *, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class RetryLater(Exception):
    """Not now: run this stage again after ``delay`` seconds (throttling, a busy server).

    The task retries through Celery when the delay is short (at most ``TASK_RETRY_BACKOFF_MAX``)
    and Celery retries remain; otherwise the wait is stored in the outbox (``not_before``) and
    the sweeper publishes the work when it is due.  Either way the event is delayed, never
    failed: retry windows are the stage's business, not Celery's retry count.
    """

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = max(0.0, float(delay))
