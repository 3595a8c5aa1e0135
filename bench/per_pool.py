"""Per pool: the maximum rate of each stage alone, to show where the bottleneck is.

What it measures: ``--events`` N simulator events (the same mix as ``bench/end_to_end.py``) are
loaded into SQS first; then each stage runs alone, as a real process (``devtools/stack.py``),
on the work the previous stages left, and is timed from the moment it is ready (Celery ping) to
its last item done:

* **poller** — SQS → log + outbox + Celery publish (events/s, from the first to the last
  ``received_at``);
* **enrich**, **callback**, **imports** — its outbox rows (published to its Redis queue by the
  stage before) until all are done (items/s); the callback rows appear only once enrich has
  run, which is why the stages go in this order;
* **archive**, **metrics** — the log followers: the archive's (batch objects) and the
  CloudWatch follower's cursor to the end of the log (log rows/s, events and facts; they write
  every ``ARCHIVE_BATCH_SECONDS`` / ``METRICS_FLUSH_INTERVAL``), timed from the process start
  (start-up included: a follower starts before the worker answers a ping), so a lower bound.

"events/s if alone" scales a stage's rate by items per event (a run status event owes enrich
and callback; the followers read every log row): the smallest is the pipeline's ceiling on
this machine.
The fakes' knobs are those of ``bench/end_to_end.py`` (``bench/harness.py``): ``--s3-latency``,
``--omics-latency``, ``--ngs360-latency`` (seconds per request) and ``--throttle`` (HealthOmics
TPS quotas enforced, the pipeline's limiter at its documented defaults).  Each stage's row also
gives the S3 requests and HealthOmics calls it made per item and the calls throttled (429).

Figures, not assertions (docs/design.md §2).  Run::

    .venv/bin/python bench/per_pool.py --events 2000 --write
    .venv/bin/python bench/per_pool.py --events 2000 --s3-latency 0.02 --omics-latency 0.05 \\
        --ngs360-latency 0.2 --throttle

``--write`` appends the table, command, date, machine, load average and versions to
``docs/benchmarks.md``.  Needs PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``); cleans up
every database, Redis key and process it made, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.table import Table
from sqlalchemy import Engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Calls,
    Emitter,
    add_common_arguments,
    add_fake_arguments,
    append_section,
    bench_from,
    calls_mark,
    calls_since,
    command_line,
    console,
    fakes_line,
    generate,
    machine,
    usage_delta,
    usage_snapshot,
    wait_ready,
)

from devtools.stack import ProcessStack
from eventlog import cursors
from eventlog.db import create_db_engine
from eventlog.tables import events, outbox

STAGES = ("enrich", "callback", "imports")


@dataclass
class StageFigure:
    stage: str
    items: int
    seconds: float
    cpu: float
    rss_mb: float
    per_event: float  # items this stage owes per emitted event
    calls: Calls | None = None  # requests the fakes answered while this stage ran
    published: int = 0  # Celery tasks published for this stage's outbox rows (sweeper included)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")

    @property
    def events_rate(self) -> float:
        return self.rate / self.per_event if self.per_event else float("inf")


def _owed(engine: Engine, stage: str) -> tuple[int, int, datetime | None, datetime | None, int]:
    """(rows of ``stage``, not done, first done_at, last done_at, tasks published)."""
    with engine.connect() as connection:
        total, left, first, last, published = connection.execute(
            select(
                func.count(),
                func.count().filter(outbox.c.done_at.is_(None)),
                func.min(outbox.c.done_at),
                func.max(outbox.c.done_at),
                func.coalesce(func.sum(outbox.c.publish_count), 0),
            ).where(outbox.c.stage == stage)
        ).one()
    return int(total), int(left), first, last, int(published)


def _wait(check: Callable[[], bool], timeout: float, label: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: timed out")
        time.sleep(0.2)


def measure_poller(
    stack: ProcessStack, engine: Engine, queue: str, n: int, timeout: float
) -> StageFigure:
    before = usage_snapshot(stack)
    stack.start_poller([queue])

    def logged() -> int:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(events).where(events.c.origin == "aws")
                ).scalar_one()
            )

    _wait(lambda: logged() >= n, timeout, "poller")
    with engine.connect() as connection:
        first, last = connection.execute(
            select(func.min(events.c.received_at), func.max(events.c.received_at)).where(
                events.c.origin == "aws"
            )
        ).one()
    cpu, rss = usage_delta(before, stack.usage())["poller"]
    stack.stop("poller")
    return StageFigure("poller", n, (last - first).total_seconds(), cpu, rss, 1.0)


def measure_stage(
    stack: ProcessStack, engine: Engine, stage: str, n: int, concurrency: int, timeout: float
) -> StageFigure:
    name = stack.start_pool(stage, concurrency=concurrency)
    wait_ready(stack, [name])
    before = usage_snapshot(stack)
    started = datetime.now().astimezone()
    _wait(lambda: _owed(engine, stage)[1] == 0, timeout, stage)
    total, _, first, last, published = _owed(engine, stage)
    cpu, rss = usage_delta(before, stack.usage())[name]
    stack.stop(name)
    # a small backlog can be done while the worker still answers its readiness ping
    if first is not None and first < started:
        started = first
    seconds = (last - started).total_seconds() if last else 0.0
    return StageFigure(stage, total, seconds, cpu, rss, total / n, published=published)


#: The log followers: pool → the cursor it moves.
FOLLOWERS = {"archive": "archive", "metrics": "cloudwatch"}


def measure_follower(
    stack: ProcessStack, engine: Engine, pool: str, n: int, timeout: float
) -> StageFigure:
    with engine.connect() as connection:
        top, rows = connection.execute(select(func.max(events.c.seq), func.count())).one()
    # the follower starts with the worker, before it answers a ping: timed from the start
    before = usage_snapshot(stack)
    started = time.monotonic()
    name = stack.start_pool(pool, concurrency=1)

    def caught_up() -> bool:
        with engine.connect() as connection:
            cursor = cursors.read(connection, FOLLOWERS[pool])
        return cursor is not None and cursor.last_seq >= top

    _wait(caught_up, timeout, pool)
    seconds = time.monotonic() - started
    cpu, rss = usage_delta(before, stack.usage())[name]
    stack.stop(name)
    return StageFigure(pool, int(rows), seconds, cpu, rss, int(rows) / n)


def table(figures: list[StageFigure]) -> Table:
    view = Table(title="each stage alone (one process, pre-loaded work)")
    for column in (
        "stage",
        "items",
        "seconds",
        "items/s",
        "items per event",
        "events/s if alone",
        "CPU s",
        "CPU ms per item",
        "tasks published per item",
        "S3 req per item",
        "HealthOmics calls per item",
        "throttled",
        "peak RSS MB",
    ):
        view.add_column(column, justify="left" if column == "stage" else "right")
    slowest = min(figures, key=lambda f: f.events_rate)
    for f in figures:
        view.add_row(
            f.stage,
            f"{f.items:,}",
            f"{f.seconds:.1f}",
            f"{f.rate:,.0f}",
            f"{f.per_event:.2f}",
            f"{f.events_rate:,.0f}",
            f"{f.cpu:.1f}",
            f"{1000 * f.cpu / max(f.items, 1):.1f}",
            f"{f.published / max(f.items, 1):.2f}" if f.published else "-",
            f"{f.calls.s3_total / max(f.items, 1):.2f}" if f.calls else "-",
            f"{f.calls.omics_total / max(f.items, 1):.2f}" if f.calls else "-",
            f"{f.calls.throttled_total:,}" if f.calls else "-",
            f"{f.rss_mb:.0f}",
            style="bold red" if f is slowest else None,
        )
    view.caption = (
        f"slowest: {slowest.stage} ({slowest.events_rate:,.0f} events/s). Items: events "
        "(poller), outbox rows (archive, enrich, callback, imports), log rows followed (metrics). "
        "The sweeper runs beside each pool (it re-publishes deferred work). S3 requests "
        "(moto's count) and HealthOmics calls (the simulator's log, 429s included) made while "
        "the stage ran; throttled: HealthOmics calls answered 429 (only with --throttle)."
    )
    return view


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker pool")
    parser.add_argument("--timeout", type=float, default=600.0, help="per stage")
    add_fake_arguments(parser)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    console.print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    console.print(fakes_line(args), highlight=False)
    with bench_from(args) as bench:
        assert bench.fakes is not None
        stream = generate(bench.fakes.sim, args.events)
        receiver = bench.receiver()
        settings = bench.settings(ngs360_api_url=receiver.url, outbox_redeliver_after=1800.0)
        engine = create_db_engine(settings.database_url)
        queue = bench.fakes.queue("oe-bench-pools")
        console.print(f"loading {len(stream):,} events into SQS")
        Emitter([queue], bench.fakes.aws_url).send(stream)
        n = len(stream)
        stack = bench.process_stack(settings, "per-pool")
        fakes = bench.fakes

        def counted(measure: Callable[[], StageFigure]) -> StageFigure:
            mark = calls_mark(fakes)
            figure = measure()
            figure.calls = calls_since(fakes, mark)
            return figure

        figures = [counted(lambda: measure_poller(stack, engine, queue, n, args.timeout))]
        console.print(f"  poller: {figures[-1].rate:,.0f} events/s")
        stack.start_sweeper(every=1.0)  # deferred work (a callback waiting for its predecessor)
        for stage in STAGES:
            figures.append(
                counted(
                    lambda stage=stage: measure_stage(
                        stack, engine, stage, n, args.concurrency, args.timeout
                    )
                )
            )
            console.print(f"  {stage}: {figures[-1].rate:,.0f} items/s")
        for pool in FOLLOWERS:
            figures.append(
                counted(lambda pool=pool: measure_follower(stack, engine, pool, n, args.timeout))
            )
            console.print(f"  {pool}: {figures[-1].rate:,.0f} log rows/s")
        engine.dispose()
        info = machine(args.database_url, args.redis_url, bench.load_start)
    view = table(figures)
    console.print(view)
    console.print(info)
    if args.write:
        target = append_section(
            "Per pool", command_line("per_pool.py", argv), info, [view], [fakes_line(args)]
        )
        console.print(f"appended to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
