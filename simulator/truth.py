"""The ground truth of a simulated account, as JSON-serialisable dicts.

Why: the tests and the demo compare what the workers concluded with what really happened, so
the simulator must say what happened in plain data (no dataclasses, no enums): every run with
its tasks, every import job with its sources, every read set.  Called under the world's lock
by :meth:`simulator.Simulator.ground_truth` and :meth:`~simulator.Simulator.summary`.
"""

from __future__ import annotations

from typing import Any

from simulator.entities import JOB_TERMINAL, RUN_TERMINAL, ImportJob, ReadSet, Run
from simulator.state import World


def world_truth(world: World) -> dict[str, Any]:
    """Every run, job and read set, the outputs written and the import calls counted."""
    return {
        "runs": {run.run_id: _run_truth(run) for run in world.runs.values()},
        "import_jobs": {job.job_id: _job_truth(job) for job in world.jobs.values()},
        "read_sets": {rs.read_set_id: _read_set_truth(rs) for rs in world.read_sets.values()},
        "outputs_written": dict(world.outputs_written),
        "max_active_import_jobs": world.max_active_import_jobs,
        "import_calls": len(world.import_calls),
    }


def world_counts(world: World) -> dict[str, Any]:
    """Runs and jobs by status (``SCHEDULED`` before they are visible), tasks and read sets."""
    run_status: dict[str, int] = {}
    for run in world.runs.values():
        key = run.status or "SCHEDULED"
        run_status[key] = run_status.get(key, 0) + 1
    job_status: dict[str, int] = {}
    for job in world.jobs.values():
        key = job.status or "SCHEDULED"
        job_status[key] = job_status.get(key, 0) + 1
    return {
        "runs": run_status,
        "import_jobs": job_status,
        "tasks": sum(len(r.tasks) for r in world.runs.values()),
        "read_sets": len(world.read_sets),
    }


def _run_truth(run: Run) -> dict[str, Any]:
    return {
        "uuid": run.uuid,
        "name": run.name,
        "status": run.status,
        "planned_outcome": run.planned_outcome,
        "terminal": run.status in RUN_TERMINAL,
        "failureReason": run.failure_reason,
        "statusMessage": run.status_message,
        "tags": dict(run.tags),
        "workflowId": run.workflow_id,
        "workflowName": run.workflow_name,
        "outputUri": run.output_uri,
        "runOutputUri": run.run_output_uri,
        "outputs_uri": run.outputs_written_to,
        "outputs": run.outputs if run.outputs_written_to else None,
        "creationTime": run.creation_time,
        "startTime": run.start_time,
        "stopTime": run.stop_time,
        "tasks": {
            task.task_id: {
                "name": task.plan.name,
                "status": task.status,
                "failureReason": task.failure_reason,
            }
            for task in run.tasks.values()
        },
    }


def _job_truth(job: ImportJob) -> dict[str, Any]:
    return {
        "sequenceStoreId": job.store_id,
        "status": job.status,
        "terminal": job.status in JOB_TERMINAL,
        "statusMessage": job.status_message,
        "origin": job.origin,
        "clientToken": job.client_token,
        "sources": [
            {
                "source1": s.source1,
                "source2": s.source2,
                "sampleId": s.sample_id,
                "status": s.status,
                "statusMessage": s.status_message,
                "readSetId": s.read_set_id,
                "failure": s.failure_kind,
            }
            for s in job.sources
        ],
    }


def _read_set_truth(rs: ReadSet) -> dict[str, Any]:
    return {
        "status": rs.status,
        "sequenceStoreId": rs.store_id,
        "creationJobId": rs.job_id,
        "sampleId": rs.sample_id,
        "source1": rs.source1,
        "source2": rs.source2,
    }
