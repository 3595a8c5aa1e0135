"""End to end: the pipeline as real processes against the Lambda-style baseline, same fakes.

What it measures, in one run:

* **pipeline** — the HealthOmics simulator's events (runs with tasks, some failing or cancelled,
  all tagged with a ``WESRunId``, plus read-set import jobs) are sent into an SQS queue (moto,
  its own process); the poller, the sweeper and one worker per pool (archive, enrich, callback,
  imports, metrics) run as real ``python -m omics_events`` processes (``devtools/stack.py``) on
  Redis and a fresh PostgreSQL database, and deliver to a local NGS360 receiver, S3 and
  CloudWatch (moto).  Reported: events/s sustained (events / (last outbox work done - first
  emission)), latency from emission to the callback the receiver accepted (p50, p95, p99, over
  the run status events that got one), CPU seconds and peak RSS of each process;
* **baseline** — ``bench/baseline.py``: the legacy Lambda's handler (flatten, archive,
  GetRun/ListRunTasks/outputs, callback), fed the same events through its own SQS queue,
  delivering to its own receiver on the same fakes; once per ``--baseline-concurrency`` value:
  ``1`` is one process handling the events in order, ``N`` is Lambda's real model, one
  invocation per event and N at once, no ordering (rows ``baseline xN``);
* in two modes: **max rate** (``--events`` N emitted as fast as the emitter can; the throughput
  figure) and **fixed rate** (``--rate`` events/s for ``--rate-seconds``; the latency figure);
  then the ratios pipeline / each baseline;
* for every system and mode: CPU ms per event (its own processes: for the pipeline poller +
  pools + sweeper, never the fakes), and the requests the fakes answered per event — S3 (moto's
  own count, by method), HealthOmics (the simulator's request log, by operation), throttled
  HealthOmics calls (429), NGS360 requests;
* ``--concurrency-sweep 1,2,4,8``: the pipeline alone at max rate (``--sweep-events``, default
  ``--events``) once per pool concurrency, in a table of events/s, the cores its own processes
  and the fakes kept busy, HealthOmics calls/s and 429s — where it stops growing and why.

The fakes' knobs, the same for every system (``bench/harness.py``): ``--s3-latency``,
``--omics-latency``, ``--ngs360-latency`` (seconds per request, default 0) and ``--throttle``
(the simulator enforces HealthOmics' documented TPS quotas with 429 ``ThrottlingException``; the
pipeline's shared limiter keeps its documented defaults instead of the lifted ones, so it should
show 0 throttled calls while a concurrent baseline gets throttled).

Figures, not assertions (docs/design.md §2).  Run (``make bench`` runs the defaults)::

    .venv/bin/python bench/end_to_end.py --events 2000 --rate 50 --rate-seconds 30 --write
    # the comparisons: a 200 ms NGS360, then realistic latency on every fake, quotas on
    .venv/bin/python bench/end_to_end.py --ngs360-latency 0.2 --baseline-concurrency 1,10
    .venv/bin/python bench/end_to_end.py --s3-latency 0.02 --omics-latency 0.05 \\
        --ngs360-latency 0.2 --throttle --baseline-concurrency 1,10
    # the scaling table only
    .venv/bin/python bench/end_to_end.py --events 0 --rate-seconds 0 --no-baseline \\
        --sweep-events 2000 --concurrency-sweep 1,2,4,8 --s3-latency 0.02 --omics-latency 0.05

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
    Calls,
    Emitter,
    PeakSampler,
    add_common_arguments,
    add_fake_arguments,
    append_section,
    bench_from,
    callback_times,
    calls_mark,
    calls_since,
    command_line,
    console,
    fakes_line,
    generate,
    hops,
    is_run_event,
    latencies,
    machine,
    percentile,
    slow_work,
    sweeper_republished,
    usage_delta,
    usage_snapshot,
    usage_table,
    wait_drained,
    wait_ready,
)

from eventlog.db import create_db_engine

FAKES = ("moto", "bench")
#: Pipeline-v2 goals (idle 2-core machine): CPU and S3 requests per event, max rate, the ratio to
#: the Lambda-style baseline at 10 invocations, p99 at a fixed 50/s (200 ms NGS360 / instant
#: fakes), RSS per worker.
GOALS = {
    "cpu_ms": 8.0,
    "s3_per_event": 0.3,
    "rate": 200.0,
    "ratio": 1.0,
    "ratio_against": 10,
    "p99_s_slow_ngs360": 0.5,
    "p99_s_instant": 0.3,
    "rss_mb": 150.0,
    "burst_events": 10_000,
    "burst_seconds": 180.0,
}
SWEEP = "max rate, sweep"


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
    calls: Calls = field(default_factory=Calls)
    #: threads per pool (pipeline) or invocations at once (baseline)
    concurrency: int = 1
    #: tasks the sweeper published again as lost (its log lines; the pipeline only)
    republished: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_per_event(self) -> float:
        """CPU seconds of the system's own processes (not the fakes) per event."""
        own = [cpu for name, (cpu, _) in self.usage.items() if not name.startswith(FAKES)]
        return sum(own) / self.events if self.events else float("nan")

    @property
    def fakes_cpu(self) -> float:
        return sum(cpu for name, (cpu, _) in self.usage.items() if name.startswith(FAKES))

    def per_event(self, count: int) -> float:
        return count / self.events if self.events else float("nan")

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
    callback_threads: int = 0,
) -> Result:
    assert bench.fakes is not None
    threads = f"{concurrency} threads per pool" + (
        f", callback {callback_threads}" if callback_threads else ""
    )
    console.rule(f"pipeline, {mode}, {threads}: {len(stream):,} events")
    receiver = bench.receiver()
    settings = bench.settings(ngs360_api_url=receiver.url)
    engine = create_db_engine(settings.database_url)
    queue = bench.fakes.queue("oe-bench-pipeline")
    stack = bench.process_stack(settings, f"pipeline-{_slug(mode)}")
    names = stack.start_pools(
        concurrency=concurrency,
        concurrency_of={"callback": callback_threads} if callback_threads else None,
    )
    names.append(stack.start_poller([queue]))
    names.append(stack.start_sweeper(every=2.0))
    wait_ready(stack, names)
    fakes = FakesUsage(bench)
    before, fakes_before = usage_snapshot(stack), fakes.snapshot()
    mark = calls_mark(bench.fakes)
    emitter = Emitter([queue], bench.fakes.aws_url)
    emitter.send(stream, rate)
    progress = wait_drained(engine, len(stream), timeout)
    after = stack.usage()
    calls = calls_since(bench.fakes, mark, receiver)
    usage = usage_delta(before, after) | fakes.rows(fakes_before)
    stack.close()
    republished = sweeper_republished(stack.log_dir / "sweeper.log")
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
        calls=calls,
        concurrency=concurrency,
        republished=republished,
    )


def run_baseline(
    bench: Bench,
    stream: list[dict[str, Any]],
    mode: str,
    rate: float | None,
    timeout: float,
    concurrency: int = 1,
) -> Result:
    assert bench.fakes is not None
    system = baseline_name(concurrency)
    console.rule(f"{system}, {mode}: {len(stream):,} events")
    receiver = bench.receiver()
    queue = bench.fakes.queue("oe-bench-baseline")
    results = bench.logs / f"baseline-{concurrency}-{_slug(mode)}.json"
    ready = bench.logs / f"baseline-{concurrency}-{_slug(mode)}.ready"
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
                "--concurrency",
                str(concurrency),
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
        mark = calls_mark(bench.fakes)
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
        calls = calls_since(bench.fakes, mark, receiver)
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
        system,
        mode,
        len(stream),
        end - first,
        len(lat),
        sum(1 for e in stream if is_run_event(e)),
        max(0, len(stream) - int(summary["handled"])),
        lat,
        usage,
        summary.get("outcomes", {}),
        calls=calls,
        concurrency=concurrency,
    )


def baseline_name(concurrency: int) -> str:
    return "baseline" if concurrency == 1 else f"baseline x{concurrency}"


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
        "not handled",
        "CPU ms/event",
        "S3/event",
        "429s",
        "re-published",
        "peak RSS MB",
    ):
        table.add_column(
            column,
            justify="left" if column in {"system", "mode"} else "right",
            no_wrap=column == "system",
        )
    for r in results:
        if r.mode == SWEEP:
            continue
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
            f"{r.lost:,}",
            f"{1000 * r.cpu_per_event:.1f}",
            f"{r.per_event(r.calls.s3_total):.2f}",
            f"{r.calls.throttled_total:,}",
            f"{r.republished:,}" if r.system == "pipeline" else "",
            f"{max(workers, default=0):.0f}",
        )
    table.caption = (
        "callbacks: run status events whose callback NGS360 accepted (a superseded status is "
        "not sent; latency is measured over these); events/s: events / (last work done − "
        "first emission); not handled: events missing from the log (pipeline) or never "
        "handled (baseline); CPU ms/event: CPU of the system's own processes (not the fakes) "
        "per event, the figure least disturbed by other load on the machine; S3/event: "
        "requests moto answered during the run / events; 429s: HealthOmics calls the "
        "simulator throttled (only with --throttle); re-published: tasks the pipeline's "
        "sweeper published again as lost (its log); peak RSS MB: the largest of the system's "
        "processes. baseline xN: N invocations at once, one event each, no ordering."
    )
    return table


def calls_table(results: list[Result]) -> Table:
    """Requests each fake answered, per event: what every system costs the services it uses."""
    table = Table(title="requests to the fakes, per event")
    for column in (
        "system",
        "mode",
        "concurrency",
        "S3",
        "S3 by method",
        "HealthOmics",
        "GetRun",
        "ListRunTasks",
        "throttled (429)",
        "NGS360 requests",
        "CPU ms/event own",
        "CPU ms/event fakes",
    ):
        table.add_column(column, justify="left" if column in {"system", "mode"} else "right")
    for r in results:
        calls = r.calls
        table.add_row(
            r.system,
            r.mode,
            str(r.concurrency),
            f"{r.per_event(calls.s3_total):.2f}",
            " ".join(f"{m} {r.per_event(n):.2f}" for m, n in sorted(calls.s3.items())) or "-",
            f"{r.per_event(calls.omics_total):.2f}",
            f"{r.per_event(calls.omics['GetRun']):.2f}",
            f"{r.per_event(calls.omics['ListRunTasks']):.2f}",
            ", ".join(f"{op} {n:,}" for op, n in sorted(calls.throttled.items())) or "0",
            f"{r.per_event(calls.ngs360):.2f}",
            f"{1000 * r.cpu_per_event:.1f}",
            f"{1000 * r.per_event(1) * r.fakes_cpu:.1f}",
        )
    table.caption = (
        "S3: moto's own count (bench/moto_server.py), retries included; HealthOmics: the "
        "simulator's request log, throttled calls included; concurrency: threads per pool "
        "(pipeline) or invocations at once (baseline); CPU of the fakes: moto + this process "
        "(simulator API, receivers, emitter)."
    )
    return table


def sweep_table(results: list[Result]) -> Table:
    """The pipeline's max rate against pool concurrency, with what was busy at each setting."""
    table = Table(title="scaling: pipeline max rate against threads per pool")
    for column in (
        "threads per pool",
        "events",
        "events/s",
        "cores busy, pipeline",
        "cores busy, fakes",
        "CPU ms/event",
        "HealthOmics calls/s",
        "GetRun/s",
        "throttled",
        "S3 req/event",
        "not handled",
    ):
        table.add_column(column, justify="right")
    for r in results:
        if r.mode != SWEEP:
            continue
        own = r.cpu_per_event * r.events
        table.add_row(
            str(r.concurrency),
            f"{r.events:,}",
            f"{r.rate:,.1f}",
            f"{own / r.seconds:.2f}" if r.seconds > 0 else "-",
            f"{r.fakes_cpu / r.seconds:.2f}" if r.seconds > 0 else "-",
            f"{1000 * r.cpu_per_event:.1f}",
            f"{r.calls.omics_total / r.seconds:,.1f}" if r.seconds > 0 else "-",
            f"{r.calls.omics['GetRun'] / r.seconds:,.1f}" if r.seconds > 0 else "-",
            f"{r.calls.throttled_total:,}",
            f"{r.per_event(r.calls.s3_total):.2f}",
            f"{r.lost:,}",
        )
    table.caption = (
        "cores busy: CPU seconds / wall seconds of the run (the machine has "
        f"{os.cpu_count()}); growth stops where the pipeline's cores reach the machine's "
        "(CPU-bound), where GetRun/s reaches the quota the limiter enforces (10/s documented, "
        "lifted without --throttle), or, with neither, on a shared resource (PostgreSQL, "
        "Redis: profile)."
    )
    return table


def ratio_table(results: list[Result]) -> tuple[Table, list[str]]:
    table = Table(title="pipeline / baseline")
    for column in (
        "mode",
        "baseline",
        "events/s pipeline",
        "events/s baseline",
        "throughput ratio",
        "p99 ms pipeline",
        "p99 ms baseline",
        "p99 ratio (pipeline/baseline)",
        "CPU/event ratio",
    ):
        table.add_column(column, justify="left" if column in {"mode", "baseline"} else "right")
    notes: list[str] = []
    for mode in dict.fromkeys(r.mode for r in results):
        pipe = next((r for r in results if r.mode == mode and r.system == "pipeline"), None)
        if pipe is None:
            continue
        for base in (r for r in results if r.mode == mode and r.system.startswith("baseline")):
            table.add_row(
                mode,
                base.system,
                f"{pipe.rate:,.1f}",
                f"{base.rate:,.1f}",
                f"{pipe.rate / base.rate:.2f}×",
                f"{1000 * pipe.p(0.99):,.0f}",
                f"{1000 * base.p(0.99):,.0f}",
                f"{pipe.p(0.99) / base.p(0.99):.2f}",
                f"{pipe.cpu_per_event / base.cpu_per_event:.2f}",
            )
    return table, notes


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def goals(results: list[Result], args: argparse.Namespace | None = None) -> list[str]:
    """The pipeline-v2 goals, each with the figure measured and the fakes it was measured on."""
    lines: list[str] = []
    ngs360 = getattr(args, "ngs360_latency", 0.0)
    pipe = next((r for r in results if r.system == "pipeline" and r.mode == "max rate"), None)
    if pipe:
        lines.append(
            f"* CPU per event ≤ {GOALS['cpu_ms']:g} ms (pipeline, max rate): "
            f"{1000 * pipe.cpu_per_event:.1f} ms — "
            + _verdict(1000 * pipe.cpu_per_event <= GOALS["cpu_ms"])
        )
        s3 = pipe.per_event(pipe.calls.s3_total)
        lines.append(
            f"* S3 requests per event ≤ {GOALS['s3_per_event']:g}: {s3:.2f} — "
            + _verdict(s3 <= GOALS["s3_per_event"])
        )
        lines.append(
            f"* max rate ≥ {GOALS['rate']:.0f} events/s: {pipe.rate:,.1f} — "
            + _verdict(pipe.rate >= GOALS["rate"])
        )
        against = baseline_name(int(GOALS["ratio_against"]))
        base = next((r for r in results if r.system == against and r.mode == "max rate"), None)
        if base:
            ratio = pipe.rate / base.rate
            lines.append(
                f"* pipeline ≥ {GOALS['ratio']:g}× {against} events/s: {ratio:.2f}× — "
                + _verdict(ratio >= GOALS["ratio"])
            )
        if pipe.events >= GOALS["burst_events"]:
            drained = pipe.seconds <= GOALS["burst_seconds"] and not pipe.lost
            lines.append(
                f"* a {pipe.events:,}-event burst drains in < {GOALS['burst_seconds']:.0f} s, "
                f"nothing lost, 0 sweeper re-publishes: {pipe.seconds:,.0f} s, {pipe.lost} "
                f"not handled, {pipe.republished} re-published — "
                + _verdict(drained and pipe.republished == 0)
            )
        if pipe.calls.throttled_total:
            lines.append(f"* pipeline throttled calls: {pipe.calls.throttled_total} (want 0)")
    limit = GOALS["p99_s_slow_ngs360"] if ngs360 > 0 else GOALS["p99_s_instant"]
    for r in results:
        if r.system == "pipeline" and r.mode.startswith("fixed"):
            p99 = r.p(0.99)
            lines.append(
                f"* p99 event-to-callback < {1000 * limit:.0f} ms at {r.mode} (NGS360 "
                f"+{1000 * ngs360:g} ms): {1000 * p99:,.0f} ms — " + _verdict(p99 < limit)
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
            f"{worst[0]:.0f} MB — " + _verdict(worst[0] < GOALS["rss_mb"])
        )
    return lines


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4,8, got {text!r}") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def measure(args: argparse.Namespace) -> tuple[list[Result], dict[str, str]]:
    """Every mode, pipeline then each baseline on the same events; the concurrency sweep; and
    the machine it ran on."""
    results: list[Result] = []
    with bench_from(args) as bench:
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
                    bench, stream, mode, rate, args.concurrency, args.timeout, args.callback_threads
                )
            )
            if not args.no_baseline:
                for concurrency in args.baseline_concurrency:
                    results.append(
                        run_baseline(bench, stream, mode, rate, args.timeout, concurrency)
                    )
        if args.concurrency_sweep:
            stream = generate(bench.fakes.sim, args.sweep_events or args.events or 1000)
            for concurrency in args.concurrency_sweep:
                results.append(
                    run_pipeline(
                        bench, stream, SWEEP, None, concurrency, args.timeout, args.callback_threads
                    )
                )
        info = machine(args.database_url, args.redis_url, bench.load_start)
    return results, info


def outcome_lines(results: list[Result]) -> list[str]:
    """What each baseline's invocations ended with; ``refused`` is NGS360 answering 4xx, e.g.
    an earlier status of a run arriving after a later one (no ordering at concurrency > 1)."""
    lines = []
    for r in results:
        if r.outcomes:
            done = ", ".join(f"{name} {count:,}" for name, count in sorted(r.outcomes.items()))
            lines.append(f"* {r.system}, {r.mode}: invocations {done}")
    return lines


def report(
    results: list[Result], info: dict[str, str], args: argparse.Namespace | None = None
) -> tuple[list[Table], list[str]]:
    """Print every table and the goals; returns them for ``--write``."""
    tables = [results_table(results), calls_table(results)]
    ratios, _ = ratio_table(results)
    if ratios.row_count:
        tables.append(ratios)
    sweep = sweep_table(results)
    if sweep.row_count:
        tables.append(sweep)
    for r in results:
        label = f"{r.system}, {r.mode}" + (f", {r.concurrency} threads" if r.mode == SWEEP else "")
        if r.hops is not None:
            r.hops.title = f"{label}: {r.hops.title}"
            tables.append(r.hops)
        tables.append(usage_table(f"{label}: CPU during the run, peak RSS", r.usage, r.seconds))
    if args is not None:
        console.print(fakes_line(args), highlight=False)
    for table in tables:
        console.print(table)
    for line in outcome_lines(results):
        console.print(line, highlight=False)
    verdicts = goals(results, args)
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
        "--callback-threads",
        type=int,
        default=16,
        help="threads of the callback pool (CALLBACK_THREADS' default; 0: --concurrency)",
    )
    parser.add_argument(
        "--baseline-concurrency",
        type=_ints,
        default=[1],
        metavar="N[,N…]",
        help="run the baseline once per value: 1 in order, N invocations at once (e.g. 1,10)",
    )
    parser.add_argument(
        "--concurrency-sweep",
        type=_ints,
        default=[],
        metavar="N[,N…]",
        help="also run the pipeline alone at max rate once per threads-per-pool value",
    )
    parser.add_argument(
        "--sweep-events", type=int, default=0, help="events per sweep run (0: --events)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0, help="per measured run")
    add_fake_arguments(parser)
    add_common_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console.print(
        f"load average at the start: {os.getloadavg()[0]:.2f} (2 shared cores: other "
        "work on the machine slows every figure down)"
    )
    results, info = measure(args)
    tables, verdicts = report(results, info, args)
    if args.write:
        target = append_section(
            "End to end",
            command_line("end_to_end.py", argv),
            info,
            tables,
            [fakes_line(args), "", *outcome_lines(results), "", "Goals:", "", *verdicts],
        )
        console.print(f"appended to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
