"""The status enums of the HealthOmics detail-types, and how a wire status is normalised.

Each enum holds the wire values the reference documents for its detail-type
(``docs/reference/healthomics-events.md`` §2); :mod:`schemas.omics.fields` decides, per
detail-type, whether a value outside the enum is rejected or kept as a string.
"""

from __future__ import annotations

from enum import StrEnum


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


def normalise_status(s: str) -> str:
    """``"in progress"`` -> ``"IN_PROGRESS"``: upper-case, runs of whitespace to one ``_``."""
    return "_".join(s.upper().split())
