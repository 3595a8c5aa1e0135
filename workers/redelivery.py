"""Bulk redelivery of dead-lettered callbacks (``omics-events redeliver --status-code 403 …``).

Why: after a rotated key (every callback answered 403) or an NGS360 outage longer than
``CALLBACK_RETRY_WINDOW``, hundreds of run statuses are dead letters.  Their outbox work is
finished (as failed), so nothing retries them by itself; the operator fixes the cause and
sends them again, all at once, without breaking the two rules the stage keeps: in order per
run, and never a status older than one already delivered.

What is taken (:func:`dead_callbacks`; ``omics-events dead-letters`` lists the same with the
same filters): every status event whose *latest* callback attempt is a final failure
(``deliveries.outcome = 'dead-lettered'``), optionally only those whose last answer had one
HTTP status, that were dead-lettered within a time range, or that belong to one run.  A
callback delivered, superseded or skipped since is no longer a dead letter, so running the
command twice sends nothing twice.

How (:func:`redeliver_dead`): runs one after the other, each run's callbacks in the stage's own
order (status rank, then event time, then log order), each through
:func:`workers.callback.deliver_callback` with ``recover=True``: a status that a newer
delivered one made moot is recorded as *Callback Superseded* and not sent; the others are sent
once, their answers recorded like any attempt.  When one of a run's callbacks is not delivered,
its later ones are held back (sending them would break the order) and stay dead letters for
the next attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, or_, select

from eventlog.projections import rank_of
from eventlog.store import as_utc
from eventlog.tables import deliveries, events
from workers.callback import deliver_callback
from workers.errors import PermanentError, RetryLater
from workers.runtime import Runtime

#: Outcomes after which a run's next callback may go.
DONE = frozenset({"delivered", "superseded", "skipped"})
HELD_BACK = "held back"


@dataclass(frozen=True)
class Filters:
    """Which dead-lettered callbacks: all of them when every field is None."""

    status_code: int | None = None  # the HTTP status of the last answer (403, 503, …)
    since: datetime | None = None  # dead-lettered at or after
    until: datetime | None = None  # dead-lettered before
    run: str | None = None  # run id, run uuid or WES run id


@dataclass(frozen=True)
class DeadCallback:
    """One status event whose callback is a dead letter, and its last answer."""

    event_id: str
    run_uuid: str
    run_id: str | None
    wes_run_id: str | None
    status: str
    event_time: datetime
    http_status: int | None
    reason: str | None
    response_body: str | None
    dead_at: datetime


def dead_callbacks(connection: Connection, filters: Filters = Filters()) -> list[DeadCallback]:
    """The dead-lettered callbacks ``filters`` select, in the order they would be sent."""
    rows = list(connection.execute(_filtered(_dead_query(), filters)))
    return [_dead_callback(row) for row in _in_sending_order(rows)]


def _dead_query() -> Select[Any]:
    """Every status event whose latest callback attempt is a final failure, with that attempt."""
    latest = (
        select(deliveries.c.caused_by, func.max(deliveries.c.id).label("last_id"))
        .where(deliveries.c.caused_by.is_not(None))
        .group_by(deliveries.c.caused_by)
        .subquery()
    )
    return (
        select(
            events.c.event_id,
            events.c.seq,
            events.c.status,
            events.c.event_time,
            events.c.resource_id,
            deliveries.c.run_uuid,
            deliveries.c.run_id,
            deliveries.c.wes_run_id,
            deliveries.c.http_status,
            deliveries.c.reason,
            deliveries.c.response_body,
            deliveries.c.created_at,
        )
        .join(latest, deliveries.c.id == latest.c.last_id)
        .join(events, events.c.event_id == deliveries.c.caused_by)
        .where(deliveries.c.outcome == "dead-lettered")
    )


def _filtered(query: Select[Any], filters: Filters) -> Select[Any]:
    """``query`` narrowed to what ``filters`` select."""
    if filters.status_code is not None:
        query = query.where(deliveries.c.http_status == filters.status_code)
    if filters.since is not None:
        query = query.where(deliveries.c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(deliveries.c.created_at < filters.until)
    if filters.run:
        query = query.where(
            or_(
                deliveries.c.run_id == filters.run,
                deliveries.c.run_uuid == filters.run,
                deliveries.c.wes_run_id == filters.run,
            )
        )
    return query


def _in_sending_order(rows: list[Row[Any]]) -> list[Row[Any]]:
    """Runs in the order the log first saw them; within a run, status rank, event time, log
    order (the stage's own order)."""
    first_seen: dict[str, int] = {}
    for row in rows:
        first_seen[_run_of(row)] = min(first_seen.get(_run_of(row), row.seq), row.seq)

    def order(row: Row[Any]) -> tuple[int, str, int, datetime, int]:
        run = _run_of(row)
        return (first_seen[run], run, rank_of(row.status), as_utc(row.event_time), row.seq)

    return sorted(rows, key=order)


def _dead_callback(row: Row[Any]) -> DeadCallback:
    return DeadCallback(
        event_id=row.event_id,
        run_uuid=_run_of(row),
        run_id=row.run_id,
        wes_run_id=row.wes_run_id,
        status=(row.status or "").upper(),
        event_time=as_utc(row.event_time),
        http_status=row.http_status,
        reason=row.reason,
        response_body=row.response_body,
        dead_at=as_utc(row.created_at),
    )


def _run_of(row: Row[Any]) -> str:
    return str(row.run_uuid or row.resource_id or row.event_id)


def redeliver_dead(
    runtime: Runtime,
    items: Iterable[DeadCallback],
    report: Callable[[DeadCallback, str], None] = lambda _item, _outcome: None,
) -> list[tuple[DeadCallback, str]]:
    """Send ``items`` again in their order (module docstring); ``report`` sees each outcome."""
    results: list[tuple[DeadCallback, str]] = []
    held: set[str] = set()
    for item in items:
        if item.run_uuid in held:
            outcome = HELD_BACK
        else:
            try:
                outcome = deliver_callback(runtime, item.event_id, recover=True)
            except RetryLater as wait:  # the run's lock stayed taken, Secrets Manager away
                outcome = f"not sent: {wait.reason}"
            except PermanentError as error:
                outcome = f"not sent: {error.reason}"
            if outcome not in DONE:
                held.add(item.run_uuid)
        results.append((item, outcome))
        report(item, outcome)
    return results


__all__ = ["DONE", "HELD_BACK", "DeadCallback", "Filters", "dead_callbacks", "redeliver_dead"]
