"""The one door every event goes through: validate, append durably, then publish.

For a batch of raw events (SQS messages, lines of a file, archived objects) the intake:

1. parses each with :func:`schemas.parse_event` — it never raises;
2. in **one** transaction appends the accepted ones to the log with the work they owe
   (:func:`workers.routing.stages_for`) and records the rejected ones as dead letters with their
   reason and raw bytes;
3. only after the commit publishes the owed tasks.

When :meth:`Intake.submit` returns, everything it was given is durable — accepted, duplicate or
dead-lettered — so the caller may delete its SQS messages.  If the commit fails it raises, and
the caller must keep them.  A failed publish is not an error: the outbox keeps the work and the
sweeper publishes it later.

**One refused event never holds the others.**  The parser refuses what the database would (NUL,
over-long fields), but should an event still get past it, the database refusing its row with a
data or integrity error (SQLSTATE class 22 or 23) would fail the whole batch's commit, every
time it is retried: the poller would hold the batch forever and `send` would commit nothing.
So such a commit is split in halves, recursively, until the refused event stands alone; it is
then dead-lettered with the database's error as its reason, and everything else commits.  Any
other error (the database is down, a lost connection) still raises: retrying may cure it.
Both the poller and ``send`` go through here, so the split lives in one place.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from celery import Celery
from sqlalchemy.exc import DataError, IntegrityError

from eventlog import store
from eventlog.store import LogEntry
from schemas.parsing import ParsedEvent, RawEvent, Rejected, parse_event
from schemas.settings import Settings
from workers.outbox import publish_owed
from workers.routing import stages_for
from workers.runtime import runtime_of

log = logging.getLogger(__name__)

#: ``stages_for``'s signature: the stages an accepted event owes when it is appended.
StagesFor = Callable[[ParsedEvent, Settings], Sequence[str]]


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    event_id: str | None
    detail_type: str | None
    reason: str | None = None


@dataclass
class IntakeReport:
    """What a batch (or a whole run) did, for summaries and progress lines."""

    outcomes: list[Outcome] = field(default_factory=list)
    published: int = 0

    def count(self, verdict: Verdict) -> int:
        return sum(1 for outcome in self.outcomes if outcome.verdict is verdict)

    @property
    def accepted(self) -> int:
        return self.count(Verdict.ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.count(Verdict.DUPLICATE)

    @property
    def rejected(self) -> int:
        return self.count(Verdict.REJECTED)

    def rejection_reasons(self) -> Counter[str]:
        return Counter(o.reason or "" for o in self.outcomes if o.verdict is Verdict.REJECTED)

    def extend(self, other: IntakeReport) -> None:
        self.outcomes.extend(other.outcomes)
        self.published += other.published


class Intake:
    """Validate, append and publish batches of raw events for one Celery app."""

    def __init__(
        self,
        app: Celery,
        *,
        publish: bool = True,
        stages: StagesFor = stages_for,
        fold: bool = True,
    ) -> None:
        self.app = app
        self.runtime = runtime_of(app)
        self.publish = publish
        #: Which stages an accepted event owes (a replay owes fewer: producers/replay.py).
        self.stages = stages
        #: Fold into the projections as appended (a bulk replay rebuilds at the end instead).
        self.fold = fold

    def parse(self, raws: Iterable[RawEvent]) -> list[ParsedEvent | Rejected]:
        return [parse_event(raw, self.runtime.limits) for raw in raws]

    def submit(self, raws: Iterable[RawEvent]) -> IntakeReport:
        """Make a batch durable, then publish its work; raises only if the commit failed."""
        return self.submit_parsed(self.parse(raws))

    def submit_parsed(self, parsed: Sequence[ParsedEvent | Rejected]) -> IntakeReport:
        items = list(parsed)  # an event the database refuses is replaced by its dead letter
        new_ids = self._commit_splitting(items)
        report = IntakeReport()
        seen: set[str] = set()
        for item in items:
            if isinstance(item, Rejected):
                report.outcomes.append(
                    Outcome(Verdict.REJECTED, item.event_id, item.detail_type, item.reason)
                )
                log.warning(
                    "rejected event: %s",
                    item.reason,
                    extra={"event_id": item.event_id, "detail_type": item.detail_type},
                )
                continue
            fresh = item.event_id in new_ids and item.event_id not in seen
            seen.add(item.event_id)
            verdict = Verdict.ACCEPTED if fresh else Verdict.DUPLICATE
            report.outcomes.append(Outcome(verdict, item.event_id, item.detail_type))
        if self.publish and new_ids:
            report.published = publish_owed(self.app, sorted(new_ids))
        return report

    def _commit(self, items: Sequence[ParsedEvent | Rejected]) -> set[str]:
        """One transaction: append the accepted items with their work, dead-letter the rest."""
        accepted = [item for item in items if isinstance(item, ParsedEvent)]
        with self.runtime.engine.begin() as connection:
            new_ids = store.append_many(
                connection,
                [
                    (LogEntry.from_parsed(e), self.stages(e, self.runtime.settings))
                    for e in accepted
                ],
                fold=self.fold,
            )
            for item in items:
                if isinstance(item, Rejected):
                    store.reject(connection, item)
        return new_ids

    def _commit_splitting(self, items: list[ParsedEvent | Rejected]) -> set[str]:
        """:meth:`_commit` ``items``; an event whose row the database refuses is replaced in
        ``items`` by its dead letter (see the module docstring).  Returns the new event ids."""
        new_ids: set[str] = set()
        groups = [list(range(len(items)))]  # a stack: the first half is written first
        while groups:
            group = groups.pop()
            try:
                new_ids |= self._commit([items[index] for index in group])
            except Exception as error:
                state = refused_by_data(error)
                if state is None:
                    raise
                if len(group) > 1:
                    half = len(group) // 2
                    groups += [group[half:], group[:half]]
                    continue
                item = items[group[0]]
                if isinstance(item, Rejected):
                    raise  # its dead letter refused too: nothing left to split
                items[group[0]] = refused_event(item, state, error)
                groups.append(group)  # its dead letter, alone (logged with the rejections)
        return new_ids


#: SQLSTATE classes of a database refusing the data itself: 22 data exception (a value too
#: long, NUL in text, a bad JSON escape), 23 integrity constraint violation.
REFUSED_DATA_CLASSES = ("22", "23")


def refused_by_data(error: BaseException) -> str | None:
    """The SQLSTATE (or the error's class name, on a driver without one) if ``error`` is the
    database refusing the data, else ``None``.

    psycopg exposes ``sqlstate``; SQLAlchemy wraps the driver's error (``orig``) in
    :class:`~sqlalchemy.exc.DataError`/:class:`~sqlalchemy.exc.IntegrityError`; the bulk
    ``COPY`` append raises psycopg's own errors unwrapped.
    """
    for candidate in (error, getattr(error, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and state[:2] in REFUSED_DATA_CLASSES:
            return state
    if isinstance(error, DataError | IntegrityError):
        return type(getattr(error, "orig", None) or error).__name__
    return None


def refused_event(item: ParsedEvent, state: str, error: BaseException) -> Rejected:
    """The dead letter of an event the database refused: the database's first line as the
    reason, the raw bytes as received."""
    cause = getattr(error, "orig", None) or error
    first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return Rejected(
        f"the database refused it ({state}): {first_line}"[:300],
        item.raw,
        item.event_id,
        item.detail_type,
    )
