"""Steps 1-7 of :func:`schemas.parsing.parse_event`: hostile input turned away before it costs
anything (size, depth, NUL, strict JSON, an object), and raw bytes from any input type."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from schemas.envelope import json_type_name, short_repr
from schemas.parsing.limits import ParseLimits
from schemas.parsing.results import Reject, RejectWithRaw

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
                raise Reject(
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
                raise Reject(f"JSON nesting is deeper than {max_depth} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Reject(f"not valid JSON: duplicate key {short_repr(key)}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise Reject(f"not valid JSON: {name} is not allowed")


def _finite_float(text: str) -> float:
    """``1e400`` would decode to infinity, which no JSON encoder downstream accepts."""
    value = float(text)
    if not math.isfinite(value):
        raise Reject(f"not valid JSON: the number {short_repr(text, 40)} is out of range")
    return value


#: The strict decoder (:func:`decode_object`), built once: ``json.loads`` with hooks builds a
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
        raise Reject(f"contains a NUL character (U+0000, written \\u0000) in {where}")


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


def decode_object(text: str, limits: ParseLimits, data: bytes | None = None) -> dict[str, Any]:
    """Steps 2-6 on decoded text (``data``: its UTF-8 bytes, when at hand): empty, depth, JSON,
    surrogates, object."""
    if not text:
        raise Reject("event is empty (0 bytes)")
    if not text.strip():
        raise Reject("event is only whitespace")
    _check_depth(text, limits.max_depth)
    if "\x00" in text:
        raise Reject(f"contains a NUL character (U+0000) at character {text.index(chr(0))}")
    value = _decoded_exactly(data if data is not None else text.encode("utf-8", "surrogatepass"))
    if not isinstance(value, dict):
        value = _decode_strictly(text, limits)
    if not isinstance(value, dict):
        raise Reject(_describe_non_object(value))
    if "\\u0000" in text:
        _check_nul_value(value)
    return value


def _decode_strictly(text: str, limits: ParseLimits) -> Any:
    """Step 6 by the standard decoder with the strict hooks; raises :class:`Reject` with the
    reason."""
    try:
        if text.startswith("\ufeff"):  # what json.loads checks before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise Reject(
            f"not valid JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise Reject(f"JSON nesting is deeper than {limits.max_depth} levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise Reject(f"not valid JSON: {str(exc).split(';')[0]}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
        raise Reject("not valid JSON: a string contains an unpaired UTF-16 surrogate")
    return value


def to_bytes(raw: Any, limits: ParseLimits) -> bytes:
    """The raw bytes of any accepted input type; raises :class:`Reject` with ``raw`` set."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RejectWithRaw(
                f"not valid UTF-8: text contains an unpaired surrogate at character {exc.start}",
                raw.encode("utf-8", "surrogatepass"),
            ) from None
    if isinstance(raw, dict):
        _check_dict_depth(raw, limits.max_depth)
        try:
            text = json.dumps(raw, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise Reject(f"not JSON-serialisable: {exc}") from None
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RejectWithRaw(
                f"not valid UTF-8: text contains an unpaired surrogate at character {exc.start}",
                text.encode("utf-8", "surrogatepass"),
            ) from None
    raise Reject(f"unsupported input type {type(raw).__name__}")


def raw_of(raw: Any) -> bytes:
    """Best-effort bytes of any input, for a :class:`Rejected` built after a failure."""
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            return bytes(raw)
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogatepass")
        return json.dumps(raw, ensure_ascii=False, default=repr).encode("utf-8", "surrogatepass")
    except Exception:
        return b""
