"""The HealthOmics operations, as plain functions from request parameters to response dicts.

Why apart from the HTTP layer: the response shapes and the validation rules are the part that
must match botocore's ``omics`` model (2022-11-28), and they are easier to read and to test
without Starlette in the way.  :mod:`.api` only parses HTTP and serialises what these return.

Conventions copied from the real service and the model:

* timestamps are ``iso8601`` strings with milliseconds (the model's ``timestampFormat``);
* absent optional members are omitted, never ``null``;
* errors are :class:`ApiError` with the model's code and HTTP status; validation messages follow
  the AWS "1 validation error detected: Value … at '…' failed to satisfy constraint: …" style;
* list operations page with an opaque token (``startingToken`` → ``nextToken`` for
  ListRunTasks, ``nextToken`` both ways for ListReadSetImportJobs), so boto3 paginators work.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from simulator import events as ev
from simulator.catalog import MAX_IMPORT_SOURCES
from simulator.clock import api_time, parse_time
from simulator.state import ImportJob, QuotaExceeded, Run, Source, Task, World

#: HTTP status of each modelled error (botocore ``omics`` model).
ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 402,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "NotSupportedOperationException": 405,
    "RequestTimeoutException": 408,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "UnknownOperationException": 404,
}

FILE_TYPES = ("FASTQ", "BAM", "CRAM", "UBAM")
JOB_STATUSES = (
    "SUBMITTED",
    "IN_PROGRESS",
    "CANCELLING",
    "CANCELLED",
    "FAILED",
    "COMPLETED",
    "COMPLETED_WITH_FAILURES",
)
TASK_STATUSES = ("PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED", "CANCELLED", "FAILED")

_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9\-.]{1,61}[a-z0-9])/(.{1,1024})$")
_DIGITS = re.compile(r"^[0-9]+$")


class ApiError(Exception):
    """A modelled HealthOmics error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERROR_STATUS.get(code, 400)


def _validation(value: object, where: str, constraint: str) -> ApiError:
    return ApiError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
        f"constraint: {constraint}",
    )


def _check_digits(value: str, where: str, low: int, high: int) -> None:
    if not (low <= len(value) <= high):
        raise _validation(
            value, where, f"Member must have length between {low} and {high}, inclusive"
        )
    if not _DIGITS.match(value):
        raise _validation(value, where, "Member must satisfy regular expression pattern: [0-9]+")


def _max_results(raw: str | None, where: str = "maxResults") -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise _validation(raw, where, "Member must be an integer") from exc
    if not 1 <= value <= 100:
        raise _validation(value, where, "Member must have value between 1 and 100, inclusive")
    return value


def _encode_token(scope: str, offset: int) -> str:
    raw = json.dumps({"s": scope, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, scope: str, where: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] != scope or not isinstance(data["o"], int) or data["o"] < 0:
            raise ValueError(token)
        return int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ApiError("ValidationException", f"Invalid {where}.") from exc


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# -- runs -----------------------------------------------------------------------------------


def _visible_run(world: World, run_id: str) -> Run:
    _check_digits(run_id, "id", 1, 18)
    run = world.runs.get(run_id)
    if run is None or not run.visible:
        raise ApiError("ResourceNotFoundException", f"The requested run {run_id} was not found.")
    return run


def run_view(world: World, run: Run) -> dict[str, Any]:
    """GetRun's response for ``run``."""
    log_location = {
        "runLogStream": ev.log_stream_arn(world.region, world.account, f"run/{run.run_id}")
    }
    return _compact(
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
    limit = _max_results(max_results) or 100
    if status is not None and status not in RUN_STATUSES:
        raise _validation(
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
        offset = _decode_token(starting_token, scope, "startingToken")
        items = [
            _compact(
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
            response["nextToken"] = _encode_token(scope, offset + limit)
        return response


def _task_item(task: Task) -> dict[str, Any]:
    plan = task.plan
    return _compact(
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
    limit = _max_results(max_results) or 100
    if status is not None and status not in TASK_STATUSES:
        raise _validation(
            status, "status", f"Member must satisfy enum value set: [{', '.join(TASK_STATUSES)}]"
        )
    with world.lock:
        run = _visible_run(world, run_id)
        tasks = sorted(run.tasks.values(), key=lambda t: (t.creation_time, t.plan.created_at))
        if status:
            tasks = [t for t in tasks if t.status == status]
        scope = f"run/{run_id}/{status or ''}"
        offset = _decode_token(starting_token, scope, "startingToken")
        page = tasks[offset : offset + limit]
        response: dict[str, Any] = {"items": [_task_item(t) for t in page]}
        if offset + limit < len(tasks):
            response["nextToken"] = _encode_token(scope, offset + limit)
        return response


def get_run_task(world: World, run_id: str, task_id: str) -> dict[str, Any]:
    _check_digits(task_id, "taskId", 1, 18)
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
            _compact(
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
        raise _validation(resource_arn, "resourceArn", "Member must be a valid ARN")
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


def _source_view(source: Source) -> dict[str, Any]:
    files: dict[str, Any] = {"source1": source.source1}
    if source.source2:
        files["source2"] = source.source2
    tags = dict(source.tags)
    tags.setdefault("aws:omics:sampleId", source.sample_id)
    tags.setdefault("aws:omics:subjectId", source.subject_id)
    return _compact(
        {
            "sourceFiles": files,
            "sourceFileType": source.file_type,
            "status": source.status,
            "statusMessage": source.status_message,
            "subjectId": source.subject_id,
            "sampleId": source.sample_id,
            "generatedFrom": source.generated_from,
            "referenceArn": source.reference_arn,
            "name": source.name,
            "description": source.description,
            "tags": tags,
            "readSetId": source.read_set_id if source.status == "FINISHED" else None,
        }
    )


def _job_summary(job: ImportJob) -> dict[str, Any]:
    return _compact(
        {
            "id": job.job_id,
            "sequenceStoreId": job.store_id,
            "roleArn": job.role_arn,
            "status": job.status,
            "creationTime": api_time(job.creation_time),
            "completionTime": api_time(job.completion_time),
        }
    )


def get_read_set_import_job(world: World, store_id: str, job_id: str) -> dict[str, Any]:
    _check_digits(store_id, "sequenceStoreId", 10, 36)
    _check_digits(job_id, "id", 10, 36)
    with world.lock:
        job = world.jobs.get(job_id)
        if job is None or not job.visible or job.store_id != store_id:
            raise ApiError(
                "ResourceNotFoundException", f"The requested import job {job_id} was not found."
            )
        view = _job_summary(job)
        if job.status_message:
            view["statusMessage"] = job.status_message
        view["sources"] = [_source_view(s) for s in job.sources]
        return view


def parse_sources(body: dict[str, Any]) -> list[Source]:
    raw = body.get("sources")
    if not isinstance(raw, list) or not raw:
        raise _validation(raw, "sources", "Member must have length greater than or equal to 1")
    if len(raw) > MAX_IMPORT_SOURCES:
        raise _validation(
            f"[{len(raw)} items]",
            "sources",
            f"Member must have length less than or equal to {MAX_IMPORT_SOURCES}",
        )
    sources: list[Source] = []
    for index, item in enumerate(raw, start=1):
        where = f"sources.{index}.member"
        if not isinstance(item, dict):
            raise _validation(item, where, "Member must be a structure")
        files = item.get("sourceFiles") or {}
        source1, source2 = files.get("source1"), files.get("source2")
        if not isinstance(source1, str) or not _S3_URI.match(source1):
            raise _validation(
                source1,
                f"{where}.sourceFiles.source1",
                "Member must satisfy regular expression pattern: "
                "s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})",
            )
        if source2 is not None and (not isinstance(source2, str) or not _S3_URI.match(source2)):
            raise _validation(
                source2,
                f"{where}.sourceFiles.source2",
                "Member must satisfy regular expression pattern: "
                "s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})",
            )
        file_type = item.get("sourceFileType")
        if file_type not in FILE_TYPES:
            raise _validation(
                file_type,
                f"{where}.sourceFileType",
                f"Member must satisfy enum value set: [{', '.join(FILE_TYPES)}]",
            )
        for key in ("subjectId", "sampleId"):
            value = item.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= 127:
                raise _validation(
                    value, f"{where}.{key}", "Member must have length between 1 and 127, inclusive"
                )
        reference = item.get("referenceArn")
        if file_type in {"BAM", "CRAM"} and not reference:
            raise ApiError(
                "ValidationException",
                f"A referenceArn is required for aligned {file_type} source {source1}.",
            )
        tags = item.get("tags") or {}
        if not isinstance(tags, dict):
            raise _validation(tags, f"{where}.tags", "Member must be a map")
        sources.append(
            Source(
                source1=source1,
                source2=source2 or None,
                file_type=file_type,
                subject_id=item["subjectId"],
                sample_id=item["sampleId"],
                generated_from=item.get("generatedFrom"),
                reference_arn=reference,
                name=item.get("name"),
                description=item.get("description"),
                tags={str(k): str(v) for k, v in tags.items()},
            )
        )
    return sources


def start_read_set_import_job(
    world: World, store_id: str, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a job; returns (response, call record).  Same ``clientToken`` → same job."""
    _check_digits(store_id, "sequenceStoreId", 10, 36)
    role_arn = body.get("roleArn")
    if not isinstance(role_arn, str) or not 20 <= len(role_arn) <= 2048:
        raise _validation(
            role_arn, "roleArn", "Member must have length between 20 and 2048, inclusive"
        )
    if not role_arn.startswith("arn:"):
        raise _validation(role_arn, "roleArn", "Member must be a valid IAM role ARN")
    token = body.get("clientToken")
    if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 127):
        raise _validation(
            token, "clientToken", "Member must have length between 1 and 127, inclusive"
        )
    sources = parse_sources(body)
    record: dict[str, Any] = {
        "sequenceStoreId": store_id,
        "clientToken": token,
        "sources": [
            {"source1": s.source1, "source2": s.source2, "sampleId": s.sample_id} for s in sources
        ],
        "jobId": None,
        "reused": False,
    }
    with world.lock:
        if token and (store_id, token) in world.client_tokens:
            job = world.jobs[world.client_tokens[(store_id, token)]]
            record.update(jobId=job.job_id, reused=True)
            record["sameRequest"] = [s.source1 for s in job.sources] == [s.source1 for s in sources]
        else:
            job = world.new_job(
                store_id=store_id,
                role_arn=role_arn,
                sources=sources,
                client_token=token,
                origin="api",
            )
            try:
                world.submit_job(job, enforce_quota=True)
            except QuotaExceeded as exc:
                del world.jobs[job.job_id]
                raise ApiError("ServiceQuotaExceededException", str(exc)) from exc
            record["jobId"] = job.job_id
        response = {
            "id": job.job_id,
            "sequenceStoreId": job.store_id,
            "roleArn": job.role_arn,
            "status": job.status,
            "creationTime": api_time(job.creation_time),
        }
        return response, record


def list_read_set_import_jobs(
    world: World,
    store_id: str,
    body: dict[str, Any],
    *,
    max_results: str | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    _check_digits(store_id, "sequenceStoreId", 10, 36)
    limit = _max_results(max_results) or 100
    flt = body.get("filter") or {}
    status = flt.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise _validation(
            status,
            "filter.status",
            f"Member must satisfy enum value set: [{', '.join(JOB_STATUSES)}]",
        )
    try:
        after = parse_time(flt.get("createdAfter"))
        before = parse_time(flt.get("createdBefore"))
    except ValueError as exc:
        raise ApiError("ValidationException", f"Invalid timestamp in filter: {exc}") from exc
    scope = json.dumps([store_id, status, after, before])
    with world.lock:
        jobs = sorted(
            (j for j in world.jobs.values() if j.visible and j.store_id == store_id),
            key=lambda j: (j.creation_time or 0.0, j.job_id),
        )
        if status:
            jobs = [j for j in jobs if j.status == status]
        if after is not None:
            jobs = [j for j in jobs if (j.creation_time or 0.0) >= after]
        if before is not None:
            jobs = [j for j in jobs if (j.creation_time or 0.0) <= before]
        offset = _decode_token(next_token, scope, "nextToken")
        page = jobs[offset : offset + limit]
        response: dict[str, Any] = {"importJobs": [_job_summary(j) for j in page]}
        if offset + limit < len(jobs):
            response["nextToken"] = _encode_token(scope, offset + limit)
        return response
