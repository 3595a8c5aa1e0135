"""Step 2 of the imports pool: which ready sources go into which import job, and when.

Why a module of its own: batching is a decision over *every* ready source at once.  A complete
source is *ready* and waits ``IMPORT_BATCH_WINDOW`` seconds for others (its *Import Source
Ready* fact's ``not_before``); then one planner (a PostgreSQL advisory lock) takes every ready
source and plans jobs of at most ``IMPORT_MAX_SOURCES_PER_JOB`` (100, HealthOmics' limit) per
store and role (*Import Job Planned*).  A source is planned once: the fold moves it past
*ready* in the same transaction.  Retries and split refusals are planned with
:func:`plan_entry` too (:mod:`workers.imports.jobs`, :mod:`workers.imports.outcomes`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, func, select

from eventlog import import_projections as proj
from eventlog import store
from eventlog.store import LogEntry, StoredEvent, derived_id
from eventlog.tables import import_sources
from schemas.imports import ALIGNED_TYPES
from workers.imports.facts import STAGE, fact, ready_id, record, source_row
from workers.imports.services import ImportServices
from workers.runtime import Runtime

#: Arbitrary constant naming the PostgreSQL advisory lock of the batch planner.
PLAN_LOCK_KEY = 0x1A4_0B7C
GENERATED_FROM = "omics-events auto-import"


def _spec(row: dict[str, Any]) -> dict[str, Any]:
    """A planned source: the StartReadSetImportJob fields plus our ``sourceKey``."""
    spec: dict[str, Any] = {
        "sourceKey": row["source_key"],
        "sourceFiles": {"source1": row["source1"]},
        "sourceFileType": row["file_type"],
        "subjectId": row["subject_id"],
        "sampleId": row["sample_id"],
        "generatedFrom": GENERATED_FROM,
    }
    if row.get("source2"):
        spec["sourceFiles"]["source2"] = row["source2"]
    if row.get("reference_arn") and row["file_type"] in ALIGNED_TYPES:
        spec["referenceArn"] = row["reference_arn"]
    if row.get("name"):
        spec["name"] = row["name"]
    for field, value in (row.get("extra") or {}).items():
        if field in {"description", "generatedFrom", "tags"} and value:
            spec[field] = value
    return spec


def plan_entry(
    cause: StoredEvent,
    store_id: str,
    role_arn: str,
    specs: list[dict[str, Any]],
    *,
    attempt: int,
    parent_job_id: str | None,
    plan_id: str | None = None,
) -> LogEntry:
    """The *Import Job Planned* fact of ``specs``; its id (and ``clientToken``) is the plan's,
    derived from the store, the attempt and the source keys unless ``plan_id`` pins it."""
    keys = "\x1f".join(sorted(str(s["sourceKey"]) for s in specs))
    plan_id = plan_id or derived_id(f"import-plan\x1f{store_id}\x1f{attempt}", keys)
    detail = {
        "planId": plan_id,
        "storeId": store_id,
        "roleArn": role_arn,
        "attempt": attempt,
        "parentJobId": parent_job_id,
        "clientToken": plan_id,
        "sources": specs,
    }
    return fact(cause, proj.JOB_PLANNED, detail, event_id=plan_id)


def _lock_planner(connection: Connection) -> None:
    """One planner at a time on PostgreSQL: an advisory lock held until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(PLAN_LOCK_KEY)))


def plan_batches(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    """A source's batch window is over: plan every ready source into jobs."""
    config = services.config
    source_key = str((event.payload.get("detail") or {}).get("sourceKey") or "")
    planned: list[str] = []
    with runtime.engine.begin() as connection:
        _lock_planner(connection)
        row = source_row(connection, source_key)
        if row is None or row["outcome"] != "ready":
            store.complete(connection, event.event_id, STAGE, "already-batched")
            return "already-batched"
        ready = connection.execute(
            select(import_sources)
            .where(import_sources.c.outcome == "ready")
            .order_by(import_sources.c.registered_at, import_sources.c.source_key)
        ).all()
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for item in ready:
            data = dict(item._mapping)
            if data["store_id"] and data["role_arn"]:
                groups[(data["store_id"], data["role_arn"])].append(data)
        for (store_id, role_arn), rows in sorted(groups.items()):
            for start in range(0, len(rows), config.max_sources):
                chunk = rows[start : start + config.max_sources]
                entry = plan_entry(
                    event,
                    store_id,
                    role_arn,
                    [_spec(r) for r in chunk],
                    attempt=1,
                    parent_job_id=None,
                )
                if record(connection, entry, (STAGE,)):
                    planned.append(entry.event_id)
                for r in chunk:  # their own windows need not run any more
                    store.complete(connection, ready_id(r["source_key"]), STAGE, "batched")
        store.complete(connection, event.event_id, STAGE, "batched")
    runtime.publish(planned)
    return f"planned {len(planned)} job(s)"
