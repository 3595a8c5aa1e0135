r"""Flattened records for the archive: a lossless dotted form and the legacy Lambda's form.

The archive stores each event next to a *flattened* copy, one level of keys, which query
engines (Athena, pandas, spreadsheets) read without unnesting.  Two styles exist
(:data:`FLATTEN_STYLES`):

``"dotted"`` — :func:`flatten` / :func:`unflatten`, lossless
-----------------------------------------------------------

Every leaf gets one key: the path from the root, segments joined by ``.``, list positions
written as decimal indices::

    {"detail": {"status": "COMPLETED"}, "resources": ["arn:...:run/1"]}
    -> {"detail.status": "COMPLETED", "resources.0": "arn:...:run/1"}

``unflatten(flatten(obj)) == obj`` holds for **every** JSON object.  That needs an escaping
scheme, because JSON keys may contain anything:

* In a dict key, ``\`` is written ``\\`` and ``.`` is written ``\.``; so a ``.`` without a
  backslash before it always separates segments.
  ``{"a.b": {"c\\d": 1}}`` (keys ``a.b`` and ``c\d``) -> ``{"a\\.b.c\\\\d": 1}``
  (the key reads ``a\.b.c\\d``).
* A dict key made only of ASCII digits gets one extra ``\`` in front, so it cannot be read as
  a list index: ``{"x": {"7": True}}`` -> ``{"x.\\7": True}`` while ``{"x": [True]}`` ->
  ``{"x.0": True}``.  (``"07"``, ``"123"`` are marked the same way; ``"٣"`` and ``"1a"`` are
  not all-ASCII-digit keys and need no mark.)
* Reading back, ``\`` makes the next character literal, and a segment is a list index only
  when it is all ASCII digits *and* contains no escape.
* The empty key is the empty segment: ``{"": {"": 1}}`` -> ``{".": 1}``;
  ``{"": 1}`` -> ``{"": 1}``.
* Empty containers have no leaves, so they stay as leaf values: ``{"e": {}, "l": [[]]}`` ->
  ``{"e": {}, "l.0": []}``.  A non-empty dict or list is never a value of the flat dict.
* Leaf values (``None``, booleans, numbers, strings) are kept as they are, untouched.

Key order follows the input (depth first), and :func:`unflatten` restores dict key order; it
also accepts the flat keys in any order (e.g. sorted: ``a.10`` before ``a.2``).  Both
functions are iterative, so a deep input cannot exhaust the Python stack.

``"lambda"`` — :func:`flatten_lambda`, the NGS360 Lambda's naming, lossy
-------------------------------------------------------------------------

The NGS360 ``Omics-Run-Event-Processor`` Lambda stored events with a one-level ``flatten()``,
and its consumers (and fixtures such as ``event_failed_example.json``) expect those names:

* top-level scalar keys are kept (``version``, ``id``, ``detail-type``, ``source``, ...);
* a top-level list ``resources`` becomes ``resources_0``, ``resources_1``, ... (a dict item
  of a list has its keys suffixed instead: ``{"k": v}`` at index 1 -> ``k_1``);
* the keys of ``detail`` (of any top-level dict) are hoisted to the top level, their values
  kept whole: a nested dict inside ``detail`` (S3's ``bucket``) stays a dict;
* a hoisted key **overwrites** a same-named top-level key.  This loses data: a read set
  event's ``detail.id`` (the read set id ``"3456789012"``) replaces the EventBridge event
  ``id`` (``"64ca0eda-9751-dc55-c41a-1bd50b4fc9b7"``), so the flattened record no longer
  holds the event id.  The legacy code got this by iteration order (``detail`` comes last in
  every EventBridge event); here hoisted keys win whatever the order.

It is kept for compatibility only; :func:`flatten` is the lossless form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["FLATTEN_STYLES", "flatten", "flatten_lambda", "unflatten"]

_DIGITS = re.compile(r"[0-9]+")


def _escape_key(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace(".", "\\.")
    if _DIGITS.fullmatch(key):
        escaped = "\\" + escaped
    return escaped


def flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """The lossless dotted form of a JSON object (see the module docstring)."""
    if not isinstance(obj, dict):
        raise TypeError(f"flatten() takes a dict, not {type(obj).__name__}")
    flat: dict[str, Any] = {}
    # (path of the container, or None for the root; iterator over its (segment, value) pairs)
    stack: list[tuple[str | None, Iterator[tuple[str, Any]]]] = [(None, iter(_segments(obj)))]
    while stack:
        prefix, items = stack[-1]
        for segment, value in items:
            path = segment if prefix is None else f"{prefix}.{segment}"
            if isinstance(value, dict | list) and value:
                stack.append((path, iter(_segments(value))))
                break
            flat[path] = value
        else:
            stack.pop()
    return flat


def _segments(container: dict[str, Any] | list[Any]) -> list[tuple[str, Any]]:
    if isinstance(container, dict):
        pairs = []
        for key, value in container.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
            pairs.append((_escape_key(key), value))
        return pairs
    return [(str(index), value) for index, value in enumerate(container)]


def _split(flat_key: str) -> list[tuple[str, bool]]:
    """``flat_key`` -> [(segment, is_list_index)]."""
    if "\\" not in flat_key:
        return [(part, bool(_DIGITS.fullmatch(part))) for part in flat_key.split(".")]
    segments: list[tuple[str, bool]] = []
    buffer: list[str] = []
    escaped = False
    index = 0
    while index < len(flat_key):
        char = flat_key[index]
        if char == "\\":
            if index + 1 >= len(flat_key):
                raise ValueError(f"flat key {flat_key!r} ends with an unpaired backslash")
            buffer.append(flat_key[index + 1])
            escaped = True
            index += 2
            continue
        if char == ".":
            text = "".join(buffer)
            segments.append((text, not escaped and bool(_DIGITS.fullmatch(text))))
            buffer, escaped = [], False
        else:
            buffer.append(char)
        index += 1
    text = "".join(buffer)
    segments.append((text, not escaped and bool(_DIGITS.fullmatch(text))))
    return segments


class _ListBuilder(dict[int, Any]):
    """A list under construction: index -> item, turned into a list at the end."""


class _Leaf:
    """A leaf value under construction (distinguishes a ``None`` leaf from a missing key)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten`: ``unflatten(flatten(obj)) == obj``.

    Raises ``ValueError`` for flat dicts no :func:`flatten` output could be (a path that is
    both a leaf and a container, list indices with gaps, a dangling backslash).
    """
    root: dict[Any, Any] = {}
    for flat_key, value in flat.items():
        segments = _split(flat_key)
        container: dict[Any, Any] = root
        for position, (segment, _) in enumerate(segments):
            key: Any = int(segment) if isinstance(container, _ListBuilder) else segment
            if position == len(segments) - 1:
                if key in container:
                    raise ValueError(f"flat key {flat_key!r} conflicts with another key")
                container[key] = _Leaf(value)
                break
            next_is_index = segments[position + 1][1]
            child = container.get(key)
            if child is None:
                child = _ListBuilder() if next_is_index else {}
                container[key] = child
            elif isinstance(child, _Leaf) or isinstance(child, _ListBuilder) != next_is_index:
                raise ValueError(f"flat key {flat_key!r} conflicts with another key")
            container = child
    return _materialise(root)


def _materialise(root: dict[Any, Any]) -> dict[str, Any]:
    """Turn the builder tree into plain dicts and lists, iteratively."""
    result: dict[str, Any] = {}
    stack: list[tuple[dict[Any, Any], Any]] = [(root, result)]
    while stack:
        builder, out = stack.pop()
        if isinstance(builder, _ListBuilder):
            indices = sorted(builder)
            if indices != list(range(len(indices))):
                raise ValueError(f"list indices {indices[:10]} are not 0..{len(indices) - 1}")
            slots: list[Any] = indices
        else:
            slots = list(builder)
        for slot in slots:
            item = builder[slot]
            if isinstance(item, _Leaf):
                value = item.value
            else:
                value = [] if isinstance(item, _ListBuilder) else {}
                stack.append((item, value))
            if isinstance(out, list):
                out.append(value)
            else:
                out[slot] = value
    return result


def flatten_lambda(event: dict[str, Any]) -> dict[str, Any]:
    """The legacy NGS360 Lambda's one-level flatten (lossy; see the module docstring)."""
    if not isinstance(event, dict):
        raise TypeError(f"flatten_lambda() takes a dict, not {type(event).__name__}")
    flat: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            continue  # hoisted below, so that its keys win
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    for sub_key, sub_value in item.items():
                        flat[f"{sub_key}_{index}"] = sub_value
                else:
                    flat[f"{key}_{index}"] = item
        else:
            flat[key] = value
    for value in event.values():
        if isinstance(value, dict):
            flat.update(value)
    return flat


#: Name of a flatten style -> the function producing it.
FLATTEN_STYLES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "dotted": flatten,
    "lambda": flatten_lambda,
}
