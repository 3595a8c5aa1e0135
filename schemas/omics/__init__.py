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

The package's modules:

* :mod:`schemas.omics.statuses` — the status enums, :data:`TERMINAL_RUN_STATUSES` and
  :func:`normalise_status`;
* :mod:`schemas.omics.fields` — the field types of the models: strict and lenient status fields,
  batch counters, bounded and safe-id fields, :func:`last_arn_segment`;
* :mod:`schemas.omics.details` — :class:`OmicsDetail`, one model per detail-type, and
  :data:`DETAIL_MODELS`.

The names below are re-exported here (callers import from ``schemas.omics`` or ``schemas``).
"""

from __future__ import annotations

from schemas.omics.details import (
    DETAIL_MODELS,
    AnnotationImportJobStatusChange,
    AnnotationStoreShareStatusChange,
    AnnotationStoreStatusChange,
    OmicsDetail,
    ReadSetActivationJobStatusChange,
    ReadSetExportJobStatusChange,
    ReadSetImportJobStatusChange,
    ReadSetStatusChange,
    ReferenceImportJobStatusChange,
    ReferenceStatusChange,
    ReferenceStoreStatusChange,
    RunBatchStatusChange,
    RunGroupStatusChange,
    RunStatusChange,
    S3AccessPolicyStatusChange,
    SequenceStoreStatusChange,
    TaskStatusChange,
    VariantImportJobStatusChange,
    VariantStoreShareStatusChange,
    VariantStoreStatusChange,
    WorkflowShareStatusChange,
    WorkflowStatusChange,
)
from schemas.omics.fields import last_arn_segment
from schemas.omics.statuses import (
    TERMINAL_RUN_STATUSES,
    ImportJobStatus,
    ReadSetStatus,
    ReferenceStatus,
    ReferenceStoreStatus,
    RunBatchStatus,
    RunGroupStatus,
    RunStatus,
    SequenceStoreStatus,
    ShareStatus,
    StoreStatus,
    TaskStatus,
    VariantImportJobStatus,
    WorkflowStatus,
    normalise_status,
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
