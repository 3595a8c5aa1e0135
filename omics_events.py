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

This module is the thin entry point: the click group, how settings are loaded (logging
configured) and how the Celery app is made ready (migrations applied or checked), and
:func:`main`.  The commands live in :mod:`cli`, one module per command group; the group hands
them its settings loader and app factory on the click context (:mod:`cli.wiring`).
"""

from __future__ import annotations

from typing import Any

import click

from cli import (
    callback_commands,
    config_commands,
    dev_commands,
    log_commands,
    pipeline_commands,
    status_commands,
)
from cli.config_commands import README_TABLE_END, README_TABLE_START
from cli.wiring import Wiring, console
from schemas.settings import Settings, load_settings

__all__ = ["README_TABLE_END", "README_TABLE_START", "cli", "console", "main"]


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
@click.pass_context
def cli(ctx: click.Context) -> None:
    """HealthOmics Event Workers: EventBridge events in, durable facts and actions out."""
    if ctx.obj is None:  # looked up now, so a test that patches _settings/_ready_app is heard
        ctx.obj = Wiring(load_settings=_settings, make_app=_ready_app)


for _group in (
    dev_commands,
    pipeline_commands,
    callback_commands,
    status_commands,
    config_commands,
    log_commands,
):
    for _command in _group.COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="omics-events")


if __name__ == "__main__":
    main()
