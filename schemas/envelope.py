"""The EventBridge envelope: the part every event shares, whatever its source.

EventBridge wraps every event in the same nine fields (``version``, ``id``, ``detail-type``,
``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``), plus ``replay-name``
on events re-sent from an EventBridge archive.  :class:`EventBridgeEnvelope` validates exactly
those, and nothing about ``detail`` beyond "it is an object": the detail is typed separately by
``(source, detail-type)`` in :mod:`schemas.parsing`, so an unknown detail-type from an allowed
source can still be kept as a generic event instead of being rejected.

Why these rules:

* ``id`` is the idempotency key of the whole system (event log, archive key, callback
  ``event_id``), so it must be a non-empty string, and is capped at 256 characters so a hostile
  producer cannot make every index entry huge.
* ``time`` must carry a timezone and is normalised to UTC.  EventBridge always sends
  ``...Z``; a naive time would be ambiguous once stored, and comparing aware with naive
  datetimes raises.  Only ISO-8601 strings are accepted (pydantic would otherwise read a bare
  number, or a string of digits, as a Unix timestamp).
* ``extra="allow"``: EventBridge may add envelope fields; keeping them costs nothing and the
  raw payload is stored anyway.
* Field names follow the wire (``detail-type`` and ``replay-name`` are aliases of
  ``detail_type`` and ``replay_name``); ``populate_by_name`` lets code build envelopes with the
  Python names.

This module also holds :func:`json_type_name` and :func:`short_repr`, used by the other schema
modules to write readable rejection reasons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

__all__ = [
    "MAX_EVENT_ID_LENGTH",
    "AwareDatetime",
    "EventBridgeEnvelope",
    "json_type_name",
    "parse_event_time",
    "short_repr",
]

#: Longest envelope ``id`` accepted.  EventBridge ids are 36-character UUIDs.
MAX_EVENT_ID_LENGTH = 256


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
    id: str = Field(min_length=1, max_length=MAX_EVENT_ID_LENGTH)
    detail_type: str = Field(alias="detail-type", min_length=1)
    source: str = Field(min_length=1)
    account: str
    time: AwareDatetime
    region: str
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")
