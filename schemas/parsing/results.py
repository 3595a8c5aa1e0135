"""What :func:`schemas.parsing.parse_event` gives back (a :class:`ParsedEvent` or a
:class:`Rejected`), :func:`canonical_json`, and :class:`Reject`, how a stage stops parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.envelope import EventBridgeEnvelope

#: Longest rejection reason; the raw bytes are kept whole next to it.
MAX_REASON_LENGTH = 300


@dataclass(frozen=True)
class ParsedEvent:
    """An accepted event: the envelope, its typed detail, and the keys the pipeline needs."""

    envelope: EventBridgeEnvelope
    detail: BaseModel | None  # the typed model; None for a generic (unknown detail-type) event
    known: bool  # False for generic events
    event_id: str
    source: str
    detail_type: str
    time: datetime  # UTC aware
    resource_arn: str | None
    resource_id: str | None
    status: str | None  # normalised; None if absent (S3 events: None)
    payload: dict[str, Any]  # the event as received (after SNS unwrapping), not re-serialised
    raw: bytes  # the bytes as received (before SNS unwrapping)
    replay_name: str | None
    unwrapped: bool = False  # True if ``raw`` was an SNS notification around ``payload``


@dataclass(frozen=True)
class Rejected:
    """An event that cannot be accepted: why, and the bytes exactly as received."""

    reason: str
    raw: bytes
    event_id: str | None = None
    detail_type: str | None = None


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8 (not ``\\u`` escapes); no NaN or Infinity.

    Two equal JSON values always give the same bytes, so this is what to hash or compare.
    Raises ``TypeError``/``ValueError`` for values that are not JSON (use
    ``model_dump(mode="json")`` for models).
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class Reject(Exception):
    """Stop parsing with this reason (internal to :mod:`schemas.parsing`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RejectWithRaw(Reject):
    """A rejection whose raw bytes had to be recovered specially (internal)."""

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.raw = raw


def cap_reason(reason: str) -> str:
    """``reason`` cut to :data:`MAX_REASON_LENGTH` characters."""
    if len(reason) > MAX_REASON_LENGTH:
        return reason[: MAX_REASON_LENGTH - 3] + "..."
    return reason
