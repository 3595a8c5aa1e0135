"""The enrich-and-callback rig: the simulator over HTTP, moto, the NGS360 receiver, PostgreSQL,
Redis, and the enrich and callback pools as an embedded Celery worker.

``make_rig(seed=…, faults=…, **settings)`` (a fixture, registered in tests/conftest.py) builds
one; :func:`final_check` compares what the receiver holds with the simulator's ground truth.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import func, select

from devtools.ngs360_receiver import Ngs360Receiver
from eventlog.tables import dead_letters, outbox
from producers.intake import Intake
from schemas.settings import Settings
from simulator import ManualClock, MemorySink, S3OutputStore, Simulator, SimulatorServer
from tests.helpers.common import unique, wait_for
from workers import create_app, embedded_worker, sweep
from workers.reconciler import reconcile

API_KEY = "internal-key-" + uuid.uuid4().hex


RUN_STATUS = "Run Status Change"


RANK = {"PENDING": 1, "STARTING": 2, "RUNNING": 3, "STOPPING": 4}


@contextmanager
def every(interval: float, action: Callable[[], Any]) -> Iterator[None]:
    """Run ``action`` every ``interval`` seconds in a thread for the duration of the block."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                action()
            except Exception as error:  # the next round may work (a test asserts the outcome)
                print(f"background {action}: {error!r}")

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


@dataclass
class Rig:
    app: Celery
    sim: Simulator
    sink: MemorySink
    receiver: Ngs360Receiver
    settings: Settings
    stack: ExitStack

    @property
    def engine(self) -> Any:
        return self.app.runtime.engine

    def simulate(self) -> list[dict[str, Any]]:
        """Play every run to its end; the run status events as delivered (faults applied)."""
        self.sim.run_until_idle()
        self.receiver.register(self.wes_ids().values())
        return [e for e in self.sink.events if e["detail-type"] == RUN_STATUS]

    def feed(self, events_in: list[dict[str, Any]]) -> None:
        intake = Intake(self.app)
        for start in range(0, len(events_in), 10):
            intake.submit(events_in[start : start + 10])

    def wes_ids(self) -> dict[str, str]:
        """run id -> WESRunId tag, for the runs that have one."""
        truth = self.sim.ground_truth()["runs"]
        return {
            rid: run["tags"]["WESRunId"] for rid, run in truth.items() if "WESRunId" in run["tags"]
        }

    def unfinished(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.stage.in_(["enrich", "callback"]), outbox.c.done_at.is_(None))
                ).scalar_one()
            )

    def settle(self, timeout: float = 90.0) -> None:
        wait_for(lambda: self.unfinished() == 0, timeout, "enrich and callback work to finish")

    def settle_with_reconciler(self, timeout: float = 90.0) -> int:
        """Settle, reconcile, repeat until the reconciler finds nothing; returns runs moved."""
        deadline = time.monotonic() + timeout
        moved = 0
        while True:
            self.settle(max(1.0, deadline - time.monotonic()))
            report = reconcile(self.app, older_than=0)
            moved += len(report.reconciled)
            if not report.reconciled and not report.throttled:
                return moved
            assert time.monotonic() < deadline, "the reconciler did not converge"

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(table).where(*where)))

    def dead_letters(self, kind: str | None = None) -> list[Any]:
        return self.rows(dead_letters, *([dead_letters.c.kind == kind] if kind else []))


@pytest.fixture
def make_rig(
    make_settings: Callable[..., Settings],
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    aws_env: str,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Rig]]:
    stack = ExitStack()

    def build(
        *,
        seed: int = 4,
        faults: dict[str, Any] | None = None,
        queues: tuple[str, ...] = ("enrich", "callback"),
        concurrency: int = 6,
        start_workers: bool = True,
        **values: Any,
    ) -> Rig:
        outputs = unique("oe-outputs-")
        s3.create_bucket(Bucket=outputs)
        sink = MemorySink()
        sim = Simulator(
            seed=seed,
            clock=ManualClock(),
            sink=sink,
            output_store=S3OutputStore(endpoint_url=aws_env),
            output_bucket=outputs,
            **(faults or {}),
        )
        server = SimulatorServer(sim)
        monkeypatch.setenv("AWS_ENDPOINT_URL_OMICS", server.start())
        stack.callback(server.stop)
        receiver = Ngs360Receiver(API_KEY)
        receiver.start()
        stack.callback(receiver.stop)
        options: dict[str, Any] = {
            "database_url": pg_url,
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
            "archive_uri": f"s3://{bucket}/omics-run-events",
            "ngs360_api_url": receiver.url,
            "ngs360_api_key": API_KEY,
            "outbox_redeliver_after": 60.0,
            "task_retry_backoff_max": 2,
            "callback_backoff_max": 2.0,
            "omics_rate_limits": "GetRun=200,ListRunTasks=200",
        }
        settings = make_settings(**(options | values))
        app = create_app(settings)
        stack.callback(app.runtime.close)
        rig = Rig(app, sim, sink, receiver, settings, stack)
        if start_workers:
            stack.enter_context(
                embedded_worker(app, list(queues), pool="threads", concurrency=concurrency)
            )
            stack.enter_context(every(0.5, lambda: sweep(app)))
        return rig

    yield build
    stack.close()


def final_check(rig: Rig) -> dict[str, Any]:
    """What every acceptance run checks: the receiver against the ground truth."""
    truth = rig.sim.ground_truth()["runs"]
    held = rig.receiver.runs()
    problems: list[str] = []
    for run_id, wes in rig.wes_ids().items():
        run, state = truth[run_id], held.get(wes)
        if state is None or state.omics_status != run["status"]:
            problems.append(
                f"{run_id}: receiver {state and state.omics_status}, truth {run['status']}"
            )
            continue
        if run["status"] == "COMPLETED":
            expected = rig.sim.expected_output_mapping(run_id)
            if state.outputs != expected:
                problems.append(f"{run_id}: outputs {state.outputs} != {expected}")
        task_logs = set((state.log_urls or {}).get("task_logs", {}))
        if task_logs != set(run["tasks"]):
            problems.append(f"{run_id}: log URLs for {len(task_logs)} of {len(run['tasks'])} tasks")
        ranks = [RANK.get(status, 5) for _, status, _ in state.applied]
        if ranks != sorted(set(ranks)):
            problems.append(f"{run_id}: delivered out of order: {state.applied}")
    twice = {e: n for e, n in Counter(rig.receiver.accepted_event_ids()).items() if n > 1}
    assert not problems, problems[:10]
    assert not twice, f"event ids delivered twice: {twice}"
    return truth
