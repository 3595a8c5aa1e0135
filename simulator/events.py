"""EventBridge events exactly as HealthOmics sends them (no I/O here).

Why a module of pure builders: the shapes are the contract with every parser in ``schemas`` and
every worker, so they are written once, next to the sources they copy:

* the envelope: ``version "0"``, a UUID ``id``, ``detail-type``, ``source "aws.omics"``,
  ``account``, ``time`` in whole-second UTC ``Z``, ``region``, ``resources [arn]``, ``detail``
  (the HealthOmics user guide's EventBridge examples, reference §1.1);
* ``Run Status Change``: the documented fields plus what real 2026 events carry (``workflowUuid``
  always; ``failureReason`` and ``statusMessage`` on FAILED; ``runCache``/``runCacheBehavior`` when
  the run uses a cache), in the key order of the real FAILED event (reference §1.3);
* ``Task Status Change``: no task id or name in the detail, the task id is the ARN's last part
  (reference §1.4);
* ``Read Set Import Job Status Change``: ``id`` (the job id, not ``jobId``), ``sequenceStoreId``,
  ``status``, ``statusMessage`` (schema registry, reference §1.5; the ``resources`` ARN format is
  unverified, we use ``…:sequenceStore/<sid>/importJob/<id>``);
* ``Read Set Status Change``: ``arn``, ``sequenceStoreId``, ``id``, ``status`` as in the docs
  example, plus ``creationJobId`` and, on UPLOAD_FAILED, ``statusMessage`` (reference §1.6);
* S3 ``Object Created`` (``source: aws.s3``), what a bucket with EventBridge notifications on
  sends for each new object (S3 user guide, "EventBridge event message structure"), for the
  read files a lab drops into its incoming bucket.

Every detail value is a string, as in every published example.
"""

from __future__ import annotations

from typing import Any

from simulator.clock import event_time

OMICS_VERSION = "1.0.0"
SOURCE = "aws.omics"
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"

RUN_STATUS_CHANGE = "Run Status Change"
TASK_STATUS_CHANGE = "Task Status Change"
IMPORT_JOB_STATUS_CHANGE = "Read Set Import Job Status Change"
READ_SET_STATUS_CHANGE = "Read Set Status Change"

DETAIL_TYPES = (
    RUN_STATUS_CHANGE,
    TASK_STATUS_CHANGE,
    IMPORT_JOB_STATUS_CHANGE,
    READ_SET_STATUS_CHANGE,
)


def run_arn(region: str, account: str, run_id: str) -> str:
    return f"arn:aws:omics:{region}:{account}:run/{run_id}"


def task_arn(region: str, account: str, task_id: str) -> str:
    return f"arn:aws:omics:{region}:{account}:task/{task_id}"


def read_set_arn(region: str, account: str, store_id: str, read_set_id: str) -> str:
    return f"arn:aws:omics:{region}:{account}:sequenceStore/{store_id}/readSet/{read_set_id}"


def import_job_arn(region: str, account: str, store_id: str, job_id: str) -> str:
    return f"arn:aws:omics:{region}:{account}:sequenceStore/{store_id}/importJob/{job_id}"


def log_stream_arn(region: str, account: str, stream: str) -> str:
    """A CloudWatch log-stream ARN in HealthOmics' ``/aws/omics/WorkflowLog`` group."""
    return f"arn:aws:logs:{region}:{account}:log-group:/aws/omics/WorkflowLog:log-stream:{stream}"


def envelope(
    *,
    event_id: str,
    detail_type: str,
    account: str,
    region: str,
    when: float,
    resource: str,
    detail: dict[str, Any],
    source: str = SOURCE,
) -> dict[str, Any]:
    """The EventBridge envelope around one ``detail``."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": event_time(when),
        "region": region,
        "resources": [resource],
        "detail": detail,
    }


def run_status_detail(
    *,
    arn: str,
    run_id: str,
    status: str,
    uuid: str,
    run_output_uri: str,
    run_name: str | None,
    workflow_id: str,
    workflow_name: str,
    workflow_uuid: str,
    failure_reason: str | None = None,
    status_message: str | None = None,
    run_cache: str | None = None,
    run_cache_behavior: str | None = None,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "omicsVersion": OMICS_VERSION,
        "arn": arn,
        "runId": run_id,
        "status": status,
        "uuid": uuid,
        "runOutputUri": run_output_uri,
    }
    if status == "FAILED":
        if failure_reason:
            detail["failureReason"] = failure_reason
        if status_message:
            detail["statusMessage"] = status_message
    if run_cache:
        detail["runCache"] = run_cache
        if run_cache_behavior:
            detail["runCacheBehavior"] = run_cache_behavior
    if run_name:
        detail["runName"] = run_name
    detail["workflowName"] = workflow_name
    detail["workflowId"] = workflow_id
    detail["workflowUuid"] = workflow_uuid
    return detail


def task_status_detail(
    *,
    arn: str,
    status: str,
    run_arn: str,
    run_uuid: str,
    run_id: str,
    run_name: str | None,
    workflow_id: str,
    workflow_name: str,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "omicsVersion": OMICS_VERSION,
        "arn": arn,
        "status": status,
        "runArn": run_arn,
        "runUuid": run_uuid,
        "runId": run_id,
    }
    if run_name:
        detail["runName"] = run_name
    detail["workflowId"] = workflow_id
    detail["workflowName"] = workflow_name
    return detail


def import_job_status_detail(
    *, job_id: str, store_id: str, status: str, status_message: str | None
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "omicsVersion": OMICS_VERSION,
        "id": job_id,
        "sequenceStoreId": store_id,
        "status": status,
    }
    if status_message:
        detail["statusMessage"] = status_message
    return detail


def read_set_status_detail(
    *,
    arn: str,
    store_id: str,
    read_set_id: str,
    status: str,
    creation_job_id: str | None,
    status_message: str | None = None,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "omicsVersion": OMICS_VERSION,
        "arn": arn,
        "sequenceStoreId": store_id,
        "id": read_set_id,
        "status": status,
    }
    if status_message:
        detail["statusMessage"] = status_message
    if creation_job_id:
        detail["creationJobId"] = creation_job_id
    return detail


def s3_object_created_detail(
    *, bucket: str, key: str, size: int, etag: str, sequencer: str, requester: str
) -> dict[str, Any]:
    """``detail`` of an S3 ``Object Created`` event (a ``PutObject``)."""
    return {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {"key": key, "size": size, "etag": etag, "sequencer": sequencer},
        "request-id": sequencer[-16:],
        "requester": requester,
        "source-ip-address": "10.0.0.1",
        "reason": "PutObject",
    }
