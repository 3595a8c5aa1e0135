"""The EventBridge envelope: the part every event shares, whatever its source.

EventBridge wraps every event in the same nine fields (``version``, ``id``, ``detail-type``,
``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``), plus ``replay-name``
on events re-sent from an EventBridge archive.  :class:`EventBridgeEnvelope` validates exactly
those, and nothing about ``detail`` beyond "it is an object": the detail is typed separately by
``(source, detail-type)`` in :mod:`schemas.parsing`, so an unknown detail-type from an allowed
source can still be kept as a generic event instead of being rejected.

Why these rules:

* ``id`` is the idempotency key of the whole system (event log, archive key, callback
  ``event_id``), so it must be a non-empty string of at most 256 characters (the
  ``events.event_id`` column) in the **safe id charset** (:data:`SAFE_ID_PATTERN`): it becomes
  part of archive keys and file names, where ``../../x`` would escape the archive's root,
  ``a/b/../../c`` would land on event ``c``'s object and a run of slashes would collapse.
* ``source`` and ``detail-type`` are capped at their columns (``events.source``,
  ``events.detail_type``: 128 characters); PostgreSQL would refuse the whole batch otherwise.
* ``time`` must carry a timezone and is normalised to UTC.  EventBridge always sends
  ``...Z``; a naive time would be ambiguous once stored, and comparing aware with naive
  datetimes raises.  Only ISO-8601 strings are accepted (pydantic would otherwise read a bare
  number, or a string of digits, as a Unix timestamp).
* ``extra="allow"``: EventBridge may add envelope fields; keeping them costs nothing and the
  raw payload is stored anyway.
* Field names follow the wire (``detail-type`` and ``replay-name`` are aliases of
  ``detail_type`` and ``replay_name``); ``populate_by_name`` lets code build envelopes with the
  Python names.

**Column lengths.**  Every field an event carries into a SQL column (the log's own columns and
every projection's, ``eventlog/tables.py``) is refused when longer than its column, here and in
:mod:`schemas.omics`.  ``schemas`` may not import ``eventlog`` (dependencies flow one way), so
the lengths are declared once, in :data:`COLUMN_LENGTHS`, named by their ``table.column``;
``tests/unit/test_schemas.py`` checks each against the table definitions, so they cannot drift.

**Safe ids.**  An id that can become part of an S3 key or a file path (the event ``id``, run
``uuid`` and ``runId``, task, job, read set, store and batch ids) must match
:data:`SAFE_ID_PATTERN`: one or more of ``A-Z a-z 0-9 _ : -``, optionally in dot-separated
segments, i.e. letters, digits, ``.``, ``_``, ``:`` and ``-`` with no leading or trailing dot
and no ``..``; no slash, backslash, whitespace or control character.  Real EventBridge ids are
UUIDs and HealthOmics ids are digits, UUIDs or hex, all well inside it.  The length is bounded
by the id's column.

This module also holds :func:`json_type_name` and :func:`short_repr`, used by the other schema
modules to write readable rejection reasons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

__all__ = [
    "COLUMN_LENGTHS",
    "MAX_EVENT_ID_LENGTH",
    "SAFE_ID_PATTERN",
    "AwareDatetime",
    "Bounded",
    "EventBridgeEnvelope",
    "SafeId",
    "json_type_name",
    "parse_event_time",
    "short_repr",
]

#: ``table.column`` -> its length, for every column (eventlog/tables.py) a value of an event is
#: written to.  Declared once; checked against the tables by tests/unit/test_schemas.py.
COLUMN_LENGTHS: dict[str, int] = {
    "events.event_id": 256,
    "events.source": 128,
    "events.detail_type": 128,
    "events.resource_arn": 2048,
    "events.resource_id": 1024,
    "events.status": 64,
    "runs.run_uuid": 64,
    "runs.run_id": 32,
    "runs.arn": 2048,
    "runs.run_name": 256,
    "runs.workflow_id": 64,
    "runs.workflow_name": 256,
    "tasks.run_uuid": 64,
    "tasks.task_id": 64,
    "tasks.run_id": 32,
    "tasks.run_arn": 2048,
    "tasks.run_name": 256,
    "tasks.workflow_id": 64,
    "tasks.workflow_name": 256,
    "tasks.status": 32,
    "stores.store_id": 256,
    "stores.store_name": 256,
    "stores.status": 32,
    "import_jobs.job_id": 64,
    "import_jobs.store_id": 64,
    "import_jobs.status": 32,
    "read_sets.read_set_id": 64,
    "read_sets.store_id": 64,
    "read_sets.job_id": 64,
    "read_sets.status": 32,
}

#: Longest envelope ``id`` accepted.  EventBridge ids are 36-character UUIDs.
MAX_EVENT_ID_LENGTH = COLUMN_LENGTHS["events.event_id"]

#: The safe id charset (see the module docstring).  Written without look-arounds, so pydantic
#: checks it in Rust, on the hot path, at no measurable cost.
SAFE_ID_PATTERN = r"^[A-Za-z0-9_:-]+(?:\.[A-Za-z0-9_:-]+)*$"


def SafeId(column: str) -> Any:
    """A non-empty id in the safe charset, no longer than ``column`` (a key of
    :data:`COLUMN_LENGTHS`) holds."""
    return Annotated[
        str, Field(min_length=1, max_length=COLUMN_LENGTHS[column], pattern=SAFE_ID_PATTERN)
    ]


def Bounded(column: str) -> Any:
    """A string no longer than ``column`` (a key of :data:`COLUMN_LENGTHS`) holds."""
    return Annotated[str, Field(max_length=COLUMN_LENGTHS[column])]


def json_type_name(value: Any) -> str:
    """The JSON name of a Python value's type (``"array"``, ``"null"``, ...), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so one huge field cannot flood a log line."""
    text = repr(value)
    if len(text) > limit:
        return text[: limit - 3] + "..."
    return text


def parse_event_time(value: Any) -> datetime:
    """Validate an event time: an ISO-8601 string (or datetime) with a timezone, as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{short_repr(value)} is not an ISO-8601 date-time") from None
    else:
        raise ValueError(f"must be an ISO-8601 date-time string (got {json_type_name(value)})")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"{short_repr(value if isinstance(value, str) else value.isoformat())} has no "
            "timezone (expected e.g. 2022-10-20T22:07:35Z)"
        )
    return parsed.astimezone(UTC)


def _serialise_time(value: datetime) -> str:
    """UTC times are written the way EventBridge writes them: ``...Z``."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


#: A timezone-aware datetime, normalised to UTC, read from ISO-8601 text only.
AwareDatetime = Annotated[
    datetime,
    PlainValidator(parse_event_time),
    PlainSerializer(_serialise_time, when_used="json"),
]


class EventBridgeEnvelope(BaseModel):
    """The fields EventBridge puts around every event."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    version: str
    id: str = Field(min_length=1, max_length=MAX_EVENT_ID_LENGTH, pattern=SAFE_ID_PATTERN)
    detail_type: str = Field(
        alias="detail-type", min_length=1, max_length=COLUMN_LENGTHS["events.detail_type"]
    )
    source: str = Field(min_length=1, max_length=COLUMN_LENGTHS["events.source"])
    account: str
    time: AwareDatetime
    region: str
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")
