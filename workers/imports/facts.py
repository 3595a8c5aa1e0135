"""What every step of the imports pool does with the log: append a fact, fold it, finish a task.

Why one module: each step appends its pipeline facts and folds them into
``import_sources``/``import_jobs``/``read_sets`` (:mod:`eventlog.import_projections`) in the
transaction that completes its task; the ids here derive from what caused a fact (the source,
the job), so a retried or duplicated task appends nothing twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from eventlog import import_projections as proj
from eventlog import store
from eventlog.store import LogEntry, StoredEvent, derived_id
from eventlog.tables import import_sources
from schemas.parsing import canonical_json
from schemas.vocabulary import SOURCE_READY
from workers.routing import FACT_STAGES
from workers.runtime import Runtime

STAGE = "imports"


def fact(
    cause: StoredEvent, detail_type: str, detail: dict[str, Any], *, event_id: str | None = None
) -> LogEntry:
    """A pipeline fact caused by ``cause``; ``event_id`` pins an id that does not depend on the
    cause (a source's, a plan's, a job's), so two causes of one fact append it once."""
    entry = LogEntry.pipeline(cause, detail_type, detail)
    if event_id is None:
        return entry
    return replace(entry, event_id=event_id, payload={**entry.payload, "id": event_id})


def record(
    connection: Connection,
    entry: LogEntry,
    stages: Sequence[str] = (),
    *,
    not_before: Any = None,
) -> bool:
    """Append ``entry`` (owing ``stages``) and fold it, in the caller's transaction."""
    if not store.append(connection, entry, (*FACT_STAGES, *stages), not_before=not_before):
        return False
    stored = store.get(connection, entry.event_id)
    if stored is not None:
        proj.apply(connection, stored)
    return True


def finish(runtime: Runtime, event: StoredEvent, outcome: str) -> str:
    """Complete ``event``'s imports task with ``outcome`` (and return it)."""
    with runtime.engine.begin() as connection:
        store.complete(connection, event.event_id, STAGE, outcome)
    return outcome


def fold_and_finish(runtime: Runtime, event: StoredEvent, outcome: str) -> str:
    """Fold ``event`` itself and complete its imports task, in one transaction."""
    with runtime.engine.begin() as connection:
        proj.apply(connection, event)
        store.complete(connection, event.event_id, STAGE, outcome)
    return outcome


def source_row(connection: Connection, key: str) -> dict[str, Any] | None:
    """The ``import_sources`` row of ``key``, if there is one."""
    row = connection.execute(
        select(import_sources).where(import_sources.c.source_key == key)
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def ready_id(source_key: str) -> str:
    """The id of a source's *Import Source Ready* fact: one per source, whoever appends it."""
    return derived_id(f"import-source\x1f{source_key}", SOURCE_READY)


def job_fact_id(store_id: str, job_id: str, fact: str) -> str:
    """The id of a job's fact ``fact``: the same whether its end event or the watchdog saw it."""
    return derived_id(f"import-job\x1f{store_id}\x1f{job_id}", fact)


def dead_letter(
    connection: Connection, event: StoredEvent, reason: str, raw: dict[str, Any] | bytes
) -> None:
    """An ``import`` dead letter caused by ``event``."""
    store.dead_letter(
        connection,
        kind="import",
        stage=STAGE,
        event_id=event.event_id,
        detail_type=event.detail_type,
        reason=reason,
        raw=raw if isinstance(raw, bytes) else canonical_json(raw),
    )


def jitter(seconds: float) -> float:
    """``seconds`` stretched by up to a quarter, so waiting workers do not align."""
    return seconds * random.uniform(1.0, 1.25)


def iso(value: Any) -> str | None:
    """A HealthOmics timestamp (a datetime, or whatever came) as text."""
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)
