"""Log lines for people (``LOG_FORMAT=text``) or for shippers (``LOG_FORMAT=json``).

Lines about an event carry ``event_id``, ``detail_type`` and the resource id when the caller
passes them in ``extra=`` — in JSON they are fields, in text they are appended as ``key=value``.
Settings are never logged whole; :meth:`schemas.settings.Settings.masked` is what gets printed.

Values in a line come from outside (an event id, a run name, an HTTP answer), so in the text
format a CR/LF in one of them would start a line of its own that a reader or a log shipper takes
for a record we never wrote.  :class:`TextFormatter` therefore escapes every control character
(C0, DEL, C1, Unicode line/paragraph separators and bidirectional overrides) in the message and
in every field as ``\\n``, ``\\xNN`` or ``\\uNNNN``: one record is one line.  A traceback keeps
its lines, each indented under the record (``  | ``), so none of them can pass for a record
either.  A JSON line is one line too: the encoder escapes C0 controls itself, and the line
breaks it leaves raw in ``ensure_ascii=False`` output (NEL, U+2028, U+2029, which
``str.splitlines`` and some shippers honour) are escaped after it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from schemas.settings import LogFormat, Settings

#: Record attributes carried into the output when present.
CONTEXT_FIELDS = ("event_id", "detail_type", "resource_id", "stage", "run_id", "job_id")


#: The event the current task or batch is about; :class:`EventContextFilter` stamps it on lines.
_event_context: ContextVar[dict[str, Any] | None] = ContextVar("event_context", default=None)


@contextmanager
def event_context(event_id: str | None, **fields: Any) -> Iterator[None]:
    """Every log line inside the block carries ``event_id`` (and the given fields)."""
    token = _event_context.set({"event_id": event_id, **fields})
    try:
        yield
    finally:
        _event_context.reset(token)


def bind_event(event: Any) -> None:
    """Add what a stage learned about its event (detail type, run or job id) to the context."""
    context = _event_context.get()
    if context is None:
        return
    context["detail_type"] = getattr(event, "detail_type", None)
    context["resource_id"] = getattr(event, "resource_id", None)


class EventContextFilter(logging.Filter):
    """Copy the current event context onto records that do not carry their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _event_context.get()
        if context:
            for name, value in context.items():
                if value is not None and getattr(record, name, None) is None:
                    setattr(record, name, value)
        return True


#: Line breaks :func:`json.dumps` leaves unescaped with ``ensure_ascii=False``.
_JSON_LINE_BREAKS = str.maketrans({0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str).translate(_JSON_LINE_BREAKS)


def _escape(code: int) -> str:
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
    if code in named:
        return named[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


#: Code points that could break a text line or disguise it: C0 controls, DEL, C1 controls (NEL
#: included), the Unicode line and paragraph separators, bidirectional embeddings, overrides and
#: isolates ("Trojan source" reordering).
_UNSAFE = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ESCAPES = str.maketrans({code: _escape(code) for code in _UNSAFE})


def escape_controls(text: str) -> str:
    """``text`` on one line, its control characters written out as escapes."""
    return text.translate(_ESCAPES)


#: Prefix of a traceback's lines in the text format: indented under their record.
TRACEBACK_PREFIX = "  | "


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [field=value …]``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        text = (
            f"{self.formatTime(record, self.datefmt)} {escape_controls(record.levelname):<7} "
            f"{escape_controls(record.name)}: {escape_controls(record.getMessage())}"
        )
        context = [
            f"{name}={escape_controls(str(getattr(record, name)))}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        ]
        if context:
            text = f"{text} [{' '.join(context)}]"
        blocks: list[str] = []
        if record.exc_info:
            blocks.append(self.formatException(record.exc_info))
        if record.stack_info:
            blocks.append(self.formatStack(record.stack_info))
        for block in blocks:
            # splitlines() breaks at every line boundary a reader may honour (\r, \x85, …)
            for line in block.splitlines():
                text += f"\n{TRACEBACK_PREFIX}{escape_controls(line)}"
        return text


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if settings.log_format is LogFormat.JSON else TextFormatter()
    )
    handler.addFilter(EventContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
