"""``omics-events send``: events from files or standard input into the pipeline.

Accepted input shapes, detected per file:

* one JSON object (an event);
* a JSON array of events;
* JSON lines (one event per line), or JSON values one after the other;
* an SQS ``ReceiveMessage`` response (``{"Messages": [{"Body": "…"}, …]}``) — each body is an
  event, or an SNS notification wrapping one.

Lines, elements or bodies that are not valid events are not errors of the sender: they are
submitted as they are and end as dead letters with their reason, so nothing is silently skipped
and the good events of the same file still go in.

Why a scanner and not ``json.loads`` of the whole file: every event must reach
:func:`schemas.parse_event` as the **raw bytes** it had in the file, exactly like an SQS body, so
that the parser's checks (duplicate keys, NUL, depth, ...) apply to it and the dead letter keeps
its bytes; decoding a whole array into dicts first would merge duplicate keys and lose the bytes.
And ``json.loads`` recurses: a file that opens 100,000 levels deep raises ``RecursionError``.
:func:`top_level_values` and :func:`array_elements` find where values begin and end by counting
brackets outside strings, in a loop, whatever the depth.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

from schemas.parsing import RawEvent

#: Events submitted per transaction.
BATCH_SIZE = 200

# A JSON string (possibly unterminated: it then runs to the end) or a structural character.
# Strings are skipped whole, so brackets and commas inside them do not count.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{},]', re.DOTALL)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_WHITESPACE = b" \t\r\n"


def top_level_values(data: bytes) -> tuple[list[bytes], bool]:
    """The top-level JSON values of ``data`` as byte slices, and whether the text was *clean*:
    only bracketed values separated by whitespace, every bracket closed.

    Nothing is decoded: a value's own syntax is the parser's business.
    """
    values: list[bytes] = []
    depth = 0
    start = 0
    clean = True
    position = 0  # where the text after the last value begins
    for match in _TOKEN.finditer(data):
        token = match.group()[0]
        if depth == 0:
            if data[position : match.start()].strip(_WHITESPACE):
                clean = False  # something that is not a bracketed value, between values
            if token not in _OPEN:
                clean = False
                position = match.end()
                continue
            start = match.start()
        if token in _OPEN:
            depth += 1
        elif token in _CLOSE:
            depth -= 1
            if depth == 0:
                values.append(data[start : match.end()])
                position = match.end()
    if depth > 0:
        clean = False
        values.append(data[start:])
    elif data[position:].strip(_WHITESPACE):
        clean = False
    return values, clean


def array_elements(array: bytes) -> Iterator[bytes]:
    """The elements of a JSON array (``array`` starts with ``[``) as raw byte slices.

    An array that is never closed ends at the end of the text: its last element is then
    whatever follows the last comma, and the parser rejects it if it is not an event.  Text
    after the closing bracket is yielded too, as one more (bad) element.
    """
    depth = 0
    start = 1
    for match in _TOKEN.finditer(array):
        token = match.group()[0]
        if token in _OPEN:
            depth += 1
        elif token in _CLOSE:
            depth -= 1
            if depth == 0:
                element = array[start : match.start()].strip(_WHITESPACE)
                if element or start > 1:  # "[]" holds nothing; "[a,]" ends with an empty one
                    yield element
                rest = array[match.end() :].strip(_WHITESPACE)
                if rest:  # text after the array: not skipped silently, a dead letter
                    yield rest
                return
        elif token == ord(",") and depth == 1:
            yield array[start : match.start()].strip(_WHITESPACE)
            start = match.end()
    if depth > 0:
        yield array[start:].strip(_WHITESPACE)


def _sqs_bodies(value: bytes) -> list[RawEvent] | None:
    """The bodies of an SQS ``ReceiveMessage`` response, or ``None`` if ``value`` is not one.

    orjson, not ``json``: it stops at a fixed depth instead of recursing without bound.
    """
    if b'"Messages"' not in value:
        return None
    try:
        document: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("Messages"), list):
        return None
    bodies: list[RawEvent] = []
    for message in document["Messages"]:
        body = message.get("Body") if isinstance(message, dict) else None
        bodies.append(body if isinstance(body, str) else orjson.dumps(message))
    return bodies


def split_events(data: bytes) -> Iterator[RawEvent]:
    """The raw events held in one input, in order, never raising."""
    if not data.strip(_WHITESPACE):
        return
    values, clean = top_level_values(data)
    if not clean:
        # not a sequence of whole values: JSON lines with bad lines (a line that never closes
        # its brackets must not swallow the next ones), or one broken array or value
        lines = [line.strip(_WHITESPACE) for line in data.splitlines()]
        lines = [line for line in lines if line]
        if len(lines) > 1:
            yield from lines
        elif lines[0].startswith(b"["):
            yield from array_elements(lines[0])
        else:
            yield data
        return
    if len(values) == 1:
        value = values[0]
        if value.startswith(b"["):
            yield from array_elements(value)
            return
        bodies = _sqs_bodies(value)
        if bodies is not None:
            yield from bodies
            return
    yield from values


def read_inputs(paths: list[str], stdin: IO[bytes]) -> Iterator[RawEvent]:
    for path in paths or ["-"]:
        if path == "-":
            yield from split_events(stdin.read())
        else:
            with open(path, "rb") as stream:
                yield from split_events(stream.read())


def batched(items: Iterator[RawEvent], size: int = BATCH_SIZE) -> Iterator[list[RawEvent]]:
    batch: list[RawEvent] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
