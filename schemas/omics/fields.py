"""The field types the detail models are declared with: status fields (strict or lenient),
batch counters, bounded and safe-id fields, and :func:`last_arn_segment`.

A strict status field rejects a value outside its enum; a lenient one keeps the normalised
string (why each detail-type is one or the other: the :mod:`schemas.omics` docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator

from schemas.envelope import Bounded, SafeId, json_type_name, short_repr
from schemas.omics.statuses import (
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


def status_validator(enum: type[E] | None, label: str, *, strict: bool) -> Callable[[Any], E | str]:
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
    return Annotated[enum, BeforeValidator(status_validator(enum, label, strict=True))]


def _lenient(enum: type[E], label: str) -> Any:
    return Annotated[enum | str, BeforeValidator(status_validator(enum, label, strict=False))]


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
