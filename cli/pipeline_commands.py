"""The pipeline's processes: ``send``, ``poll``, ``worker``, ``sweep``, ``reconcile``, ``flower``.

Why together: each runs (or feeds) one part of the production pipeline — the doors into the log
(SQS, files), the Celery worker pools, the outbox sweeper, the reconciler and Flower — with the
settings and the ready app of the entry point (:mod:`cli.wiring`).  The pipeline's modules are
imported inside the commands, so ``omics-events --help`` starts fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from celeryconfig import QUEUES
from cli.wiring import console, ready_app, settings, stop_on_signals


@click.command("send")
@click.argument("files", nargs=-1)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Wait until the events finished their stages (default: only when workers run "
    "in-process, i.e. no REDIS_URL).",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait at most.")
def send(files: tuple[str, ...], wait: bool | None, timeout: float) -> None:
    """Append events from FILES (or - for stdin) to the log and publish their work.

    A file holds one event, a JSON array, JSON lines, or an SQS ReceiveMessage response.
    Exits 1 if any event was rejected (it is a dead letter) or is still pending.
    """
    from contextlib import ExitStack

    from producers.completion import wait_until_done
    from producers.intake import Intake, IntakeReport
    from producers.sender import batched, read_inputs
    from workers import embedded_worker

    loaded = settings()
    app = ready_app(loaded)
    wait = loaded.embedded if wait is None else wait
    report = IntakeReport()
    with ExitStack() as stack:
        if loaded.embedded:
            stack.enter_context(embedded_worker(app))
        intake = Intake(app)
        for batch in batched(read_inputs(list(files), sys.stdin.buffer)):
            report.extend(intake.submit(batch))
        pending = 0
        if wait:
            ids = [o.event_id for o in report.outcomes if o.event_id and o.verdict != "rejected"]
            pending = wait_until_done(app.runtime.engine, ids, timeout, archived=loaded.embedded)
    _print_send_report(report, pending if wait else None)
    if pending or report.rejected:
        sys.exit(1)


def _print_send_report(report: Any, pending: int | None) -> None:
    """The counts of a ``send`` (``pending`` None: not waited for) and why events were rejected."""
    table = Table(title="send")
    for column in ("accepted", "duplicate", "rejected", "published", "pending"):
        table.add_column(column, justify="right")
    table.add_row(
        str(report.accepted),
        str(report.duplicates),
        str(report.rejected),
        str(report.published),
        "-" if pending is None else str(pending),
    )
    console.print(table)
    for reason, count in report.rejection_reasons().most_common():
        console.print(f"rejected ×{count}: {reason}", markup=False, highlight=False)


@click.command("poll")
@click.option(
    "--queue-url",
    "queue_urls",
    multiple=True,
    help="SQS queue URL to poll (repeatable). Default: POLLER_QUEUE_URLS.",
)
@click.option("--receivers", type=int, default=None, help="Default: POLLER_RECEIVERS.")
def poll(queue_urls: tuple[str, ...], receivers: int | None) -> None:
    """Long-poll SQS into the log until SIGTERM/SIGINT; exits 0 after the batch in hand."""
    from contextlib import ExitStack

    from producers.poller import Poller, PollerOptions
    from workers import embedded_worker

    loaded = settings()
    urls = list(queue_urls) or loaded.poller_queue_urls
    if not urls:
        raise click.ClickException("no SQS queue to poll: set POLLER_QUEUE_URLS or --queue-url")
    app = ready_app(loaded)
    options = PollerOptions(
        queue_urls=urls,
        receivers=receivers or loaded.poller_receivers,
        wait_seconds=loaded.poller_wait_seconds,
        max_outbox=loaded.poller_max_outbox,
        report_interval=loaded.poller_report_interval,
        sweep_interval=loaded.sweep_interval,
        reconcile_interval=loaded.reconcile_interval,
        liveness_file=Path(loaded.health_file) if loaded.health_file else None,
    )
    poller = Poller(app, options)
    poller.install_signal_handlers()
    with ExitStack() as stack:
        if loaded.embedded:
            stack.enter_context(embedded_worker(app))
        stats = poller.run()
    console.print(f"poller stopped: {stats.snapshot()}")


@click.command("worker")
@click.option("--pool", "queue", type=click.Choice(QUEUES), required=True, help="Which pool.")
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Default: WORKER_CONCURRENCY (the callback pool: CALLBACK_THREADS).",
)
@click.option(
    "--pool-type",
    type=click.Choice(["prefork", "threads", "solo"]),
    default=None,
    help="Celery execution pool. Default: WORKER_POOL (the callback pool: threads).",
)
def worker(queue: str, concurrency: int | None, pool_type: str | None) -> None:
    """Run one worker pool (a `celery worker -Q POOL` process)."""
    loaded = settings()
    if loaded.embedded:
        raise click.ClickException(
            "REDIS_URL is not set: a separate worker process needs a broker "
            "(without one, `send` and `demo` run workers in-process)"
        )
    app = ready_app(loaded)
    # the callback pool waits on NGS360, not on the CPU: threads, as many as CALLBACK_THREADS
    threads = loaded.callback_threads if queue == "callback" else 0
    app.worker_main(
        [
            "worker",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--concurrency",
            str(concurrency or threads or loaded.worker_concurrency),
            "--pool",
            pool_type or ("threads" if threads else loaded.worker_pool),
            "--loglevel",
            loaded.log_level,
        ]
    )


@click.command("sweep")
@click.option("--every", type=float, default=None, help="Run forever, sweeping every N seconds.")
@click.option(
    "--redeliver-after",
    type=float,
    default=None,
    help="Re-publish work published longer ago than this that the broker lost "
    "(default: OUTBOX_REDELIVER_AFTER).",
)
def sweep(every: float | None, redeliver_after: float | None) -> None:
    """Publish owed outbox work; re-publish what the broker lost (prints why)."""
    from workers.outbox import sweep_report as sweep_outbox

    loaded = settings()
    app = ready_app(loaded)
    if every is None:
        console.print(sweep_outbox(app, redeliver_after=redeliver_after).summary())
        return
    stop = stop_on_signals()
    while not stop.is_set():
        started = time.monotonic()
        try:
            sweep_outbox(app, redeliver_after=redeliver_after)
            if loaded.health_file:
                Path(loaded.health_file).touch()
        except Exception as error:  # database or broker down: try again next round
            console.print(f"sweep failed: {error}")
        stop.wait(max(0.0, every - (time.monotonic() - started)))


@click.command("reconcile")
@click.option("--every", type=float, default=None, help="Run forever, a round every N seconds.")
@click.option(
    "--older-than",
    type=float,
    default=None,
    help="Check runs without news for this many seconds (default: RECONCILE_AFTER).",
)
@click.option("--limit", type=int, default=None, help="Most runs per round (RECONCILE_BATCH).")
@click.option(
    "--discover",
    is_flag=True,
    help="Also list every run (ListRuns) to find runs no event ever named (each round).",
)
def reconcile(
    every: float | None, older_than: float | None, limit: int | None, discover: bool
) -> None:
    """Ask HealthOmics about runs whose events stopped coming; append what moved."""
    from workers.reconciler import reconcile as reconcile_round

    loaded = settings()
    app = ready_app(loaded)
    if every is None:
        report = reconcile_round(app, older_than=older_than, limit=limit, discover=discover)
        console.print(report.summary())
        return
    stop = stop_on_signals()
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = reconcile_round(app, older_than=older_than, limit=limit, discover=discover)
            if report.checked or report.gone or report.errors:
                console.print(report.summary())
        except Exception as error:  # database or HealthOmics down: try again next round
            console.print(f"reconcile failed: {error}")
        stop.wait(max(0.0, every - (time.monotonic() - started)))


@click.command("flower")
def flower() -> None:
    """Run Flower against the broker: authentication required, loopback by default."""
    import os

    loaded = settings()
    if loaded.embedded:
        raise click.ClickException("REDIS_URL is not set: Flower watches a broker")
    if loaded.flower_basic_auth is None and not loaded.flower_unauthenticated:
        raise click.ClickException(
            "FLOWER_BASIC_AUTH is not set: Flower would be open to anyone who reaches it; "
            "set FLOWER_BASIC_AUTH=user:password, or FLOWER_UNAUTHENTICATED=1 to accept that"
        )
    app = ready_app(loaded)
    # Flower reads FLOWER_<OPTION> itself; credentials go by environment, never on argv
    # (where `ps` would show them), and our own switch is not one of its options
    os.environ.pop("FLOWER_UNAUTHENTICATED", None)
    if loaded.flower_basic_auth is not None:
        os.environ["FLOWER_BASIC_AUTH"] = loaded.flower_basic_auth.get_secret_value()
    app.start(
        [
            "flower",
            f"--address={loaded.flower_address}",
            f"--port={loaded.flower_port}",
            f"--purge_offline_workers={600}",
        ]
    )


COMMANDS: tuple[click.Command, ...] = (send, poll, worker, sweep, reconcile, flower)
