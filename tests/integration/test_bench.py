"""The end-to-end bench and its Lambda-style baseline at a tiny size, so the bench cannot rot.

Observable outcomes only (docs/design.md §2: no timed assertions): every emitted event reaches the
pipeline's log and is handled by the baseline, NGS360 accepts callbacks from both, only for
events that were emitted, and the tables and the ratio are printed.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.helpers.common import REPO

BENCH = REPO / "bench"


@pytest.mark.slow
def test_end_to_end_and_baseline_tiny(
    pg_base_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        end_to_end = importlib.import_module("end_to_end")
    finally:
        sys.path.remove(str(BENCH))
    args = end_to_end.parser().parse_args(
        [
            "--events",
            "30",
            "--rate",
            "10",
            "--rate-seconds",
            "0",
            "--timeout",
            "180",
            "--database-url",
            pg_base_url,
            "--redis-url",
            redis_url,
        ]
    )
    results, info = end_to_end.measure(args)

    assert [(r.system, r.mode) for r in results] == [
        ("pipeline", "max rate"),
        ("baseline", "max rate"),
    ]
    for result in results:
        assert result.events == 30
        assert result.lost == 0, result  # every event in the log / handled by the baseline
        assert result.run_events > 0
        assert 0 < result.callbacks <= result.run_events  # accepted by the receiver
        assert len(result.latency) == result.callbacks
        assert "worker:enrich" in result.usage or "baseline" in result.usage
    pipeline = results[0]
    assert {f"worker:{p}" for p in ("archive", "enrich", "callback", "imports", "metrics")} | {
        "poller",
        "sweeper",
    } <= set(pipeline.usage)
    assert all(rss > 0 for _, rss in pipeline.usage.values())

    capsys.readouterr()
    end_to_end.report(results, info)
    printed = capsys.readouterr().out
    assert "end to end" in printed and "pipeline / baseline" in printed
    assert "throughput ratio" in printed and "pipeline hops" in printed
    assert "cores" in printed


@pytest.mark.slow
def test_end_to_end_fake_knobs_concurrent_baseline_and_sweep(
    pg_base_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every new option wired through at a tiny size: slow fakes and enforced quotas for both
    systems, a Lambda-style baseline with invocations at once, a one-setting concurrency sweep;
    each run charged the requests its fakes answered."""
    sys.path.insert(0, str(BENCH))
    try:
        end_to_end = importlib.import_module("end_to_end")
    finally:
        sys.path.remove(str(BENCH))
    args = end_to_end.parser().parse_args(
        [
            "--events",
            "30",
            "--rate-seconds",
            "0",
            "--baseline-concurrency",
            "3",
            "--concurrency-sweep",
            "1",
            "--sweep-events",
            "20",
            "--s3-latency",
            "0.005",
            "--omics-latency",
            "0.005",
            "--ngs360-latency",
            "0.005",
            "--throttle",
            "--timeout",
            "180",
            "--database-url",
            pg_base_url,
            "--redis-url",
            redis_url,
        ]
    )
    results, info = end_to_end.measure(args)

    assert [(r.system, r.mode, r.concurrency) for r in results] == [
        ("pipeline", "max rate", 4),
        ("baseline x3", "max rate", 3),
        ("pipeline", end_to_end.SWEEP, 1),
    ]
    for result in results:
        assert result.lost == 0, result
        assert 0 < result.callbacks <= result.run_events
        calls = result.calls
        assert calls.s3_total > 0  # moto counted this run's archive writes
        assert calls.omics["GetRun"] > 0  # the simulator logged this run's enrichment
        assert calls.ngs360 >= result.callbacks  # every accepted callback reached the receiver
        assert sum(calls.throttled.values()) <= calls.omics_total
    baseline = results[1]
    assert sum(baseline.outcomes.values()) == 30  # one invocation per event

    capsys.readouterr()
    end_to_end.report(results, info, args)
    printed = capsys.readouterr().out
    assert "requests to the fakes, per event" in printed
    assert "scaling: pipeline max rate against threads per pool" in printed
    assert "baseline x3" in printed and "quotas enforced" in printed
