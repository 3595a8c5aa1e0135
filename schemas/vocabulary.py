"""The pipeline's vocabulary: every name the log, the stages and the tools agree on.

An event log outlives the code that wrote it: a fact type spelt one way in the writer and
another in a projection is a silent bug that surfaces only at the next rebuild.  So each name
has this one home, and the modules that fold, route or count them import it from here:

* :class:`Stage` — the worker pools, each with its own Celery queue (``docs/design.md`` §4);
* the detail-types of the HealthOmics events the pipeline acts on, and of the pipeline's own
  facts (``origin = "pipeline"`` rows the stages append: what they learnt, what they did);
* run and import-job status ranks: statuses of one rank are alternatives, a higher rank comes
  later; a run's terminal statuses are those at :data:`TERMINAL_RANK` or above;
* :class:`Outcome` — what a stage's ``outbox`` row says it did with an event's work.

Plain strings on the wire and in the database (``StrEnum`` members *are* ``str``), so nothing
stored changes.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CALLBACK_DELIVERED",
    "CALLBACK_FAILED",
    "CALLBACK_OUTCOMES",
    "CALLBACK_SKIPPED",
    "CALLBACK_SUPERSEDED",
    "EVENT_ARCHIVED",
    "FILE_REGISTERED",
    "FILE_REJECTED",
    "IMPORT_JOB_STATUS_CHANGE",
    "JOB_CHECKED",
    "JOB_PLANNED",
    "JOB_RANK",
    "JOB_STARTED",
    "JOB_TERMINAL",
    "MATE_MISSING",
    "QUEUES",
    "READ_SET_STATUS_CHANGE",
    "RUN_ENRICHED",
    "RUN_ENRICHMENT_FAILED",
    "RUN_STATUS_CHANGE",
    "RUN_STATUS_RECONCILED",
    "SOURCES_FAILED",
    "SOURCE_READY",
    "STATUS_EVENTS",
    "STATUS_RANK",
    "TASK_STATUS_CHANGE",
    "TERMINAL_RANK",
    "TERMINAL_STATUSES",
    "Outcome",
    "Stage",
    "rank_of",
]


class Stage(StrEnum):
    """A worker pool and its queue; also the ``outbox.stage`` of the work it does."""

    ARCHIVE = "archive"
    ENRICH = "enrich"
    CALLBACK = "callback"
    IMPORTS = "imports"
    METRICS = "metrics"


#: The worker pools, each with its own queue, in the order the tools list them.
QUEUES: tuple[str, ...] = tuple(stage.value for stage in Stage)


class Outcome(StrEnum):
    """What a stage did with one event's work (``outbox.outcome``, a task's return value)."""

    ALREADY_DONE = "already-done"
    DEAD_LETTERED = "dead-lettered"
    DELIVERED = "delivered"
    ENRICHED = "enriched"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"
    WAITING = "waiting"


# --- HealthOmics events the pipeline acts on ---------------------------------------------------

RUN_STATUS_CHANGE = "Run Status Change"
TASK_STATUS_CHANGE = "Task Status Change"
IMPORT_JOB_STATUS_CHANGE = "Read Set Import Job Status Change"
READ_SET_STATUS_CHANGE = "Read Set Status Change"

# --- the pipeline's own facts: runs and callbacks ------------------------------------------------

#: A status the reconciler learnt from GetRun because the event never came (payload shaped
#: like a Run Status Change, so enrichment and callback treat it the same).
RUN_STATUS_RECONCILED = "Run Status Reconciled"
RUN_ENRICHED = "Run Enriched"
RUN_ENRICHMENT_FAILED = "Run Enrichment Failed"
CALLBACK_DELIVERED = "Callback Delivered"
CALLBACK_FAILED = "Callback Failed"
CALLBACK_SKIPPED = "Callback Skipped"
CALLBACK_SUPERSEDED = "Callback Superseded"
#: Written once per archived event by the per-event archive of earlier versions; nothing
#: writes it now (the archive pool writes batches), but logs and archives from then hold it.
EVENT_ARCHIVED = "Event Archived"

#: Detail-types that carry a run's status.
STATUS_EVENTS = frozenset({RUN_STATUS_CHANGE, RUN_STATUS_RECONCILED})
#: Detail-type -> the ``deliveries.outcome`` it records (a failure that will be retried is
#: recorded as ``failed``, a final one as dead-lettered: see ``eventlog.projections``).
CALLBACK_OUTCOMES = {
    CALLBACK_DELIVERED: "delivered",
    CALLBACK_FAILED: "failed",
    CALLBACK_SKIPPED: "skipped",
    CALLBACK_SUPERSEDED: "superseded",
}

# --- the pipeline's own facts: read-set imports ----------------------------------------------

#: An S3 object is a read file to import (its source, its ids).
FILE_REGISTERED = "Import File Registered"
#: An S3 object under a watched prefix will not be imported (junk name, no ids, no reference).
FILE_REJECTED = "Import File Rejected"
#: A FASTQ mate did not arrive in time (the pair is still imported if it comes later).
MATE_MISSING = "Import Mate Missing"
#: A source is complete; it waits ``IMPORT_BATCH_WINDOW`` for others to share its job.
SOURCE_READY = "Import Source Ready"
#: Sources batched into one job to start (first attempt, or a retry of failed sources).
JOB_PLANNED = "Import Job Planned"
#: StartReadSetImportJob answered: the job id.
JOB_STARTED = "Import Job Started"
#: GetReadSetImportJob of a finished job: every source's outcome and classification.
JOB_CHECKED = "Import Job Checked"
#: Sources given up: a permanent failure, or transient failures past the attempt limit.
SOURCES_FAILED = "Import Sources Failed"

# --- status order ----------------------------------------------------------------------------

#: Run status -> rank; statuses of one rank are alternatives, a higher rank comes later.
STATUS_RANK: dict[str, int] = {
    "PENDING": 1,
    "STARTING": 2,
    "RUNNING": 3,
    "STOPPING": 4,
    "COMPLETED": 5,
    "FAILED": 5,
    "CANCELLED": 5,
    "DELETED": 6,
}
TERMINAL_RANK = 5
#: Run statuses after which nothing changes but deletion (and deletion itself).
TERMINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank >= TERMINAL_RANK)


def rank_of(status: str | None) -> int:
    """0 for a status that is not a run status."""
    return STATUS_RANK.get((status or "").upper(), 0)


#: Import job status -> rank (the terminal statuses share the top rank).
JOB_RANK: dict[str, int] = {
    "SUBMITTED": 1,
    "IN_PROGRESS": 2,
    "CANCELLING": 3,
    "COMPLETED": 4,
    "COMPLETED_WITH_FAILURES": 4,
    "FAILED": 4,
    "CANCELLED": 4,
}
JOB_TERMINAL = frozenset(s for s, rank in JOB_RANK.items() if rank == 4)
