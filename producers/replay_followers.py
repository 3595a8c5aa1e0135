"""Keeping the log followers quiet while ``omics-events replay`` appends old events.

Why a module: metrics, alerts and the archive follow the log (:mod:`eventlog.cursors`), so a
replay that appended archived events without telling them would send those events to
CloudWatch and SNS as if they had just happened, and archive them a second time.  The replay
(:mod:`producers.replay`) holds their leases while it runs and moves their cursors over what
it appended, in the transaction that appended it; this is that lease and that move, apart from
the listing, preparing and appending they have nothing to do with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from eventlog import cursors
from eventlog.tables import dead_letters, events

__all__ = ["FollowerBusy", "QuietFollowers"]


class FollowerBusy(RuntimeError):
    """A log follower (metrics, alerts, archive) is running and would count the replayed
    events (or archive them again)."""


class QuietFollowers:
    """Hold the leases of the log followers and move their cursors over replayed events.

    Why: metrics, alerts and the archive follow the log (:mod:`eventlog.cursors`), so appending
    old events would send them to CloudWatch and SNS as if they had just happened, and write
    them to the archive a second time.  While the replay holds
    a follower's lease nobody else moves its cursor; after each batch the cursor is moved over
    the leading run of events (and dead letters) this replay appended.  If anything else was
    appended in between, the cursor stops before it — that event is news the follower must
    report — and the replayed events after it will be reported too (counted in ``exposed``).
    """

    def __init__(self, engine: Engine, names: Sequence[str], owner: str, ttl: timedelta) -> None:
        self.engine = engine
        self.names = tuple(names)
        self.owner = owner
        self.ttl = ttl
        self.exposed = 0
        self._held: list[str] = []

    def __enter__(self) -> QuietFollowers:
        for name in self.names:
            with self.engine.begin() as connection:
                cursor = cursors.lease(connection, name, self.owner, self.ttl)
                current = cursors.read(connection, name) if cursor is None else None
            if cursor is None:
                self.__exit__()  # the ones already held go back at once
                holder = current.owner if current is not None else "another process"
                raise FollowerBusy(
                    f"the {name!r} log follower is running ({holder}): it would report "
                    "replayed events as new; stop the metrics and archive pools during the "
                    "replay, or pass --with-side-effects"
                )
            self._held.append(name)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self._held:
            with self.engine.begin() as connection:
                cursors.release(connection, name, self.owner)
        self._held.clear()

    @staticmethod
    def _over(connection: Any, last_seq: int, new_ids: set[str]) -> tuple[int, int]:
        """(the seq to move a cursor at ``last_seq`` to, how many events it moves over): the
        leading run of events after it that this replay appended."""
        if not new_ids:
            return last_seq, 0
        # the usual case in one row: as many events after the cursor as were appended — the
        # new ones all are (appended after it, under the append lock), so they are all there is
        following = (
            select(events.c.seq)
            .where(events.c.seq > last_seq)
            .order_by(events.c.seq)
            .limit(len(new_ids) + 1)  # bounded, however far behind the cursor is
            .subquery()
        )
        after, top = connection.execute(select(func.count(), func.max(following.c.seq))).one()
        if after == len(new_ids):
            return int(top), after
        rows = connection.execute(
            select(events.c.seq, events.c.event_id)
            .where(events.c.seq > last_seq)
            .order_by(events.c.seq)
            .limit(len(new_ids) + 1)
        ).all()
        moved = 0
        for seq, event_id in rows:
            if event_id not in new_ids:
                break
            last_seq, moved = seq, moved + 1
        return last_seq, moved

    def skip(self, connection: Connection, new_ids: set[str], rejected: set[str]) -> None:
        """Move every cursor over this batch's appended events and dead letters (sha256 of the
        raw bytes of the rejected ones), in the transaction that appended them: a replay
        stopped any way at all never leaves a follower behind what it appended."""
        for name in self._held:
            cursor = cursors.lease(connection, name, self.owner, self.ttl)  # renew
            if cursor is None:
                continue
            last_seq, moved = self._over(connection, cursor.last_seq, new_ids)
            last_letter = cursor.last_dead_letter_id
            if rejected:
                letters = connection.execute(
                    select(dead_letters.c.id, dead_letters.c.kind, dead_letters.c.raw)
                    .where(dead_letters.c.id > last_letter)
                    .order_by(dead_letters.c.id)
                    .limit(len(rejected) + 1)
                ).all()
                for letter_id, kind, raw in letters:
                    if kind != "rejected" or hashlib.sha256(raw).hexdigest() not in rejected:
                        break
                    last_letter = letter_id
            if name == self._held[0]:
                self.exposed += len(new_ids) - moved
            cursors.advance(
                connection,
                name,
                self.owner,
                last_seq=last_seq,
                last_dead_letter_id=last_letter,
            )
