"""What the simulated account holds: runs, tasks, import jobs, sources, read sets, and their
status sets.

Plain dataclasses with no behaviour of their own beyond ``visible``: the plans and steps that
move them live in :mod:`simulator.run_plans` and :mod:`simulator.import_plans`, the heap and the
lock in :mod:`simulator.state`.  Kept apart so the operations (:mod:`simulator.operations`) and
the views can read them without pulling the planners in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.catalog import SOURCE_MESSAGES

RUN_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "DELETED"})
TASK_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
JOB_ACTIVE = frozenset({"SUBMITTED", "IN_PROGRESS", "CANCELLING"})
JOB_TERMINAL = frozenset({"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"})
READ_SET_FINAL = frozenset({"ACTIVE", "UPLOAD_FAILED", "DELETED"})

#: Phases in which a run can be cancelled.
CANCEL_PHASES = ("PENDING", "STARTING", "RUNNING", "STOPPING")

#: (name, task names) of the simulated workflows.
WORKFLOWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "germline-calling",
        (
            "fastqc",
            "bwa_mem_align",
            "sort_sam",
            "mark_duplicates",
            "base_recalibrator",
            "apply_bqsr",
            "haplotypecaller_genotyping",
            "merge_vcfs",
            "collect_wgs_metrics",
            "multiqc",
        ),
    ),
    (
        "somatic-tumor-normal",
        (
            "fastp",
            "bwa_mem2_align",
            "markdup_spark",
            "mutect2",
            "learn_read_orientation",
            "get_pileup_summaries",
            "calculate_contamination",
            "filter_mutect_calls",
            "funcotator",
        ),
    ),
    (
        "rnaseq-quant",
        ("fastp", "star_align", "salmon_quant", "rsem_expression", "qualimap_rnaseq", "multiqc"),
    ),
    (
        "wes-alignment",
        ("bwa_mem_align", "mark_duplicates", "bqsr", "hs_metrics", "deepvariant", "bcftools_stats"),
    ),
)

SAMPLES = ("NA12878", "HG002", "HG003", "HG004", "NA24385", "NA24631", "HG005", "NA19240")

_FAMILIES = {2: "c", 4: "m", 8: "r"}
_SIZES = {1: "large", 2: "large", 4: "xlarge", 8: "2xlarge", 16: "4xlarge", 32: "8xlarge"}


@dataclass
class TaskPlan:
    """What will happen to one task (times are clock seconds)."""

    task_id: str
    uuid: str
    name: str
    cpus: int
    memory: int
    instance_type: str
    image: str
    created_at: float
    starting_at: float
    running_at: float
    end_at: float
    final: str = "COMPLETED"
    failure_reason: str | None = None
    status_message: str | None = None


@dataclass
class Task:
    """A task as GetRunTask shows it."""

    plan: TaskPlan
    status: str
    creation_time: float
    start_time: float | None = None
    stop_time: float | None = None
    status_message: str | None = None
    failure_reason: str | None = None

    @property
    def task_id(self) -> str:
        return self.plan.task_id


@dataclass
class Run:
    """A workflow run.  ``status is None`` until it has been submitted (its PENDING step)."""

    run_id: str
    uuid: str
    name: str
    workflow_id: str
    workflow_name: str
    workflow_uuid: str
    role_arn: str
    output_uri: str
    run_output_uri: str
    tags: dict[str, str]
    sample: str
    run_group_id: str | None
    cache_id: str | None
    cache_behavior: str | None
    priority: int
    storage_type: str
    storage_capacity: int | None
    planned_outcome: str
    planned_failure_reason: str | None
    outputs: dict[str, Any] | None
    status: str | None = None
    status_message: str | None = None
    failure_reason: str | None = None
    creation_time: float | None = None
    start_time: float | None = None
    stop_time: float | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    task_plans: list[TaskPlan] = field(default_factory=list)
    generation: int = 0
    outputs_written_to: str | None = None

    @property
    def visible(self) -> bool:
        return self.status is not None


@dataclass
class Source:
    """One source of a read-set import job."""

    source1: str
    source2: str | None
    file_type: str
    subject_id: str
    sample_id: str
    generated_from: str | None = None
    reference_arn: str | None = None
    name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "NOT_STARTED"
    status_message: str | None = SOURCE_MESSAGES["NOT_STARTED"]
    read_set_id: str | None = None
    #: Ground truth: ``None`` (succeeds), ``"transient"`` or ``"permanent"``.
    failure_kind: str | None = None
    failure_message: str | None = None
    #: ``pre`` (no read set is created) or ``upload`` (the read set ends UPLOAD_FAILED).
    failure_stage: str | None = None
    #: The read set this source created, whatever became of it (``read_set_id`` is what the API
    #: shows: only once the source FINISHED).
    created_read_set_id: str | None = None


@dataclass
class ImportJob:
    """A read-set import job.  ``status is None`` until it has been submitted."""

    job_id: str
    store_id: str
    role_arn: str
    sources: list[Source]
    client_token: str | None
    origin: str
    status: str | None = None
    status_message: str | None = None
    creation_time: float | None = None
    completion_time: float | None = None

    @property
    def visible(self) -> bool:
        return self.status is not None


@dataclass
class ReadSet:
    read_set_id: str
    store_id: str
    job_id: str
    sample_id: str
    subject_id: str
    file_type: str
    name: str | None
    tags: dict[str, str]
    status: str
    creation_time: float
    status_message: str | None = None
    #: The files it was imported from (ground truth: which source became which read set).
    source1: str | None = None
    source2: str | None = None


@dataclass
class Action:
    """A side effect to perform outside the lock, in order: an event or an outputs.json put."""

    kind: str  # "event" | "outputs"
    event: dict[str, Any] | None = None
    uri: str | None = None
    mapping: dict[str, Any] | None = None


class QuotaExceeded(Exception):
    """Too many active import jobs."""
