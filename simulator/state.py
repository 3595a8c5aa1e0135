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
from typing import Any

from simulator import events as ev
from simulator.catalog import SourceFailure
from simulator.clock import Clock
from simulator.entities import (
    CANCEL_PHASES,
    JOB_ACTIVE,
    JOB_TERMINAL,
    READ_SET_FINAL,
    RUN_TERMINAL,
    SAMPLES,
    TASK_TERMINAL,
    WORKFLOWS,
    Action,
    ImportJob,
    QuotaExceeded,
    ReadSet,
    Run,
    Source,
    Task,
    TaskPlan,
)
from simulator.faults import FaultSettings
from simulator.import_plans import ImportPlanner
from simulator.run_plans import RunPlanner

__all__ = [
    "CANCEL_PHASES",
    "JOB_ACTIVE",
    "JOB_TERMINAL",
    "READ_SET_FINAL",
    "RUN_TERMINAL",
    "SAMPLES",
    "TASK_TERMINAL",
    "WORKFLOWS",
    "Action",
    "ImportJob",
    "ImportPlanner",
    "QuotaExceeded",
    "ReadSet",
    "Run",
    "RunPlanner",
    "Source",
    "Task",
    "TaskPlan",
    "World",
]


class World(RunPlanner, ImportPlanner):
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

    # -- views ----------------------------------------------------------------------------

    def is_idle(self) -> bool:
        return not self._heap and not self.outbox

    def all_terminal(self) -> bool:
        runs_done = all(r.status in RUN_TERMINAL for r in self.runs.values())
        jobs_done = all(j.status in JOB_TERMINAL for j in self.jobs.values())
        sets_done = all(s.status in READ_SET_FINAL for s in self.read_sets.values())
        return runs_done and jobs_done and sets_done
