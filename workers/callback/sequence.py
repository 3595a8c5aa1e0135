"""The order of a run's callbacks, kept in the outbox: in order, never backwards, never twice.

Why: a callback whose run has an earlier status still being enriched or delivered must not go
first, yet polling for its turn (the old way: re-published every 5 s to look again) is waste.
So such a callback is recorded as waiting in the outbox (``outcome = 'waiting'``, unpublished)
— by the enrichment that owes it (:func:`owe_callback`), or by the stage itself if that status
turned up later (:func:`wait_if_behind`) — and is published once, by the transaction that
finishes the last status before it (delivered, superseded, skipped, dead-lettered;
:func:`wake_callbacks`).  Deciding to wait and waking happen under one database lock per run
(:func:`_sequence_lock`), so no wake is missed; the sweeper publishes a waiting callback nobody
woke after ``WAIT_SAFETY_NET`` (a crash between commit and publish).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from eventlog import store
from eventlog.store import StoredEvent
from eventlog.tables import events, outbox
from schemas.vocabulary import STATUS_EVENTS, rank_of

#: This stage's name: its outbox work, its task, its facts' and dead letters' stage.
STAGE = "callback"
#: The stage whose unfinished work for an earlier status makes a callback wait.
ENRICH_STAGE = "enrich"
#: How long a callback recorded as waiting for an earlier status of its run stays unpublished
#: if nothing wakes it: the sweeper's safety net.  It is normally published once, by whatever
#: finishes the status before it (:func:`wake_callbacks`), in the same transaction.
WAIT_SAFETY_NET = 30.0
#: ``outbox.outcome`` of an unfinished callback waiting for an earlier status of its run (the
#: column holds the outcome once the work is done; until then, only this marker).
WAITING = "waiting"
#: ``outbox.outcome`` of a callback its predecessor's transaction made due and publishes after
#: commit: the sweeper leaves it to that publisher for its grace period (eventlog/store.py).
WOKEN = "woken"
#: First key of the PostgreSQL advisory lock that sequences one run's callbacks (the second is
#: a hash of the run's uuid): "wait for the status before" and "wake the status after" are
#: decided under it, so a status finishing never misses a callback just deciding to wait.
SEQUENCE_LOCK_KEY = 0x0CA1


def _sequence_lock(connection: Connection, run_uuid: str) -> None:
    """Serialise, until commit, the transactions that decide a run's callback order.

    PostgreSQL: a transaction-scoped advisory lock per run.  SQLite: any write takes the one
    write lock until commit; an UPDATE that matches nothing takes it before anything is read.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(func.pg_advisory_xact_lock(SEQUENCE_LOCK_KEY, func.hashtext(run_uuid)))
        )
    else:
        connection.execute(update(outbox).where(outbox.c.id == -1).values(outcome=None))


def _unfinished_statuses(connection: Connection, run_uuid: str) -> list[Any]:
    """(event id, stage, outcome, status) of the run's statuses still being enriched or sent."""
    return list(
        connection.execute(
            select(outbox.c.event_id, outbox.c.stage, outbox.c.outcome, events.c.status)
            .join(events, events.c.event_id == outbox.c.event_id)
            .where(
                events.c.resource_id == run_uuid,
                events.c.detail_type.in_(sorted(STATUS_EVENTS)),
                outbox.c.stage.in_([ENRICH_STAGE, STAGE]),
                outbox.c.done_at.is_(None),
            )
        )
    )


def wake_callbacks(connection: Connection, run_uuid: str) -> list[str]:
    """After a status of the run finished (in its transaction): the waiting callbacks that no
    earlier status holds up any more, made due; returns their event ids (publish after commit).

    Only those: a callback waiting behind another one stays unpublished until that one is done,
    so each callback is published once, when its turn comes (not every few seconds to look).
    """
    _sequence_lock(connection, run_uuid)
    return _wake_ready(connection, _unfinished_statuses(connection, run_uuid))


def _wake_ready(connection: Connection, rows: Sequence[Any]) -> list[str]:
    """Make due the waiting callbacks among ``rows`` (a run's unfinished statuses) that no
    earlier status holds up; their event ids."""
    ready = [
        row.event_id
        for row in rows
        if row.stage == STAGE
        and row.outcome == WAITING
        and not any(
            rank_of(other.status) < rank_of(row.status)
            for other in rows
            if other.event_id != row.event_id
        )
    ]
    if ready:
        connection.execute(
            update(outbox)
            .where(
                outbox.c.event_id.in_(ready), outbox.c.stage == STAGE, outbox.c.done_at.is_(None)
            )
            .values(not_before=store.utcnow(), published_at=None, outcome=WOKEN)
        )
    return ready


@dataclass(frozen=True)
class _Owed:
    """A callback owed in this transaction, as :func:`_unfinished_statuses` would read it."""

    event_id: str
    status: str | None
    stage: str = STAGE
    outcome: str | None = None


def owe_callback(
    connection: Connection, event: StoredEvent, run_uuid: str
) -> tuple[bool, list[str]]:
    """Owe the callback of a status whose enrichment just finished (in the transaction that
    finished it, after its enrich work is marked done), and wake the run's callbacks it no
    longer holds up: (whether its callback is due now, the callbacks woken), to publish after
    commit.  Its callback waits instead while an earlier status of the run is in flight."""
    _sequence_lock(connection, run_uuid)
    rows = _unfinished_statuses(connection, run_uuid)
    rank = rank_of(event.status)
    behind = any(row.event_id != event.event_id and rank_of(row.status) < rank for row in rows)
    now = store.utcnow()
    store.owe(
        connection,
        [
            {
                "event_id": event.event_id,
                "stage": STAGE,
                "created_at": now,
                "not_before": now + timedelta(seconds=WAIT_SAFETY_NET) if behind else now,
                "publish_count": 0,
                "outcome": WAITING if behind else None,
            }
        ],
    )
    woken = _wake_ready(connection, [*rows, _Owed(event.event_id, event.status)])
    return not behind, woken


def wait_if_behind(connection: Connection, event: StoredEvent, run_uuid: str) -> bool:
    """Record the callback as waiting if an earlier status of its run is in flight (True)."""
    _sequence_lock(connection, run_uuid)
    if not earlier_in_flight(connection, event, run_uuid):
        return False
    connection.execute(
        update(outbox)
        .where(
            outbox.c.event_id == event.event_id,
            outbox.c.stage == STAGE,
            outbox.c.done_at.is_(None),
        )
        .values(
            not_before=store.utcnow() + timedelta(seconds=WAIT_SAFETY_NET),
            published_at=None,
            outcome=WAITING,
        )
    )
    return True


def earlier_in_flight(connection: Connection, event: StoredEvent, run_uuid: str) -> list[str]:
    """Earlier statuses of the run still being enriched or delivered."""
    rank = rank_of(event.status)
    return [
        row.event_id
        for row in _unfinished_statuses(connection, run_uuid)
        if row.event_id != event.event_id and rank_of(row.status) < rank
    ]


__all__ = [
    "ENRICH_STAGE",
    "SEQUENCE_LOCK_KEY",
    "STAGE",
    "WAITING",
    "WAIT_SAFETY_NET",
    "WOKEN",
    "earlier_in_flight",
    "owe_callback",
    "wait_if_behind",
    "wake_callbacks",
]
