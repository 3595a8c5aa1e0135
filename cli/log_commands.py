"""The log's commands: ``rebuild``, ``replay``, ``runs`` and ``run``.

Why a module of their own: ``omics_events.py`` is the one entry point, but these four share a
progress display, a Ctrl-C that stops after the batch in hand and JSON rendering that the other
commands do not need.  The entry point adds :data:`COMMANDS` to the ``omics-events`` group;
they read configuration and check migrations with its own settings loader and app factory
(:mod:`cli.wiring`), exactly like every other command.  Heavy imports happen inside the
commands (the CLI starts fast).

Results go to standard output (tables, or JSON with ``--json``), progress bars to standard
error, so ``omics-events rebuild | tail -1`` is the checksum line.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgressBar
from rich.table import Table
from rich.text import Text

from cli.wiring import ready_app, settings, time_bound

#: Results: wide when piped (rich would wrap tables at 80 columns), the terminal's width when not.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


# --- progress ---------------------------------------------------------------------------------


class RateColumn(ProgressColumn):
    """Units per second of a task (rich's own speed column is for bytes)."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class RichProgress:
    """:class:`eventlog.rebuild.Progress` on a rich progress bar (standard error)."""

    def __init__(self, bar: RichProgressBar) -> None:
        self.bar = bar
        self.task: Any = None

    def start(self, stage: str, total: int | None) -> None:
        if self.task is not None:
            current = self.bar.tasks[-1]
            self.bar.update(self.task, total=current.completed or current.total or 0)
            self.bar.stop_task(self.task)
        self.task = self.bar.add_task(stage, total=total)

    def advance(self, units: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, units)


@contextmanager
def progress_bar() -> Iterator[RichProgress]:
    bar = RichProgressBar(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        refresh_per_second=4,
    )
    with bar:
        yield RichProgress(bar)


@contextmanager
def sigint_stops() -> Iterator[threading.Event]:
    """The first Ctrl-C sets the event (finish the batch in hand, then stop); a second one
    interrupts at once."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print("[yellow]stopping after the batch in hand (Ctrl-C again to abort it)[/]")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


# --- helpers ----------------------------------------------------------------------------------


def _json(value: Any) -> str:
    from eventlog.rebuild import canonical

    return json.dumps(canonical(value), indent=2, ensure_ascii=False, sort_keys=True)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _checksum_table(result: Any) -> Table:
    table = Table(title="projections")
    for column in ("table", "rows", "sha256"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for part in result.tables:
        table.add_row(part.name, f"{part.rows:,}", part.digest[:16] + "…")
    return table


def _rebuild_lines(result: Any) -> None:
    out.print(_checksum_table(result.checksum))
    out.print(
        f"rebuilt from {result.log_events:,} log events ({result.folded:,} folded) in "
        f"{result.seconds:.1f}s: {result.rate:,.0f} events/s"
    )
    out.print(f"checksum {result.checksum.digest}", highlight=False)


# --- the commands ---------------------------------------------------------------------------------


@click.command("rebuild")
@click.option(
    "--check",
    is_flag=True,
    help="Fold into scratch tables and compare with the "
    "live ones; exit 1 naming the first difference. Writes nothing.",
)
@click.option("--batch", default=5000, show_default=True, help="Events folded per batch.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes folding projections "
    "side by side (default: one per core on PostgreSQL for big logs).",
)
def rebuild_command(check: bool, batch: int, workers: int | None) -> None:
    """Drop the projections and fold the whole log again; print their checksum.

    The checksum (sha256 of every projection row and dead letter, in key order) is the
    same for the same log on PostgreSQL and SQLite, and after a replay from the archive.
    """
    from eventlog.rebuild import check as check_log
    from eventlog.rebuild import rebuild

    app = ready_app(settings())
    engine = app.runtime.engine
    if check:
        with progress_bar() as progress:
            result = check_log(engine, batch=batch, progress=progress, workers=workers)
        if result.difference is not None:
            out.print(f"[red]DIFFERENT[/] {escape(str(result.difference))}", highlight=False)
            out.print(
                f"folded {result.folded:,} of {result.log_events:,} log events; "
                "`omics-events rebuild` replaces the live projections"
            )
            sys.exit(1)
        rows = ", ".join(f"{name} {count:,}" for name, count in result.tables.items())
        out.print(
            f"[green]OK[/] the projections match the log ({rows}); "
            f"checked {result.log_events:,} log events in {result.seconds:.1f}s"
        )
        if result.checksum is not None:
            out.print(f"checksum {result.checksum.digest}", highlight=False)
        return
    with progress_bar() as progress:
        result = rebuild(engine, batch=batch, progress=progress, workers=workers)
    _rebuild_lines(result)


@click.command("replay")
@click.argument("source")
@click.option(
    "--since",
    callback=time_bound,
    help="Only events at or after this time (ISO-8601; a date is midnight UTC).",
)
@click.option("--until", callback=time_bound, help="Only events before this time.")
@click.option(
    "--with-side-effects",
    is_flag=True,
    help="Replayed events owe their "
    "stages (enrichment and callbacks, imports) and metrics see them.",
)
@click.option("--batch", default=5000, show_default=True, help="Objects per batch.")
@click.option(
    "--max-rate",
    type=float,
    default=None,
    help="At most this many objects per second (spare a busy database).",
)
@click.option("--no-rebuild", is_flag=True, help="Append only; rebuild later.")
@click.option(
    "--processes",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes that read and parse (default: one per core; 0: "
    "none, a thread). A replay of one batch or less, or with side effects, "
    "uses a thread.",
)
def replay_command(
    source: str,
    since: datetime | None,
    until: datetime | None,
    with_side_effects: bool,
    batch: int,
    max_rate: float | None,
    no_rebuild: bool,
    processes: int | None,
) -> None:
    """Append the archived events the log lacks from SOURCE, then rebuild.

    SOURCE is s3://bucket/prefix (the archive), a folder, or a file of EventBridge events
    (JSON lines or array; events re-sent by an EventBridge archive replay deduplicate like
    any other).  Ctrl-C stops after the batch in hand; run it again to resume.
    """
    from producers.replay import FollowerBusy, Window, open_source, replay

    if since and until and since >= until:
        raise click.BadParameter("--since must be before --until")
    app = ready_app(settings())
    try:
        origin = open_source(source, s3_client=lambda: app.runtime.aws.s3)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    window = Window(since, until)
    with sigint_stops() as stop:
        try:
            with progress_bar() as progress:
                report = replay(
                    app,
                    origin,
                    window=window,
                    with_side_effects=with_side_effects,
                    batch=batch,
                    max_rate=max_rate,
                    stop=stop,
                    progress=progress,
                    rebuild_after=not no_rebuild,
                    processes=processes,
                )
        except FollowerBusy as error:
            raise click.ClickException(str(error)) from None
    _print_replay_report(report)
    if report.interrupted:
        out.print(
            f"[yellow]interrupted[/] after {report.done:,} of {report.listed:,}: "
            "everything appended is kept; run the same command again to resume "
            "(it ends with the rebuild that folds them; or `omics-events rebuild`)"
        )
        sys.exit(130)
    if report.rebuilt is not None:
        _rebuild_lines(report.rebuilt)


def _print_replay_report(report: Any) -> None:
    """What a replay counted, why events were rejected, and what the followers will report."""
    table = Table(title=f"replay of {report.source} ({report.window})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("objects listed", report.listed),
        ("already in the log (not fetched)", report.in_log),
        ("fetched", report.fetched),
        ("events read", report.events),
        ("appended", report.appended),
        ("duplicates", report.duplicates),
        ("rejected (dead letters)", report.rejected),
        ("outside --since/--until", report.outside),
        ("pipeline facts appended", report.facts),
        ("pipeline facts rejected (dead letters)", report.facts_rejected),
    ):
        table.add_row(label, f"{value:,}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    table.add_row("objects/s", f"{report.rate:,.0f}")
    out.print(table)
    for reason, count in sorted(report.rejection_reasons.items()):
        out.print(f"rejected ×{count}: {escape(reason)}")
    if report.exposed:
        out.print(
            f"[yellow]{report.exposed:,} replayed events were appended after live "
            "ones; the metrics and alerts followers will report them[/]"
        )


@click.command("runs")
@click.option("--status", default=None, help="Only runs with this status.")
@click.option("--since", callback=time_bound, help="Only runs with an event at or after this time.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def runs_command(status: str | None, since: datetime | None, limit: int, as_json: bool) -> None:
    """Workflow runs from the runs projection, most recent activity first."""
    from eventlog.history import list_runs

    app = ready_app(settings())
    with app.runtime.engine.connect() as connection:
        rows = list_runs(connection, status=status, since=since, limit=limit)
    if as_json:
        click.echo(_json(rows))
        return
    table = Table(title=f"runs ({len(rows)}{', ' + status.upper() if status else ''})")
    for column in (
        "run",
        "uuid",
        "name",
        "workflow",
        "status",
        "status time",
        "duration",
        "WES run",
        "callback",
        "failure",
    ):
        table.add_column(column)
    for row in rows:
        duration = row.get("duration_seconds")
        table.add_row(
            row.get("run_id") or "",
            row["run_uuid"][:8] + "…",
            row.get("run_name") or "",
            row.get("workflow_name") or row.get("workflow_id") or "",
            row["status"],
            _when(row["status_time"]),
            f"{duration:,.0f}s" if duration is not None else "",
            row.get("wes_run_id") or "",
            row.get("callback_status") or "",
            row.get("failure_reason") or "",
        )
    out.print(table)


@click.command("run")
@click.argument("run_id")
@click.option(
    "--tasks/--no-tasks",
    "with_tasks",
    default=True,
    show_default=True,
    help="Include the run's task events.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
def run_command(run_id: str, with_tasks: bool, as_json: bool) -> None:
    """The timeline of one run: every event and fact about it, in log order.

    RUN_ID is the run's uuid, its numeric id (reused by HealthOmics: the newest run with
    that id is shown) or its WES run id.
    """
    from eventlog.history import as_json as event_json
    from eventlog.history import find_runs, run_tasks, timeline

    app = ready_app(settings())
    with app.runtime.engine.connect() as connection:
        matches = find_runs(connection, run_id)
        if not matches:
            raise click.ClickException(f"no run {run_id!r} in the runs projection")
        run = matches[0]
        entries = timeline(connection, run["run_uuid"], with_tasks=with_tasks)
        task_rows = run_tasks(connection, run["run_uuid"]) if with_tasks else []
    others = [m["run_uuid"] for m in matches[1:]]
    if as_json:
        click.echo(
            _json(
                {
                    "run": run,
                    "other_runs_with_this_id": others,
                    "tasks": task_rows,
                    "timeline": [event_json(e) for e in entries],
                }
            )
        )
        return
    out.print(_run_table(run))
    if others:
        out.print(
            f"[yellow]run id {run_id} also named {len(others)} older run(s): "
            f"{', '.join(others)} (pass a uuid)[/]"
        )
    out.print(_timeline_table(entries))


#: The fields of a run shown above its timeline: (label, key in the runs projection).
RUN_FIELDS = (
    ("name", "run_name"),
    ("workflow", "workflow_name"),
    ("status", "status"),
    ("status time", "status_time"),
    ("WES run id", "wes_run_id"),
    ("started", "start_time"),
    ("stopped", "stop_time"),
    ("duration s", "duration_seconds"),
    ("failure", "failure_reason"),
    ("message", "status_message"),
    ("callback", "callback_status"),
    ("callback delivered", "callback_delivered_at"),
    ("output", "run_output_uri"),
)


def _run_table(run: dict[str, Any]) -> Table:
    head = Table(title=f"run {run.get('run_id') or ''} ({run['run_uuid']})", show_header=False)
    head.add_column("field")
    head.add_column("value")
    for label, key in RUN_FIELDS:
        value = run.get(key)
        if value is not None:
            head.add_row(label, _when(value) if isinstance(value, datetime) else str(value))
    return head


def _timeline_table(entries: list[Any]) -> Table:
    from eventlog.history import summary

    table = Table(title=f"timeline ({len(entries)} events, log order)")
    for column in ("seq", "event time", "origin", "event", "what"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(entry.seq),
            _when(entry.event_time),
            entry.origin,
            entry.detail_type,
            escape(summary(entry)),
        )
    return table


COMMANDS: tuple[click.Command, ...] = (rebuild_command, replay_command, runs_command, run_command)
