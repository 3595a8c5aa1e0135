"""Where the pipeline stands: ``imports``, ``metrics`` and ``health``.

Why together: they read state and change nothing — the read-set import projections, how far
the log followers (metrics, alerts, archive) have come, and whether this container's process
still makes progress (:mod:`cli.health`, imported inside the command: it loads redis and httpx).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table

from cli.wiring import console, ready_app, settings
from schemas.settings import load_settings


@click.command("imports")
@click.option("--failed", is_flag=True, help="Only failed, dead, rejected or orphaned sources.")
@click.option("--limit", default=50, show_default=True, help="Most jobs and sources shown.")
def imports_command(failed: bool, limit: int) -> None:
    """Read-set import jobs (newest first) and their sources, from the import projections."""
    from sqlalchemy import desc, select

    from eventlog.import_projections import FAILED_OUTCOMES
    from eventlog.tables import import_jobs, import_sources

    loaded = settings()
    app = ready_app(loaded)
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
    console.print(_jobs_table(jobs, "import jobs" + (" with failures" if failed else "")))
    console.print(_sources_table(sources, "import sources" + (" that failed" if failed else "")))


def _jobs_table(jobs: Sequence[Any], title: str) -> Table:
    view = Table(title=title)
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
        view.add_column(column)
    for job in jobs:
        view.add_row(
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
    return view


def _sources_table(sources: Sequence[Any], title: str) -> Table:
    view = Table(title=title)
    for column in ("files", "type", "sample", "outcome", "attempts", "job", "read set", "why"):
        view.add_column(column)
    for source in sources:
        files = "\n".join(f for f in (source.source1 or source.source_key, source.source2) if f)
        view.add_row(
            files,
            source.file_type or "",
            source.sample_id or "",
            source.outcome,
            str(source.attempts),
            source.job_id or "",
            source.read_set_id or "",
            source.reason or source.status_message or "",
        )
    return view


@click.command("metrics")
@click.option("--flush", is_flag=True, help="Run one metrics and alerts pass in this process.")
def metrics_command(flush: bool) -> None:
    """How far the metrics pool (CloudWatch), the alerts and the archive pool have followed the
    log."""
    from workers.archive import archive_status
    from workers.metrics import metrics_status
    from workers.metrics_pool import metrics_loop

    loaded = settings()
    app = ready_app(loaded)
    if flush:
        metrics_loop(app.runtime).flush()
    with app.runtime.engine.connect() as connection:
        status = metrics_status(connection)
        archive = archive_status(connection)
    view = Table(title=f"metrics (namespace {loaded.metrics_namespace})")
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


@click.command("health")
@click.option(
    "--kind", default=None, help="poller, sweeper, flower or worker:<pool>. Default: OMICS_PROCESS."
)
def health(kind: str | None) -> None:
    """Container health check: exit 0 while the process makes progress, 1 when it does not."""
    from cli.health import check_health

    loaded = load_settings()
    healthy, reason = check_health(loaded, kind or loaded.omics_process)
    click.echo(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
    sys.exit(0 if healthy else 1)


COMMANDS: tuple[click.Command, ...] = (imports_command, metrics_command, health)
