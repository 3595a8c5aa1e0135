"""Step 4 of the imports pool: a job's end, its per-source results, retries, and giving up.

Why a module of its own: following a job is independent of who started it (this works for
jobs anyone started).  A ``Read Set Import Job Status Change`` to a terminal status gives the
slot back and, for COMPLETED, COMPLETED_WITH_FAILURES and FAILED, reads GetReadSetImportJob (the
event carries no per-source result) into *Import Job Checked*; should that event be lost, the
watchdog (:func:`watch_job`) asks HealthOmics instead, under the same fact ids.  Each failed
source is classified (:func:`schemas.imports.classify_failure`): transient ones are planned
again — only they, same store, same role — after ``IMPORT_RETRY_DELAY`` doubling per attempt;
permanent ones and those out of attempts become dead letters and one *Import Sources Failed*
fact, whose task sends an SNS notification (:mod:`workers.imports.notifications`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select

from eventlog import import_projections as proj
from eventlog import store
from eventlog.store import StoredEvent, derived_id, utcnow
from eventlog.tables import import_jobs
from schemas.imports import classify_failure, source_spec
from workers.errors import PermanentError, RetryLater
from workers.imports.facts import (
    STAGE,
    dead_letter,
    fact,
    finish,
    iso,
    jitter,
    job_fact_id,
    record,
)
from workers.imports.planner import plan_entry
from workers.imports.services import ImportConfig, ImportServices
from workers.omics import OmicsError
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: A source given up: (its spec, the reason, ``permanent`` or ``exhausted``, attempts made).
Failed = tuple[dict[str, Any], str, str, int]


def on_job_status(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    detail = event.payload.get("detail") or {}
    job_id = str(detail.get("id") or "")
    store_id = str(detail.get("sequenceStoreId") or "")
    status = str(detail.get("status") or "").upper()
    with runtime.engine.begin() as connection:
        proj.apply(connection, event)
        job = connection.execute(
            select(import_jobs).where(import_jobs.c.job_id == job_id)
        ).one_or_none()
    if status not in proj.JOB_TERMINAL:
        return finish(runtime, event, "recorded")
    job_row = dict(job._mapping) if job is not None else {}
    if job_row.get("plan_id"):
        plan_id = str(job_row["plan_id"])
        services.slots.release(plan_id)
        with runtime.engine.begin() as connection:  # its end came: the watchdog can stop
            store.complete(connection, derived_id(plan_id, proj.JOB_STARTED), STAGE, "ended")
    if status == "CANCELLED":
        return finish(runtime, event, "cancelled")
    checked_id = job_fact_id(store_id, job_id, proj.JOB_CHECKED)
    with runtime.engine.connect() as connection:
        already = store.get(connection, checked_id) is not None
    if already:
        return finish(runtime, event, "already-checked")
    job_view = _read_job(services, store_id, job_id)
    if str(job_view.get("status")) not in proj.JOB_TERMINAL:
        raise RetryLater(f"GetReadSetImportJob says job {job_id} is {job_view.get('status')}", 30)
    attempt = int(job_row.get("attempt") or 1) if job_row.get("origin") == "ours" else 1
    return check_sources(runtime, services, event, job_view, attempt, checked_id)


def _read_job(services: ImportServices, store_id: str, job_id: str) -> dict[str, Any]:
    """GetReadSetImportJob: throttling waits, a job we cannot read is permanent."""
    try:
        return services.api.get(store_id, job_id)
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            raise RetryLater(str(error), jitter(random.uniform(1.0, 4.0))) from error
        if error.kind in {"gone", "denied", "invalid"}:
            raise PermanentError(f"cannot read import job {job_id}: {error}") from error
        raise


def watch_job(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    """A started job, looked at ``IMPORT_JOB_WATCH_INTERVAL`` after it started: if its end event
    was handled, nothing to do; if HealthOmics says it ended, handle the end as its event would
    have (the facts' ids are the same, so an end event arriving later appends nothing); if it
    still runs, look again later."""
    detail = event.payload.get("detail") or {}
    job_id, store_id = str(detail.get("jobId") or ""), str(detail.get("storeId") or "")
    checked_id = job_fact_id(store_id, job_id, proj.JOB_CHECKED)
    with runtime.engine.connect() as connection:
        if store.get(connection, checked_id) is not None:
            return finish(runtime, event, "already-checked")
        status = connection.execute(
            select(import_jobs.c.status).where(import_jobs.c.job_id == job_id)
        ).scalar_one_or_none()
    if status == "CANCELLED":
        return finish(runtime, event, "cancelled")
    job_view = _read_job(services, store_id, job_id)
    job_status = str(job_view.get("status"))
    if job_status not in proj.JOB_TERMINAL:
        interval = services.config.watch_interval
        raise RetryLater(f"import job {job_id} is still {job_status}", interval)
    log.warning(
        "import job %s ended %s and no event said so: handled from GetReadSetImportJob",
        job_id,
        job_status,
        extra={"job_id": job_id, "event_id": event.event_id},
    )
    if detail.get("planId"):
        services.slots.release(str(detail["planId"]))
    if job_status == "CANCELLED":
        return finish(runtime, event, "cancelled")
    return check_sources(
        runtime, services, event, job_view, int(detail.get("attempt") or 1), checked_id
    )


def check_sources(
    runtime: Runtime,
    services: ImportServices,
    event: StoredEvent,
    job: dict[str, Any],
    attempt: int,
    checked_id: str,
) -> str:
    """A finished job's GetReadSetImportJob answer becomes *Import Job Checked*; its transient
    failures are planned again, the others given up."""
    config = services.config
    job_id, store_id = str(job["id"]), str(job["sequenceStoreId"])
    results, retry, failed = _sort_sources(job, attempt, config.max_attempts)
    checked = {
        "jobId": job_id,
        "storeId": store_id,
        "roleArn": job.get("roleArn"),
        "status": job.get("status"),
        "statusMessage": job.get("statusMessage"),
        "attempt": attempt,
        "completionTime": iso(job.get("completionTime")),
        "sources": results,
    }
    publish: list[str] = []
    with runtime.engine.begin() as connection:
        record(connection, fact(event, proj.JOB_CHECKED, checked, event_id=checked_id))
        if retry:
            publish.append(_plan_retry(connection, config, event, job, retry, attempt))
        if failed:
            fact_id = job_fact_id(store_id, job_id, proj.SOURCES_FAILED)
            fail_sources(connection, event, store_id, job_id, failed, fact_id=fact_id)
            publish.append(fact_id)
        outcome = (
            f"checked: {len(results) - len(retry) - len(failed)} imported, "
            f"{len(retry)} to retry, {len(failed)} failed"
        )
        store.complete(connection, event.event_id, STAGE, outcome[:64])
    runtime.publish(publish)
    if retry or failed:
        log.info(
            "import job %s: %d source(s) to retry, %d given up",
            job_id,
            len(retry),
            len(failed),
            extra={"job_id": job_id, "event_id": event.event_id},
        )
    return outcome


def _sort_sources(
    job: dict[str, Any], attempt: int, max_attempts: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Failed]]:
    """(every source's result, the specs to retry, the sources to give up) of a finished job."""
    results: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    failed: list[Failed] = []
    for source in job.get("sources") or []:
        spec = {"sourceKey": source["sourceFiles"]["source1"], **source_spec(source)}
        status = str(source.get("status") or "")
        message = source.get("statusMessage")
        result = {
            **spec,
            "status": status,
            "statusMessage": message,
            "readSetId": source.get("readSetId"),
        }
        if status != "FINISHED":
            # a source left NOT_STARTED/IN_PROGRESS by a finished job never got its chance
            kind = classify_failure(message) if status == "FAILED" else "transient"
            result["classification"] = kind
            if kind == "transient" and attempt < max_attempts:
                retry.append(spec)
            elif kind == "transient":
                failed.append(
                    (
                        spec,
                        f"still failing after {attempt} attempt(s): {message or status}",
                        "exhausted",
                        attempt,
                    )
                )
            else:
                failed.append(
                    (spec, f"permanent failure: {message or status}", "permanent", attempt)
                )
        results.append(result)
    return results, retry, failed


def _plan_retry(
    connection: Connection,
    config: ImportConfig,
    event: StoredEvent,
    job: dict[str, Any],
    retry: list[dict[str, Any]],
    attempt: int,
) -> str:
    """Plan ``retry`` again (same store, same role) after the attempt's delay; the plan's id."""
    job_id, store_id = str(job["id"]), str(job["sequenceStoreId"])
    delay = config.retry_delay_for(attempt)
    entry = plan_entry(
        event,
        store_id,
        str(job["roleArn"]),
        retry,
        attempt=attempt + 1,
        parent_job_id=job_id,
        plan_id=job_fact_id(store_id, job_id, "retry"),
    )
    record(connection, entry, (STAGE,), not_before=utcnow() + timedelta(seconds=delay))
    return entry.event_id


def fail_sources(
    connection: Connection,
    cause: StoredEvent,
    store_id: str,
    job_id: str | None,
    failed: Iterable[Failed],
    *,
    fact_id: str,
) -> None:
    """Give sources up: one dead letter each, and one fact whose task notifies SNS."""
    items = []
    for spec, reason, classification, attempts in failed:
        files = spec.get("sourceFiles") or {}
        item = {
            "sourceKey": spec["sourceKey"],
            "source1": files.get("source1"),
            "source2": files.get("source2"),
            "sampleId": spec.get("sampleId"),
            "reason": reason,
            "classification": classification,
            "attempts": attempts,
        }
        items.append(item)
        named = " + ".join(f for f in (item["source1"], item["source2"]) if f)
        dead_letter(
            connection, cause, f"{named}: {reason}", {"storeId": store_id, "jobId": job_id, **item}
        )
    detail = {"storeId": store_id, "jobId": job_id, "sources": items}
    record(connection, fact(cause, proj.SOURCES_FAILED, detail, event_id=fact_id), (STAGE,))
