"""The append-only event log in SQL: the source of truth every other state is derived from.

* :mod:`eventlog.tables` — the tables (``events``, ``outbox``, ``dead_letters``);
* :mod:`eventlog.db` — engines and Alembic migrations, built from settings;
* :mod:`eventlog.store` — idempotent appends, outbox work, dead letters.

This package knows SQL and our schemas, never Celery or AWS.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventlog.db import (
        SchemaOutOfDate,
        create_db_engine,
        current_revision,
        head_revision,
        require_head,
        upgrade,
    )
    from eventlog.store import LogEntry, OutboxItem, StoredEvent, derived_id

#: Where each name lives.  Loaded on first use (PEP 562): a process that needs only a light
#: module of this package — a replay worker and :mod:`eventlog.entries` — must not pay for
#: SQLAlchemy and the drivers that ``db`` and ``store`` import.
_HOMES = {
    "SchemaOutOfDate": "eventlog.db",
    "create_db_engine": "eventlog.db",
    "current_revision": "eventlog.db",
    "head_revision": "eventlog.db",
    "require_head": "eventlog.db",
    "upgrade": "eventlog.db",
    "LogEntry": "eventlog.store",
    "OutboxItem": "eventlog.store",
    "StoredEvent": "eventlog.store",
    "derived_id": "eventlog.store",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
