"""The callbacks to NGS360 and the dead letters: ``deliveries``, ``dead-letters``, ``redeliver``.

Why together: an operator answers one question with them — which callbacks failed, and sending
them again — and ``dead-letters`` and ``redeliver`` share their ``--status-code/--since/--until/
--run`` selection (:func:`dead_callback_filters`), so what one lists is what the other takes.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.wiring import console, ready_app, settings, time_bound


def dead_callback_filters(function: Any) -> Any:
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
                callback=time_bound,
                default=None,
                help="Only callbacks dead-lettered at or after this time "
                "(ISO-8601, UTC unless it says; a date is midnight UTC).",
            ),
            click.option(
                "--until",
                callback=time_bound,
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


@click.command("deliveries")
@click.option("--failed", is_flag=True, help="Only failed and dead-lettered callbacks.")
@click.option("--run", "run", default=None, help="Only this run (run id, uuid or WES run id).")
@click.option("--limit", default=50, show_default=True)
def deliveries(failed: bool, run: str | None, limit: int) -> None:
    """List callback attempts to NGS360, newest first."""
    from sqlalchemy import or_, select

    from eventlog.tables import deliveries as table

    loaded = settings()
    app = ready_app(loaded)
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


@click.command("redeliver")
@click.argument("event_id", required=False)
@dead_callback_filters
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
    filtered = any(v is not None for v in (status_code, since, until, run))
    if event_id is not None:
        if filtered or everything or dry_run:
            raise click.UsageError(
                "give EVENT_ID or filters (--status-code/--since/--until/--run/--all), not both"
            )
        _redeliver_one(event_id)
        return
    if not filtered and not everything:
        raise click.UsageError(
            "give EVENT_ID, a filter (--status-code/--since/--until/--run) or --all"
        )
    sys.exit(_redeliver_in_bulk(status_code, since, until, run, dry_run))


def _redeliver_one(event_id: str) -> None:
    """Send one event's callback again; exit 1 unless it was delivered (or had nothing to say)."""
    from workers.callback import redeliver as send_again
    from workers.errors import PermanentError

    app = ready_app(settings())
    try:
        outcome = send_again(app.runtime, event_id)
    except PermanentError as error:
        raise click.ClickException(error.reason) from None
    console.print(f"{event_id}: {outcome}")
    if outcome not in {"delivered", "skipped"}:
        sys.exit(1)


def _redeliver_in_bulk(
    status_code: int | None, since: Any, until: Any, run: str | None, dry_run: bool
) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from workers.redelivery import Filters, dead_callbacks, redeliver_dead

    app = ready_app(settings())
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
    return _print_redelivery(items, runs, results)


def _print_redelivery(items: list[Any], runs: int, results: list[tuple[Any, str]]) -> int:
    """The outcomes of a bulk redelivery, and the callbacks still not delivered; 1 if any."""
    from workers.redelivery import DONE, HELD_BACK

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


@click.command("dead-letters")
@click.option("--limit", default=50, show_default=True)
@dead_callback_filters
def dead_letters(
    limit: int, status_code: int | None, since: Any, until: Any, run: str | None
) -> None:
    """List the newest dead letters with their reasons.

    With --status-code/--since/--until/--run: the dead-lettered callbacks those filters select,
    in the order `omics-events redeliver` with the same filters would send them.
    """
    from sqlalchemy import select

    from eventlog.tables import dead_letters as table

    loaded = settings()
    app = ready_app(loaded)
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


COMMANDS: tuple[click.Command, ...] = (deliveries, redeliver, dead_letters)
