"""``omics-events``: the one entry point of every process.

=================================  ==========================================================
command                            process
=================================  ==========================================================
``omics-events demo``              the whole pipeline on the embedded default (``make demo``)
``omics-events poll``              the SQS poller: the door into the system in production
``omics-events send FILE… | -``    events from files or stdin into the log and the pipeline
``omics-events simulate``          the HealthOmics simulator: omics API + events into SQS
``omics-events worker --pool P``   a Celery worker pool (archive, enrich, callback, imports,
                                   metrics); same as ``celery -A workers worker -Q P``
``omics-events sweep``             re-publish outbox work that was lost (once, or ``--every``)
``omics-events reconcile``         GetRun for runs whose events stopped coming (``--every``)
``omics-events deliveries``        callbacks to NGS360 and their outcomes (``--failed``)
``omics-events redeliver ID``      send the callback of one event again; with
                                   ``--status-code/--since/--until/--run``: every
                                   dead-lettered callback they select, in order per run
``omics-events receiver``          a local NGS360 callback endpoint (demo, compose)
``omics-events imports``           read-set import jobs and sources (``--failed``)
``omics-events metrics``           where the metrics, alerts and archive followers are
``omics-events rebuild``           refold the projections from the log, print their checksum
                                   (``--check``: compare, write nothing)
``omics-events replay SOURCE``     archived events (S3, folder, file) back into the log
``omics-events runs`` / ``run ID``   runs from the projection; one run's timeline
``omics-events db upgrade``        apply the database migrations
``omics-events config show``       the resolved configuration, secrets masked
=================================  ==========================================================

Every command reads its settings from the environment first and stops with one line naming the
variable if one is wrong.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from celeryconfig import QUEUES
from schemas.settings import Settings, load_settings, settings_table

console = Console(stderr=False)
README_TABLE_START = "<!-- config-table:start -->"
README_TABLE_END = "<!-- config-table:end -->"


def _settings() -> Settings:
    settings = load_settings()
    from workers.logs import configure_logging

    configure_logging(settings)
    return settings


def _ready_app(settings: Settings) -> Any:
    """A Celery app whose database is migrated (embedded SQLite) or checked (PostgreSQL)."""
    from eventlog.db import SchemaOutOfDate, require_head, upgrade
    from workers import create_app

    app = create_app(settings)
    engine = app.runtime.engine
    if settings.is_sqlite:
        upgrade(engine)
    else:
        try:
            require_head(engine)
        except SchemaOutOfDate as error:
            raise click.ClickException(str(error)) from None
    return app


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """HealthOmics Event Workers: EventBridge events in, durable facts and actions out."""


# --- demo ------------------------------------------------------------------------------------


@cli.command()
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the work.")
@click.option("--runs", default=20, show_default=True, help="Simulated workflow runs.")
@click.option(
    "--seed", type=int, default=None, help="Simulator seed (default: the clock), to repeat a demo."
)
def demo(timeout: float, runs: int, seed: int | None) -> None:
    """Simulate HealthOmics, poll, process and archive; print a summary.

    Exits non-zero if any event the simulator emitted did not reach its final stage.
    """
    from devtools.demo import run_demo

    settings = _settings()
    sys.exit(run_demo(settings, console, timeout=timeout, runs=runs, seed=seed))


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulate(args: tuple[str, ...]) -> None:
    """Run the HealthOmics simulator (API + events to SQS); --help for its options."""
    from simulator.cli import main as simulator_main

    sys.exit(simulator_main(list(args)))


# --- send ------------------------------------------------------------------------------------


@cli.command()
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

    from devtools.demo import wait_until_done
    from producers.intake import Intake, IntakeReport
    from producers.sender import batched, read_inputs
    from workers import embedded_worker

    settings = _settings()
    app = _ready_app(settings)
    wait = settings.embedded if wait is None else wait
    report = IntakeReport()
    with ExitStack() as stack:
        if settings.embedded:
            stack.enter_context(embedded_worker(app))
        intake = Intake(app)
        for batch in batched(read_inputs(list(files), sys.stdin.buffer)):
            report.extend(intake.submit(batch))
        pending = 0
        if wait:
            ids = [o.event_id for o in report.outcomes if o.event_id and o.verdict != "rejected"]
            pending = wait_until_done(app.runtime.engine, ids, timeout, archived=settings.embedded)
    table = Table(title="send")
    for column in ("accepted", "duplicate", "rejected", "published", "pending"):
        table.add_column(column, justify="right")
    table.add_row(
        str(report.accepted),
        str(report.duplicates),
        str(report.rejected),
        str(report.published),
        str(pending) if wait else "-",
    )
    console.print(table)
    for reason, count in report.rejection_reasons().most_common():
        console.print(f"rejected ×{count}: {reason}", markup=False, highlight=False)
    if pending or report.rejected:
        sys.exit(1)


# --- poll ----------------------------------------------------------------------------------


@cli.command()
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

    settings = _settings()
    urls = list(queue_urls) or settings.poller_queue_urls
    if not urls:
        raise click.ClickException("no SQS queue to poll: set POLLER_QUEUE_URLS or --queue-url")
    app = _ready_app(settings)
    options = PollerOptions(
        queue_urls=urls,
        receivers=receivers or settings.poller_receivers,
        wait_seconds=settings.poller_wait_seconds,
        max_outbox=settings.poller_max_outbox,
        report_interval=settings.poller_report_interval,
        sweep_interval=settings.sweep_interval,
        reconcile_interval=settings.reconcile_interval,
        liveness_file=Path(settings.health_file) if settings.health_file else None,
    )
    poller = Poller(app, options)
    poller.install_signal_handlers()
    with ExitStack() as stack:
        if settings.embedded:
            stack.enter_context(embedded_worker(app))
        stats = poller.run()
    console.print(f"poller stopped: {stats.snapshot()}")


# --- worker ----------------------------------------------------------------------------------


@cli.command()
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
    settings = _settings()
    if settings.embedded:
        raise click.ClickException(
            "REDIS_URL is not set: a separate worker process needs a broker "
            "(without one, `send` and `demo` run workers in-process)"
        )
    app = _ready_app(settings)
    # the callback pool waits on NGS360, not on the CPU: threads, as many as CALLBACK_THREADS
    threads = settings.callback_threads if queue == "callback" else 0
    app.worker_main(
        [
            "worker",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--concurrency",
            str(concurrency or threads or settings.worker_concurrency),
            "--pool",
            pool_type or ("threads" if threads else settings.worker_pool),
            "--loglevel",
            settings.log_level,
        ]
    )


# --- sweep -----------------------------------------------------------------------------------


@cli.command()
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

    settings = _settings()
    app = _ready_app(settings)
    if every is None:
        console.print(sweep_outbox(app, redeliver_after=redeliver_after).summary())
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.is_set():
        started = time.monotonic()
        try:
            sweep_outbox(app, redeliver_after=redeliver_after)
            if settings.health_file:
                Path(settings.health_file).touch()
        except Exception as error:  # database or broker down: try again next round
            console.print(f"sweep failed: {error}")
        stop.wait(max(0.0, every - (time.monotonic() - started)))


# --- flower --------------------------------------------------------------------------------


@cli.command()
def flower() -> None:
    """Run Flower against the broker: authentication required, loopback by default."""
    import os

    settings = _settings()
    if settings.embedded:
        raise click.ClickException("REDIS_URL is not set: Flower watches a broker")
    if settings.flower_basic_auth is None and not settings.flower_unauthenticated:
        raise click.ClickException(
            "FLOWER_BASIC_AUTH is not set: Flower would be open to anyone who reaches it; "
            "set FLOWER_BASIC_AUTH=user:password, or FLOWER_UNAUTHENTICATED=1 to accept that"
        )
    app = _ready_app(settings)
    # Flower reads FLOWER_<OPTION> itself; credentials go by environment, never on argv
    # (where `ps` would show them), and our own switch is not one of its options
    os.environ.pop("FLOWER_UNAUTHENTICATED", None)
    if settings.flower_basic_auth is not None:
        os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    app.start(
        [
            "flower",
            f"--address={settings.flower_address}",
            f"--port={settings.flower_port}",
            f"--purge_offline_workers={600}",
        ]
    )


# --- health --------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--kind", default=None, help="poller, sweeper, flower or worker:<pool>. Default: OMICS_PROCESS."
)
def health(kind: str | None) -> None:
    """Container health check: exit 0 while the process makes progress, 1 when it does not."""
    from cli.health import check_health

    settings = load_settings()
    healthy, reason = check_health(settings, kind or settings.omics_process)
    click.echo(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
    sys.exit(0 if healthy else 1)


# --- runs and callbacks --------------------------------------------------------------------


@cli.command()
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

    settings = _settings()
    app = _ready_app(settings)
    if every is None:
        report = reconcile_round(app, older_than=older_than, limit=limit, discover=discover)
        console.print(report.summary())
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = reconcile_round(app, older_than=older_than, limit=limit, discover=discover)
            if report.checked or report.gone or report.errors:
                console.print(report.summary())
        except Exception as error:  # database or HealthOmics down: try again next round
            console.print(f"reconcile failed: {error}")
        stop.wait(max(0.0, every - (time.monotonic() - started)))


@cli.command()
@click.option("--failed", is_flag=True, help="Only failed and dead-lettered callbacks.")
@click.option("--run", "run", default=None, help="Only this run (run id, uuid or WES run id).")
@click.option("--limit", default=50, show_default=True)
def deliveries(failed: bool, run: str | None, limit: int) -> None:
    """List callback attempts to NGS360, newest first."""
    from sqlalchemy import or_, select

    from eventlog.tables import deliveries as table

    settings = _settings()
    app = _ready_app(settings)
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if failed:
        query = query.where(table.c.outcome.in_(["failed", "dead-lettered"]))
    if run:
        query = query.where(
            or_(table.c.run_id == run, table.c.run_uuid == run, table.c.wes_run_id == run)
        )
    with app.runtime.engine.connect() as connection:
        rows = connection.execute(query).all()
    view = Table(title=f"callbacks (newest {limit}{', failed only' if failed else ''})")
    for column in ("when", "run", "status", "event", "outcome", "http", "try", "reason"):
        view.add_column(column)
    for row in rows:
        view.add_row(
            row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.run_id or row.run_uuid or "",
            row.status or "",
            row.event_id,
            row.outcome,
            str(row.http_status or ""),
            str(row.attempts),
            (row.reason or row.response_body or "")[:120],
        )
    console.print(view)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--strict",
    is_flag=True,
    help="Answer 404 for WES run ids it was not told about (default: every id is known).",
)
def receiver(host: str, port: int, strict: bool) -> None:
    """A local NGS360 callback endpoint that answers as the contract says (demo, compose)."""
    from devtools.ngs360_receiver import CALLBACK_PATH, Ngs360Receiver

    settings = _settings()
    key = settings.ngs360_api_key.get_secret_value() if settings.ngs360_api_key else ""
    if not key:
        raise click.ClickException("set NGS360_API_KEY: the receiver checks the key it is sent")
    server = Ngs360Receiver(key, host=host, port=port, auto_register=not strict)
    server.start()
    console.print(f"NGS360 receiver: POST http://{host}:{server.port}{CALLBACK_PATH}")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    seen = 0
    while not stop.wait(5.0):
        received = server.callbacks()
        for request in received[seen:]:
            body = request.json() if isinstance(request.json(), dict) else {}
            console.print(
                f"{request.status} {body.get('wes_run_id', '?')} {body.get('status', '?')} "
                f"{body.get('event_id', '?')}"
            )
        seen = len(received)
    server.stop()


def _time_bound(_ctx: Any, _param: Any, value: str | None) -> Any:
    if value is None:
        return None
    from producers.replay_sources import parse_bound

    try:
        return parse_bound(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _dead_callback_filters(function: Any) -> Any:
    """``--status-code/--since/--until/--run``: the same selection for ``dead-letters`` (what
    would be taken) and ``redeliver`` (taking it)."""
    for option in reversed(
        [
            click.option(
                "--status-code",
                type=int,
                default=None,
                help="Only callbacks whose last answer had this HTTP status "
                "(403: a rotated key; 503: an outage).",
            ),
            click.option(
                "--since",
                callback=_time_bound,
                default=None,
                help="Only callbacks dead-lettered at or after this time "
                "(ISO-8601, UTC unless it says; a date is midnight UTC).",
            ),
            click.option(
                "--until",
                callback=_time_bound,
                default=None,
                help="Only callbacks dead-lettered before this time.",
            ),
            click.option(
                "--run", "run", default=None, help="Only this run (run id, uuid or WES run id)."
            ),
        ]
    ):
        function = option(function)
    return function


def _dead_callbacks_table(items: list[Any], title: str) -> Table:
    view = Table(title=title)
    for column in ("run", "status", "event time", "event", "http", "dead-lettered", "reason"):
        view.add_column(column)
    for item in items:
        view.add_row(
            item.run_id or item.run_uuid,
            item.status,
            item.event_time.strftime("%Y-%m-%d %H:%M:%S"),
            item.event_id,
            str(item.http_status or ""),
            item.dead_at.strftime("%Y-%m-%d %H:%M:%S"),
            (item.reason or "")[:80],
        )
    return view


@cli.command()
@click.argument("event_id", required=False)
@_dead_callback_filters
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Every dead-lettered callback (without a filter, one must say so).",
)
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
def redeliver(
    event_id: str | None,
    status_code: int | None,
    since: Any,
    until: Any,
    run: str | None,
    everything: bool,
    dry_run: bool,
) -> None:
    """Send callbacks again: EVENT_ID's (whatever was sent before), or every dead-lettered one
    the filters select, in order per run.

    In bulk, a status a newer delivered one made moot is recorded as superseded and not sent;
    when a run's callback is not delivered, its later ones are held back.  `omics-events
    dead-letters` with the same filters lists what would be taken.
    """
    from workers.errors import PermanentError

    filtered = any(v is not None for v in (status_code, since, until, run))
    if event_id is not None:
        if filtered or everything or dry_run:
            raise click.UsageError(
                "give EVENT_ID or filters (--status-code/--since/--until/--run/--all), not both"
            )
        from workers.callback import redeliver as send_again

        app = _ready_app(_settings())
        try:
            outcome = send_again(app.runtime, event_id)
        except PermanentError as error:
            raise click.ClickException(error.reason) from None
        console.print(f"{event_id}: {outcome}")
        if outcome not in {"delivered", "skipped"}:
            sys.exit(1)
        return
    if not filtered and not everything:
        raise click.UsageError(
            "give EVENT_ID, a filter (--status-code/--since/--until/--run) or --all"
        )
    sys.exit(_redeliver_in_bulk(status_code, since, until, run, dry_run))


def _redeliver_in_bulk(
    status_code: int | None, since: Any, until: Any, run: str | None, dry_run: bool
) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from workers.redelivery import DONE, HELD_BACK, Filters, dead_callbacks, redeliver_dead

    app = _ready_app(_settings())
    filters = Filters(status_code=status_code, since=since, until=until, run=run)
    with app.runtime.engine.connect() as connection:
        items = dead_callbacks(connection, filters)
    runs = len({item.run_uuid for item in items})
    if dry_run or not items:
        console.print(
            _dead_callbacks_table(
                items,
                f"{len(items)} dead-lettered callbacks of {runs} runs would be sent, in this "
                "order (dry run)"
                if dry_run
                else "no dead-lettered callback matches",
            )
        )
        return 0
    errors = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        console=errors,
    ) as bar:
        task = bar.add_task("redelivering", total=len(items), last="")

        def report(item: Any, outcome: str) -> None:
            bar.update(
                task, advance=1, last=f"{item.run_id or item.run_uuid} {item.status}: {outcome}"
            )

        results = redeliver_dead(app.runtime, items, report)
    counts: dict[str, int] = {}
    for _, outcome in results:
        key = outcome if outcome in DONE | {"dead-lettered", HELD_BACK} else "not sent"
        counts[key] = counts.get(key, 0) + 1
    summary = Table(title=f"redelivery of {len(items)} callbacks of {runs} runs")
    summary.add_column("outcome")
    summary.add_column("callbacks", justify="right")
    for outcome, count in sorted(counts.items()):
        summary.add_row(outcome, str(count), style=None if outcome in DONE else "red")
    console.print(summary)
    left = [(item, outcome) for item, outcome in results if outcome not in DONE]
    if left:
        view = Table(title="not delivered (still dead letters)")
        for column in ("run", "status", "event", "outcome"):
            view.add_column(column)
        for item, outcome in left:
            view.add_row(item.run_id or item.run_uuid, item.status, item.event_id, outcome[:120])
        console.print(view)
    return 1 if left else 0


# --- imports and metrics ----------------------------------------------------------------------


@cli.command("imports")
@click.option("--failed", is_flag=True, help="Only failed, dead, rejected or orphaned sources.")
@click.option("--limit", default=50, show_default=True, help="Most jobs and sources shown.")
def imports_command(failed: bool, limit: int) -> None:
    """Read-set import jobs (newest first) and their sources, from the import projections."""
    from sqlalchemy import desc, select

    from eventlog.import_projections import FAILED_OUTCOMES
    from eventlog.tables import import_jobs, import_sources

    settings = _settings()
    app = _ready_app(settings)
    with app.runtime.engine.connect() as connection:
        jobs_query = select(import_jobs).order_by(desc(import_jobs.c.created_at)).limit(limit)
        sources_query = (
            select(import_sources).order_by(desc(import_sources.c.updated_at)).limit(limit)
        )
        if failed:
            jobs_query = jobs_query.where(import_jobs.c.failed_count > 0)
            sources_query = sources_query.where(import_sources.c.outcome.in_(FAILED_OUTCOMES))
        jobs = connection.execute(jobs_query).all()
        sources = connection.execute(sources_query).all()
    jobs_view = Table(title="import jobs" + (" with failures" if failed else ""))
    for column in (
        "job",
        "store",
        "status",
        "attempt",
        "retry of",
        "sources",
        "ok",
        "failed",
        "created",
        "completed",
    ):
        jobs_view.add_column(column)
    for job in jobs:
        jobs_view.add_row(
            job.job_id,
            job.store_id,
            job.status or "",
            str(job.attempt),
            job.parent_job_id or "",
            "" if job.source_count is None else str(job.source_count),
            "" if job.finished_count is None else str(job.finished_count),
            "" if job.failed_count is None else str(job.failed_count),
            job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else "",
            job.completed_at.strftime("%Y-%m-%d %H:%M:%S") if job.completed_at else "",
        )
    console.print(jobs_view)
    sources_view = Table(title="import sources" + (" that failed" if failed else ""))
    for column in ("files", "type", "sample", "outcome", "attempts", "job", "read set", "why"):
        sources_view.add_column(column)
    for source in sources:
        files = "\n".join(f for f in (source.source1 or source.source_key, source.source2) if f)
        sources_view.add_row(
            files,
            source.file_type or "",
            source.sample_id or "",
            source.outcome,
            str(source.attempts),
            source.job_id or "",
            source.read_set_id or "",
            source.reason or source.status_message or "",
        )
    console.print(sources_view)


@cli.command("metrics")
@click.option("--flush", is_flag=True, help="Run one metrics and alerts pass in this process.")
def metrics_command(flush: bool) -> None:
    """How far the metrics pool (CloudWatch), the alerts and the archive pool have followed the
    log."""
    from workers.archive import archive_status
    from workers.metrics import metrics_status
    from workers.metrics_pool import metrics_loop

    settings = _settings()
    app = _ready_app(settings)
    if flush:
        metrics_loop(app.runtime).flush()
    with app.runtime.engine.connect() as connection:
        status = metrics_status(connection)
        archive = archive_status(connection)
    view = Table(title=f"metrics (namespace {settings.metrics_namespace})")
    for column in ("follower", "at log seq", "behind", "emitted", "dropped", "lease holder"):
        view.add_column(column)
    for name in ("cloudwatch", "alerts"):
        cursor = status[name] or {}
        at = int(cursor.get("last_seq", 0))
        view.add_row(
            name,
            str(at),
            str(status["log_seq"] - at) if name == "cloudwatch" else "",
            str(cursor.get("emitted", 0)),
            str(cursor.get("dropped", 0)),
            str(cursor.get("owner") or ""),
        )
    at = int(archive["archived_through"])
    view.add_row(
        f"archive ({archive['batches']} batches)",
        str(at),
        str(archive["log_seq"] - at),
        str(archive["archived_rows"]),
        "pending " + "-".join(map(str, archive["pending"])) if archive["pending"] else "",
        str(archive["owner"] or ""),
    )
    console.print(view)


# --- db --------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from eventlog.db import create_db_engine, upgrade

    settings = _settings()
    engine = create_db_engine(settings.database_url)
    console.print(f"database at migration {upgrade(engine, revision)}")


@db.command("current")
def db_current() -> None:
    """Print the database's migration revision and the code's."""
    from eventlog.db import create_db_engine, current_revision, head_revision

    settings = _settings()
    engine = create_db_engine(settings.database_url)
    console.print(f"database: {current_revision(engine) or 'none'}  code: {head_revision()}")


# --- dead letters ----------------------------------------------------------------------------


@cli.command("dead-letters")
@click.option("--limit", default=50, show_default=True)
@_dead_callback_filters
def dead_letters(
    limit: int, status_code: int | None, since: Any, until: Any, run: str | None
) -> None:
    """List the newest dead letters with their reasons.

    With --status-code/--since/--until/--run: the dead-lettered callbacks those filters select,
    in the order `omics-events redeliver` with the same filters would send them.
    """
    from sqlalchemy import select

    from eventlog.tables import dead_letters as table

    settings = _settings()
    app = _ready_app(settings)
    if any(value is not None for value in (status_code, since, until, run)):
        from workers.redelivery import Filters, dead_callbacks

        filters = Filters(status_code=status_code, since=since, until=until, run=run)
        with app.runtime.engine.connect() as connection:
            items = dead_callbacks(connection, filters)
        runs = len({item.run_uuid for item in items})
        console.print(
            _dead_callbacks_table(
                items,
                f"{len(items)} dead-lettered callbacks of {runs} runs: what `omics-events "
                "redeliver` with these filters would send, in this order",
            )
        )
        return
    with app.runtime.engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id.desc()).limit(limit)).all()
    view = Table(title=f"dead letters (newest {limit})")
    for column in ("id", "when", "kind", "stage", "event", "reason", "bytes"):
        view.add_column(column)
    for row in rows:
        view.add_row(
            str(row.id),
            row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.kind,
            row.stage or "",
            row.event_id or "",
            row.reason,
            str(len(row.raw)),
        )
    console.print(view)


# --- config ----------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Configuration."""


@config.command("show")
def config_show() -> None:
    """Print the resolved configuration, secrets masked."""
    settings = load_settings()
    table = Table(title="configuration")
    table.add_column("variable")
    table.add_column("value")
    for name, value in settings.masked().items():
        table.add_row(name, value)
    console.print(table)


@config.command("check")
def config_check() -> None:
    """Print the configuration (secrets masked) and check every dependency it names."""
    from cli.checks import run_checks

    settings = _settings()
    config_show.callback()  # type: ignore[misc]
    results = run_checks(settings)
    for result in results:
        mark = "[green]ok[/green]   " if result.ok else "[red]FAIL[/red] "
        console.print(f"{mark} {result.name:<12} {result.detail}", highlight=False)
    if not all(result.ok for result in results):
        sys.exit(1)


@config.command("env-example")
@click.option("--write", "path", type=click.Path(path_type=Path), default=None)
def config_env_example(path: Path | None) -> None:
    """Print (or write) .env.example: every variable with its default and documentation."""
    from schemas.settings import env_example

    text = env_example()
    if path is None:
        click.echo(text, nl=False)
    else:
        path.write_text(text)
        click.echo(f"wrote {path}")


@config.command("table")
@click.option("--write", "readme", type=click.Path(path_type=Path), default=None)
def config_table(readme: Path | None) -> None:
    """Print the Markdown table of every setting (or write it into README)."""
    table = settings_table()
    if readme is None:
        click.echo(table)
        return
    text = readme.read_text()
    start, end = text.index(README_TABLE_START), text.index(README_TABLE_END)
    readme.write_text(text[: start + len(README_TABLE_START)] + "\n" + table + "\n" + text[end:])
    click.echo(f"wrote the configuration table into {readme}")


# --- rebuild, replay, runs, run (cli/log_commands.py) ------------------------------------


def _register_log_commands() -> None:
    from cli.log_commands import register

    register(cli, settings=_settings, ready_app=_ready_app)


_register_log_commands()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="omics-events")


if __name__ == "__main__":
    main()
