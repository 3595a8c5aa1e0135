"""The workflow-run operations: GetRun, ListRuns, ListRunTasks, GetRunTask, ListTagsForResource.

Response shapes follow botocore's ``omics`` model; conventions in :mod:`simulator.operations`.
"""

from __future__ import annotations

import json
from typing import Any

from simulator import events as ev
from simulator.clock import api_time
from simulator.operation_rules import (
    TASK_STATUSES,
    ApiError,
    check_digits,
    compact,
    decode_token,
    encode_token,
    max_results_of,
    validation_error,
)
from simulator.state import Run, Task, World


def _visible_run(world: World, run_id: str) -> Run:
    check_digits(run_id, "id", 1, 18)
    run = world.runs.get(run_id)
    if run is None or not run.visible:
        raise ApiError("ResourceNotFoundException", f"The requested run {run_id} was not found.")
    return run


def run_view(world: World, run: Run) -> dict[str, Any]:
    """GetRun's response for ``run``."""
    log_location = {
        "runLogStream": ev.log_stream_arn(world.region, world.account, f"run/{run.run_id}")
    }
    return compact(
        {
            "arn": world.run_arn(run.run_id),
            "id": run.run_id,
            "cacheId": run.cache_id,
            "cacheBehavior": run.cache_behavior,
            "status": run.status,
            "workflowId": run.workflow_id,
            "workflowType": "PRIVATE",
            "runId": run.run_id,
            "roleArn": run.role_arn,
            "name": run.name,
            "runGroupId": run.run_group_id,
            "priority": run.priority,
            "digest": "sha256:" + run.workflow_uuid.replace("-", "") * 2,
            "parameters": {"sample_name": run.sample},
            "storageCapacity": run.storage_capacity,
            "outputUri": run.output_uri,
            "logLevel": "ALL",
            "resourceDigests": {},
            "startedBy": f"arn:aws:sts::{world.account}:assumed-role/OmicsLauncher/ngs360",
            "creationTime": api_time(run.creation_time),
            "startTime": api_time(run.start_time),
            "stopTime": api_time(run.stop_time),
            "statusMessage": run.status_message,
            "tags": dict(run.tags),
            "retentionMode": "RETAIN",
            "failureReason": run.failure_reason,
            "logLocation": log_location,
            "uuid": run.uuid,
            "runOutputUri": run.run_output_uri,
            "storageType": run.storage_type,
            "workflowOwnerId": world.account,
            "workflowUuid": run.workflow_uuid,
            "workflowVersionName": "1.0",
        }
    )


def get_run(world: World, run_id: str) -> dict[str, Any]:
    with world.lock:
        return run_view(world, _visible_run(world, run_id))


RUN_STATUSES = (
    "PENDING",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "COMPLETED",
    "DELETED",
    "CANCELLED",
    "FAILED",
)


def list_runs(
    world: World,
    *,
    name: str | None = None,
    run_group_id: str | None = None,
    status: str | None = None,
    starting_token: str | None = None,
    max_results: str | None = None,
) -> dict[str, Any]:
    """ListRuns (what a reconciliation poller calls).  Oldest first, so offsets stay stable
    while new runs arrive."""
    limit = max_results_of(max_results) or 100
    if status is not None and status not in RUN_STATUSES:
        raise validation_error(
            status, "status", f"Member must satisfy enum value set: [{', '.join(RUN_STATUSES)}]"
        )
    scope = json.dumps(["runs", name, run_group_id, status])
    with world.lock:
        runs = sorted(
            (r for r in world.runs.values() if r.visible),
            key=lambda r: (r.creation_time or 0.0, r.run_id),
        )
        if name:
            runs = [r for r in runs if r.name.startswith(name)]
        if run_group_id:
            runs = [r for r in runs if r.run_group_id == run_group_id]
        if status:
            runs = [r for r in runs if r.status == status]
        offset = decode_token(starting_token, scope, "startingToken")
        items = [
            compact(
                {
                    "arn": world.run_arn(r.run_id),
                    "id": r.run_id,
                    "status": r.status,
                    "workflowId": r.workflow_id,
                    "name": r.name,
                    "priority": r.priority,
                    "storageCapacity": r.storage_capacity,
                    "creationTime": api_time(r.creation_time),
                    "startTime": api_time(r.start_time),
                    "stopTime": api_time(r.stop_time),
                    "storageType": r.storage_type,
                    "workflowVersionName": "1.0",
                    "workflowName": r.workflow_name,
                }
            )
            for r in runs[offset : offset + limit]
        ]
        response: dict[str, Any] = {"items": items}
        if offset + limit < len(runs):
            response["nextToken"] = encode_token(scope, offset + limit)
        return response


def _task_item(task: Task) -> dict[str, Any]:
    plan = task.plan
    return compact(
        {
            "taskId": plan.task_id,
            "status": task.status,
            "name": plan.name,
            "cpus": plan.cpus,
            "cacheHit": False,
            "memory": plan.memory,
            "creationTime": api_time(task.creation_time),
            "startTime": api_time(task.start_time),
            "stopTime": api_time(task.stop_time),
            "gpus": 0,
            "instanceType": plan.instance_type,
            "uuid": plan.uuid,
        }
    )


def list_run_tasks(
    world: World,
    run_id: str,
    *,
    status: str | None = None,
    starting_token: str | None = None,
    max_results: str | None = None,
) -> dict[str, Any]:
    limit = max_results_of(max_results) or 100
    if status is not None and status not in TASK_STATUSES:
        raise validation_error(
            status, "status", f"Member must satisfy enum value set: [{', '.join(TASK_STATUSES)}]"
        )
    with world.lock:
        run = _visible_run(world, run_id)
        tasks = sorted(run.tasks.values(), key=lambda t: (t.creation_time, t.plan.created_at))
        if status:
            tasks = [t for t in tasks if t.status == status]
        scope = f"run/{run_id}/{status or ''}"
        offset = decode_token(starting_token, scope, "startingToken")
        page = tasks[offset : offset + limit]
        response: dict[str, Any] = {"items": [_task_item(t) for t in page]}
        if offset + limit < len(tasks):
            response["nextToken"] = encode_token(scope, offset + limit)
        return response


def get_run_task(world: World, run_id: str, task_id: str) -> dict[str, Any]:
    check_digits(task_id, "taskId", 1, 18)
    with world.lock:
        run = _visible_run(world, run_id)
        task = run.tasks.get(task_id)
        if task is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"The requested task {task_id} was not found in run {run_id}.",
            )
        view = _task_item(task)
        view.update(
            compact(
                {
                    "statusMessage": task.status_message,
                    "failureReason": task.failure_reason,
                    "logStream": ev.log_stream_arn(
                        world.region, world.account, f"run/{run_id}/task/{task_id}"
                    ),
                    "imageDetails": {
                        "image": task.plan.image,
                        "imageDigest": "sha256:" + task.plan.uuid.replace("-", "") * 2,
                        "sourceImage": task.plan.image,
                    },
                }
            )
        )
        return view


def list_tags_for_resource(world: World, resource_arn: str) -> dict[str, Any]:
    if not resource_arn.startswith("arn:"):
        raise validation_error(resource_arn, "resourceArn", "Member must be a valid ARN")
    prefix = f"arn:aws:omics:{world.region}:{world.account}:"
    with world.lock:
        if resource_arn.startswith(prefix):
            rest = resource_arn[len(prefix) :]
            if rest.startswith("run/"):
                run = world.runs.get(rest[4:])
                if run is not None and run.visible:
                    return {"tags": dict(run.tags)}
            parts = rest.split("/")
            if len(parts) == 4 and parts[0] == "sequenceStore" and parts[2] == "readSet":
                read_set = world.read_sets.get(parts[3])
                if read_set is not None and read_set.store_id == parts[1]:
                    return {"tags": dict(read_set.tags)}
        raise ApiError("ResourceNotFoundException", f"Resource {resource_arn} was not found.")


# -- read-set import jobs -------------------------------------------------------------------
