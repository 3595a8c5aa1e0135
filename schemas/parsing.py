"""Raw bytes in, a :class:`ParsedEvent` or a :class:`Rejected` out; never an exception.

:func:`parse_event` is the single gate every producer (SQS poller, archive replayer, file
sender, simulator) passes events through.  It never raises, whatever it is fed: an event
that cannot be accepted becomes a :class:`Rejected` carrying a short, readable, one-line
reason and the raw bytes exactly as received, which the producer writes to the dead-letter
table.  A producer therefore needs no ``try`` around it, and a poison message can never crash
a poller.

The checks run cheapest first, so hostile input is turned away before it costs anything:

1. **size** of the raw bytes (a ``str`` is measured UTF-8 encoded; a ``dict`` after
   ``json.dumps``, after a non-recursive depth check so that dumping cannot recurse without
   bound);
2. **empty** input;
3. **UTF-8** decoding (strict);
4. **nesting depth**, by scanning the text for brackets outside strings *before*
   ``json.loads``: a 100,000-deep ``[[[[`` is rejected after reading ``max_depth + 1``
   brackets and never reaches the recursive JSON decoder;
5. **NUL**: a NUL character (``U+0000``), as a raw byte or as the JSON escape ``\\u0000``, in
   any key or value at any depth, is rejected: PostgreSQL can store it neither in text nor in
   JSONB, so one such event would make the whole batch's commit fail.  The cost on the hot path
   is two substring searches of the text; only text that holds ``\\u0000`` is walked;
6. **JSON** decoding.  Stricter than :func:`json.loads`: ``NaN``/``Infinity``, numbers out of
   float range (``1e400``), duplicate object keys and unpaired UTF-16 surrogates
   (``"\\ud800"``) are rejected, because the payload is stored and re-serialised downstream
   (PostgreSQL JSONB and UTF-8 encoders refuse them) and duplicate keys make an event mean
   different things to different readers;
7. the document must be a JSON **object**;
8. **SNS unwrap**: an SNS notification (``{"Type": "Notification", "Message": "<event
   JSON>", ...}``, what an SQS queue subscribed to a topic receives without raw delivery) is
   replaced by the event in its ``Message``, which goes through steps 2-7 again.  Reasons
   about the inner event start with ``SNS message:``;
9. the **envelope** (:class:`schemas.envelope.EventBridgeEnvelope`): among others the ``id``
   must be a **safe id** (below) and ``source``/``detail-type`` fit their columns;
10. the event **time** must lie in a sane window: not before ``EVENT_TIME_EARLIEST`` (default
    2015-01-01) nor more than ``EVENT_TIME_MAX_AHEAD`` seconds (default one day) after now.  A
    year-1 or year-9999 time would pin a run's status for good (the first terminal status
    stands) and make absurd archive keys;
11. the **source** allow-list, then the **account** allow-list (empty = any account; an empty
    *source* list allows nothing, so a mis-set ``ALLOWED_SOURCES`` fails closed);
12. the **detail**, by ``(source, detail-type)``: a known pair is validated into its model
    (:data:`schemas.omics.DETAIL_MODELS`, :data:`schemas.s3.S3_DETAIL_MODELS`); an unknown
    detail-type from an allowed source is *kept* as a generic event (``known=False``),
    because a new HealthOmics event type must be archived and counted, not dead-lettered;
13. what lands in the log's own columns fits them: the resource ARN, the resource id and the
    status.

**Column lengths.**  Every value that is written to a SQL column (the log's and the
projections', ``eventlog/tables.py``) is refused when longer than its column, never cut
silently: the lengths are declared once in :data:`schemas.envelope.COLUMN_LENGTHS` and checked
against the tables by the tests.

**Safe ids.**  Every id that becomes part of an S3 key or a file path — the event ``id``, run
``uuid`` and ``runId``, task ids (the end of a task ARN), job, read set, store, reference and
batch ids — must match :data:`schemas.envelope.SAFE_ID_PATTERN`: letters, digits, ``.``,
``_``, ``:`` and ``-``, no leading or trailing dot, no ``..``, at most as long as its column
(256 for the event id, 64 for run uuids and job ids, 32 for run ids).  No slash, backslash,
whitespace, control or bidirectional-override character.  The reason says ``is not a safe id``.

Validation reasons name the field by its dotted wire path and give pydantic's first error,
e.g. ``missing field 'detail.uuid'`` or ``field 'detail.status': 'BOGUS' is not a valid run
status``.  Reasons are capped at 300 characters; the raw bytes are always kept whole.

A rejected event keeps its ``id`` and ``detail-type`` when they could be read, so a dead
letter can be traced.  ``ParsedEvent.payload`` is the decoded JSON exactly as received
(after SNS unwrapping), never a re-serialisation of the models, so nothing the models drop
or normalise is lost.

:func:`canonical_json` is the one serialisation used for hashing and comparing payloads.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from schemas.envelope import (
    COLUMN_LENGTHS,
    SAFE_ID_PATTERN,
    EventBridgeEnvelope,
    json_type_name,
    short_repr,
)
from schemas.omics import DETAIL_MODELS, last_arn_segment, normalise_status
from schemas.s3 import S3_DETAIL_MODELS, S3_SOURCE, S3ObjectCreated
from schemas.settings import Settings

__all__ = [
    "DEFAULT_LIMITS",
    "DETAIL_MODELS_BY_SOURCE",
    "OMICS_SOURCE",
    "ParseLimits",
    "ParsedEvent",
    "Rejected",
    "canonical_json",
    "detail_model_for",
    "parse_event",
]

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


# --- the stages ---------------------------------------------------------------------------


class _Reject(Exception):
    """Internal: stop parsing with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _RejectWithRaw(_Reject):
    """Internal: a rejection whose raw bytes had to be recovered specially."""

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.raw = raw


# A JSON string (possibly unterminated) or a bracket.  Strings are skipped whole, so brackets
# inside them do not count.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_depth(text: str, max_depth: int) -> None:
    """Reject text whose brackets nest deeper than ``max_depth``, without recursing."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be deeper: the common case, one C-speed pass
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise _Reject(
                    f"JSON nesting is deeper than {max_depth} levels (at character {match.start()})"
                )
        elif token in "]}":
            depth -= 1


def _check_dict_depth(obj: Any, max_depth: int) -> None:
    """The same limit for an already-decoded value, iteratively (also stops on cycles)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list | tuple):
            if depth > max_depth:
                raise _Reject(f"JSON nesting is deeper than {max_depth} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Reject(f"not valid JSON: duplicate key {short_repr(key)}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise _Reject(f"not valid JSON: {name} is not allowed")


def _finite_float(text: str) -> float:
    """``1e400`` would decode to infinity, which no JSON encoder downstream accepts."""
    value = float(text)
    if not math.isfinite(value):
        raise _Reject(f"not valid JSON: the number {short_repr(text, 40)} is out of range")
    return value


#: The strict decoder (:func:`_decode_object`), built once: ``json.loads`` with hooks builds a
#: decoder on every call, a tenth of the cost of decoding an event.  Shared the way
#: ``json.loads`` shares its default one; the hooks keep no state.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs, parse_constant=_no_constants, parse_float=_finite_float
)


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _nul_path(value: Any) -> str | None:
    """Where the first NUL character of a decoded value is (``key 'a.b'``/``value of 'a.b'``),
    or ``None``; iterative, so any depth the depth check let through is fine."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return f"the value of {short_repr(path or 'the document')}"
        elif isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return f"the key {short_repr(where)}"
                stack.append((child, where))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{n}]") for n, child in enumerate(item))
    return None


def _check_nul_value(value: Any) -> None:
    """Step 5 after decoding, for text that holds the escape (a raw NUL was refused before
    decoding: JSON forbids it inside strings, and it is nothing else): ``\\\\u0000`` (an
    escaped backslash, then ``u0000``) is harmless text, so the decoded value decides."""
    where = _nul_path(value)
    if where is not None:
        raise _Reject(f"contains a NUL character (U+0000, written \\u0000) in {where}")


def _describe_non_object(value: Any) -> str:
    if value is None:
        return "event is JSON null, not a JSON object"
    return f"event is a JSON {json_type_name(value)}, not a JSON object"


def _decoded_exactly(data: bytes) -> Any | None:
    """The value of ``data`` if orjson reads it back as its own output, else ``None``.

    Why: the strict decoder's hooks run in Python for every object and number — ≈ 20 µs of
    an event's ≈ 60 — and orjson is ≈ 3 µs, but orjson keeps the last of duplicate keys and
    reads integers past 64 bits as floats.  If serialising what it read gives back the same
    bytes, neither happened (a dropped key or a float would change the text), the text is valid
    JSON with finite numbers and no lone surrogates, and the strict decoder would give the same
    value.  Archived objects (canonical JSON) and EventBridge's compact JSON take this path;
    anything else — spaced or escaped differently, or invalid — goes to the strict decoder,
    which also writes the rejection reasons.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if orjson.dumps(value) == data.strip() else None


def _decode_object(text: str, limits: ParseLimits, data: bytes | None = None) -> dict[str, Any]:
    """Steps 2-6 on decoded text (``data``: its UTF-8 bytes, when at hand): empty, depth, JSON,
    surrogates, object."""
    if not text:
        raise _Reject("event is empty (0 bytes)")
    if not text.strip():
        raise _Reject("event is only whitespace")
    _check_depth(text, limits.max_depth)
    if "\x00" in text:
        raise _Reject(f"contains a NUL character (U+0000) at character {text.index(chr(0))}")
    value = _decoded_exactly(data if data is not None else text.encode("utf-8", "surrogatepass"))
    if not isinstance(value, dict):
        value = _decode_strictly(text, limits)
    if not isinstance(value, dict):
        raise _Reject(_describe_non_object(value))
    if "\\u0000" in text:
        _check_nul_value(value)
    return value


def _decode_strictly(text: str, limits: ParseLimits) -> Any:
    """Step 5 by the standard decoder with the strict hooks; raises :class:`_Reject` with the
    reason."""
    try:
        if text.startswith("\ufeff"):  # what json.loads checks before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _Reject(
            f"not valid JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _Reject(f"JSON nesting is deeper than {limits.max_depth} levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _Reject(f"not valid JSON: {str(exc).split(';')[0]}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
        raise _Reject("not valid JSON: a string contains an unpaired UTF-16 surrogate")
    return value


def _to_bytes(raw: Any, limits: ParseLimits) -> bytes:
    """The raw bytes of any accepted input type; raises :class:`_Reject` with ``raw`` set."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _RejectWithRaw(
                f"not valid UTF-8: text contains an unpaired surrogate at character {exc.start}",
                raw.encode("utf-8", "surrogatepass"),
            ) from None
    if isinstance(raw, dict):
        _check_dict_depth(raw, limits.max_depth)
        try:
            text = json.dumps(raw, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise _Reject(f"not JSON-serialisable: {exc}") from None
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _RejectWithRaw(
                f"not valid UTF-8: text contains an unpaired surrogate at character {exc.start}",
                text.encode("utf-8", "surrogatepass"),
            ) from None
    raise _Reject(f"unsupported input type {type(raw).__name__}")


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


#: How the safe id charset is said in reasons (see the module docstring).
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


def _build(
    payload: dict[str, Any], raw: bytes, limits: ParseLimits, prefix: str
) -> ParsedEvent | Rejected:
    """Steps 8-10: envelope, allow-lists, detail."""
    event_id = _str_field(payload, "id")
    detail_type = _str_field(payload, "detail-type", limit=1024)

    def reject(reason: str) -> Rejected:
        return Rejected(_cap(prefix + reason), raw, event_id, detail_type)

    try:
        envelope = EventBridgeEnvelope.model_validate(payload)
    except ValidationError as exc:
        return reject(_validation_reason(exc))
    outside = _time_outside(envelope.time, limits)
    if outside is not None:
        return reject(outside)
    if envelope.source not in limits.allowed_sources:
        return reject(f"source {short_repr(envelope.source)} is not allowed")
    if limits.allowed_accounts and envelope.account not in limits.allowed_accounts:
        return reject(f"account {short_repr(envelope.account)} is not allowed")

    raw_detail = envelope.detail
    arn = raw_detail.get("arn")
    resource_arn = arn if isinstance(arn, str) and arn else _first_resource(envelope)
    model = detail_model_for(envelope.source, envelope.detail_type)
    detail: BaseModel | None = None
    status: str | None = None
    resource_id: str | None = None
    if model is not None:
        try:
            detail = model.model_validate(raw_detail)
        except ValidationError as exc:
            return reject(_validation_reason(exc, "detail."))
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
        return reject(too_long)

    return ParsedEvent(
        envelope=envelope,
        detail=detail,
        known=model is not None,
        event_id=envelope.id,
        source=envelope.source,
        detail_type=envelope.detail_type,
        time=envelope.time,
        resource_arn=resource_arn,
        resource_id=resource_id,
        status=status,
        payload=payload,
        raw=raw,
        replay_name=envelope.replay_name,
        unwrapped=bool(prefix),
    )


def _cap(reason: str) -> str:
    if len(reason) > MAX_REASON_LENGTH:
        return reason[: MAX_REASON_LENGTH - 3] + "..."
    return reason


def _is_sns_notification(obj: dict[str, Any]) -> bool:
    return obj.get("Type") == "Notification" and "Message" in obj


def _parse(raw: Any, limits: ParseLimits) -> ParsedEvent | Rejected:
    try:
        data = _to_bytes(raw, limits)
    except _RejectWithRaw as exc:
        return Rejected(_cap(exc.reason), exc.raw)
    except _Reject as exc:
        return Rejected(_cap(exc.reason), _raw_of(raw))

    if len(data) > limits.max_bytes:
        return Rejected(f"event is {len(data)} bytes, over the {limits.max_bytes}-byte limit", data)
    if not data:
        return Rejected("event is empty (0 bytes)", data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(f"not valid UTF-8: {exc.reason} at byte {exc.start}", data)

    prefix = ""
    try:
        payload = _decode_object(text, limits, data)
        if _is_sns_notification(payload):
            prefix = "SNS message: "
            message = payload["Message"]
            if not isinstance(message, str):
                raise _Reject(f"'Message' is not a string (got {json_type_name(message)})")
            payload = _decode_object(message, limits)
    except _Reject as exc:
        return Rejected(_cap(prefix + exc.reason), data)
    return _build(payload, data, limits, prefix)


def _raw_of(raw: Any) -> bytes:
    """Best-effort bytes of any input, for a :class:`Rejected` built after a failure."""
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            return bytes(raw)
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogatepass")
        return json.dumps(raw, ensure_ascii=False, default=repr).encode("utf-8", "surrogatepass")
    except Exception:
        return b""


def parse_event(raw: RawEvent, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedEvent | Rejected:
    """Validate one raw event; see the module docstring for the order of the checks.

    ``raw`` is the bytes as received (an SQS body, an archived object, a line of a file), the
    same as text, or an already-decoded dict.  Returns a :class:`ParsedEvent` or a
    :class:`Rejected`; never raises.
    """
    try:
        return _parse(raw, limits)
    except Exception as exc:  # the contract: nothing escapes
        reason = f"internal error while parsing: {type(exc).__name__}: {exc}"
        return Rejected(_cap(reason), _raw_of(raw))
