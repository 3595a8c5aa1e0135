"""One pydantic model per HealthOmics EventBridge detail-type, and the status enums.

The detail-type strings are exact and are the keys of :data:`DETAIL_MODELS`.  Beware the ones
without spaces (``RunGroup Status Change``, ``RunBatch Status Change``) and the made-up
strings found in public code (``Omics Run Status Change`` does not exist).  Source of every
field and value: the project's HealthOmics events reference
(``docs/reference/healthomics-events.md`` §1-§2: the EventBridge documentation, the schema
registry, real NGS360 events) and the ``omics`` service model of botocore.

Design rules, and why:

* **Wire names, Python attributes.**  Attributes are snake_case; the camelCase wire names
  (``runId``, ``runOutputUri``, ``sequenceStoreId``) are their aliases, so validation errors
  name the field as it appears in the event (``detail.runId``).  ``populate_by_name`` lets
  tests build details with Python names.
* **``extra="allow"``.**  Real events carry more than the documentation and the schema
  registry list (real FAILED run events have ``failureReason``, ``statusMessage``,
  ``runCache``...).  Unknown fields are kept, never a reason to reject.
* **Every value is a string** in every documented example, including the batch counters
  (``"totalRuns": "96"``); counters also accept a JSON number, in case AWS ever sends one.
* **Status values** go through :func:`normalise_status` (upper-case, spaces to ``_``), because
  the documentation's table uses prose ("in progress") while the examples and real events use
  the API enum ("IN_PROGRESS").  What happens to a value outside the enum depends on how well
  the wire enum is established:

  ========================================  ==========================  ==================
  detail-type                               enum                        unknown value
  ========================================  ==========================  ==================
  Run Status Change                         :class:`RunStatus`          rejected
  Task Status Change                        :class:`TaskStatus`         rejected
  RunBatch Status Change                    :class:`RunBatchStatus`     rejected
  Read Set Status Change                    :class:`ReadSetStatus`      rejected
  every other detail-type                   its enum (UNVERIFIED)       kept as a string
  ========================================  ==========================  ==================

  The first four are documented with upper-case wire values and real or documented examples,
  so an unknown value there means a broken event.  For the others the wire strings are not
  established (no real example, prose-only documentation), so rejecting an unknown value would
  dead-letter real events; the normalised string is kept instead.  A status that is not a
  string, or is empty, is always rejected.
* **Required fields** are the ones every source agrees on.  Where the reference marks the
  field list UNVERIFIED (RunGroup, Workflow share, Sequence/Reference store, store shares,
  S3 access policy) only ``status`` is required and the known fields are optional.
* **``runId`` of a run event** is required but, when absent, is taken from the run ARN
  (``...:run/<runId>``): the older guide's Run Status Change example carries ``uuid`` and
  ``arn`` but no ``runId``.  A read set's ``id`` and ``sequenceStoreId`` are taken from its ARN
  the same way.  Only the typed model is filled in; the stored payload stays as received.
* **Task ids** are not in task events: :attr:`TaskStatusChange.task_id` is the last segment of
  the task ARN (``...:task/<id>``).
* **Bounded, safe ids.**  Every field a projection writes to a column is refused when longer
  than the column (:data:`schemas.envelope.COLUMN_LENGTHS`), and every id (run ``uuid`` and
  ``runId``, task id, job, read set, store, reference and batch ids) must be in the safe id
  charset (:data:`schemas.envelope.SAFE_ID_PATTERN`), since ids become parts of keys and paths.
  Free text (``statusMessage``, ``failureReason``) is not bounded: its columns are ``TEXT`` or
  the projection cuts it, and a long message must not cost a run its status.
* **Natural keys.**  Each model's :meth:`OmicsDetail.resource_key` gives the key a projection
  should use for the resource: the run ``uuid`` (run ids are reused after deletion), the task
  id, the read set ``id``, the job ``id`` (``jobId`` for variant/annotation import jobs), the
  store's ``storeId``/``id``, else the last segment of the ARN.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from schemas.envelope import (
    COLUMN_LENGTHS,
    SAFE_ID_PATTERN,
    Bounded,
    SafeId,
    json_type_name,
    short_repr,
)

__all__ = [
    "DETAIL_MODELS",
    "TERMINAL_RUN_STATUSES",
    "AnnotationImportJobStatusChange",
    "AnnotationStoreShareStatusChange",
    "AnnotationStoreStatusChange",
    "ImportJobStatus",
    "OmicsDetail",
    "ReadSetActivationJobStatusChange",
    "ReadSetExportJobStatusChange",
    "ReadSetImportJobStatusChange",
    "ReadSetStatus",
    "ReadSetStatusChange",
    "ReferenceImportJobStatusChange",
    "ReferenceStatus",
    "ReferenceStatusChange",
    "ReferenceStoreStatus",
    "ReferenceStoreStatusChange",
    "RunBatchStatus",
    "RunBatchStatusChange",
    "RunGroupStatus",
    "RunGroupStatusChange",
    "RunStatus",
    "RunStatusChange",
    "S3AccessPolicyStatusChange",
    "SequenceStoreStatus",
    "SequenceStoreStatusChange",
    "ShareStatus",
    "StoreStatus",
    "TaskStatus",
    "TaskStatusChange",
    "VariantImportJobStatus",
    "VariantImportJobStatusChange",
    "VariantStoreShareStatusChange",
    "VariantStoreStatusChange",
    "WorkflowShareStatusChange",
    "WorkflowStatus",
    "WorkflowStatusChange",
    "last_arn_segment",
    "normalise_status",
]


# --- status enums -------------------------------------------------------------------------


class RunStatus(StrEnum):
    """botocore ``RunStatus``; the run event's wire values (reference §2.1)."""

    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"  # a normal step before COMPLETED, not a cancel
    COMPLETED = "COMPLETED"
    DELETED = "DELETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


#: Run states after which nothing changes but deletion.
TERMINAL_RUN_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DELETED}
)


class TaskStatus(StrEnum):
    """botocore ``TaskStatus``, plus ``DELETED``.

    The API enum has no ``DELETED``, but the HealthOmics EventBridge page lists "deleted" for
    run *and task* events.  Accepting it costs nothing; rejecting a real event would
    dead-letter it.
    """

    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    DELETED = "DELETED"


class RunBatchStatus(StrEnum):
    """botocore ``BatchStatus`` (the batch page omits ``RUNS_DELETE_FAILED``)."""

    CREATING = "CREATING"
    PENDING = "PENDING"
    SUBMITTING = "SUBMITTING"
    INPROGRESS = "INPROGRESS"
    STOPPING = "STOPPING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    PROCESSED = "PROCESSED"
    RUNS_DELETING = "RUNS_DELETING"
    RUNS_DELETE_FAILED = "RUNS_DELETE_FAILED"
    RUNS_DELETED = "RUNS_DELETED"


class RunGroupStatus(StrEnum):
    """Documentation prose "active or deleted"; wire strings UNVERIFIED."""

    ACTIVE = "ACTIVE"
    DELETED = "DELETED"


class WorkflowStatus(StrEnum):
    """Workflow event statuses: the documentation's prose values and the API's
    ``WorkflowStatus``.  Which of the two appears on the wire is UNVERIFIED."""

    CREATION_SUCCESS = "CREATION_SUCCESS"
    CREATION_FAILURE = "CREATION_FAILURE"
    DELETION_SUCCESS = "DELETION_SUCCESS"
    DELETION_FAILURE = "DELETION_FAILURE"
    CREATING = "CREATING"
    ACTIVE = "ACTIVE"
    UPDATING = "UPDATING"
    DELETED = "DELETED"
    FAILED = "FAILED"
    INACTIVE = "INACTIVE"


class ShareStatus(StrEnum):
    """botocore ``ShareStatus`` (workflow and store shares; wire UNVERIFIED)."""

    PENDING = "PENDING"
    ACTIVATING = "ACTIVATING"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    DELETED = "DELETED"
    FAILED = "FAILED"


class SequenceStoreStatus(StrEnum):
    """Documentation prose ("created, updated, active, deleted") plus botocore
    ``SequenceStoreStatus``; wire strings UNVERIFIED."""

    CREATED = "CREATED"
    CREATING = "CREATING"
    UPDATED = "UPDATED"
    UPDATING = "UPDATING"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    DELETED = "DELETED"
    FAILED = "FAILED"


class ReferenceStoreStatus(StrEnum):
    """Documentation prose ("created, updated, active, deleted"); wire UNVERIFIED."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"


class ReadSetStatus(StrEnum):
    """botocore ``ReadSetStatus``; documented wire values (``PROCESSING_UPLOAD`` example)."""

    ARCHIVED = "ARCHIVED"
    ACTIVATING = "ACTIVATING"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    DELETED = "DELETED"
    PROCESSING_UPLOAD = "PROCESSING_UPLOAD"
    UPLOAD_FAILED = "UPLOAD_FAILED"


class ImportJobStatus(StrEnum):
    """botocore ``ReadSetImportJobStatus``; the export, activation and reference-import job
    enums have the same values.  Assumed for job events, UNVERIFIED from a real event."""

    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_FAILURES = "COMPLETED_WITH_FAILURES"


class ReferenceStatus(StrEnum):
    """botocore ``ReferenceStatus`` (the documentation says "active or deleted")."""

    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    DELETED = "DELETED"


class StoreStatus(StrEnum):
    """Variant/annotation store events: the documentation's prose values (the example uses
    ``CREATED``) plus botocore ``StoreStatus`` (``ACTIVE``, ``FAILED``)."""

    CREATING = "CREATING"
    CREATED = "CREATED"
    UPDATING = "UPDATING"
    UPDATED = "UPDATED"
    DELETING = "DELETING"
    DELETED = "DELETED"
    CREATION_FAILED = "CREATION_FAILED"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"


class VariantImportJobStatus(StrEnum):
    """botocore ``JobStatus`` (variant and annotation import jobs)."""

    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    COMPLETED_WITH_FAILURES = "COMPLETED_WITH_FAILURES"


# --- helpers ------------------------------------------------------------------------------


def normalise_status(s: str) -> str:
    """``"in progress"`` -> ``"IN_PROGRESS"``: upper-case, runs of whitespace to one ``_``."""
    return "_".join(s.upper().split())


def last_arn_segment(arn: str | None) -> str | None:
    """The resource id at the end of an ARN: after the last ``/``, else after the last ``:``.

    ``arn:aws:omics:us-west-2:1:task/8888888`` -> ``8888888``;
    ``arn:aws:omics:us-east-1:1:bcvariantstore2`` -> ``bcvariantstore2``;
    ``arn:aws:s3:::bucket`` -> ``bucket``.  ``None`` for a missing or empty result.
    """
    if not arn:
        return None
    tail = arn.rsplit("/", 1)[-1]
    if "/" not in arn:
        tail = tail.rsplit(":", 1)[-1]
    return tail or None


E = TypeVar("E", bound=StrEnum)


def _status_validator(
    enum: type[E] | None, label: str, *, strict: bool
) -> Callable[[Any], E | str]:
    """A status validator: a non-empty string, normalised, then (if ``enum``) an enum member;
    outside the enum, ``strict`` rejects and otherwise the normalised string is kept."""

    def validate(value: Any) -> E | str:
        if enum is not None and isinstance(value, enum):
            return value
        if not isinstance(value, str):
            raise ValueError(f"must be a string (got {json_type_name(value)})")
        normalised = normalise_status(value)
        if not normalised:
            raise ValueError(f"{label} is empty")
        if enum is None:
            return normalised
        try:
            return enum(normalised)
        except ValueError:
            if strict:
                raise ValueError(f"{short_repr(value)} is not a valid {label}") from None
            return normalised

    return validate


# BeforeValidator, not PlainValidator: with a plain validator pydantic 2.14 serialises the
# enum member through a wrap serializer that warns "Expected `enum`".
def _strict(enum: type[E], label: str) -> Any:
    return Annotated[enum, BeforeValidator(_status_validator(enum, label, strict=True))]


def _lenient(enum: type[E], label: str) -> Any:
    return Annotated[enum | str, BeforeValidator(_status_validator(enum, label, strict=False))]


StrictRunStatus = _strict(RunStatus, "run status")
StrictTaskStatus = _strict(TaskStatus, "task status")
StrictRunBatchStatus = _strict(RunBatchStatus, "run batch status")
StrictReadSetStatus = _strict(ReadSetStatus, "read set status")
LenientRunGroupStatus = _lenient(RunGroupStatus, "run group status")
LenientWorkflowStatus = _lenient(WorkflowStatus, "workflow status")
LenientShareStatus = _lenient(ShareStatus, "share status")
LenientSequenceStoreStatus = _lenient(SequenceStoreStatus, "sequence store status")
LenientReferenceStoreStatus = _lenient(ReferenceStoreStatus, "reference store status")
LenientImportJobStatus = _lenient(ImportJobStatus, "job status")
LenientReferenceStatus = _lenient(ReferenceStatus, "reference status")
LenientStoreStatus = _lenient(StoreStatus, "store status")
LenientVariantImportJobStatus = _lenient(VariantImportJobStatus, "import job status")

#: A counter of a batch event: a string on the wire ("96"), a number accepted too.
Count = str | int

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


# --- bounded fields -----------------------------------------------------------------------

Arn = Bounded("events.resource_arn")
RunUuid = SafeId("runs.run_uuid")
RunId = SafeId("runs.run_id")
RunName = Bounded("runs.run_name")
WorkflowId = SafeId("runs.workflow_id")
WorkflowName = Bounded("runs.workflow_name")
JobId = SafeId("import_jobs.job_id")
SequenceStoreId = SafeId("import_jobs.store_id")
ReadSetId = SafeId("read_sets.read_set_id")
StoreId = SafeId("stores.store_id")
StoreName = Bounded("stores.store_name")
#: Ids no projection has a column of its own for (batches, references, reference stores,
#: variant/annotation jobs): safe like every id, and no longer than a store id.
OtherId = SafeId("stores.store_id")

# --- models -------------------------------------------------------------------------------


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

    status: Annotated[str, BeforeValidator(_status_validator(None, "status", strict=False))]


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
