"""The append-only event log in SQL: the source of truth every other state is derived from.

The log and its writers:

* :mod:`eventlog.tables` — the SQL shape of every table (the log ``events``, ``outbox``,
  ``dead_letters``, ``log_cursors``, ``run_checks`` and the projection tables);
* :mod:`eventlog.db` — engines and Alembic migrations (``eventlog/migrations``), built from
  settings;
* :mod:`eventlog.dialect` — every PostgreSQL/SQLite difference, as named operations;
* :mod:`eventlog.entries` — rows of the log as values (``LogEntry``, ``StoredEvent``, ids,
  times), with no SQLAlchemy, for replay workers;
* :mod:`eventlog.store` — idempotent appends (folding the projections in the same
  transaction), the outbox's work; re-exports the entries and the dead-lettering names;
* :mod:`eventlog.dead_lettering` — dead letters (``reject``, ``dead_letter``, ``printable``);
* :mod:`eventlog.cursors` — leases and positions of log followers (``log_cursors``).

The projections (read models folded from the log):

* :mod:`eventlog.projection_contract` — the ``Projection`` and ``Reducer`` ABCs;
* :mod:`eventlog.projection_set` — the registry of every projection, ``LogFold`` (a whole-log
  fold with the reducers) and ``apply_all`` (the live fold);
* :mod:`eventlog.projections` — ``runs`` and ``deliveries`` (the ``Runs`` projection);
* :mod:`eventlog.resource_projections` — ``stores`` and ``tasks`` (``Resources``);
* :mod:`eventlog.import_projections` — ``import_jobs``, ``import_sources``, ``read_sets``
  (``Imports``): the fold per detail-type, ``apply``, ``rebuild``, ``snapshot``;
* :mod:`eventlog.import_folds` — the import folds themselves, one per detail-type;
* :mod:`eventlog.import_rows` — the ranks, row readers and merges those folds share;
* :mod:`eventlog.history` — a run's projection rows and its timeline from the log, for the CLI.

Rebuilding them:

* :mod:`eventlog.rebuild` — ``rebuild`` and ``check`` (the plan of a parallel fold, the swap
  under the append lock); re-exports the names of the three below;
* :mod:`eventlog.scratch_fold` — the fold loop into scratch tables, the copy to the live ones;
* :mod:`eventlog.fold_processes` — the fold processes of a parallel rebuild (``Part``);
* :mod:`eventlog.checksum` — canonical rows, the projections' checksum, ``compare``.

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
