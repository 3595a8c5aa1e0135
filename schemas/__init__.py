"""Data shapes of the project, with no I/O: what an event, a setting or a payload looks like.

Modules (a package's own docstring lists its modules):

* :mod:`schemas.envelope` — the EventBridge envelope every event shares
  (:class:`EventBridgeEnvelope`), the SQL column lengths (``COLUMN_LENGTHS``) and the safe id
  charset (``SAFE_ID_PATTERN``) every bounded field is checked against;
* :mod:`schemas.omics` (package) — one model per HealthOmics detail-type, the status enums,
  ``DETAIL_MODELS``;
* :mod:`schemas.s3` — the S3 ``Object Created`` EventBridge event;
* :mod:`schemas.parsing` (package) — :func:`parse_event`, the gate every raw event goes through
  (never raises: a :class:`ParsedEvent` or a :class:`Rejected`), its limits and
  :func:`canonical_json`;
* :mod:`schemas.flatten` — the flattened record forms written to the archive;
* :mod:`schemas.settings` (package) — every setting of every process (:class:`Settings`,
  :func:`load_settings`) and the documentation generated from them;
* :mod:`schemas.vocabulary` — the names the log, the stages and the tools agree on (stages,
  detail-types of the pipeline's facts, status ranks, outcomes);
* :mod:`schemas.imports` — which S3 objects are read files, how they pair up, how import
  failures are classified (pure functions);
* :mod:`schemas.ngs360` — the NGS360 callback payload, as the server validates it.

This ``__init__`` re-exports the envelope, the detail models and status enums, the parser, the
S3 event, the flattening functions and :class:`Settings`/:func:`load_settings` (the names in
``__all__``); callers import those from here or from their modules, and everything else
(vocabulary, imports, ngs360, the rest of the settings) from its module.

``schemas`` depends on nothing else of the project (``schemas`` <- ``eventlog`` <- ``workers``
<- ``producers``), so any layer may import it.
"""

from __future__ import annotations

from schemas.envelope import EventBridgeEnvelope
from schemas.flatten import FLATTEN_STYLES, flatten, flatten_lambda, unflatten
from schemas.omics import (
    DETAIL_MODELS,
    TERMINAL_RUN_STATUSES,
    AnnotationImportJobStatusChange,
    AnnotationStoreShareStatusChange,
    AnnotationStoreStatusChange,
    ImportJobStatus,
    OmicsDetail,
    ReadSetActivationJobStatusChange,
    ReadSetExportJobStatusChange,
    ReadSetImportJobStatusChange,
    ReadSetStatus,
    ReadSetStatusChange,
    ReferenceImportJobStatusChange,
    ReferenceStatus,
    ReferenceStatusChange,
    ReferenceStoreStatus,
    ReferenceStoreStatusChange,
    RunBatchStatus,
    RunBatchStatusChange,
    RunGroupStatus,
    RunGroupStatusChange,
    RunStatus,
    RunStatusChange,
    S3AccessPolicyStatusChange,
    SequenceStoreStatus,
    SequenceStoreStatusChange,
    ShareStatus,
    StoreStatus,
    TaskStatus,
    TaskStatusChange,
    VariantImportJobStatus,
    VariantImportJobStatusChange,
    VariantStoreShareStatusChange,
    VariantStoreStatusChange,
    WorkflowShareStatusChange,
    WorkflowStatus,
    WorkflowStatusChange,
    last_arn_segment,
    normalise_status,
)
from schemas.parsing import (
    DEFAULT_LIMITS,
    DETAIL_MODELS_BY_SOURCE,
    OMICS_SOURCE,
    ParsedEvent,
    ParseLimits,
    Rejected,
    canonical_json,
    detail_model_for,
    parse_event,
)
from schemas.s3 import S3_DETAIL_MODELS, S3_SOURCE, S3Bucket, S3Object, S3ObjectCreated
from schemas.settings import Settings, load_settings

__all__ = [
    "DEFAULT_LIMITS",
    "DETAIL_MODELS",
    "DETAIL_MODELS_BY_SOURCE",
    "FLATTEN_STYLES",
    "OMICS_SOURCE",
    "S3_DETAIL_MODELS",
    "S3_SOURCE",
    "TERMINAL_RUN_STATUSES",
    "AnnotationImportJobStatusChange",
    "AnnotationStoreShareStatusChange",
    "AnnotationStoreStatusChange",
    "EventBridgeEnvelope",
    "ImportJobStatus",
    "OmicsDetail",
    "ParseLimits",
    "ParsedEvent",
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
    "Rejected",
    "RunBatchStatus",
    "RunBatchStatusChange",
    "RunGroupStatus",
    "RunGroupStatusChange",
    "RunStatus",
    "RunStatusChange",
    "S3AccessPolicyStatusChange",
    "S3Bucket",
    "S3Object",
    "S3ObjectCreated",
    "SequenceStoreStatus",
    "SequenceStoreStatusChange",
    "Settings",
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
    "canonical_json",
    "detail_model_for",
    "flatten",
    "flatten_lambda",
    "last_arn_segment",
    "load_settings",
    "normalise_status",
    "parse_event",
    "unflatten",
]
