"""Steps 9-13 of :func:`schemas.parsing.parse_event`: a decoded object to a
:class:`ParsedEvent` (envelope, time window, allow-lists, typed detail, column lengths) or a
:class:`Rejected`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from schemas.envelope import (
    COLUMN_LENGTHS,
    SAFE_ID_PATTERN,
    EventBridgeEnvelope,
    json_type_name,
    short_repr,
)
from schemas.omics import DETAIL_MODELS, last_arn_segment, normalise_status
from schemas.parsing.limits import ParseLimits
from schemas.parsing.results import ParsedEvent, Reject, Rejected, cap_reason
from schemas.s3 import S3_DETAIL_MODELS, S3_SOURCE, S3ObjectCreated

#: The EventBridge ``source`` of HealthOmics events.
OMICS_SOURCE = "aws.omics"

#: ``source`` -> (exact ``detail-type`` -> detail model).
DETAIL_MODELS_BY_SOURCE: dict[str, dict[str, type[BaseModel]]] = {
    OMICS_SOURCE: dict(DETAIL_MODELS),
    S3_SOURCE: dict(S3_DETAIL_MODELS),
}

#: Longest rejection reason; the raw bytes are kept whole next to it.
MAX_REASON_LENGTH = 300


def detail_model_for(source: str, detail_type: str) -> type[BaseModel] | None:
    """The detail model registered for ``(source, detail-type)``, or ``None`` (generic)."""
    return DETAIL_MODELS_BY_SOURCE.get(source, {}).get(detail_type)


def _validation_reason(exc: ValidationError, prefix: str = "") -> str:
    """One line from pydantic's first error: ``missing field 'a.b'`` / ``field 'a.b': msg``."""
    error = exc.errors(include_url=False)[0]
    path = (prefix + ".".join(str(part) for part in error["loc"])).rstrip(".") or "event"
    if error["type"] == "missing":
        return f"missing field {path!r}"
    if error["type"] == "string_pattern_mismatch" and (
        (error.get("ctx") or {}).get("pattern") == SAFE_ID_PATTERN
    ):
        value = short_repr(error.get("input"))
        return f"field {path!r}: {value} is not a safe id ({_SAFE_ID_RULE})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"].endswith("_type"):
        message += f" (got {json_type_name(error.get('input'))})"
    return f"field {path!r}: {message}"


#: How the safe id charset is said in reasons (see the :mod:`schemas.parsing` docstring).
_SAFE_ID_RULE = "letters, digits, '.', '_', ':', '-'; no leading or trailing dot, no '..'"
_RESOURCE_ARN_LENGTH = COLUMN_LENGTHS["events.resource_arn"]
_RESOURCE_ID_LENGTH = COLUMN_LENGTHS["events.resource_id"]
#: A known detail-type's status lands in a projection's ``status`` column; a generic one only
#: in the log's.
_KNOWN_STATUS_LENGTH = COLUMN_LENGTHS["stores.status"]
_GENERIC_STATUS_LENGTH = COLUMN_LENGTHS["events.status"]


#: ``max_ahead`` -> a time known to be within it: now + ``max_ahead`` as of some earlier call.
#: Now only grows, so a time not after it is within the window without reading the clock,
#: the common case on the hot path; only a later time reads the clock again.
_WITHIN_AHEAD: dict[timedelta, datetime] = {}


def _time_outside(time: datetime, limits: ParseLimits) -> str | None:
    """Why ``time`` is outside the sane window (step 10), or ``None``."""
    if time < limits.earliest_time:
        return f"time {time.isoformat()} is before {limits.earliest_time.isoformat()}"
    known = _WITHIN_AHEAD.get(limits.max_ahead)
    if known is not None and time <= known:
        return None
    latest = _WITHIN_AHEAD[limits.max_ahead] = datetime.now(UTC) + limits.max_ahead
    if time > latest:
        ahead = limits.max_ahead.total_seconds()
        return f"time {time.isoformat()} is more than {ahead:g} s in the future"
    return None


def _too_long(name: str, value: str | None, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        return f"{name} is {len(value)} characters, longer than {limit}"
    return None


def _str_field(obj: dict[str, Any], name: str, limit: int = 256) -> str | None:
    value = obj.get(name)
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def _first_resource(envelope: EventBridgeEnvelope) -> str | None:
    return envelope.resources[0] if envelope.resources and envelope.resources[0] else None


class _Detail(NamedTuple):
    """What the detail of an accepted envelope gives the event (steps 12-13)."""

    detail: BaseModel | None  # the typed model; None for a generic event
    resource_arn: str | None
    resource_id: str | None
    status: str | None


def build_event(
    payload: dict[str, Any], raw: bytes, limits: ParseLimits, prefix: str
) -> ParsedEvent | Rejected:
    """Steps 9-13: envelope, time, allow-lists, detail, column lengths."""
    event_id = _str_field(payload, "id")
    detail_type = _str_field(payload, "detail-type", limit=1024)
    try:
        envelope = _accepted_envelope(payload, limits)
        model = detail_model_for(envelope.source, envelope.detail_type)
        found = _read_detail(envelope, model)
    except Reject as exc:
        return Rejected(cap_reason(prefix + exc.reason), raw, event_id, detail_type)
    return ParsedEvent(
        envelope=envelope,
        detail=found.detail,
        known=model is not None,
        event_id=envelope.id,
        source=envelope.source,
        detail_type=envelope.detail_type,
        time=envelope.time,
        resource_arn=found.resource_arn,
        resource_id=found.resource_id,
        status=found.status,
        payload=payload,
        raw=raw,
        replay_name=envelope.replay_name,
        unwrapped=bool(prefix),
    )


def _accepted_envelope(payload: dict[str, Any], limits: ParseLimits) -> EventBridgeEnvelope:
    """Steps 9-11: the envelope, its time window, the source and account allow-lists."""
    try:
        envelope = EventBridgeEnvelope.model_validate(payload)
    except ValidationError as exc:
        raise Reject(_validation_reason(exc)) from None
    outside = _time_outside(envelope.time, limits)
    if outside is not None:
        raise Reject(outside)
    if envelope.source not in limits.allowed_sources:
        raise Reject(f"source {short_repr(envelope.source)} is not allowed")
    if limits.allowed_accounts and envelope.account not in limits.allowed_accounts:
        raise Reject(f"account {short_repr(envelope.account)} is not allowed")
    return envelope


def _read_detail(envelope: EventBridgeEnvelope, model: type[BaseModel] | None) -> _Detail:
    """Steps 12-13: the detail validated into ``model`` (generic when ``None``), then what
    lands in the log's own columns checked against them."""
    raw_detail = envelope.detail
    arn = raw_detail.get("arn")
    resource_arn = arn if isinstance(arn, str) and arn else _first_resource(envelope)
    detail: BaseModel | None = None
    status: str | None = None
    resource_id: str | None = None
    if model is not None:
        try:
            detail = model.model_validate(raw_detail)
        except ValidationError as exc:
            raise Reject(_validation_reason(exc, "detail.")) from None
        status_value = getattr(detail, "status", None)
        status = str(status_value) if status_value is not None else None
        key = getattr(detail, "resource_key", None)
        resource_id = key() if callable(key) else None
        if isinstance(detail, S3ObjectCreated) and resource_arn is None:
            resource_arn = detail.uri
    else:
        raw_status = raw_detail.get("status")
        if isinstance(raw_status, str) and normalise_status(raw_status):
            status = normalise_status(raw_status)
    if resource_id is None:
        resource_id = last_arn_segment(resource_arn) if resource_arn else None
    too_long = (
        _too_long("the resource ARN", resource_arn, _RESOURCE_ARN_LENGTH)
        or _too_long("the resource id", resource_id, _RESOURCE_ID_LENGTH)
        or _too_long(
            "field 'detail.status'",
            status,
            _KNOWN_STATUS_LENGTH if model is not None else _GENERIC_STATUS_LENGTH,
        )
    )
    if too_long is not None:
        raise Reject(too_long)
    return _Detail(detail, resource_arn, resource_id, status)
