"""End to end: the pipeline as real processes against the Lambda-style baseline, same fakes.

What it measures, in one run:

* **pipeline** — the HealthOmics simulator's events (runs with tasks, some failing or cancelled,
  all tagged with a ``WESRunId``, plus read-set import jobs) are sent into an SQS queue (moto,
  its own process); the poller, the sweeper and one worker per pool (archive, enrich, callback,
  imports, metrics) run as real ``python -m omics_events`` processes (``producers/stack.py``) on
  Redis and a fresh PostgreSQL database, and deliver to a local NGS360 receiver, S3 and
  CloudWatch (moto).  Reported: events/s sustained (events / (last outbox work done - first
  emission)), latency from emission to the callback the receiver accepted (p50, p95, p99, over
  the run status events that got one), CPU seconds and peak RSS of each process;
* **baseline** — ``bench/baseline.py``: one process that handles each event inline, in order, as
  the legacy Lambda does (flatten, archive, GetRun/ListRunTasks/outputs, callback), fed the same
  events through its own SQS queue, delivering to its own receiver on the same fakes;
* in two modes: **max rate** (``--events`` N emitted as fast as the emitter can; the throughput
  figure) and **fixed rate** (``--rate`` events/s for ``--rate-seconds``; the latency figure);
  then the ratios pipeline / baseline.

Figures, not assertions (DESIGN.md §2).  Run (``make bench`` runs the defaults)::

    .venv/bin/python bench/end_to_end.py --events 2000 --rate 50 --rate-seconds 30 --write

``--write`` appends the tables, the command, the date, the machine, the load average and the
versions to ``docs/benchmarks.md``.  Needs PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``;
defaults: the local servers); every database, Redis key and process it creates is removed at
the end, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    API_KEY,
    REPO,
    Bench,
    Emitter,
    PeakSampler,
    add_common_arguments,
    append_section,
    callback_times,
    command_line,
    console,
    generate,
    hops,
    is_run_event,
    latencies,
    machine,
    percentile,
    slow_work,
    usage_delta,
    usage_snapshot,
    usage_table,
    wait_drained,
    wait_ready,
)

from eventlog.db import create_db_engine

FAKES = ("moto", "bench")
GOALS = {"ratio": 3.0, "p99_s": 1.0, "rss_mb": 200.0}


@dataclass
class Result:
    system: str
    mode: str
    events: int
    seconds: float
    callbacks: int
    run_events: int
    lost: int
    latency: list[float]
    usage: dict[str, tuple[float, float]] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    hops: Table | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_per_event(self) -> float:
        """CPU seconds of the system's own processes (not the fakes) per event."""
        own = [cpu for name, (cpu, _) in self.usage.items() if not name.startswith(FAKES)]
        return sum(own) / self.events if self.events else float("nan")

    def p(self, share: float) -> float:
        return percentile(self.latency, share)


def _slug(mode: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in mode)


class FakesUsage:
    """CPU of the fakes: moto's process and this one (simulator API, receivers, emitter)."""

    def __init__(self, bench: Bench) -> None:
        assert bench.fakes is not None
        self.moto = PeakSampler(bench.fakes.moto)
        self.me = psutil.Process()

    def snapshot(self) -> dict[str, float]:
        self.moto.sample()
        mine = self.me.cpu_times()
        return {
            "moto (S3, SQS, CloudWatch)": self.moto.cpu,
            "bench (simulator API, receiver, emitter)": mine.user + mine.system,
        }

    def rows(self, before: dict[str, float]) -> dict[str, tuple[float, float]]:
        after = self.snapshot()
        rss = {
            "moto (S3, SQS, CloudWatch)": self.moto.peak_rss / 2**20,
            "bench (simulator API, receiver, emitter)": self.me.memory_info().rss / 2**20,
        }
        return {name: (after[name] - before[name], rss[name]) for name in after}


def run_pipeline(
    bench: Bench,
    stream: list[dict[str, Any]],
    mode: str,
    rate: float | None,
    concurrency: int,
    timeout: float,
    latency: float = 0.0,
) -> Result:
    assert bench.fakes is not None
    console.rule(f"pipeline, {mode}: {len(stream):,} events")
    receiver = bench.receiver(latency)
    settings = bench.settings(ngs360_api_url=receiver.url)
    engine = create_db_engine(settings.database_url)
    queue = bench.fakes.queue("oe-bench-pipeline")
    stack = bench.process_stack(settings, f"pipeline-{_slug(mode)}")
    names = stack.start_pools(concurrency=concurrency)
    names.append(stack.start_poller([queue]))
    names.append(stack.start_sweeper(every=2.0))
    wait_ready(stack, names)
    fakes = FakesUsage(bench)
    before, fakes_before = usage_snapshot(stack), fakes.snapshot()
    emitter = Emitter([queue], bench.fakes.aws_url)
    emitter.send(stream, rate)
    progress = wait_drained(engine, len(stream), timeout)
    after = stack.usage()
    usage = usage_delta(before, after) | fakes.rows(fakes_before)
    stack.close()
    hop_table = hops(engine, emitter.emitted_at, callback_times(receiver))
    for row in slow_work(engine):
        console.print(f"[yellow]slow work[/yellow]: {row}", highlight=False)
    engine.dispose()
    first = min(emitter.emitted_at.values())
    end = progress.last_done.timestamp() if progress.last_done else time.time()
    run_events = sum(1 for e in stream if is_run_event(e))
    lat = latencies(receiver, emitter.emitted_at)
    return Result(
        "pipeline",
        mode,
        len(stream),
        end - first,
        len(lat),
        run_events,
        max(0, len(stream) - progress.logged),
        lat,
        usage,
        hops=hop_table,
    )


def run_baseline(
    bench: Bench,
    stream: list[dict[str, Any]],
    mode: str,
    rate: float | None,
    timeout: float,
    latency: float = 0.0,
) -> Result:
    assert bench.fakes is not None
    console.rule(f"baseline, {mode}: {len(stream):,} events")
    receiver = bench.receiver(latency)
    queue = bench.fakes.queue("oe-bench-baseline")
    results = bench.logs / f"baseline-{_slug(mode)}.json"
    ready = bench.logs / f"baseline-{_slug(mode)}.ready"
    env = os.environ | {"API_SERVER": receiver.url, "NGS360_API_KEY": API_KEY}
    with open(bench.logs / "baseline.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "bench" / "baseline.py"),
                "--queue-url",
                queue,
                "--bucket",
                bench.fakes.archive_bucket,
                "--prefix",
                f"baseline-{time.time_ns()}",
                "--events",
                str(len(stream)),
                "--results",
                str(results),
                "--ready-file",
                str(ready),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        sampler = PeakSampler(process)
        deadline = time.monotonic() + 60
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"baseline did not start: {(bench.logs / 'baseline.log')}")
            time.sleep(0.1)
        fakes = FakesUsage(bench)
        sampler.sample()
        cpu_before, fakes_before = sampler.cpu, fakes.snapshot()
        emitter = Emitter([queue], bench.fakes.aws_url)
        emitter.send(stream, rate)
        started = time.monotonic()
        while process.poll() is None:
            sampler.sample()
            if time.monotonic() - started > timeout:
                console.print("[red]baseline: timed out[/red]")
                process.kill()
                break
            time.sleep(0.25)
        sampler.stop()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    summary = json.loads(results.read_text()) if results.exists() else {"handled": 0}
    first = min(emitter.emitted_at.values())
    end = summary.get("last") or time.time()
    usage = {"baseline": (sampler.cpu - cpu_before, sampler.peak_rss / 2**20)}
    usage |= fakes.rows(fakes_before)
    lat = latencies(receiver, emitter.emitted_at)
    return Result(
        "baseline",
        mode,
        len(stream),
        end - first,
        len(lat),
        sum(1 for e in stream if is_run_event(e)),
        max(0, len(stream) - int(summary["handled"])),
        lat,
        usage,
        summary.get("outcomes", {}),
    )


def results_table(results: list[Result]) -> Table:
    table = Table(
        title="end to end: pipeline (poller + 5 pools + sweeper) vs Lambda-style baseline"
    )
    for column in (
        "system",
        "mode",
        "events",
        "seconds",
        "events/s",
        "run events",
        "callbacks",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "not handled",
        "CPU ms/event",
        "worker peak RSS MB",
    ):
        table.add_column(column, justify="left" if column in {"system", "mode"} else "right")
    for r in results:
        workers = [
            rss
            for name, (_, rss) in r.usage.items()
            if name.startswith(("worker", "poller", "sweeper", "baseline"))
        ]
        table.add_row(
            r.system,
            r.mode,
            f"{r.events:,}",
            f"{r.seconds:.1f}",
            f"{r.rate:,.1f}",
            f"{r.run_events:,}",
            f"{r.callbacks:,}",
            f"{1000 * r.p(0.50):,.0f}",
            f"{1000 * r.p(0.95):,.0f}",
            f"{1000 * r.p(0.99):,.0f}",
            f"{1000 * max(r.latency, default=float('nan')):,.0f}",
            f"{r.lost:,}",
            f"{1000 * r.cpu_per_event:.1f}",
            f"{max(workers, default=0):.0f}",
        )
    table.caption = (
        "callbacks: run status events whose callback NGS360 accepted (a superseded status is "
        "not sent; latency is measured over these); events/s: events / (last work done − "
        "first emission); not handled: events missing from the log (pipeline) or never "
        "handled (baseline); CPU ms/event: CPU of the system's own processes (not the fakes) "
        "per event, the figure least disturbed by other load on the machine."
    )
    return table


def ratio_table(results: list[Result]) -> tuple[Table, list[str]]:
    table = Table(title="pipeline / baseline")
    for column in (
        "mode",
        "events/s pipeline",
        "events/s baseline",
        "throughput ratio",
        "p99 ms pipeline",
        "p99 ms baseline",
        "p99 ratio (pipeline/baseline)",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right")
    notes: list[str] = []
    for mode in dict.fromkeys(r.mode for r in results):
        pipe = next((r for r in results if r.mode == mode and r.system == "pipeline"), None)
        base = next((r for r in results if r.mode == mode and r.system == "baseline"), None)
        if pipe is None or base is None:
            continue
        table.add_row(
            mode,
            f"{pipe.rate:,.1f}",
            f"{base.rate:,.1f}",
            f"{pipe.rate / base.rate:.2f}×",
            f"{1000 * pipe.p(0.99):,.0f}",
            f"{1000 * base.p(0.99):,.0f}",
            f"{pipe.p(0.99) / base.p(0.99):.2f}",
        )
    return table, notes


def goals(results: list[Result]) -> list[str]:
    lines: list[str] = []
    pipe = next((r for r in results if r.system == "pipeline" and r.mode == "max rate"), None)
    base = next((r for r in results if r.system == "baseline" and r.mode == "max rate"), None)
    if pipe and base:
        ratio = pipe.rate / base.rate
        lines.append(
            f"* pipeline ≥ {GOALS['ratio']:.0f}× baseline events/s: {ratio:.2f}× — "
            + ("met" if ratio >= GOALS["ratio"] else "**missed**")
        )
    for r in results:
        if r.system == "pipeline" and r.mode.startswith("fixed"):
            p99 = r.p(0.99)
            lines.append(
                f"* p99 event-to-callback < {GOALS['p99_s']:.0f} s at {r.mode}: "
                f"{1000 * p99:,.0f} ms — " + ("met" if p99 < GOALS["p99_s"] else "**missed**")
            )
    worst = max(
        (
            (rss, name)
            for r in results
            if r.system == "pipeline"
            for name, (_, rss) in r.usage.items()
            if name.startswith("worker")
        ),
        default=None,
    )
    if worst:
        lines.append(
            f"* each worker process < {GOALS['rss_mb']:.0f} MB RSS: largest {worst[1]} "
            f"{worst[0]:.0f} MB — " + ("met" if worst[0] < GOALS["rss_mb"] else "**missed**")
        )
    return lines


def measure(args: argparse.Namespace) -> tuple[list[Result], dict[str, str]]:
    """Every mode, pipeline then baseline on the same events; and the machine it ran on."""
    results: list[Result] = []
    with Bench(args.database_url, args.redis_url, seed=args.seed) as bench:
        assert bench.fakes is not None
        modes: list[tuple[str, float | None, int]] = []
        if args.events:
            modes.append(("max rate", None, args.events))
        if args.rate_seconds:
            modes.append((f"fixed {args.rate:g}/s", args.rate, int(args.rate * args.rate_seconds)))
        for mode, rate, count in modes:
            stream = generate(bench.fakes.sim, count)
            results.append(
                run_pipeline(
                    bench, stream, mode, rate, args.concurrency, args.timeout, args.ngs360_latency
                )
            )
            if not args.no_baseline:
                results.append(
                    run_baseline(bench, stream, mode, rate, args.timeout, args.ngs360_latency)
                )
        info = machine(args.database_url, args.redis_url, bench.load_start)
    return results, info


def report(results: list[Result], info: dict[str, str]) -> tuple[list[Table], list[str]]:
    """Print every table and the goals; returns them for ``--write``."""
    tables = [results_table(results)]
    ratios, _ = ratio_table(results)
    if ratios.row_count:
        tables.append(ratios)
    for r in results:
        if r.hops is not None:
            r.hops.title = f"{r.system}, {r.mode}: {r.hops.title}"
            tables.append(r.hops)
        tables.append(
            usage_table(f"{r.system}, {r.mode}: CPU during the run, peak RSS", r.usage, r.seconds)
        )
    for table in tables:
        console.print(table)
    verdicts = goals(results)
    for line in verdicts:
        console.print(line, highlight=False)
    console.print(info)
    return tables, verdicts


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="max-rate mode (0: skip)")
    parser.add_argument("--rate", type=float, default=50.0, help="fixed-rate mode, events/s")
    parser.add_argument("--rate-seconds", type=float, default=20.0, help="0: skip that mode")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker pool")
    parser.add_argument(
        "--ngs360-latency",
        type=float,
        default=0.0,
        help="seconds the NGS360 receiver takes per request (both systems; 0: none)",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0, help="per measured run")
    add_common_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console.print(
        f"load average at the start: {os.getloadavg()[0]:.2f} (2 shared cores: other "
        "work on the machine slows every figure down)"
    )
    results, info = measure(args)
    tables, verdicts = report(results, info)
    if args.write:
        target = append_section(
            "End to end",
            command_line("end_to_end.py", argv),
            info,
            tables,
            ["Goals:", "", *verdicts],
        )
        console.print(f"appended to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
