"""What HealthOmics says when things go wrong: failure reasons, messages, quotas.

Why a catalogue: workers classify failures by these strings (retry a transient import source,
give up on a permanent one, show an operator the run's ``failureReason``), so the simulator must
produce the *real* vocabulary, not ``"error 42"``.  Sources:

* run ``failureReason`` values and their descriptions: the HealthOmics User Guide's table
  "Error and status messages for run failures" (the HealthOmics user guide, lines 6614-6645);
* the ``RUN_TASK_FAILED`` ``statusMessage`` text: a real 2026 FAILED event (reference §1.3);
* TPS and concurrency quotas: reference §4.2 and §4.3;
* import-source messages: the real service's texts are not published; these are modelled on the
  CLI example ("The source job is currently in progress.") and common S3/format errors.  Their
  *classification* (transient vs permanent) is what tests rely on, see :func:`is_transient_message`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default TPS quotas per operation (reference §4.2; whether one row shares a bucket is unknown,
#: so each operation gets its own).
DEFAULT_TPS_LIMITS: dict[str, float] = {
    "GetRun": 10.0,
    "GetRunTask": 10.0,
    "ListRunTasks": 10.0,
    "ListRuns": 10.0,
    "ListTagsForResource": 5.0,
    "StartReadSetImportJob": 5.0,
    "GetReadSetImportJob": 5.0,
    "ListReadSetImportJobs": 5.0,
}

#: Concurrent read-set import jobs per account and Region (``L-F57A8D18``, reference §4.3).
DEFAULT_IMPORT_QUOTA = 5

#: Read-set sources per import job (not adjustable; the model's ``sources`` max).
MAX_IMPORT_SOURCES = 100


@dataclass(frozen=True)
class RunFailure:
    """A run ``failureReason`` and where in the run it strikes."""

    reason: str
    #: ``task``: a task fails and takes the run with it; ``input``: the run fails while importing
    #: inputs, before any task; ``infra``: at any point while tasks run; ``export``: after the
    #: last task, while exporting outputs.
    stage: str
    #: ``statusMessage`` template; ``{uri}``, ``{task_id}``, ``{task_name}``, ``{log_stream}``.
    message: str
    weight: float


RUN_FAILURES: tuple[RunFailure, ...] = (
    RunFailure(
        "RUN_TASK_FAILED",
        "task",
        "Run failed due to task: {task_name}, id: {task_id}, failure. Use the GetRunTask API for "
        "more information as well as the CloudWatch logs log stream: {log_stream} to debug the "
        "failure.",
        50,
    ),
    RunFailure(
        "OUT_OF_MEMORY_ERROR",
        "task",
        "The workflow task {task_id} ran out of memory. Increase the memory value in the workflow "
        "definition and try the run again.",
        10,
    ),
    RunFailure(
        "INVALID_TASK_RESOURCE_VALUE",
        "task",
        "The requested GPU, CPU, or memory is either too high for available compute capacity, or "
        "is less than the minimum value of 1 for task {task_id}.",
        3,
    ),
    RunFailure(
        "ECR_PERMISSION_ERROR",
        "task",
        "HealthOmics doesn't have permission to access the image URI. Confirm that the Amazon ECR "
        "private repository exists and has granted access to the HealthOmics service principal.",
        3,
    ),
    RunFailure(
        "INVALID_ECR_IMAGE_URI",
        "task",
        "The Amazon ECR image URI structure isn't valid. Check for a valid URI and try again.",
        2,
    ),
    RunFailure(
        "INSTANCE_RESERVATION_FAILED",
        "infra",
        "There isn't enough instance capacity to complete the workflow run. Wait and try the "
        "workflow run again.",
        6,
    ),
    RunFailure(
        "SERVICE_ERROR",
        "infra",
        "The workflow run didn't finish because of a transient service error. Try the workflow "
        "run again.",
        4,
    ),
    RunFailure(
        "IMPORT_FAILED",
        "input",
        "The workflow run didn't finish because of a transient error while importing {uri}. Try "
        "the workflow run again.",
        5,
    ),
    RunFailure(
        "INVALID_URI_INPUT",
        "input",
        "The URI structure isn't a valid {uri}. Check the URI structure and try again.",
        2,
    ),
    RunFailure(
        "INVALID_S3_INPUT",
        "input",
        "The URI does not exist: {uri}. Check that the URI path exists and confirm that the role "
        "can access the object.",
        4,
    ),
    RunFailure(
        "INVALID_OMICS_STORAGE_INPUT",
        "input",
        "The HealthOmics storage URI does not exist: {uri}. Check that the read set path exists "
        "and confirm that the role can access the read set.",
        2,
    ),
    RunFailure(
        "INACTIVE_OMICS_STORAGE_RESOURCE",
        "input",
        "The HealthOmics storage URI is not in ACTIVE state. Activate the read set and try again.",
        2,
    ),
    RunFailure(
        "MODIFIED_INPUT_RESOURCE",
        "input",
        "The input URI was modified after the run started.",
        1,
    ),
    RunFailure(
        "ASSUME_ROLE_FAILED",
        "input",
        "HealthOmics doesn't have permission to assume the role. Specify the HealthOmics "
        "principal in the trust relationship for the role.",
        2,
    ),
    RunFailure(
        "UNSUPPORTED_INPUT_SIZE",
        "input",
        "The total input size is too high. Decrease the input size and try again.",
        1,
    ),
    RunFailure(
        "EXPORT_FAILED",
        "export",
        "The workflow run didn't finish because of a transient error while exporting the run "
        "output. Try the workflow run again.",
        3,
    ),
)

RUN_FAILURES_BY_REASON: dict[str, RunFailure] = {f.reason: f for f in RUN_FAILURES}

#: ``failureReason``/``statusMessage`` of the *task* that fails a run, by run failure reason.
#: (Task failure vocabularies are not published; these mirror the run's.)
TASK_FAILURES: dict[str, tuple[str, str]] = {
    "RUN_TASK_FAILED": ("RUN_TASK_FAILED", "Task exited with non-zero exit code 1."),
    "OUT_OF_MEMORY_ERROR": ("OUT_OF_MEMORY_ERROR", "Task ran out of memory."),
    "INVALID_TASK_RESOURCE_VALUE": (
        "INVALID_TASK_RESOURCE_VALUE",
        "Requested task resources are not available.",
    ),
    "ECR_PERMISSION_ERROR": ("ECR_PERMISSION_ERROR", "Could not pull the task's container image."),
    "INVALID_ECR_IMAGE_URI": (
        "INVALID_ECR_IMAGE_URI",
        "The task's container image URI is invalid.",
    ),
}


@dataclass(frozen=True)
class SourceFailure:
    """One way an import source can fail."""

    #: ``pre``: fails before a read set exists; ``upload``: a read set was created
    #: (PROCESSING_UPLOAD) and ends UPLOAD_FAILED.
    stage: str
    #: Template with ``{uri}`` and ``{file_type}``.
    message: str


TRANSIENT_SOURCE_FAILURES: tuple[SourceFailure, ...] = (
    SourceFailure("upload", "Internal service error, please retry the import."),
    SourceFailure("pre", "Throttling: rate exceeded while reading the source file, please retry."),
    SourceFailure("upload", "Request timed out while reading the source file, please retry."),
)

PERMANENT_SOURCE_FAILURES: tuple[SourceFailure, ...] = (
    SourceFailure("pre", "Access denied to {uri}"),
    SourceFailure("upload", "The file is not a valid {file_type} file."),
    SourceFailure("pre", "Source file not found: {uri}"),
)

#: Per-source ``statusMessage`` while not failed.
SOURCE_MESSAGES: dict[str, str] = {
    "NOT_STARTED": "The source job has not started yet.",
    "IN_PROGRESS": "The source job is currently in progress.",
    "FINISHED": "The source job completed successfully.",
}

#: Job ``statusMessage`` by status (the real texts are not published).
JOB_MESSAGES: dict[str, str] = {
    "SUBMITTED": "The import job has been submitted.",
    "IN_PROGRESS": "The import job is in progress.",
    "COMPLETED": "The import job completed successfully.",
    "COMPLETED_WITH_FAILURES": "{failed} of {total} sources failed to import.",
    "FAILED": "All {total} sources failed to import.",
}

_TRANSIENT_MARKERS = ("please retry", "throttl", "internal service error", "timed out")


def is_transient_message(message: str | None) -> bool:
    """Whether a source ``statusMessage`` from this catalogue describes a transient failure."""
    text = (message or "").lower()
    return any(marker in text for marker in _TRANSIENT_MARKERS)


def clip(text: str, limit: int = 127) -> str:
    """Respect the model's ``JobStatusMessage`` max length (127)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
