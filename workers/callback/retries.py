"""A failed attempt: retried within a window, or given up on with a dead letter.

Why: retries with a window, not forever and not never.  5xx, 429, 425, 408, timeouts and
connection errors are retried with exponential backoff and jitter (``Retry-After`` honoured)
for ``CALLBACK_RETRY_WINDOW``; short waits are Celery retries, longer ones are stored in the
outbox (:class:`~workers.errors.RetryLater`).  403, 404, 422 and other refusals are permanent:
a *Callback Failed* fact marked final and a dead letter carrying the response body.  A callback
sent by hand (``redeliver``) is never retried by itself: its work is already finished in the
outbox, so an outage ends as a dead letter again rather than as a retry nobody will run.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from eventlog import store
from eventlog.tables import events
from schemas.settings import Settings
from schemas.vocabulary import CALLBACK_FAILED
from workers.callback.delivery import Call, history, record, response_body
from workers.errors import RetryLater
from workers.runtime import Runtime

#: First retry delay in seconds; doubles per failed attempt up to ``CALLBACK_BACKOFF_MAX``.
RETRY_BASE = 1.0


def _retryable(response: httpx.Response | None) -> bool:
    return (
        response is None or response.status_code in {408, 425, 429} or response.status_code >= 500
    )


def _retry_after(response: httpx.Response | None) -> float:
    if response is None:
        return 0.0
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def _give_up(
    runtime: Runtime,
    call: Call,
    why: str,
    status: int | None,
    body: str | None,
    what: str,
    sent: dict[str, Any],
) -> str:
    """The last word on a callback: a final failure fact and a dead letter saying why."""
    record(
        runtime,
        call,
        CALLBACK_FAILED,
        outcome="dead-lettered",
        dead_letter=why,
        final=True,
        httpStatus=status,
        responseBody=body,
        reason=what,
        **sent,
    )
    return "dead-lettered"


def _failures_so_far(runtime: Runtime, call: Call) -> tuple[int, datetime | None]:
    """(failed attempts before this one, time of the first) for the call's event."""
    with runtime.engine.connect() as connection:
        failures_before = connection.execute(
            select(func.count())
            .select_from(events)
            .where(
                events.c.caused_by == call.event.event_id, events.c.detail_type == CALLBACK_FAILED
            )
        ).scalar_one()
        _, first_failure = history(connection, call.event.event_id)
    return failures_before, first_failure


def _backoff(
    settings: Settings, failures_before: int, response: httpx.Response | None, left: float
) -> float:
    """Seconds until the next attempt: exponential with jitter, at least ``Retry-After``, at
    most what is ``left`` of the window (but a second)."""
    delay = min(settings.callback_backoff_max, RETRY_BASE * 2 ** min(int(failures_before), 20))
    delay = max(delay * random.uniform(0.5, 1.0), _retry_after(response))
    return min(delay, max(1.0, left))


def failed(
    runtime: Runtime,
    call: Call,
    response: httpx.Response | None,
    error: str | None,
    *,
    sent: dict[str, Any] | None = None,
) -> str:
    """Record a failed attempt: retried later, or dead-lettered (``sent``: what the attempt
    sent when it was not the event's own status, i.e. the RUNNING reported first)."""
    sent = sent or {}
    status = response.status_code if response is not None else None
    body = response_body(response) if response is not None else None
    what = f"HTTP {status}" if status is not None else (error or "no response")
    subject = "the RUNNING reported first" if sent else "the callback"
    if not _retryable(response) or call.manual:
        verb = "refused" if response is not None and not _retryable(response) else "did not take"
        why = f"NGS360 {verb} {subject}: {what}: {body or ''}".strip()
        if call.manual and _retryable(response):
            why += " (sent by hand: not retried; redeliver it again)"
        return _give_up(runtime, call, why[:4000], status, body, what, sent)
    failures_before, first_failure = _failures_so_far(runtime, call)
    now = store.utcnow()
    waited = (now - first_failure).total_seconds() if first_failure else 0.0
    window = runtime.settings.callback_retry_window
    if waited >= window:
        why = (
            f"NGS360 did not accept {subject} within CALLBACK_RETRY_WINDOW ({window:.0f} s, "
            f"{failures_before + 1} attempts); last answer: {what}: {body or ''}"
        ).strip()[:4000]
        return _give_up(runtime, call, why, status, body, what, sent)
    delay = _backoff(runtime.settings, failures_before, response, window - waited)
    record(
        runtime,
        call,
        CALLBACK_FAILED,
        httpStatus=status,
        responseBody=body,
        reason=what,
        retryIn=round(delay, 3),
        **sent,
    )
    raise RetryLater(f"callback {call.event.event_id}: {what}", delay)


__all__ = ["RETRY_BASE", "failed"]
