"""How a run is planned and moved: its timeline, tasks, failure or cancel, drawn once.

Why plans: see :mod:`simulator.state`.  :class:`RunPlanner` is a part of
:class:`~simulator.state.World` (its runs half); it uses the world's seeded generators, its
heap (:meth:`~simulator.state.World.schedule`) and its event emitter, and draws in a fixed order
so that one seed always plans the same day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulator import events as ev
from simulator.catalog import (
    RUN_FAILURES,
    RUN_FAILURES_BY_REASON,
    TASK_FAILURES,
    clip,
)
from simulator.entities import (
    _FAMILIES,
    _SIZES,
    CANCEL_PHASES,
    RUN_TERMINAL,
    SAMPLES,
    TASK_TERMINAL,
    WORKFLOWS,
    Action,
    Run,
    Task,
    TaskPlan,
)
from simulator.outputs import build_outputs, outputs_uri


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


class RunPlanner:
    """The runs half of :class:`~simulator.state.World`: adding, planning, stepping and
    cancelling runs and their tasks.  Relies on the world's attributes (``rng``, ``runs``,
    ``schedule``, ``emit``, ``dur`` …); never instantiated alone."""

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
