"""One pydantic model per HealthOmics detail-type, and :data:`DETAIL_MODELS`, the exact
``detail-type`` string -> its model.

Design rules (wire names, extra fields kept, ids taken from ARNs, natural keys): the
:mod:`schemas.omics` docstring.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from schemas.envelope import COLUMN_LENGTHS, SAFE_ID_PATTERN, short_repr
from schemas.omics.fields import (
    Arn,
    Count,
    JobId,
    LenientImportJobStatus,
    LenientReferenceStatus,
    LenientReferenceStoreStatus,
    LenientRunGroupStatus,
    LenientSequenceStoreStatus,
    LenientShareStatus,
    LenientStoreStatus,
    LenientVariantImportJobStatus,
    LenientWorkflowStatus,
    OtherId,
    ReadSetId,
    RunId,
    RunName,
    RunUuid,
    SequenceStoreId,
    StoreId,
    StoreName,
    StrictReadSetStatus,
    StrictRunBatchStatus,
    StrictRunStatus,
    StrictTaskStatus,
    WorkflowId,
    WorkflowName,
    last_arn_segment,
    status_validator,
)

_RUN_ARN = re.compile(r":run/([0-9]+)$")
_SAFE_ID = re.compile(SAFE_ID_PATTERN)
_TASK_ID_LENGTH = COLUMN_LENGTHS["tasks.task_id"]
_STORE_ID_LENGTH = COLUMN_LENGTHS["stores.store_id"]
_READ_SET_ARN = re.compile(r":sequenceStore/([^/]+)/readSet/([^/]+)$")


def _fill_from_arn(data: Any, pattern: re.Pattern[str], names: tuple[str, ...]) -> Any:
    """Fill missing wire fields ``names`` from the groups of ``pattern`` matched on ``arn``."""
    if not isinstance(data, dict):
        return data
    arn = data.get("arn")
    if not isinstance(arn, str):
        return data
    match = pattern.search(arn)
    if match is None:
        return data
    filled = dict(data)
    for name, value in zip(names, match.groups(), strict=True):
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
        if name not in filled and snake not in filled:
            filled[name] = value
    return filled


class OmicsDetail(BaseModel):
    """What every HealthOmics detail has: ``omicsVersion``, usually ``arn``, and ``status``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    omics_version: str | None = None
    arn: Arn | None = None

    def resource_key(self) -> str | None:
        """The natural key of the resource the event is about (see the module docstring)."""
        return last_arn_segment(self.arn)

    def _extra_str(self, name: str) -> str | None:
        value = (self.model_extra or {}).get(name)
        return value if isinstance(value, str) and value else None


class RunStatusChange(OmicsDetail):
    """``Run Status Change``.  Key: the run ``uuid`` (run ids are reused after deletion)."""

    status: StrictRunStatus
    uuid: RunUuid
    run_id: RunId
    run_name: RunName | None = None
    run_output_uri: str | None = None
    workflow_id: WorkflowId | None = None
    workflow_name: WorkflowName | None = None
    workflow_uuid: str | None = None
    failure_reason: str | None = None
    status_message: str | None = None
    run_cache: str | None = None
    run_cache_behavior: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _run_id_from_arn(cls, data: Any) -> Any:
        return _fill_from_arn(data, _RUN_ARN, ("runId",))

    def resource_key(self) -> str | None:
        return self.uuid


class TaskStatusChange(OmicsDetail):
    """``Task Status Change``.  No task id or name on the wire: the id ends the task ARN."""

    arn: Annotated[Arn, Field(min_length=1)]
    status: StrictTaskStatus
    run_arn: Arn | None = None
    run_uuid: RunUuid | None = None
    run_id: RunId | None = None
    run_name: RunName | None = None
    workflow_id: WorkflowId | None = None
    workflow_name: WorkflowName | None = None

    @model_validator(mode="after")
    def _task_id_is_safe(self) -> TaskStatusChange:
        task_id = self.task_id
        if len(task_id) > _TASK_ID_LENGTH or not _SAFE_ID.match(task_id):
            raise ValueError(
                f"the task id at the end of 'arn', {short_repr(task_id)}, is not a safe id of "
                f"at most {_TASK_ID_LENGTH} characters"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def task_id(self) -> str:
        """``arn:aws:omics:<region>:<account>:task/<id>`` -> ``<id>``."""
        return last_arn_segment(self.arn) or self.arn

    def resource_key(self) -> str | None:
        return self.task_id


class RunBatchStatusChange(OmicsDetail):
    """``RunBatch Status Change`` (no space in "RunBatch").  Key: ``uuid``, else ``batchId``."""

    status: StrictRunBatchStatus
    batch_id: OtherId
    uuid: OtherId | None = None
    batch_name: str | None = None
    total_runs: Count | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    successful_start_submission_count: Count | None = None
    failed_start_submission_count: Count | None = None
    pending_start_submission_count: Count | None = None
    pending_run_count: Count | None = None
    starting_run_count: Count | None = None
    running_run_count: Count | None = None
    stopping_run_count: Count | None = None
    completed_run_count: Count | None = None
    failed_run_count: Count | None = None
    cancelled_run_count: Count | None = None
    deleted_run_count: Count | None = None
    workflow_id: WorkflowId | None = None
    workflow_arn: str | None = None
    workflow_version_arn: str | None = None
    workflow_owner_id: OtherId | None = None
    run_cache: str | None = None
    run_cache_behavior: str | None = None

    def resource_key(self) -> str | None:
        return self.uuid or self.batch_id


class RunGroupStatusChange(OmicsDetail):
    """``RunGroup Status Change`` (no space in "RunGroup").  Fields UNVERIFIED."""

    status: LenientRunGroupStatus
    id: OtherId | None = None

    def resource_key(self) -> str | None:
        return self.id or last_arn_segment(self.arn)


class WorkflowStatusChange(OmicsDetail):
    """``Workflow Status Change``.  Status strings UNVERIFIED; key: the workflow id (ARN)."""

    status: LenientWorkflowStatus
    workflow_uuid: str | None = None
    workflow_version_name: str | None = None


class WorkflowShareStatusChange(OmicsDetail):
    """``Workflow Share Status Change``.  Fields UNVERIFIED."""

    status: LenientShareStatus


class _StoreKeyMixin(OmicsDetail):
    """Stores: ``storeId``, else ``id``, else the last ARN segment (``stores.store_id``)."""

    store_id: StoreId | None = None
    id: StoreId | None = None
    store_name: StoreName | None = None
    name: StoreName | None = None

    def resource_key(self) -> str | None:
        return self.store_id or self.id or last_arn_segment(self.arn)

    @model_validator(mode="after")
    def _store_key_is_safe(self) -> _StoreKeyMixin:
        """The key may come from the ARN, which is only bounded as a whole."""
        key = self.resource_key()
        if key is not None and (len(key) > _STORE_ID_LENGTH or not _SAFE_ID.match(key)):
            raise ValueError(
                f"the store id at the end of 'arn', {short_repr(key)}, is not a safe id of at "
                f"most {_STORE_ID_LENGTH} characters"
            )
        return self


class SequenceStoreStatusChange(_StoreKeyMixin):
    """``Sequence Store Status Change``.  Fields UNVERIFIED."""

    status: LenientSequenceStoreStatus


class ReferenceStoreStatusChange(_StoreKeyMixin):
    """``Reference Store Status Change``.  Fields UNVERIFIED."""

    status: LenientReferenceStoreStatus


class ReadSetStatusChange(OmicsDetail):
    """``Read Set Status Change``.  ``id`` is the read set id; ``creationJobId`` probably the
    import job that created it (UNVERIFIED)."""

    status: StrictReadSetStatus
    id: ReadSetId
    sequence_store_id: SequenceStoreId | None = None
    status_message: str | None = None
    creation_job_id: JobId | None = None

    @model_validator(mode="before")
    @classmethod
    def _ids_from_arn(cls, data: Any) -> Any:
        return _fill_from_arn(data, _READ_SET_ARN, ("sequenceStoreId", "id"))

    def resource_key(self) -> str | None:
        return self.id


class _SequenceStoreJob(OmicsDetail):
    """Read set import/export/activation jobs: ``id`` is the **job** id (not ``jobId``)."""

    status: LenientImportJobStatus
    id: JobId
    sequence_store_id: SequenceStoreId
    status_message: str | None = None

    def resource_key(self) -> str | None:
        return self.id


class ReadSetImportJobStatusChange(_SequenceStoreJob):
    """``Read Set Import Job Status Change``.  Per-source results are not in the event:
    call GetReadSetImportJob."""


class ReadSetExportJobStatusChange(_SequenceStoreJob):
    """``Read Set Export Job Status Change``."""


class ReadSetActivationJobStatusChange(_SequenceStoreJob):
    """``Read Set Activation Job Status Change``."""


class ReferenceImportJobStatusChange(OmicsDetail):
    """``Reference Import Job Status Change``: ``id`` is the job id."""

    status: LenientImportJobStatus
    id: OtherId
    reference_store_id: OtherId
    status_message: str | None = None

    def resource_key(self) -> str | None:
        return self.id


class ReferenceStatusChange(OmicsDetail):
    """``Reference Status Change``: ``id`` is the reference id."""

    status: LenientReferenceStatus
    id: OtherId
    reference_store_id: OtherId | None = None
    creation_job_id: OtherId | None = None

    def resource_key(self) -> str | None:
        return self.id


class VariantStoreStatusChange(_StoreKeyMixin):
    """``Variant Store Status Change`` (closed to new customers since 2025-11-07)."""

    status: LenientStoreStatus


class AnnotationStoreStatusChange(_StoreKeyMixin):
    """``Annotation Store Status Change`` (same shape as the variant store event)."""

    status: LenientStoreStatus


class VariantImportJobStatusChange(OmicsDetail):
    """``Variant Import Job Status Change``: the job id is ``jobId`` (unlike read set jobs)."""

    status: LenientVariantImportJobStatus
    job_id: OtherId
    store_id: OtherId | None = None
    store_name: StoreName | None = None

    def resource_key(self) -> str | None:
        return self.job_id


class AnnotationImportJobStatusChange(OmicsDetail):
    """``Annotation Import Job Status Change``: shape taken from the variant example, so
    ``jobId`` is optional (key falls back to the ARN)."""

    status: LenientVariantImportJobStatus
    job_id: OtherId | None = None
    store_id: OtherId | None = None
    store_name: StoreName | None = None

    def resource_key(self) -> str | None:
        return self.job_id or last_arn_segment(self.arn)


class VariantStoreShareStatusChange(_StoreKeyMixin):
    """``Variant Store Share Status Change``.  Fields UNVERIFIED."""

    status: LenientShareStatus


class AnnotationStoreShareStatusChange(_StoreKeyMixin):
    """``Annotation Store Share Status Change``.  Fields UNVERIFIED."""

    status: LenientShareStatus


class S3AccessPolicyStatusChange(OmicsDetail):
    """``S3 Access Policy Status Change``.  Status values and fields UNVERIFIED."""

    status: Annotated[str, BeforeValidator(status_validator(None, "status", strict=False))]


#: Exact ``detail-type`` string (source ``aws.omics``) -> its detail model.
DETAIL_MODELS: dict[str, type[OmicsDetail]] = {
    "Run Status Change": RunStatusChange,
    "Task Status Change": TaskStatusChange,
    "RunBatch Status Change": RunBatchStatusChange,
    "RunGroup Status Change": RunGroupStatusChange,
    "Workflow Status Change": WorkflowStatusChange,
    "Workflow Share Status Change": WorkflowShareStatusChange,
    "Sequence Store Status Change": SequenceStoreStatusChange,
    "Reference Store Status Change": ReferenceStoreStatusChange,
    "Read Set Status Change": ReadSetStatusChange,
    "Read Set Import Job Status Change": ReadSetImportJobStatusChange,
    "Read Set Export Job Status Change": ReadSetExportJobStatusChange,
    "Read Set Activation Job Status Change": ReadSetActivationJobStatusChange,
    "Reference Import Job Status Change": ReferenceImportJobStatusChange,
    "Reference Status Change": ReferenceStatusChange,
    "Variant Store Status Change": VariantStoreStatusChange,
    "Annotation Store Status Change": AnnotationStoreStatusChange,
    "Variant Import Job Status Change": VariantImportJobStatusChange,
    "Annotation Import Job Status Change": AnnotationImportJobStatusChange,
    "Variant Store Share Status Change": VariantStoreShareStatusChange,
    "Annotation Store Share Status Change": AnnotationStoreShareStatusChange,
    "S3 Access Policy Status Change": S3AccessPolicyStatusChange,
}
