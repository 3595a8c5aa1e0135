"""Step 3 of the imports pool: starting a planned read-set import job, within the quotas.

Why a module of its own: starting is where the account-wide limits bite.  A planned job takes
one of ``IMPORT_MAX_CONCURRENT_JOBS`` account-wide slots (:mod:`workers.concurrency`, in Redis)
and a token of the ``IMPORT_TPS`` budget shared by StartReadSetImportJob and GetReadSetImportJob
(:class:`~workers.imports.services.ImportsApi`, taken before every HTTP attempt, botocore's
retries included).  The ``clientToken`` is the plan's id, so a task run twice never starts two
jobs (botocore does not fill it in, reference §0.9).  No slot, ``ServiceQuotaExceededException``
(402, which no botocore retry mode retries) or throttling: the plan waits and tries again; it
never fails.  A ``ValidationException`` splits the plan in halves until the one bad source is
found.  A started job is watched (:func:`workers.imports.results.watch_job`) in case its end
event is lost.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from eventlog import import_projections as proj
from eventlog import store
from eventlog.store import LogEntry, StoredEvent, derived_id, utcnow
from eventlog.tables import import_jobs
from schemas.imports import source_spec
from workers.errors import PermanentError, RetryLater
from workers.imports.facts import STAGE, fact, finish, iso, jitter, record
from workers.imports.planner import plan_entry
from workers.imports.results import fail_sources
from workers.imports.services import ImportServices
from workers.omics import OmicsError
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def start_job(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    """A planned job: take a slot, start it, record *Import Job Started* (once per plan)."""
    plan = event.payload.get("detail") or {}
    plan_id = str(plan.get("planId") or event.event_id)
    started_id = derived_id(plan_id, proj.JOB_STARTED)
    with runtime.engine.connect() as connection:
        done = store.get(connection, started_id) is not None
    if done:
        return finish(runtime, event, "already-started")
    config = services.config
    specs = [s for s in plan.get("sources") or [] if isinstance(s, dict)]
    if not specs:
        raise PermanentError(f"import plan {plan_id} has no sources")
    if not services.slots.acquire(plan_id):
        raise RetryLater(
            f"all {services.slots.limit} concurrent import-job slots are taken",
            jitter(config.quota_wait),
        )
    store_id, role_arn = str(plan["storeId"]), str(plan["roleArn"])
    try:
        response = services.api.start(
            store_id,
            role_arn,
            str(plan.get("clientToken") or plan_id),
            [source_spec(s) for s in specs],
        )
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            services.slots.release(plan_id)  # the job did not start: the slot is free
            delay = config.quota_wait if error.kind == "quota" else random.uniform(1.0, 4.0)
            raise RetryLater(str(error), jitter(delay)) from error
        if error.kind in {"invalid", "denied", "gone"}:
            services.slots.release(plan_id)
            return _refused(runtime, event, plan, specs, error)
        raise  # unknown outcome (500, timeout): Celery retries with the same clientToken
    detail = _started_detail(plan, plan_id, specs, response)
    started = replace(
        fact(event, proj.JOB_STARTED, detail, event_id=started_id), resource_id=detail["jobId"]
    )
    _record_started(runtime, services, event, started, detail)
    log.info(
        "started import job %s (%d sources, attempt %s)",
        detail["jobId"],
        len(specs),
        detail["attempt"],
        extra={"job_id": detail["jobId"], "event_id": event.event_id},
    )
    return "started"


def _started_detail(
    plan: dict[str, Any], plan_id: str, specs: list[dict[str, Any]], response: dict[str, Any]
) -> dict[str, Any]:
    """The *Import Job Started* detail: the plan, and the job StartReadSetImportJob answered."""
    return {
        "planId": plan_id,
        "jobId": str(response["id"]),
        "storeId": str(plan["storeId"]),
        "roleArn": str(plan["roleArn"]),
        "attempt": int(plan.get("attempt") or 1),
        "parentJobId": plan.get("parentJobId"),
        "clientToken": plan.get("clientToken") or plan_id,
        "sourceKeys": [s["sourceKey"] for s in specs],
        "creationTime": iso(response.get("creationTime")),
        "status": response.get("status"),
    }


def _record_started(
    runtime: Runtime,
    services: ImportServices,
    event: StoredEvent,
    started: LogEntry,
    detail: dict[str, Any],
) -> None:
    """Record the started job and schedule its watchdog, unless its end was handled already
    (then its slot, which that end could not give back yet, is freed here)."""
    plan_id, job_id = str(detail["planId"]), str(detail["jobId"])
    with runtime.engine.begin() as connection:
        record(connection, started)
        store.complete(connection, event.event_id, STAGE, "started")
        rank = connection.execute(
            select(import_jobs.c.status_rank).where(import_jobs.c.job_id == job_id)
        ).scalar_one_or_none()
        if rank != proj.JOB_RANK["COMPLETED"]:
            # the watchdog: should the job's end event be lost, the started fact's task asks
            watch_at = utcnow() + timedelta(seconds=services.config.watch_interval)
            store.schedule(connection, started.event_id, STAGE, not_before=watch_at)
    if rank == proj.JOB_RANK["COMPLETED"]:  # its end was handled before this commit
        services.slots.release(plan_id)


def _refused(
    runtime: Runtime,
    event: StoredEvent,
    plan: dict[str, Any],
    specs: list[dict[str, Any]],
    error: OmicsError,
) -> str:
    """StartReadSetImportJob refused the request itself (validation, access, no such store).

    A refused batch of several sources is split in halves, each planned again, until the bad
    source is alone; a lone source (or a refusal that is not about the sources) fails.
    """
    plan_id = str(plan.get("planId") or event.event_id)
    attempt = int(plan.get("attempt") or 1)
    with runtime.engine.begin() as connection:
        if error.kind == "invalid" and len(specs) > 1:
            middle = len(specs) // 2
            halves = [specs[:middle], specs[middle:]]
            entries = [
                plan_entry(
                    event,
                    str(plan["storeId"]),
                    str(plan["roleArn"]),
                    half,
                    attempt=attempt,
                    parent_job_id=plan.get("parentJobId"),
                    plan_id=derived_id(plan_id, f"split-{index}"),
                )
                for index, half in enumerate(halves)
            ]
            for entry in entries:
                record(connection, entry, (STAGE,))
            store.complete(connection, event.event_id, STAGE, "split")
            outcome = "split"
        else:
            reason = f"StartReadSetImportJob refused it: {error.code}: {error.message}"
            fail_sources(
                connection,
                event,
                str(plan["storeId"]),
                None,
                [(s, reason, "permanent", attempt) for s in specs],
                fact_id=derived_id(plan_id, proj.SOURCES_FAILED),
            )
            store.complete(connection, event.event_id, STAGE, "refused")
            outcome = "refused"
            entries = []
    if entries:
        runtime.publish([entry.event_id for entry in entries])
    else:
        runtime.publish([derived_id(plan_id, proj.SOURCES_FAILED)])
    return outcome
