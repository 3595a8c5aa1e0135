"""``omics-events simulate``: run the HealthOmics simulator as a process.

Why a command of its own: in docker compose (and in a terminal demo) the simulator is a service
like the others: it serves the HealthOmics API on a port, moves a realistic mix of runs and
import jobs through their lifecycles in (scaled) real time, and sends their EventBridge events to
the SQS queue the poller reads, until everything is terminal or ``--duration`` is up.  It then
keeps serving for ``--linger`` seconds, because the workers still call GetRun for the last events.

``main(argv)`` returns the exit status; the project's ``omics_events`` command calls it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulator.clock import SystemClock
from simulator.faults import Faults
from simulator.scenarios import realistic_mix
from simulator.server import SimulatorServer
from simulator.simulator import Simulator


def _range(text: str) -> tuple[int, int]:
    parts = text.replace(",", "-").split("-")
    try:
        if len(parts) == 1:
            value = int(parts[0])
            return value, value
        low, high = int(parts[0]), int(parts[1])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or LOW-HIGH, got {text!r}") from exc
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"bad range {text!r}")
    return low, high


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is within 0..1, got {text}")
    return value


def _tps(text: str) -> tuple[str, float]:
    op, _, value = text.partition("=")
    if not op or not value:
        raise argparse.ArgumentTypeError(f"expected Operation=TPS, got {text!r}")
    return op, float(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omics-events simulate",
        description="Simulate AWS HealthOmics: serve its API and send its events to SQS.",
    )
    p.add_argument(
        "--queue-url", help="SQS queue URL to send events to (required unless --local-aws)"
    )
    p.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="AWS endpoint for SQS and S3 (default: $AWS_ENDPOINT_URL)",
    )
    p.add_argument(
        "--local-aws",
        action="store_true",
        help="start a local moto server and a queue for a self-contained demo",
    )
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    p.add_argument("--host", default="127.0.0.1", help="address to serve the API on")
    p.add_argument("--port", type=int, default=0, help="API port (0: any free port)")
    p.add_argument(
        "--speed",
        type=float,
        default=100.0,
        help="time compression: 100 makes a 10-minute run take 6 s",
    )
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--tasks-per-run", type=_range, default=(3, 12), metavar="LOW-HIGH")
    p.add_argument("--fail-rate", type=_rate, default=0.15)
    p.add_argument("--cancel-rate", type=_rate, default=0.1)
    p.add_argument("--import-jobs", type=int, default=3)
    p.add_argument(
        "--stagger", type=float, default=60.0, help="mean simulated seconds between submissions"
    )
    p.add_argument("--callback-url", help="add this callback_url tag to the runs")
    p.add_argument("--output-bucket", default="omics-sim-outputs")
    p.add_argument("--sequence-store-id", help="sequence store id (default: random)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many wall seconds even if work remains",
    )
    p.add_argument(
        "--linger",
        type=float,
        default=10.0,
        help="keep serving the API this many seconds after the last event",
    )
    p.add_argument("--tick", type=float, default=0.05, help="ticker interval in seconds")
    p.add_argument("--summary-json", help="write the ground truth to this file at the end")
    _add_fault_arguments(p)
    return p


def _add_fault_arguments(p: argparse.ArgumentParser) -> None:
    """The faults a real HealthOmics shows (duplicates, reordering, drops, throttling, failing
    sources, API errors and latency), all off unless asked for."""
    faults = p.add_argument_group("faults (all off by default)")
    faults.add_argument("--duplicate-rate", type=_rate, default=0.0)
    faults.add_argument("--reorder-rate", type=_rate, default=0.0)
    faults.add_argument("--drop-rate", type=_rate, default=0.0)
    faults.add_argument(
        "--throttle", action="store_true", help="enforce the documented per-operation TPS quotas"
    )
    faults.add_argument(
        "--tps",
        type=_tps,
        action="append",
        default=[],
        metavar="OP=TPS",
        help="a custom TPS limit (repeatable; implies throttling)",
    )
    faults.add_argument("--import-quota", type=int, default=5)
    faults.add_argument("--transient-source-failure-rate", type=_rate, default=0.0)
    faults.add_argument("--permanent-source-failure-rate", type=_rate, default=0.0)
    faults.add_argument("--api-error-rate", type=_rate, default=0.0)
    faults.add_argument(
        "--api-latency", type=float, default=0.0, help="seconds every API call waits (round trip)"
    )


def _faults(args: argparse.Namespace) -> Faults:
    throttle: bool | dict[str, float] | None = None
    if args.tps:
        throttle = dict(args.tps)
    elif args.throttle:
        throttle = True
    return Faults(
        duplicate_rate=args.duplicate_rate,
        reorder_rate=args.reorder_rate,
        drop_rate=args.drop_rate,
        throttle=throttle,
        import_quota=args.import_quota,
        transient_source_failure_rate=args.transient_source_failure_rate,
        permanent_source_failure_rate=args.permanent_source_failure_rate,
        api_error_rate=args.api_error_rate,
        api_latency=args.api_latency,
    )


def _progress(sim: Simulator, url: str, started: float) -> Table:
    info = sim.summary()
    table = Table(title=f"HealthOmics simulator at {url}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("elapsed (s)", f"{time.monotonic() - started:.1f}")
    for status, count in sorted(info["runs"].items()):
        table.add_row(f"runs {status}", str(count))
    for status, count in sorted(info["import_jobs"].items()):
        table.add_row(f"import jobs {status}", str(count))
    table.add_row("tasks", str(info["tasks"]))
    table.add_row("read sets", str(info["read_sets"]))
    table.add_row("events emitted", str(info["events_emitted"]))
    table.add_row("messages sent", str(info["messages_sent"]))
    table.add_row(
        "duplicated / dropped / reordered",
        f"{info['duplicated']} / {info['dropped']} / {info['reordered']}",
    )
    table.add_row("API calls", str(info["api_calls"]))
    return table


def _summary(sim: Simulator) -> Table:
    truth = sim.ground_truth()
    table = Table(title="Simulation summary")
    table.add_column("detail-type")
    for column in ("emitted", "delivered", "duplicated", "dropped", "reordered"):
        table.add_column(column, justify="right")
    events = truth["events"]
    for kind in sorted(events["emitted"]):
        table.add_row(
            kind,
            *(
                str(events[c].get(kind, 0))
                for c in ("emitted", "delivered", "duplicated", "dropped", "reordered")
            ),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until all work is terminal (or ``--duration``); returns exit status."""
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    local: Any = None
    queue_url: str | None = args.queue_url
    endpoint_url: str | None = args.endpoint_url
    if args.local_aws:
        from simulator.emitter import aws_client
        from simulator.local_aws import start_local_aws

        local = start_local_aws()
        endpoint_url = local.endpoint_url
        sqs = aws_client("sqs", endpoint_url=endpoint_url, region=args.region)
        queue_url = queue_url or sqs.create_queue(QueueName="omics-events-sim")["QueueUrl"]
    if not queue_url:
        console.print("[red]--queue-url is required (or --local-aws)[/red]")
        return 2
    try:
        faults = _faults(args)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    sim = Simulator(
        seed=args.seed,
        speed=args.speed,
        clock=SystemClock(),
        region=args.region,
        queue_url=queue_url,
        endpoint_url=endpoint_url,
        output_bucket=args.output_bucket,
        sequence_store_id=args.sequence_store_id,
        faults=faults,
    )
    plan = realistic_mix(
        sim,
        runs=args.runs,
        tasks_per_run=args.tasks_per_run,
        fail_rate=args.fail_rate,
        cancel_rate=args.cancel_rate,
        import_jobs=args.import_jobs,
        stagger=args.stagger,
        callback_url=args.callback_url,
    )
    server = SimulatorServer(sim, host=args.host, port=args.port)
    url = server.start()
    console.print(
        f"HealthOmics simulator serving at [bold]{url}[/bold] "
        f"(export AWS_ENDPOINT_URL_OMICS={url}); sequence store {sim.sequence_store_id}; "
        f"{len(plan.run_ids)} runs, {len(plan.import_job_ids)} import jobs; events -> {queue_url}"
    )
    finished = False
    try:
        finished = _watch(sim, url, args, console)
        if args.linger > 0:
            console.print(f"all events sent; serving the API {args.linger:g} s more")
            time.sleep(args.linger)
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        sim.stop()
        server.stop()
        if local is not None:
            local.stop()
    _report(sim, console, finished, args.summary_json)
    return 0


def _watch(sim: Simulator, url: str, args: argparse.Namespace, console: Console) -> bool:
    """Run the simulator with a live progress table until every run and job is terminal (True)
    or ``--duration`` is up (False); then send what is still due."""
    started = time.monotonic()
    finished = False
    sim.start(interval=args.tick)
    with Live(_progress(sim, url, started), console=console, refresh_per_second=4) as live:
        while True:
            if sim.all_terminal() and sim.next_due() is None:
                finished = True
                break
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            time.sleep(0.25)
            live.update(_progress(sim, url, started))
        sim.stop()
        sim.drain()
        live.update(_progress(sim, url, started))
    return finished


def _report(sim: Simulator, console: Console, finished: bool, summary_json: str | None) -> None:
    """The summary table, one line of final counts, and the ground truth file if asked for."""
    console.print(_summary(sim))
    truth = sim.ground_truth()
    runs = truth["runs"].values()
    final = {
        s: sum(1 for r in runs if r["status"] == s) for s in ("COMPLETED", "FAILED", "CANCELLED")
    }
    console.print(
        f"{'finished' if finished else 'stopped'}: runs {final}, "
        f"outputs written {len(truth['outputs_written'])}, "
        f"dropped events {len(truth['dropped_events'])}, "
        f"max concurrent imports {truth['max_active_import_jobs']}"
    )
    if summary_json:
        with open(summary_json, "w", encoding="utf-8") as handle:
            json.dump(truth, handle, indent=2, default=str)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
