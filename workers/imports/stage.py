"""The ``imports`` stage: one task per event owed to it, dispatched on what the event is.

Why a module of its own: it is the pool's only entry point (:mod:`workers.app` maps
:data:`STAGE` to :func:`import_stage`), and the one place that knows which step handles
which event: S3 objects (:mod:`~workers.imports.files`), ready sources
(:mod:`~workers.imports.planner`), planned jobs (:mod:`~workers.imports.jobs`), job ends and
watchdogs (:mod:`~workers.imports.results`), sources given up
(:mod:`~workers.imports.notifications`).
"""

from __future__ import annotations

from eventlog import import_projections as proj
from eventlog import store
from schemas.vocabulary import SOURCE_READY
from workers.errors import PermanentError
from workers.imports.facts import STAGE, finish, fold_and_finish
from workers.imports.files import on_object_created
from workers.imports.jobs import start_job
from workers.imports.notifications import notify_failed
from workers.imports.planner import plan_batches
from workers.imports.results import on_job_status, watch_job
from workers.imports.services import ImportServices
from workers.runtime import Runtime


def import_stage(runtime: Runtime, event_id: str) -> str:
    """The ``imports`` stage: dispatch on what the event is."""
    with runtime.engine.connect() as connection:
        event, done = store.get_for_stage(connection, event_id, STAGE)
    if event is None:
        raise PermanentError(f"event {event_id} is not in the log")
    if done:
        return "already-done"
    services = ImportServices.of(runtime)
    kind = (event.source, event.detail_type)
    if kind == ("aws.s3", "Object Created") and event.origin == "aws":
        return on_object_created(runtime, services, event)
    if event.origin == "aws" and event.detail_type == proj.IMPORT_JOB_STATUS_CHANGE:
        return on_job_status(runtime, services, event)
    if event.origin == "aws" and event.detail_type == proj.READ_SET_STATUS_CHANGE:
        # routed here by earlier versions; the intake folds these now (idempotent either way)
        return fold_and_finish(runtime, event, "recorded")
    if event.origin == "pipeline":
        if event.detail_type == SOURCE_READY:
            return plan_batches(runtime, services, event)
        if event.detail_type == proj.JOB_PLANNED:
            return start_job(runtime, services, event)
        if event.detail_type == proj.SOURCES_FAILED:
            return notify_failed(runtime, services, event)
        if event.detail_type == proj.JOB_STARTED:
            return watch_job(runtime, services, event)
    return finish(runtime, event, "ignored")
