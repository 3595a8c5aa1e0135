"""What :func:`schemas.parsing.parse_event` accepts: the input types and the limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.settings import Settings

#: What :func:`parse_event` takes: the bytes as received, the same as text, or a decoded dict.
RawEvent = bytes | str | dict[str, Any]


@dataclass(frozen=True)
class ParseLimits:
    """What :func:`parse_event` accepts.  Defaults match :class:`schemas.settings.Settings`."""

    max_bytes: int = 1_048_576
    max_depth: int = 32
    allowed_sources: frozenset[str] = frozenset({"aws.omics", "aws.s3"})  # empty = none
    allowed_accounts: frozenset[str] = frozenset()  # empty = any
    #: Event times before this are rejected (UTC aware).
    earliest_time: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    #: Event times later than now plus this are rejected.
    max_ahead: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(
            max_bytes=settings.max_event_bytes,
            max_depth=settings.max_json_depth,
            allowed_sources=frozenset(settings.allowed_sources),
            allowed_accounts=frozenset(settings.allowed_accounts),
            earliest_time=settings.event_time_earliest,
            max_ahead=timedelta(seconds=settings.event_time_max_ahead),
        )


DEFAULT_LIMITS = ParseLimits()
