"""Log lines for people (``LOG_FORMAT=text``) or for shippers (``LOG_FORMAT=json``).

Lines about an event carry ``event_id``, ``detail_type`` and the resource id when the caller
passes them in ``extra=`` — in JSON they are fields, in text they are appended as ``key=value``.
Settings are never logged whole; :meth:`schemas.settings.Settings.masked` is what gets printed.
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
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        ]
        return f"{text} [{' '.join(context)}]" if context else text


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
