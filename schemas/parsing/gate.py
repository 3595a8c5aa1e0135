""":func:`parse_event`, the gate every raw event goes through: steps 1-8 (bytes, size,
UTF-8, decoding, SNS unwrap), then the building of the event; never an exception."""

from __future__ import annotations

from typing import Any

from schemas.envelope import json_type_name
from schemas.parsing.building import build_event
from schemas.parsing.decoding import decode_object, raw_of, to_bytes
from schemas.parsing.limits import DEFAULT_LIMITS, ParseLimits, RawEvent
from schemas.parsing.results import ParsedEvent, Reject, Rejected, RejectWithRaw, cap_reason


def _is_sns_notification(obj: dict[str, Any]) -> bool:
    return obj.get("Type") == "Notification" and "Message" in obj


def _parse(raw: Any, limits: ParseLimits) -> ParsedEvent | Rejected:
    try:
        data = to_bytes(raw, limits)
    except RejectWithRaw as exc:
        return Rejected(cap_reason(exc.reason), exc.raw)
    except Reject as exc:
        return Rejected(cap_reason(exc.reason), raw_of(raw))

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
        payload = decode_object(text, limits, data)
        if _is_sns_notification(payload):
            prefix = "SNS message: "
            message = payload["Message"]
            if not isinstance(message, str):
                raise Reject(f"'Message' is not a string (got {json_type_name(message)})")
            payload = decode_object(message, limits)
    except Reject as exc:
        return Rejected(cap_reason(prefix + exc.reason), data)
    return build_event(payload, data, limits, prefix)


def parse_event(raw: RawEvent, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedEvent | Rejected:
    """Validate one raw event; see the :mod:`schemas.parsing` docstring for the order of the checks.

    ``raw`` is the bytes as received (an SQS body, an archived object, a line of a file), the
    same as text, or an already-decoded dict.  Returns a :class:`ParsedEvent` or a
    :class:`Rejected`; never raises.
    """
    try:
        return _parse(raw, limits)
    except Exception as exc:  # the contract: nothing escapes
        reason = f"internal error while parsing: {type(exc).__name__}: {exc}"
        return Rejected(cap_reason(reason), raw_of(raw))
