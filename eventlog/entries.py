"""Rows of the log as values: what an append writes (:class:`LogEntry`) and what a read gives
back (:class:`StoredEvent`), before and after any database is involved.

Why a module of its own: a replay prepares its rows in worker processes
(:mod:`producers.replay_prepare`) that need these and nothing of SQLAlchemy or the drivers —
importing those costs a worker ≈ 0.6 s of CPU, a tenth of a 100k-event replay's workers.  And
every module of the package that folds or reads events (the projections, the rebuild) takes
them from here, below the writer (:mod:`eventlog.store`), which re-exports them for the
workers that import them from there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.parsing import ParsedEvent

__all__ = [
    "PIPELINE_NAMESPACE",
    "PIPELINE_SOURCE",
    "LogEntry",
    "StoredEvent",
    "as_utc",
    "clip",
    "copy_line",
    "derived_id",
    "stored_event",
    "utcnow",
]

#: Namespace of every id the pipeline derives (uuid5), so ids are stable across processes.
PIPELINE_NAMESPACE = uuid.UUID("6f1c5d0e-3a49-4b8e-9d55-0b7e1a2c9f10")
#: Source recorded on the pipeline's own events.
PIPELINE_SOURCE = "omics-events"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; every datetime we hold is UTC-aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def derived_id(cause_event_id: str, fact: str) -> str:
    """The id of a fact the pipeline derives from an event: the same cause, the same id.

    A retried task therefore appends nothing new, and a callback re-sent for the same fact
    carries the same idempotency key.
    """
    return str(uuid.uuid5(PIPELINE_NAMESPACE, f"{cause_event_id}\x1f{fact}"))


@dataclass(frozen=True)
class LogEntry:
    """One row to append to ``events``."""

    event_id: str
    origin: str
    source: str
    detail_type: str
    event_time: datetime
    payload: dict[str, Any]
    resource_arn: str | None = None
    resource_id: str | None = None
    status: str | None = None
    caused_by: str | None = None

    @classmethod
    def from_parsed(cls, parsed: ParsedEvent) -> LogEntry:
        return cls(
            event_id=parsed.event_id,
            origin="aws",
            source=parsed.source,
            detail_type=parsed.detail_type,
            event_time=parsed.time,
            payload=parsed.payload,
            resource_arn=clip(parsed.resource_arn, 2048),
            resource_id=clip(parsed.resource_id, 1024),
            status=clip(parsed.status, 64),
        )

    @classmethod
    def pipeline(
        cls,
        cause: StoredEvent,
        detail_type: str,
        detail: dict[str, Any],
        *,
        status: str | None = None,
        fact: str | None = None,
        event_time: datetime | None = None,
    ) -> LogEntry:
        """A pipeline fact about ``cause``, with an id derived from the cause and the fact."""
        event_id = derived_id(cause.event_id, fact or detail_type)
        when = event_time or utcnow()
        return cls(
            event_id=event_id,
            origin="pipeline",
            source=PIPELINE_SOURCE,
            detail_type=detail_type,
            event_time=when,
            payload={
                "id": event_id,
                "source": PIPELINE_SOURCE,
                "detail-type": detail_type,
                "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "caused-by": cause.event_id,
                "detail": detail,
            },
            resource_arn=cause.resource_arn,
            resource_id=cause.resource_id,
            status=status,
            caused_by=cause.event_id,
        )


@dataclass(frozen=True)
class StoredEvent:
    """A row of ``events`` as read back."""

    seq: int
    event_id: str
    origin: str
    source: str
    detail_type: str
    resource_arn: str | None
    resource_id: str | None
    status: str | None
    event_time: datetime
    received_at: datetime
    caused_by: str | None
    payload: dict[str, Any] = field(repr=False)


def stored_event(row: Any) -> StoredEvent:
    """A row of ``events`` (a mapping, or a Row whose ``_mapping`` is one) as a StoredEvent."""
    row = getattr(row, "_mapping", row)
    return StoredEvent(
        seq=row["seq"],
        event_id=row["event_id"],
        origin=row["origin"],
        source=row["source"],
        detail_type=row["detail_type"],
        resource_arn=row["resource_arn"],
        resource_id=row["resource_id"],
        status=row["status"],
        event_time=as_utc(row["event_time"]),
        received_at=as_utc(row["received_at"]),
        caused_by=row["caused_by"],
        payload=row["payload"],
    )


def clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def copy_line(entry: LogEntry, payload: str, received_at: str) -> str:
    """One row of ``events`` as a line of ``COPY … FROM STDIN`` text, in the column order of
    :data:`eventlog.store._APPENDED`; ``payload`` is the event's JSON text, ``received_at``
    an ISO-8601 time."""
    fields = (
        entry.event_id,
        entry.origin,
        entry.source,
        entry.detail_type,
        entry.resource_arn,
        entry.resource_id,
        entry.status,
        as_utc(entry.event_time).isoformat(),
        received_at,
        entry.caused_by,
        payload,
    )
    line = "\t".join(["\\N" if value is None else value for value in fields])
    # the usual case, each check one pass in C: nothing to escape — the only tabs are the
    # separators, the only backslashes the NULL markers, no line breaks
    if (
        line.count("\t") == len(fields) - 1
        and line.count("\\") == fields.count(None)
        and "\n" not in line
        and "\r" not in line
    ):
        return line + "\n"
    return "\t".join(_copy_field(value) for value in fields) + "\n"


#: What COPY's text format escapes (PostgreSQL docs, "COPY — Text Format").
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value
