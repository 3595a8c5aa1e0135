"""Burst: 10,000 events landing in SQS at once — time to drain, maximum queue depth, nothing lost.

What it measures: the whole pipeline runs as real processes (poller, sweeper, one worker per
pool; ``devtools/stack.py``) on Redis and a fresh PostgreSQL database, idle and ready; then
``--events`` simulator events are sent into its SQS queue as fast as the emitter can
(``SendMessageBatch`` from several threads).  Every half second it samples the SQS queue
(visible + in flight), the Celery queues in Redis (every pool's list) and the outbox work not
yet done.  Reported: seconds to send, seconds to drain (first emission → last outbox work
done), events/s, the maximum of each depth, and the loss check — distinct events in the log
and archived (at or before the archive cursor) against distinct events sent, SQS empty at the end.
Figures, not assertions (docs/design.md §2).  Run::

    .venv/bin/python bench/burst.py --events 10000 --write

``--write`` appends the table, command, date, machine, load average and versions to
``docs/benchmarks.md``.  Needs PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``); cleans up
every database, Redis key and process it made, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import redis as redis_lib
from rich.table import Table
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Bench,
    Emitter,
    add_common_arguments,
    append_section,
    command_line,
    console,
    generate,
    machine,
    pipeline_progress,
    redis_depth,
    sweeper_republished,
    usage_delta,
    usage_snapshot,
    usage_table,
    wait_drained,
    wait_ready,
)

from eventlog.db import create_db_engine
from eventlog.tables import events
from workers.archive import archived_through


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker pool")
    parser.add_argument(
        "--callback-threads", type=int, default=16, help="threads of the callback pool"
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    console.print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    with Bench(args.database_url, args.redis_url, seed=args.seed) as bench:
        fakes = bench.fakes
        assert fakes is not None
        stream = generate(fakes.sim, args.events)
        sent_ids = {event["id"] for event in stream}
        receiver = bench.receiver()
        # the default OUTBOX_REDELIVER_AFTER: the sweeper must tell a backlog from lost work
        settings = bench.settings(ngs360_api_url=receiver.url)
        engine = create_db_engine(settings.database_url)
        queue = fakes.queue("oe-bench-burst")
        stack = bench.process_stack(settings, "burst")
        names = stack.start_pools(
            concurrency=args.concurrency, concurrency_of={"callback": args.callback_threads}
        )
        names += [stack.start_poller([queue]), stack.start_sweeper(every=2.0)]
        wait_ready(stack, names)
        before = usage_snapshot(stack)
        client = redis_lib.Redis.from_url(args.redis_url)
        peaks = {"sqs": 0, "redis": 0, "outbox": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                try:
                    peaks["sqs"] = max(peaks["sqs"], fakes.queue_depth(queue))
                    peaks["redis"] = max(
                        peaks["redis"], redis_depth(client, settings.redis_key_prefix)
                    )
                    peaks["outbox"] = max(peaks["outbox"], pipeline_progress(engine).owed)
                except Exception as error:  # a sample lost is not a figure lost
                    console.print(f"[dim]sample failed: {error}[/dim]")

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        emitter = Emitter([queue], fakes.aws_url, threads=8)
        send_seconds = emitter.send(stream)
        console.print(f"  sent {len(stream):,} events in {send_seconds:.1f}s")
        progress = wait_drained(engine, len(sent_ids), args.timeout, label="burst")
        stop.set()
        sampler.join(5)
        usage = usage_delta(before, stack.usage())
        stack.close()
        republished = sweeper_republished(stack.log_dir / "sweeper.log")
        first = min(emitter.emitted_at.values())
        drain = (progress.last_done.timestamp() if progress.last_done else time.time()) - first
        with engine.connect() as connection:
            logged = set(
                connection.execute(
                    select(events.c.event_id).where(events.c.origin == "aws")
                ).scalars()
            )
            archived = int(  # in a batch object: at or before the archive cursor
                connection.execute(
                    select(func.count()).where(
                        events.c.origin == "aws", events.c.seq <= archived_through(connection)
                    )
                ).scalar_one()
            )
        left_in_sqs = fakes.queue_depth(queue)
        engine.dispose()
        info = machine(args.database_url, args.redis_url, bench.load_start)

    drained = progress.logged >= len(sent_ids) and progress.owed == 0
    missing = len(sent_ids - logged)  # lost only if drained: otherwise some may still be in SQS
    lost = missing if drained else 0
    view = Table(title=f"burst: {len(stream):,} events at once")
    for column in (
        "events sent",
        "distinct",
        "send s",
        "drain s",
        "events/s",
        "max SQS depth",
        "max Redis queue depth",
        "max outbox owed",
        "distinct in log",
        "archived",
        "lost",
        "left in SQS",
        "re-published",
    ):
        view.add_column(column, justify="right")
    view.add_row(
        f"{len(stream):,}",
        f"{len(sent_ids):,}",
        f"{send_seconds:.1f}",
        f"{drain:.1f}",
        f"{len(sent_ids) / drain:,.0f}",
        f"{peaks['sqs']:,}",
        f"{peaks['redis']:,}",
        f"{peaks['outbox']:,}",
        f"{len(logged & sent_ids):,}",
        f"{archived:,}",
        f"{lost:,}",
        f"{left_in_sqs:,}",
        f"{republished:,}",
        style="red" if lost or archived < len(sent_ids) else None,
    )
    view.caption = (
        "drain: first emission → last outbox work done; depths sampled every 0.5 s (SQS: visible "
        "+ in flight; Redis: every pool's Celery list; outbox: work not done); re-published: tasks "
        "the sweeper published again as lost (its log lines)."
    )
    usage_view = usage_table("CPU during the burst, peak RSS", usage, drain)
    console.print(view)
    console.print(usage_view)
    if not drained:
        verdict = (
            f"**not drained within {args.timeout:.0f} s**: {missing:,} not yet in the log, "
            f"{left_in_sqs:,} still in SQS, {progress.owed:,} outbox work owed"
        )
    elif lost or archived < len(sent_ids):
        verdict = f"**{lost:,} lost, {len(sent_ids) - archived:,} not archived**"
    else:
        verdict = "nothing lost"
    in_time = "met" if drained and drain < 180 and not lost and not republished else "**missed**"
    verdict = f"{verdict}, {drain:,.0f} s, {republished} sweeper re-publishes — {in_time}"
    console.print(
        f"goal: a 10,000-event burst drains in < 3 minutes, nothing lost, 0 re-publishes: {verdict}"
    )
    console.print(info)
    if args.write:
        target = append_section(
            "Burst",
            command_line("burst.py", argv),
            info,
            [view, usage_view],
            [
                "Goal — a 10,000-event burst drains in < 3 minutes, nothing lost, 0 sweeper "
                f"re-publishes: {verdict}."
            ],
        )
        console.print(f"appended to {target}")
    return 0 if drained and not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
