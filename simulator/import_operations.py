"""The read-set import operations: StartReadSetImportJob, GetReadSetImportJob,
ListReadSetImportJobs, and the parsing of an import request's sources.

Response shapes and validation follow botocore's ``omics`` model; conventions in
:mod:`simulator.operations`.
"""

from __future__ import annotations

import json
from typing import Any

from simulator.catalog import MAX_IMPORT_SOURCES
from simulator.clock import api_time, parse_time
from simulator.operation_rules import (
    FILE_TYPES,
    JOB_STATUSES,
    S3_URI,
    ApiError,
    check_digits,
    compact,
    decode_token,
    encode_token,
    max_results_of,
    validation_error,
)
from simulator.state import ImportJob, QuotaExceeded, Source, World


def _source_view(source: Source) -> dict[str, Any]:
    files: dict[str, Any] = {"source1": source.source1}
    if source.source2:
        files["source2"] = source.source2
    tags = dict(source.tags)
    tags.setdefault("aws:omics:sampleId", source.sample_id)
    tags.setdefault("aws:omics:subjectId", source.subject_id)
    return compact(
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
    return compact(
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
    check_digits(store_id, "sequenceStoreId", 10, 36)
    check_digits(job_id, "id", 10, 36)
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
        raise validation_error(raw, "sources", "Member must have length greater than or equal to 1")
    if len(raw) > MAX_IMPORT_SOURCES:
        raise validation_error(
            f"[{len(raw)} items]",
            "sources",
            f"Member must have length less than or equal to {MAX_IMPORT_SOURCES}",
        )
    sources: list[Source] = []
    for index, item in enumerate(raw, start=1):
        where = f"sources.{index}.member"
        if not isinstance(item, dict):
            raise validation_error(item, where, "Member must be a structure")
        files = item.get("sourceFiles") or {}
        source1, source2 = files.get("source1"), files.get("source2")
        if not isinstance(source1, str) or not S3_URI.match(source1):
            raise validation_error(
                source1,
                f"{where}.sourceFiles.source1",
                "Member must satisfy regular expression pattern: "
                "s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})",
            )
        if source2 is not None and (not isinstance(source2, str) or not S3_URI.match(source2)):
            raise validation_error(
                source2,
                f"{where}.sourceFiles.source2",
                "Member must satisfy regular expression pattern: "
                "s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})",
            )
        file_type = item.get("sourceFileType")
        if file_type not in FILE_TYPES:
            raise validation_error(
                file_type,
                f"{where}.sourceFileType",
                f"Member must satisfy enum value set: [{', '.join(FILE_TYPES)}]",
            )
        for key in ("subjectId", "sampleId"):
            value = item.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= 127:
                raise validation_error(
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
            raise validation_error(tags, f"{where}.tags", "Member must be a map")
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
    check_digits(store_id, "sequenceStoreId", 10, 36)
    role_arn = body.get("roleArn")
    if not isinstance(role_arn, str) or not 20 <= len(role_arn) <= 2048:
        raise validation_error(
            role_arn, "roleArn", "Member must have length between 20 and 2048, inclusive"
        )
    if not role_arn.startswith("arn:"):
        raise validation_error(role_arn, "roleArn", "Member must be a valid IAM role ARN")
    token = body.get("clientToken")
    if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 127):
        raise validation_error(
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
    check_digits(store_id, "sequenceStoreId", 10, 36)
    limit = max_results_of(max_results) or 100
    flt = body.get("filter") or {}
    status = flt.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise validation_error(
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
        offset = decode_token(next_token, scope, "nextToken")
        page = jobs[offset : offset + limit]
        response: dict[str, Any] = {"importJobs": [_job_summary(j) for j in page]}
        if offset + limit < len(jobs):
            response["nextToken"] = encode_token(scope, offset + limit)
        return response
