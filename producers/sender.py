"""``omics-events send``: events from files or standard input into the pipeline.

Accepted input shapes, detected per file:

* one JSON object (an event);
* a JSON array of events;
* JSON lines (one event per line);
* an SQS ``ReceiveMessage`` response (``{"Messages": [{"Body": "…"}, …]}``) — each body is an
  event, or an SNS notification wrapping one.

Lines or bodies that are not valid events are not errors of the sender: they are submitted as
they are and end as dead letters with their reason, so nothing is silently skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from schemas.parsing import RawEvent

#: Events submitted per transaction.
BATCH_SIZE = 200


def split_events(data: bytes) -> Iterator[RawEvent]:
    """The raw events held in one input, in order, never raising."""
    text = data.strip()
    if not text:
        return
    try:
        document: Any = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        document = None
        lines = data.splitlines()
        if len(lines) > 1:
            for line in lines:
                if line.strip():
                    yield line.strip()
            return
        yield data
        return
    if isinstance(document, list):
        for item in document:
            yield item if isinstance(item, dict) else json.dumps(item)
    elif isinstance(document, dict) and isinstance(document.get("Messages"), list):
        for message in document["Messages"]:
            body = message.get("Body") if isinstance(message, dict) else None
            yield body if isinstance(body, str) else json.dumps(message)
    else:
        yield data


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
