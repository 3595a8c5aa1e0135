"""The simulated HealthOmics account: runs, tasks, read-set import jobs, read sets, and time.

Why plans instead of a state machine that rolls dice on every tick: a run's whole life (how long
each phase lasts, which task fails, when it is cancelled, what its outputs are) is decided once,
when the run is added, from the seeded random generator.  The plan becomes timed *steps* on one
heap, and :meth:`World.process_due` applies every step whose time has come, in time order, each
one changing the model and emitting its EventBridge event stamped with the step's own time.  So
the same seed and the same clock moves give the same events, however often the clock is read,
and a test can jump an hour ahead in one call.

Lifecycles (reference §2.1, §2.2):

* run: PENDING → STARTING → RUNNING → STOPPING → COMPLETED; FAILED only from RUNNING (with a
  ``failureReason`` from the User Guide's table and its ``statusMessage``); CANCELLED from any
  non-terminal status (no outputs).  Tasks exist only inside RUNNING; when the run fails or is
  cancelled, tasks still in flight become CANCELLED and tasks not yet created never appear.
* task: PENDING → STARTING → RUNNING → COMPLETED | FAILED | CANCELLED.
* import job: SUBMITTED → IN_PROGRESS → COMPLETED | COMPLETED_WITH_FAILURES | FAILED, each source
  NOT_STARTED → IN_PROGRESS → FINISHED | FAILED.  A source that gets far enough creates a read set
  (PROCESSING_UPLOAD → ACTIVE, or UPLOAD_FAILED); ``readSetId`` shows on the source once FINISHED.

Everything here runs under :attr:`World.lock`; nothing here does I/O.  Side effects that need
I/O (events to SQS, ``outputs.json`` to S3) are queued in :attr:`World.outbox` in the order they
happened and performed by the simulator outside the lock.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator import events as ev
from simulator.catalog import (
    JOB_MESSAGES,
    PERMANENT_SOURCE_FAILURES,
    RUN_FAILURES,
    RUN_FAILURES_BY_REASON,
    SOURCE_MESSAGES,
    TASK_FAILURES,
    TRANSIENT_SOURCE_FAILURES,
    SourceFailure,
    clip,
)
from simulator.clock import Clock
from simulator.faults import FaultSettings
from simulator.outputs import build_outputs, outputs_uri

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


def _checked_outcome(outcome: str, failure_reason: str | None, cancel_phase: str | None) -> str:
    """The planned outcome, upper-cased, once it and its reason or phase are known values."""
    outcome = outcome.upper()
    if outcome not in {"COMPLETED", "FAILED", "CANCELLED"}:
        raise ValueError(f"outcome must be COMPLETED, FAILED or CANCELLED, not {outcome!r}")
    if failure_reason is not None and failure_reason not in RUN_FAILURES_BY_REASON:
        raise ValueError(f"unknown failure reason {failure_reason!r}")
    if cancel_phase is not None and cancel_phase not in CANCEL_PHASES:
        raise ValueError(f"cancel_phase must be one of {CANCEL_PHASES}")
    return outcome


def _check_tasks(n_tasks: int, failure_reason: str | None) -> None:
    if n_tasks < 0:
        raise ValueError("tasks must be >= 0")
    if n_tasks == 0 and failure_reason and RUN_FAILURES_BY_REASON[failure_reason].stage == "task":
        raise ValueError(f"{failure_reason} needs a run with at least one task")


@dataclass
class _Timeline:
    """When a planned run reaches each status if nothing goes wrong; a failure or a cancel cuts
    it short at ``end_at``."""

    pending: float
    starting: float
    running: float
    inputs_done: float
    tasks_end: float = 0.0
    stopping: float = 0.0
    completed: float = 0.0

    def steps(self) -> list[tuple[float, str]]:
        return [
            (self.pending, "PENDING"),
            (self.starting, "STARTING"),
            (self.running, "RUNNING"),
            (self.stopping, "STOPPING"),
            (self.completed, "COMPLETED"),
        ]


class World:
    """All simulated resources, their plans, and the step heap."""

    def __init__(
        self,
        *,
        clock: Clock,
        speed: float,
        rng: random.Random,
        id_rng: random.Random,
        faults: FaultSettings,
        account: str,
        region: str,
        output_bucket: str,
        output_prefix: str,
        input_bucket: str,
        sequence_store_id: str | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.lock = threading.RLock()
        self.clock = clock
        self.speed = float(speed)
        self.rng = rng
        self.id_rng = id_rng
        self.faults = faults
        self.account = account
        self.region = region
        self.output_bucket = output_bucket
        self.output_prefix = output_prefix.strip("/")
        self.input_bucket = input_bucket
        self.runs: dict[str, Run] = {}
        self.jobs: dict[str, ImportJob] = {}
        self.read_sets: dict[str, ReadSet] = {}
        self.outbox: list[Action] = []
        self.outputs_written: dict[str, dict[str, Any]] = {}
        self.client_tokens: dict[tuple[str, str], str] = {}
        self.import_calls: list[dict[str, Any]] = []
        self.max_active_import_jobs = 0
        self.active_import_timeline: list[tuple[float, int]] = []
        self._heap: list[tuple[float, int, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._used_ids: set[str] = set()
        self._permanent_bad: dict[str, SourceFailure] = {}
        self._scripted: dict[str, deque[str]] = {}
        self.workflows: dict[str, tuple[str, str]] = {
            name: (self.numeric_id(7), self.new_uuid()) for name, _tasks in WORKFLOWS
        }
        self.run_groups = [self.numeric_id(7) for _ in range(2)]
        self.sequence_store_id = sequence_store_id or self.numeric_id(10)
        self._run_counter = itertools.count(1)

    # -- identifiers ----------------------------------------------------------------------

    def numeric_id(self, digits: int) -> str:
        while True:
            value = str(self.id_rng.randint(10 ** (digits - 1), 10**digits - 1))
            if value not in self._used_ids:
                self._used_ids.add(value)
                return value

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4))

    # -- time -----------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def dur(self, low: float, high: float) -> float:
        """A random duration in simulated seconds, as clock seconds (divided by ``speed``)."""
        return self.rng.uniform(low, high) / self.speed

    def schedule(self, at: float, priority: int, step: Callable[[float], None]) -> None:
        heapq.heappush(self._heap, (at, priority, next(self._seq), step))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def last_due(self) -> float | None:
        return max((item[0] for item in self._heap), default=None)

    def process_due(self, now: float) -> int:
        """Apply every step due at or before ``now``, in time order; returns how many."""
        done = 0
        while self._heap and self._heap[0][0] <= now:
            at, _priority, _seq, step = heapq.heappop(self._heap)
            step(at)
            done += 1
        return done

    def take_outbox(self) -> list[Action]:
        actions, self.outbox = self.outbox, []
        return actions

    def emit(self, detail_type: str, when: float, resource: str, detail: dict[str, Any]) -> None:
        self.outbox.append(
            Action(
                kind="event",
                event=ev.envelope(
                    event_id=self.new_uuid(),
                    detail_type=detail_type,
                    account=self.account,
                    region=self.region,
                    when=when,
                    resource=resource,
                    detail=detail,
                ),
            )
        )

    # -- runs -----------------------------------------------------------------------------

    def run_arn(self, run_id: str) -> str:
        return ev.run_arn(self.region, self.account, run_id)

    def add_run(
        self,
        *,
        delay: float = 0.0,
        tasks: int | None = None,
        outcome: str = "COMPLETED",
        failure_reason: str | None = None,
        cancel_phase: str | None = None,
        name: str | None = None,
        workflow: str | None = None,
        wes_run_id: str | bool = True,
        callback_url: str | None = None,
        tags: dict[str, str] | None = None,
        run_group: bool | None = None,
        cache: bool | None = None,
    ) -> Run:
        """Plan a run submitted ``delay`` simulated seconds from now (it is not visible yet)."""
        outcome = _checked_outcome(outcome, failure_reason, cancel_phase)
        rng = self.rng
        n_tasks = rng.randint(3, 12) if tasks is None else int(tasks)
        _check_tasks(n_tasks, failure_reason)
        wf_index = (
            rng.randrange(len(WORKFLOWS))
            if workflow is None
            else [w[0] for w in WORKFLOWS].index(workflow)
        )
        wf_name, task_names = WORKFLOWS[wf_index]
        wf_id, wf_uuid = self.workflows[wf_name]
        sample = rng.choice(SAMPLES)
        use_group = rng.random() < 0.3 if run_group is None else run_group
        use_cache = rng.random() < 0.2 if cache is None else cache
        run_id = self.numeric_id(7)
        output_uri = f"s3://{self.output_bucket}/{self.output_prefix}".rstrip("/")
        run_output_uri = f"{output_uri}/{run_id}"
        all_tags = self._run_tags(sample, wes_run_id, callback_url, tags)
        run = Run(
            run_id=run_id,
            uuid=self.new_uuid(),
            name=name or f"{wf_name}-{sample}-{next(self._run_counter):03d}",
            workflow_id=wf_id,
            workflow_name=wf_name,
            workflow_uuid=wf_uuid,
            role_arn=f"arn:aws:iam::{self.account}:role/OmicsWorkflowRole",
            output_uri=output_uri,
            run_output_uri=run_output_uri,
            tags=all_tags,
            sample=sample,
            run_group_id=rng.choice(self.run_groups) if use_group else None,
            cache_id=self.numeric_id(7) if use_cache else None,
            cache_behavior=rng.choice(("CACHE_ON_FAILURE", "CACHE_ALWAYS")) if use_cache else None,
            priority=rng.choice((0, 0, 10, 100)),
            storage_type=rng.choice(("DYNAMIC", "DYNAMIC", "STATIC")),
            storage_capacity=None,
            planned_outcome=outcome,
            planned_failure_reason=None,
            outputs=None,
        )
        if run.storage_type == "STATIC":
            run.storage_capacity = rng.choice((1200, 2400, 4800))
        run.outputs = build_outputs(rng, run_output_uri, sample, wf_name)
        self.runs[run_id] = run
        self._plan_run(run, delay, n_tasks, task_names, outcome, failure_reason, cancel_phase)
        return run

    def _run_tags(
        self,
        sample: str,
        wes_run_id: str | bool,
        callback_url: str | None,
        tags: dict[str, str] | None,
    ) -> dict[str, str]:
        """The run's tags as NGS360 sets them: a ``WESRunId`` (new, given, or none) and the
        optional ``callback_url``, then the caller's own."""
        all_tags: dict[str, str] = {"project": "ngs360-sim", "sample": sample}
        if wes_run_id is True:
            all_tags["WESRunId"] = self.new_uuid()
        elif isinstance(wes_run_id, str) and wes_run_id:
            all_tags["WESRunId"] = wes_run_id
        if callback_url:
            all_tags["callback_url"] = callback_url
        all_tags.update(tags or {})
        return all_tags

    def _plan_run(
        self,
        run: Run,
        delay: float,
        n_tasks: int,
        task_names: tuple[str, ...],
        outcome: str,
        failure_reason: str | None,
        cancel_phase: str | None,
    ) -> None:
        """Draw the run's timeline, its tasks and how it ends, and schedule every transition.
        The draws happen in a fixed order, so one seed always plans the same day."""
        d = self.dur
        pending = self.now() + max(0.0, delay) / self.speed
        starting = pending + d(5, 40)
        running = starting + d(20, 120)
        times = _Timeline(pending, starting, running, inputs_done=running + d(10, 60))
        plans = self._plan_tasks(n_tasks, task_names, times.inputs_done)
        times.tasks_end = max((p.end_at for p in plans), default=times.inputs_done)
        times.stopping = times.tasks_end + d(10, 60)
        times.completed = times.stopping + d(30, 300)
        run_steps = times.steps()
        failure_message: str | None = None
        if outcome == "FAILED":
            run_steps, plans, failure_message = self._plan_failure(
                run, plans, times, failure_reason
            )
        elif outcome == "CANCELLED":
            run_steps, plans = self._plan_cancel(plans, times, cancel_phase)
        run.task_plans = plans
        gen = run.generation
        for at, status in run_steps:
            priority = 2 if status in RUN_TERMINAL else 0
            message = failure_message if status == "FAILED" else None
            self.schedule(at, priority, self._run_step(run, gen, status, message))
        for plan in plans:
            self._schedule_task(run, gen, plan)

    def _plan_tasks(
        self, n_tasks: int, task_names: tuple[str, ...], inputs_done: float
    ) -> list[TaskPlan]:
        """Tasks on a few parallel lanes after the inputs are read, each lane one task at a
        time, named after the workflow's steps (``_1``, ``_2`` … for further shards)."""
        rng, d = self.rng, self.dur
        lanes = max(1, min(n_tasks, rng.randint(1, 4), 25)) if n_tasks else 0
        lane_free = [inputs_done + d(0, 5) for _ in range(lanes)]
        plans: list[TaskPlan] = []
        for index in range(n_tasks):
            lane = min(range(lanes), key=lambda i: (lane_free[i], i))
            created = lane_free[lane]
            starting = created + d(2, 10)
            running = starting + d(5, 40)
            end = running + d(20, 180)
            lane_free[lane] = end + d(1, 5)
            base = task_names[index % len(task_names)]
            shard = index // len(task_names)
            cpus = rng.choice((1, 2, 4, 8, 16))
            ratio = rng.choice((2, 4, 8))
            task_id = self.numeric_id(7)
            plans.append(
                TaskPlan(
                    task_id=task_id,
                    uuid=self.new_uuid(),
                    name=base if shard == 0 else f"{base}_{shard}",
                    cpus=cpus,
                    memory=cpus * ratio,
                    instance_type=f"omics.{_FAMILIES[ratio]}.{_SIZES[cpus]}",
                    image=f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{base}:1.0",
                    created_at=created,
                    starting_at=starting,
                    running_at=running,
                    end_at=end,
                )
            )
        return plans

    def _plan_failure(
        self,
        run: Run,
        plans: list[TaskPlan],
        times: _Timeline,
        failure_reason: str | None,
    ) -> tuple[list[tuple[float, str]], list[TaskPlan], str]:
        """A FAILED run: the failure (given, or drawn by weight), where it strikes (a task, the
        inputs, the export, the infrastructure), and the message the run ends with."""
        rng, d = self.rng, self.dur
        # A run without tasks cannot fail by a task: draw from the other failures.
        candidates = [f for f in RUN_FAILURES if plans or f.stage != "task"]
        failure = (
            RUN_FAILURES_BY_REASON[failure_reason]
            if failure_reason
            else rng.choices(candidates, weights=[f.weight for f in candidates])[0]
        )
        message_args = {
            "uri": f"s3://{self.input_bucket}/inputs/{run.sample}.bam",
            "task_id": "",
            "task_name": "",
            "log_stream": "",
        }
        if failure.stage == "task":
            failing = plans[rng.randrange(len(plans))]
            failing.final = "FAILED"
            failing.failure_reason, failing.status_message = TASK_FAILURES.get(
                failure.reason, ("RUN_TASK_FAILED", "Task failed.")
            )
            fail_at = failing.end_at
            end_at = fail_at + d(5, 30)
            message_args.update(
                task_id=failing.task_id,
                task_name=failing.name,
                log_stream=ev.log_stream_arn(
                    self.region, self.account, f"run/{run.run_id}/task/{failing.task_id}"
                ),
            )
        else:
            end_at = fail_at = self._failure_time(failure.stage, times, bool(plans))
        run.planned_failure_reason = failure.reason
        run.failure_reason = None
        run_steps = [(t, s) for t, s in times.steps() if t < end_at and s != "STOPPING"]
        run_steps.append((end_at, "FAILED"))
        message = clip(failure.message.format(**message_args), 4000)
        return run_steps, self._truncate_tasks(plans, cutoff=fail_at, end_at=end_at), message

    def _failure_time(self, stage: str, times: _Timeline, has_tasks: bool) -> float:
        """When a failure that is not a task's strikes: while the inputs are read, while the
        outputs are exported, or (infrastructure) somewhere while tasks run."""
        rng = self.rng
        if stage == "input":
            return times.running + (times.inputs_done - times.running) * rng.uniform(0.3, 0.9)
        if stage == "export":
            return times.tasks_end + (times.stopping - times.tasks_end) * rng.uniform(0.3, 0.9)
        return rng.uniform(times.inputs_done, times.tasks_end if has_tasks else times.stopping)

    def _plan_cancel(
        self, plans: list[TaskPlan], times: _Timeline, cancel_phase: str | None
    ) -> tuple[list[tuple[float, str]], list[TaskPlan]]:
        """A CANCELLED run: cancelled at a random moment of the phase (given, or drawn)."""
        rng = self.rng
        phase = cancel_phase or rng.choices(CANCEL_PHASES, weights=(2, 2, 5, 1))[0]
        windows = {
            "PENDING": (times.pending, times.starting),
            "STARTING": (times.starting, times.running),
            "RUNNING": (times.running, times.stopping),
            "STOPPING": (times.stopping, times.completed),
        }
        low, high = windows[phase]
        end_at = low + (high - low) * rng.uniform(0.1, 0.9)
        run_steps = [(t, s) for t, s in times.steps() if t < end_at]
        run_steps.append((end_at, "CANCELLED"))
        return run_steps, self._truncate_tasks(plans, cutoff=end_at, end_at=end_at)

    @staticmethod
    def _truncate_tasks(plans: list[TaskPlan], *, cutoff: float, end_at: float) -> list[TaskPlan]:
        """Tasks created after ``cutoff`` never exist; tasks still running at ``end_at`` are
        cancelled then (the failing task keeps its FAILED end)."""
        kept: list[TaskPlan] = []
        for plan in plans:
            if plan.final == "FAILED":
                kept.append(plan)
                continue
            if plan.created_at > cutoff:
                continue
            if plan.end_at > end_at:
                plan.end_at = end_at
                plan.final = "CANCELLED"
            kept.append(plan)
        return kept

    def _schedule_task(self, run: Run, gen: int, plan: TaskPlan) -> None:
        steps = [
            (plan.created_at, "PENDING"),
            (plan.starting_at, "STARTING"),
            (plan.running_at, "RUNNING"),
        ]
        steps = [(t, s) for t, s in steps if t < plan.end_at or s == "PENDING"]
        steps.append((max(plan.end_at, plan.created_at), plan.final))
        for at, status in steps:
            self.schedule(at, 1, self._task_step(run, gen, plan, status))

    def _run_step(
        self, run: Run, gen: int, status: str, message: str | None
    ) -> Callable[[float], None]:
        def step(at: float) -> None:
            if run.generation != gen or run.status in RUN_TERMINAL:
                return
            self._set_run_status(run, status, at, message=message)

        return step

    def _set_run_status(self, run: Run, status: str, at: float, message: str | None) -> None:
        run.status = status
        if status == "PENDING":
            run.creation_time = at
        elif status == "RUNNING":
            run.start_time = at
        if status in RUN_TERMINAL:
            run.stop_time = at
        if status == "FAILED":
            run.failure_reason = run.planned_failure_reason or "SERVICE_ERROR"
            run.status_message = message
        if status == "COMPLETED" and run.outputs is not None:
            uri = outputs_uri(run.run_output_uri)
            run.outputs_written_to = uri
            self.outputs_written[uri] = run.outputs
            self.outbox.append(Action(kind="outputs", uri=uri, mapping=run.outputs))
        arn = self.run_arn(run.run_id)
        self.emit(
            ev.RUN_STATUS_CHANGE,
            at,
            arn,
            ev.run_status_detail(
                arn=arn,
                run_id=run.run_id,
                status=status,
                uuid=run.uuid,
                run_output_uri=run.run_output_uri,
                run_name=run.name,
                workflow_id=run.workflow_id,
                workflow_name=run.workflow_name,
                workflow_uuid=run.workflow_uuid,
                failure_reason=run.failure_reason,
                status_message=run.status_message,
                run_cache=(
                    f"arn:aws:omics:{self.region}:{self.account}:runCache/{run.cache_id}"
                    if run.cache_id
                    else None
                ),
                run_cache_behavior=run.cache_behavior,
            ),
        )

    def _task_step(
        self, run: Run, gen: int, plan: TaskPlan, status: str
    ) -> Callable[[float], None]:
        def step(at: float) -> None:
            if run.generation != gen:
                return
            task = run.tasks.get(plan.task_id)
            if task is None:
                if status != "PENDING":
                    return
                task = Task(plan=plan, status=status, creation_time=at)
                run.tasks[plan.task_id] = task
            elif task.status in TASK_TERMINAL:
                return
            self._set_task_status(run, task, status, at)

        return step

    def _set_task_status(self, run: Run, task: Task, status: str, at: float) -> None:
        task.status = status
        if status == "RUNNING":
            task.start_time = at
        if status in TASK_TERMINAL:
            task.stop_time = at
        if status == "FAILED":
            task.failure_reason = task.plan.failure_reason
            task.status_message = task.plan.status_message
        run_arn = self.run_arn(run.run_id)
        arn = ev.task_arn(self.region, self.account, task.task_id)
        self.emit(
            ev.TASK_STATUS_CHANGE,
            at,
            arn,
            ev.task_status_detail(
                arn=arn,
                status=status,
                run_arn=run_arn,
                run_uuid=run.uuid,
                run_id=run.run_id,
                run_name=run.name,
                workflow_id=run.workflow_id,
                workflow_name=run.workflow_name,
            ),
        )

    def cancel_run(self, run_id: str) -> None:
        """Cancel a visible, non-terminal run now: tasks in flight and the run become CANCELLED."""
        run = self.runs.get(run_id)
        if run is None or not run.visible:
            raise KeyError(run_id)
        if run.status in RUN_TERMINAL:
            raise ValueError(f"run {run_id} is already {run.status}")
        run.generation += 1
        now = max(self.now(), run.creation_time or 0.0)
        for task in run.tasks.values():
            if task.status not in TASK_TERMINAL:
                self._set_task_status(run, task, "CANCELLED", now)
        run.planned_outcome = "CANCELLED"
        self._set_run_status(run, "CANCELLED", now, message=None)

    # -- import jobs ----------------------------------------------------------------------

    def active_import_jobs(self) -> int:
        return sum(1 for job in self.jobs.values() if job.status in JOB_ACTIVE)

    def plan_source_outcomes(self, source1: str, outcomes: list[str]) -> None:
        """Script what happens to the next imports of ``source1``: ``ok``, ``transient``,
        ``permanent`` (permanent then sticks to the URI, as a bad file would)."""
        for outcome in outcomes:
            if outcome not in {"ok", "transient", "permanent"}:
                raise ValueError(f"unknown source outcome {outcome!r}")
        self._scripted.setdefault(source1, deque()).extend(outcomes)

    def new_job(
        self,
        *,
        store_id: str,
        role_arn: str,
        sources: list[Source],
        client_token: str | None,
        origin: str,
    ) -> ImportJob:
        job = ImportJob(
            job_id=self.numeric_id(10),
            store_id=store_id,
            role_arn=role_arn,
            sources=sources,
            client_token=client_token,
            origin=origin,
        )
        self.jobs[job.job_id] = job
        return job

    def submit_job(self, job: ImportJob, *, enforce_quota: bool) -> None:
        """SUBMITTED now, and plan the rest; raises :class:`QuotaExceeded` when full."""
        quota = self.faults.get().import_quota
        if enforce_quota and self.active_import_jobs() >= quota:
            raise QuotaExceeded(
                f"Exceeded the maximum number of concurrent read set import jobs ({quota})."
            )
        now = self.now()
        if job.client_token:
            self.client_tokens[(job.store_id, job.client_token)] = job.job_id
        self._set_job_status(job, "SUBMITTED", now)
        self._plan_job(job, now)

    def schedule_job(self, job: ImportJob, delay: float) -> None:
        """Submit ``job`` after ``delay`` simulated seconds, waiting for quota room like a polite
        submitter would (internal jobs never exceed the quota)."""
        gen_at = self.now() + max(0.0, delay) / self.speed

        def step(at: float) -> None:
            if job.visible:
                return
            if self.active_import_jobs() >= self.faults.get().import_quota:
                self.schedule(at + self.dur(20, 40), 0, step)
                return
            self.submit_job(job, enforce_quota=False)

        self.schedule(gen_at, 0, step)

    def _decide_source(self, source: Source) -> None:
        faults = self.faults.get()
        draw, pick = self.rng.random(), self.rng.random()
        scripted = self._scripted.get(source.source1)
        choice: str | None = scripted.popleft() if scripted else None
        bad = self._permanent_bad.get(source.source1)
        if bad is not None and choice != "ok":
            choice = "permanent"
        elif choice is None:
            if draw < faults.permanent_source_failure_rate:
                choice = "permanent"
            elif draw < faults.permanent_source_failure_rate + faults.transient_source_failure_rate:
                choice = "transient"
            else:
                choice = "ok"
        if choice == "ok":
            source.failure_kind = None
            return
        if choice == "permanent":
            if bad is None:
                bad = PERMANENT_SOURCE_FAILURES[int(pick * len(PERMANENT_SOURCE_FAILURES))]
                self._permanent_bad[source.source1] = bad
            failure = bad
        else:
            failure = TRANSIENT_SOURCE_FAILURES[int(pick * len(TRANSIENT_SOURCE_FAILURES))]
        source.failure_kind = choice
        source.failure_message = clip(
            failure.message.format(uri=source.source1, file_type=source.file_type)
        )
        source.failure_stage = failure.stage

    def _plan_job(self, job: ImportJob, now: float) -> None:
        d = self.dur
        t_progress = now + d(5, 30)
        self.schedule(t_progress, 0, self._job_step(job, "IN_PROGRESS"))
        ends: list[float] = []
        for source in job.sources:
            self._decide_source(source)
            start = t_progress + d(0, 20)
            self.schedule(start, 1, self._source_step(job, source, "IN_PROGRESS"))
            if source.failure_kind and source.failure_stage == "pre":
                end = start + d(5, 30)
            else:
                created = start + d(2, 10)
                self.schedule(created, 1, self._read_set_create_step(job, source))
                span = d(60, 600) if source.failure_kind is None else d(30, 300)
                end = created + span
            final = "FAILED" if source.failure_kind else "FINISHED"
            self.schedule(end, 1, self._source_step(job, source, final))
            ends.append(end)
        t_end = max(ends, default=t_progress) + d(2, 10)
        self.schedule(t_end, 2, self._job_step(job, None))

    def _job_step(self, job: ImportJob, status: str | None) -> Callable[[float], None]:
        def step(at: float) -> None:
            if job.status in JOB_TERMINAL:
                return
            final = status
            if final is None:
                failed = sum(1 for s in job.sources if s.status == "FAILED")
                if failed == 0:
                    final = "COMPLETED"
                elif failed == len(job.sources):
                    final = "FAILED"
                else:
                    final = "COMPLETED_WITH_FAILURES"
            self._set_job_status(job, final, at)

        return step

    def _set_job_status(self, job: ImportJob, status: str, at: float) -> None:
        job.status = status
        if status == "SUBMITTED":
            job.creation_time = at
        failed = sum(1 for s in job.sources if s.status == "FAILED")
        job.status_message = clip(
            JOB_MESSAGES[status].format(failed=failed, total=len(job.sources))
        )
        if status in JOB_TERMINAL:
            job.completion_time = at
        active = self.active_import_jobs()
        self.max_active_import_jobs = max(self.max_active_import_jobs, active)
        self.active_import_timeline.append((at, active))
        self.emit(
            ev.IMPORT_JOB_STATUS_CHANGE,
            at,
            ev.import_job_arn(self.region, self.account, job.store_id, job.job_id),
            ev.import_job_status_detail(
                job_id=job.job_id,
                store_id=job.store_id,
                status=status,
                status_message=job.status_message,
            ),
        )

    def _source_step(self, job: ImportJob, source: Source, status: str) -> Callable[[float], None]:
        def step(at: float) -> None:
            if source.status in {"FINISHED", "FAILED"}:
                return
            source.status = status
            if status == "FAILED":
                source.status_message = source.failure_message
            else:
                source.status_message = SOURCE_MESSAGES[status]
            read_set = self.read_sets.get(source.created_read_set_id or "")
            if status == "FINISHED":
                if read_set is None:  # defensive: the create step always comes first
                    read_set = self._create_read_set(job, source, at)
                source.read_set_id = read_set.read_set_id
                self._set_read_set_status(read_set, "ACTIVE", at)
            elif status == "FAILED" and read_set is not None:
                read_set.status_message = source.failure_message
                self._set_read_set_status(read_set, "UPLOAD_FAILED", at)

        return step

    def _read_set_create_step(self, job: ImportJob, source: Source) -> Callable[[float], None]:
        def step(at: float) -> None:
            self._create_read_set(job, source, at)

        return step

    def _create_read_set(self, job: ImportJob, source: Source, at: float) -> ReadSet:
        read_set = ReadSet(
            read_set_id=self.numeric_id(10),
            store_id=job.store_id,
            job_id=job.job_id,
            sample_id=source.sample_id,
            subject_id=source.subject_id,
            file_type=source.file_type,
            name=source.name,
            tags=dict(source.tags),
            status="PROCESSING_UPLOAD",
            creation_time=at,
            source1=source.source1,
            source2=source.source2,
        )
        self.read_sets[read_set.read_set_id] = read_set
        source.created_read_set_id = read_set.read_set_id
        self._set_read_set_status(read_set, "PROCESSING_UPLOAD", at)
        return read_set

    def _set_read_set_status(self, read_set: ReadSet, status: str, at: float) -> None:
        read_set.status = status
        arn = ev.read_set_arn(self.region, self.account, read_set.store_id, read_set.read_set_id)
        self.emit(
            ev.READ_SET_STATUS_CHANGE,
            at,
            arn,
            ev.read_set_status_detail(
                arn=arn,
                store_id=read_set.store_id,
                read_set_id=read_set.read_set_id,
                status=status,
                creation_job_id=read_set.job_id,
                status_message=read_set.status_message if status == "UPLOAD_FAILED" else None,
            ),
        )

    def random_sources(self, count: int) -> list[Source]:
        """Realistic sources for an internally generated import job."""
        rng = self.rng
        sources: list[Source] = []
        for _ in range(count):
            sample = f"{rng.choice(SAMPLES)}-{rng.randint(1, 9999):04d}"
            subject = f"SUBJ-{rng.randint(1, 999):03d}"
            kind = rng.choices(("FASTQ", "BAM", "CRAM", "UBAM"), weights=(6, 2, 1, 1))[0]
            prefix = f"s3://{self.input_bucket}/incoming/{sample}"
            if kind == "FASTQ":
                source1, source2 = f"{prefix}_R1.fastq.gz", f"{prefix}_R2.fastq.gz"
            else:
                source1, source2 = f"{prefix}.{kind.lower()}", None
            reference = (
                f"arn:aws:omics:{self.region}:{self.account}:referenceStore/"
                f"{self.sequence_store_id}/reference/{self.sequence_store_id}"
                if kind in {"BAM", "CRAM"}
                else None
            )
            sources.append(
                Source(
                    source1=source1,
                    source2=source2,
                    file_type=kind,
                    subject_id=subject,
                    sample_id=sample,
                    reference_arn=reference,
                    name=sample,
                    generated_from="ngs360-sim",
                    tags={"project": "ngs360-sim"},
                )
            )
        return sources

    # -- views ----------------------------------------------------------------------------

    def is_idle(self) -> bool:
        return not self._heap and not self.outbox

    def all_terminal(self) -> bool:
        runs_done = all(r.status in RUN_TERMINAL for r in self.runs.values())
        jobs_done = all(j.status in JOB_TERMINAL for j in self.jobs.values())
        sets_done = all(s.status in READ_SET_FINAL for s in self.read_sets.values())
        return runs_done and jobs_done and sets_done
