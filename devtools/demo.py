"""``make demo``: the whole pipeline, end to end, on the embedded default.

What runs, all in this one process unless configured otherwise:

* AWS — an in-process moto server (S3 and SQS) when no ``AWS_ENDPOINT_URL`` is set;
* HealthOmics — the project's simulator, serving the omics API over HTTP and emitting a
  realistic mix (runs with tasks, some failing, some cancelled, import jobs) as EventBridge
  events into an SQS queue, with a few duplicate and out-of-order deliveries; it also drops
  read files into an S3 bucket the imports pool watches, and fails some of their imports
  (``devtools/import_demo.py``);
* the SQS poller, appending to the log (SQLite under ``.omics-events/`` unless
  ``DATABASE_URL`` is set) and publishing to Celery (in-memory unless ``REDIS_URL`` is set);
* the worker pools, as threads of this process.

It shows live progress and ends with a summary table; it exits non-zero if any event the
simulator emitted did not reach its final stage (no outbox work left) within the timeout, or if
any callback of the demo's runs ended as a dead letter (pointed at an NGS360 that does not know
the demo's runs, or with the wrong key, every callback fails: that is not a demo that worked),
saying so in one line with the count and the most common answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from sqlalchemy import Engine, func, select

from devtools import import_demo
from devtools.ngs360_receiver import Ngs360Receiver
from eventlog import store
from eventlog.db import upgrade
from eventlog.tables import deliveries
from producers.poller import Poller, PollerOptions
from schemas.settings import Settings
from simulator import Simulator, SimulatorServer, SystemClock, realistic_mix
from simulator.local_aws import local_aws
from workers import create_app, embedded_worker
from workers.archive import archive_status, archived_through
from workers.aws import endpoint_overridden
from workers.redelivery import dead_callbacks

SAMPLES = "events.jsonl"
#: Simulated seconds per real second: a 10-minute run takes about 3 s.
DEMO_SPEED = 200.0


def sample_events() -> bytes:
    """The sample events shipped with the package (for ``omics-events send``)."""
    return resources.files("devtools").joinpath("samples", SAMPLES).read_bytes()


@dataclass
class DemoProgress:
    """What the live view and the summary show."""

    emitted: int = 0
    distinct: int = 0
    dropped: int = 0
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    archived: int = 0  # inside a batch object: seq <= the archive cursor
    archive_objects: int = 0  # batch objects the archive pool wrote (all events and facts)
    pending: int = 0

    def table(self, title: str) -> Table:
        table = Table(title=title)
        table.add_column("stage")
        table.add_column("events", justify="right")
        table.add_row("emitted by the simulator", str(self.emitted))
        table.add_row("  distinct", str(self.distinct))
        table.add_row("received from SQS", str(self.received))
        table.add_row("accepted", str(self.accepted))
        table.add_row("duplicates", str(self.duplicates))
        table.add_row("rejected (dead letters)", str(self.rejected))
        table.add_row("archived", str(self.archived))
        table.add_row("  archive batch objects", str(self.archive_objects))
        table.add_row("pending", str(self.pending), style="red" if self.pending else "green")
        return table


def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        s3.create_bucket(Bucket=bucket)


def _measure(
    engine: Engine, simulator: Simulator, poller: Poller, emitted_ids: set[str]
) -> DemoProgress:
    stats = poller.stats.snapshot()
    delivered = simulator.delivered_events
    progress = DemoProgress(
        emitted=len(delivered),
        distinct=len(emitted_ids),
        received=stats["received"],
        accepted=stats["accepted"],
        duplicates=stats["duplicates"],
        rejected=stats["rejected"],
    )
    ids = sorted(emitted_ids)
    with engine.connect() as connection:
        # the archive follower's cursor: events at or below it are inside a batch object
        through = archived_through(connection)
        logged, progress.archived = store.logged_counts(connection, ids, through)
        unarchived = logged - progress.archived
        progress.pending = (len(ids) - logged) + unarchived + store.unfinished_for(connection, ids)
        progress.archive_objects = int(archive_status(connection)["batches"])
    return progress


def _callbacks_table(
    engine: Engine, truth: dict[str, Any], receiver: Ngs360Receiver | None
) -> Table:
    """Every run: what HealthOmics ended with, what NGS360 holds, and the callbacks it took."""
    with engine.connect() as connection:
        outcomes: dict[str, dict[str, int]] = {}
        for run_id, outcome, count in connection.execute(
            select(deliveries.c.run_id, deliveries.c.outcome, func.count()).group_by(
                deliveries.c.run_id, deliveries.c.outcome
            )
        ):
            outcomes.setdefault(run_id, {})[outcome] = count
    table = Table(title="runs and their NGS360 callbacks")
    for column in ("run", "HealthOmics", "NGS360", "delivered", "skipped", "failed"):
        table.add_column(column, justify="left" if column in {"run", "NGS360"} else "right")
    totals: dict[str, int] = {}
    for run_id, run in sorted(truth["runs"].items()):
        seen = outcomes.get(run_id, {})
        for outcome, count in seen.items():
            totals[outcome] = totals.get(outcome, 0) + count
        wes = run["tags"].get("WESRunId")
        state = receiver.state(wes) if receiver is not None and wes else None
        if not wes:
            held = "(no WESRunId)"
        elif state is None:
            held = "?" if receiver is not None else "(external)"
        else:
            held = f"{state.state} ({state.omics_status or '-'})"
        failed = seen.get("failed", 0) + seen.get("dead-lettered", 0)
        table.add_row(
            run_id,
            str(run["status"]),
            held,
            str(seen.get("delivered", 0)),
            str(seen.get("skipped", 0)),
            str(failed),
            style="red" if seen.get("dead-lettered") else None,
        )
    table.caption = "callbacks: " + (
        ", ".join(f"{count} {outcome}" for outcome, count in sorted(totals.items())) or "none"
    )
    return table


def callback_failures(engine: Engine, truth: dict[str, Any]) -> str | None:
    """One line saying how many of the demo runs' callbacks are dead letters and the most
    common answer; None when there are none."""
    uuids = {run["uuid"] for run in truth["runs"].values()}
    with engine.connect() as connection:
        dead = [item for item in dead_callbacks(connection) if item.run_uuid in uuids]
        sent = int(
            connection.execute(
                select(func.count(func.distinct(deliveries.c.caused_by))).where(
                    deliveries.c.run_uuid.in_(sorted(uuids))
                )
            ).scalar_one()
        )
    if not dead:
        return None
    answers = Counter(item.reason or "no answer" for item in dead)  # "HTTP 404"
    answer, count = answers.most_common(1)[0]
    example = next(item.response_body for item in dead if (item.reason or "no answer") == answer)
    said = f", e.g. {example[:200]}" if example else ""
    return (
        f"{len(dead)} of {sent} callbacks were dead-lettered; most common ({count}): "
        f"{answer}{said}; see omics-events dead-letters"
    )


def run_demo(
    settings: Settings,
    console: Console,
    timeout: float = 180.0,
    runs: int = 20,
    seed: int | None = None,
) -> int:
    """Run the demo; returns the process exit status.

    ``seed`` makes the simulated account repeatable (which runs fail, which carry a WESRunId);
    by default every demo is a new one.
    """
    if settings.log_level == "INFO":  # one line per task would scroll the live view away
        logging.getLogger("celery").setLevel(logging.WARNING)
    with ExitStack() as stack:
        local = not endpoint_overridden("sqs")
        if local:
            aws = stack.enter_context(local_aws())
            console.print(f"[dim]local AWS (moto) at {aws.endpoint_url}[/dim]")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL")
        settings, receiver = _with_receiver(stack, settings, console)
        settings = import_demo.with_imports(settings)  # read files dropped in S3 get imported
        app = create_app(settings)
        runtime = app.runtime  # type: ignore[attr-defined]
        upgrade(runtime.engine)
        if settings.archive_uri.startswith("s3://"):
            _ensure_bucket(runtime.aws.s3, settings.archive_uri.removeprefix("s3://").split("/")[0])
        queue_url = runtime.aws.sqs.create_queue(
            QueueName=f"omics-events-demo-{uuid.uuid4().hex[:8]}"
        )["QueueUrl"]
        output_bucket = "omics-events-demo-outputs"
        _ensure_bucket(runtime.aws.s3, output_bucket)
        simulator = Simulator(
            seed=int(time.time()) if seed is None else seed,
            speed=DEMO_SPEED,
            clock=SystemClock(),
            region=settings.aws_region,
            queue_url=queue_url,
            endpoint_url=endpoint,
            output_bucket=output_bucket,
            duplicate_rate=0.05,
            reorder_rate=0.05,
            sequence_store_id=settings.import_sequence_store_id,
        )
        realistic_mix(simulator, runs=runs, import_jobs=3, stagger=20.0)
        if receiver is not None:  # the WES server knows the runs it submitted
            receiver.register(
                run["tags"]["WESRunId"]
                for run in simulator.ground_truth()["runs"].values()
                if "WESRunId" in run["tags"]
            )
        _serve_omics(stack, simulator, console)
        stack.enter_context(embedded_worker(app))
        poller = _start_poller(stack, app, queue_url)
        simulator.start()
        stack.callback(simulator.stop)
        import_demo.drop_lab_files(simulator)
        progress = _watch(console, runtime.engine, settings, simulator, poller, timeout)
        return _report(console, runtime, simulator, receiver, progress, local)


def _with_receiver(
    stack: ExitStack, settings: Settings, console: Console
) -> tuple[Settings, Ngs360Receiver | None]:
    """No NGS360 configured: a local receiver that answers as the real server does, and the
    settings pointed at it with a fresh key."""
    if settings.ngs360_api_url is not None:
        return settings, None
    key = uuid.uuid4().hex
    receiver = stack.enter_context(Ngs360Receiver(key))
    settings = settings.model_copy(
        update={"ngs360_api_url": receiver.url, "ngs360_api_key": SecretStr(key)}
    )
    console.print(f"[dim]NGS360 callback receiver at {receiver.url}[/dim]")
    return settings, receiver


def _serve_omics(stack: ExitStack, simulator: Simulator, console: Console) -> None:
    """The simulator's HealthOmics API over HTTP, and this process's omics clients sent there."""
    server = SimulatorServer(simulator)
    omics_url = server.start()
    stack.callback(server.stop)
    os.environ["AWS_ENDPOINT_URL_OMICS"] = omics_url
    console.print(f"[dim]HealthOmics simulator at {omics_url}[/dim]")


def _start_poller(stack: ExitStack, app: Any, queue_url: str) -> Poller:
    """The SQS poller in a thread, stopped and joined when the demo ends."""
    poller = Poller(
        app,
        PollerOptions(
            queue_urls=[queue_url],
            receivers=2,
            wait_seconds=1,
            sweep_interval=2.0,
            report_interval=3600.0,
        ),
        report=lambda _snapshot: None,
    )
    poll_thread = threading.Thread(target=poller.run, name="poller", daemon=True)
    poll_thread.start()
    stack.callback(poll_thread.join, 30)
    stack.callback(poller.stop)
    return poller


def _watch(
    console: Console,
    engine: Engine,
    settings: Settings,
    simulator: Simulator,
    poller: Poller,
    timeout: float,
) -> DemoProgress:
    """The live table until the simulated account is done and every event it emitted is
    handled (and the imports and metrics have settled), or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    progress = DemoProgress()
    with Live(console=console, refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            simulated_done = simulator.all_terminal() and simulator.next_due() is None
            if simulated_done:
                simulator.drain()
            emitted_ids = {event["id"] for event in simulator.delivered_events}
            progress = _measure(engine, simulator, poller, emitted_ids)
            live.update(Group(progress.table("omics-events demo (running)")))
            if (
                simulated_done
                and progress.pending == 0
                and progress.distinct
                and import_demo.settled(engine, settings)
            ):
                break
            time.sleep(0.25)
    progress.dropped = len(simulator.dropped_events)
    return progress


def _report(
    console: Console,
    runtime: Any,
    simulator: Simulator,
    receiver: Ngs360Receiver | None,
    progress: DemoProgress,
    local: bool,
) -> int:
    """The summary tables; the exit status (1 if work is left or callbacks were dead-lettered)."""
    console.print(progress.table("omics-events demo"))
    truth = simulator.ground_truth()
    final: dict[str, int] = {}
    for run in truth["runs"].values():
        final[run["status"]] = final.get(run["status"], 0) + 1
    console.print(f"runs by final status: {final}")
    console.print(_callbacks_table(runtime.engine, truth, receiver))
    console.print(import_demo.summary_table(runtime.engine))
    console.print(f"archive: {runtime.archive.location(runtime.archive.prefix)}")
    if local:
        console.print(
            "[dim](the local moto server and its objects stop with the demo; "
            "ARCHIVE_URI=file://./.omics-events/archive keeps them)[/dim]"
        )
    failures = callback_failures(runtime.engine, truth)
    if failures is not None:
        console.print(f"[red]demo failed: {failures}[/red]", highlight=False)
        return 1
    return 0 if progress.pending == 0 else 1
