"""Where a log follower has got to, and who is following: the ``log_cursors`` table.

Why followers: some consumers want every fact of the log exactly once, in log order, without
holding up the pipeline — the metrics pool turns facts into CloudWatch datapoints, the alerts
turn dead letters into notifications, the archive pool puts every row into batch objects in S3
(its cursor's ``state`` also records the range of a batch being written, so that a retry
writes exactly that range again).  Per-event tasks would either lose what a crashed worker
had buffered or keep outbox work open while CloudWatch is down (which the poller counts as
backlog).  A follower instead keeps a cursor — the last ``events.seq`` and ``dead_letters.id``
it has dealt with — and moves it only after its side effect succeeded.  Both are in commit order
(appends and dead letters take the append lock, :mod:`eventlog.store`), so a follower never
skips a row that commits late.

Only one process may follow a cursor at a time, or the datapoints would be sent twice: a
follower holds a *lease* (``owner``, ``lease_until``), taken and renewed by a conditional
UPDATE, so any number of metrics workers can run and exactly one follows; if it dies, another
takes over when the lease runs out.  Every move of the cursor is conditional on the lease too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from eventlog.dialect import insert as dialect_insert
from eventlog.entries import utcnow
from eventlog.tables import log_cursors


def _insert(connection: Connection) -> Any:
    return dialect_insert(connection, log_cursors)


@dataclass(frozen=True)
class Cursor:
    name: str
    last_seq: int
    last_dead_letter_id: int
    emitted: int
    dropped: int
    owner: str | None
    state: dict[str, Any] = field(default_factory=dict)


def lease(connection: Connection, name: str, owner: str, ttl: timedelta) -> Cursor | None:
    """Take or renew the lease of cursor ``name``; ``None`` while another owner holds it."""
    now = utcnow()
    connection.execute(
        _insert(connection)
        .values(
            name=name,
            last_seq=0,
            last_dead_letter_id=0,
            emitted=0,
            dropped=0,
            state={},
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    taken = connection.execute(
        update(log_cursors)
        .where(
            log_cursors.c.name == name,
            or_(
                log_cursors.c.owner == owner,
                log_cursors.c.owner.is_(None),
                log_cursors.c.lease_until < now,
            ),
        )
        .values(owner=owner, lease_until=now + ttl)
    )
    if taken.rowcount != 1:
        return None
    return read(connection, name)


def read(connection: Connection, name: str) -> Cursor | None:
    row = connection.execute(select(log_cursors).where(log_cursors.c.name == name)).one_or_none()
    if row is None:
        return None
    data = row._mapping
    return Cursor(
        name=data["name"],
        last_seq=int(data["last_seq"]),
        last_dead_letter_id=int(data["last_dead_letter_id"]),
        emitted=int(data["emitted"]),
        dropped=int(data["dropped"]),
        owner=data["owner"],
        state=dict(data["state"] or {}),
    )


def advance(
    connection: Connection,
    name: str,
    owner: str,
    *,
    last_seq: int,
    last_dead_letter_id: int,
    emitted: int = 0,
    dropped: int = 0,
    state: dict[str, Any] | None = None,
) -> bool:
    """Move the cursor (and add to its counters) if ``owner`` still holds it; True if moved."""
    values: dict[str, Any] = {
        "last_seq": last_seq,
        "last_dead_letter_id": last_dead_letter_id,
        "emitted": log_cursors.c.emitted + emitted,
        "dropped": log_cursors.c.dropped + dropped,
        "updated_at": utcnow(),
    }
    if state is not None:
        values["state"] = state
    moved = connection.execute(
        update(log_cursors)
        .where(log_cursors.c.name == name, log_cursors.c.owner == owner)
        .values(values)
    )
    return moved.rowcount == 1


def release(connection: Connection, name: str, owner: str) -> None:
    """Give the lease up (at shutdown), so the next follower need not wait for it to expire."""
    connection.execute(
        update(log_cursors)
        .where(log_cursors.c.name == name, log_cursors.c.owner == owner)
        .values(owner=None, lease_until=None)
    )
