"""The append-only event log in SQL: the source of truth every other state is derived from.

* :mod:`eventlog.tables` — the tables (``events``, ``outbox``, ``dead_letters``);
* :mod:`eventlog.db` — engines and Alembic migrations, built from settings;
* :mod:`eventlog.store` — idempotent appends, outbox work, dead letters.

This package knows SQL and our schemas, never Celery or AWS.
"""

from eventlog.db import (
    SchemaOutOfDate,
    create_db_engine,
    current_revision,
    head_revision,
    require_head,
    upgrade,
)
from eventlog.store import LogEntry, OutboxItem, StoredEvent, derived_id

__all__ = [
    "LogEntry",
    "OutboxItem",
    "SchemaOutOfDate",
    "StoredEvent",
    "create_db_engine",
    "current_revision",
    "derived_id",
    "head_revision",
    "require_head",
    "upgrade",
]
