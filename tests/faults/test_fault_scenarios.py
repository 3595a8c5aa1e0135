"""Fault-injection scenarios.  Under a steady stream of simulated run and import
events, one thing goes wrong mid-run; the system must settle with every invariant holding.

Each scenario is a fault (what to break, for how long) and its evidence (proof the fault really
bit, so a scenario whose fault silently did nothing fails instead of passing vacuously).  The
stream, the processes and the invariants are shared (``driver.py``, ``invariants.py``).

The scenarios share one running system (per pytest process), one after the other, each with
its own round of the stream: starting seven processes takes longer than most scenarios, and a
system that has already survived other faults is the more demanding test.  The invariants are
checked over everything the system has seen so far.  A scenario that fails discards the system,
so the next one starts on a fresh one and a failure is reported where it happened.

``FAULTS_REPORT=path.jsonl`` appends each scenario's figures to that file (``make
reliability`` renders them into ``docs/reliability.md``); ``FAULTS_SOAK=1`` makes the stream ten
times longer (on demand, not in CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from eventlog import cursors
from eventlog.tables import events
from simulator.local_aws import LocalAws
from tests.faults import invariants
from tests.faults.driver import (
    SOAK,
    Drill,
    build_drill,
    drop_singles,
    dump_figures,
    private_database,
    recovery_seconds,
    streaming,
)
from tests.faults.driver import wait_for as wait_until
from tests.helpers.malformed_corpus import MALFORMED

pytestmark = [pytest.mark.faults, pytest.mark.slow]

#: Seconds after the round starts that the fault strikes (a round lasts ~8 s).
FAULT_AT = 2.0
PG_OUTAGE = 30.0  # the figures
NGS360_DOWN = 60.0
NGS360_SLOW = 5.0
NGS360_SLOW_FOR = 20.0


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    #: does the fault; returns when it is over (the clock of "time to recover" starts then)
    inject: Callable[[Drill], None]
    #: proof the fault bit; problems, empty when it did
    evidence: Callable[[Drill], list[str]] = lambda _drill: []
    settle_within: float = 150.0


# --- the faults ---------------------------------------------------------------------------------


def kill(name: str, down: float = 2.0) -> Callable[[Drill], None]:
    def inject(drill: Drill) -> None:
        drill.notes["restarts_before"] = drill.stack.usage()[name].restarts
        drill.notes["exit_code"] = drill.stack.kill(name)
        time.sleep(down)
        drill.stack.restart(name)

    return inject


def restarted(name: str) -> Callable[[Drill], list[str]]:
    def evidence(drill: Drill) -> list[str]:
        problems = []
        if drill.notes.get("exit_code") != -9:
            problems.append(f"{name} did not die of SIGKILL: {drill.notes.get('exit_code')}")
        restarts = drill.stack.usage()[name].restarts - drill.notes.get("restarts_before", 0)
        if not drill.stack.running(name) or restarts != 1:
            problems.append(f"{name} is not running again after its restart")
        return problems

    return evidence


def redis_lost(drill: Drill) -> None:
    client = redis_lib.Redis.from_url(drill.redis.url)
    drill.notes["redis_keys_lost"] = client.dbsize()
    client.close()
    drill.redis.kill()
    time.sleep(2.0)
    drill.redis.start()


def redis_evidence(drill: Drill) -> list[str]:
    if not drill.notes.get("redis_keys_lost"):
        return ["Redis held nothing when it was killed: the drill lost no data"]
    return []


#: How long, and how often, the Redis connections are dropped under the stream.
DROPS_FOR = 12.0
DROP_EVERY = 0.4
BLIP = 0.5  # every third drop is a network blip: connections cut and refused for this long


def redis_connections_dropped(drill: Drill) -> None:
    """Connections to Redis dropped again and again while events flow, Redis and its data kept:
    ``CLIENT KILL`` of every client but our own (the server drops them: a BRPOP, maybe with a
    message in its reply, acks, publishes, the poller's and the sweeper's clients), and every
    third time a blip of the proxy in front of it (connections cut, new ones refused for
    ``BLIP`` s: what a worker closing its channel meets).  Nothing may be lost or run twice,
    and no process may exit."""
    drill.notes["restarts_before"] = {n: u.restarts for n, u in drill.stack.usage().items()}
    drill.notes["republished_before"] = _republished(drill)
    client = redis_lib.Redis.from_url(drill.redis.url)
    killed = blips = rounds = 0
    deadline = time.monotonic() + DROPS_FOR
    try:
        while time.monotonic() < deadline:
            rounds += 1
            if rounds % 3 == 0:
                drill.redis_proxy.cut()
                time.sleep(BLIP)
                drill.redis_proxy.restore()
                blips += 1
            else:
                for kind in ("normal", "pubsub"):
                    killed += int(
                        client.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")
                    )
            time.sleep(DROP_EVERY)
    finally:
        drill.redis_proxy.restore()
        client.close()
    drill.notes["connections_killed"] = killed
    drill.notes["network_blips"] = blips


def _republished(drill: Drill) -> int:
    """Re-publishes the sweeper logged so far (each log line counts what it re-sent)."""
    total = 0
    for line in (drill.stack.log("sweeper") + drill.stack.log("poller")).splitlines():
        if "sweeper: published" in line and "re-published" in line:
            with contextlib.suppress(ValueError, IndexError):
                total += int(line.split("re-published ", 1)[1].split(" ", 1)[0])
    return total


def redis_drops_evidence(drill: Drill) -> list[str]:
    problems = []
    if not drill.notes.get("connections_killed"):
        problems.append("no Redis connection was killed")
    before = drill.notes.pop("restarts_before", {})
    exited = sorted(
        name
        for name, usage in drill.stack.usage().items()
        if usage.restarts != before.get(name, 0) or not drill.stack.running(name)
    )
    if exited:
        problems.append(f"processes exited when their Redis connections dropped: {exited}")
    republished = _republished(drill) - drill.notes.pop("republished_before", 0)
    drill.notes["sweeper_republished"] = republished
    return problems


def postgres_down(drill: Drill) -> None:
    drill.pg_proxy.cut()
    time.sleep(PG_OUTAGE)
    drill.notes["sqs_backlog_at_restore"] = sum(drill.queue_depth())
    drill.pg_proxy.restore()


def postgres_evidence(drill: Drill) -> list[str]:
    # the poller could not commit during the outage, so events waited in SQS
    if not drill.notes.get("sqs_backlog_at_restore"):
        return ["no events waited in SQS during the outage: the database was not missed"]
    return []


def ngs360_down_then_slow(drill: Drill) -> None:
    drill.receiver.fail(503)
    time.sleep(NGS360_DOWN)
    drill.receiver.recover()
    drill.receiver.slow(NGS360_SLOW)
    time.sleep(NGS360_SLOW_FOR)
    drill.receiver.slow(0)


def ngs360_evidence(drill: Drill) -> list[str]:
    refused = [r for r in drill.receiver.callbacks() if r.status == 503]
    drill.notes["callbacks_refused"] = len(refused)
    return [] if refused else ["the receiver never answered 503"]


THROTTLE = {
    "GetRun": 1.0,
    "ListRunTasks": 1.0,
    "StartReadSetImportJob": 1.0,
    "GetReadSetImportJob": 1.0,
}


def _refusals(drill: Drill) -> tuple[int, int]:
    throttled = drill.sim.request_log.error_codes().get("ThrottlingException", 0)
    quota = sum(1 for c in drill.sim.import_calls if c["error"] == "ServiceQuotaExceededException")
    return throttled, quota


def healthomics_limits(drill: Drill) -> None:
    """Throttling, and the import quota exhausted (0 jobs may start: as if other jobs held every
    slot), while files keep landing so that imports are refused for certain."""
    drill.notes["refusals_before"] = _refusals(drill)
    drill.sim.set_faults(throttle=THROTTLE, import_quota=0)
    drop_singles(drill, 2)
    time.sleep(15.0)
    drill.sim.set_faults(throttle=None, import_quota=5)


def healthomics_evidence(drill: Drill) -> list[str]:
    before = drill.notes.pop("refusals_before", (0, 0))
    throttled, quota = (now - then for now, then in zip(_refusals(drill), before, strict=True))
    drill.notes["throttled_calls"] = throttled
    drill.notes["quota_refusals"] = quota
    problems = []
    if not throttled:
        problems.append("no call was throttled")
    if not quota:
        problems.append("no import was refused for the quota")
    return problems


def cloudwatch_down(drill: Drill) -> None:
    drill.cloudwatch_proxy.cut()
    time.sleep(15.0)
    drill.cloudwatch_proxy.restore()


def cloudwatch_evidence(drill: Drill) -> list[str]:
    """CloudWatch was missed, came back, and the metrics caught up with the log, none dropped."""
    problems = []
    if "metrics resumed" not in drill.stack.log("worker:metrics"):
        problems.append("the metrics pool never noticed CloudWatch was unreachable")

    def cursor() -> Any:
        with drill.engine.connect() as connection:
            return cursors.read(connection, "cloudwatch")

    newest = drill.scalar(select(func.max(events.c.seq)))
    try:
        wait_until(lambda: (c := cursor()) is not None and c.last_seq >= newest, 60, "metrics")
    except AssertionError:
        problems.append(f"metrics stopped short of the log: {cursor()} < {newest}")
    final = cursor()
    if final is not None:
        drill.notes["metrics_emitted"] = final.emitted
        if final.dropped:
            problems.append(f"{final.dropped} metric data dropped")
    return problems


S3_OUTAGE = 15.0


def s3_down(drill: Drill) -> None:
    drill.notes["delivered_before_s3_cut"] = _delivered_callbacks(drill)
    drill.s3_proxy.cut()
    time.sleep(S3_OUTAGE)
    drill.notes["delivered_during_s3_cut"] = _delivered_callbacks(drill)
    drill.s3_proxy.restore()


def _delivered_callbacks(drill: Drill) -> int:
    return sum(1 for request in drill.receiver.callbacks() if request.status == 200)


def s3_evidence(drill: Drill) -> list[str]:
    """The archive pool missed S3 and came back; callbacks went on meanwhile (nothing waited
    for the archive); the invariants then find every event in exactly one batch object."""
    problems = []
    log = drill.stack.log("worker:archive")
    if "archive put of log rows" not in log:
        problems.append("the archive pool never noticed S3 was unreachable")
    if "archiving resumed" not in log:
        problems.append("the archive pool never said it resumed")
    before = drill.notes.pop("delivered_before_s3_cut", 0)
    during = drill.notes.pop("delivered_during_s3_cut", 0)
    drill.notes["callbacks_during_s3_outage"] = during - before
    if during <= before:
        problems.append("no callback was delivered while S3 was down: something waited for it")
    return problems


def _delivery_counts(drill: Drill) -> dict[str, int]:
    stats = drill.sim.ground_truth()["events"]
    return {k: sum(stats.get(k, {}).values()) for k in ("duplicated", "reordered", "dropped")}


def delivery_faults(drill: Drill) -> None:
    """On from now until the round has been played (the rest of the stream), then off."""
    drill.notes["delivery_before"] = _delivery_counts(drill)
    drill.sim.set_faults(duplicate_rate=0.2, reorder_rate=0.2, drop_rate=0.1)
    drill.stream_done.wait(600)
    drill.sim.set_faults(duplicate_rate=0.0, reorder_rate=0.0, drop_rate=0.0)


def delivery_evidence(drill: Drill) -> list[str]:
    before = drill.notes.pop("delivery_before", {})
    counts = {k: n - before.get(k, 0) for k, n in _delivery_counts(drill).items()}
    drill.notes.update({f"upstream_{k}": v for k, v in counts.items()})
    return [f"the simulator {kind} nothing" for kind, n in counts.items() if not n]


def malformed_mixed_in(drill: Drill) -> None:
    sent = drill.send_raw([raw for _, raw in MALFORMED])
    drill.malformed.extend(sent)
    drill.notes["malformed_sent"] = len(sent)
    drill.notes["malformed_refused_by_sqs"] = len(MALFORMED) - len(sent)


def malformed_evidence(drill: Drill) -> list[str]:
    sent = drill.notes.get("malformed_sent", 0)
    return [] if sent >= len(MALFORMED) // 2 else [f"only {sent} malformed bodies sent"]


SCENARIOS = [
    *[
        Scenario(
            f"kill-{pool}",
            f"SIGKILL of the {pool} pool, restarted 2 s later",
            kill(f"worker:{pool}"),
            restarted(f"worker:{pool}"),
        )
        for pool in ("archive", "enrich", "callback", "imports", "metrics")
    ],
    Scenario(
        "kill-poller",
        "SIGKILL of the SQS poller mid-batch, restarted 2 s later",
        kill("poller"),
        restarted("poller"),
    ),
    Scenario(
        "kill-sweeper",
        "SIGKILL of the sweeper, restarted 2 s later",
        kill("sweeper"),
        restarted("sweeper"),
    ),
    Scenario(
        "redis-lost",
        "Redis killed and restarted empty (no RDB, no AOF)",
        redis_lost,
        redis_evidence,
    ),
    Scenario(
        "redis-connections-dropped",
        f"Redis connections dropped every {DROP_EVERY} s for {DROPS_FOR:.0f} s "
        f"(CLIENT KILL; every third a {BLIP} s network cut)",
        redis_connections_dropped,
        redis_drops_evidence,
    ),
    Scenario(
        "postgres-down",
        f"PostgreSQL unreachable for {PG_OUTAGE:.0f} s (proxy cut)",
        postgres_down,
        postgres_evidence,
        settle_within=200.0,
    ),
    Scenario(
        "ngs360-503-then-slow",
        f"NGS360 answers 503 for {NGS360_DOWN:.0f} s, then {NGS360_SLOW:.0f} s per "
        f"request for {NGS360_SLOW_FOR:.0f} s",
        ngs360_down_then_slow,
        ngs360_evidence,
        settle_within=200.0,
    ),
    Scenario(
        "healthomics-throttled",
        "HealthOmics throttling (1 TPS) and the import quota exhausted for 15 s",
        healthomics_limits,
        healthomics_evidence,
    ),
    Scenario(
        "cloudwatch-down",
        "CloudWatch unreachable for 15 s (proxy cut)",
        cloudwatch_down,
        cloudwatch_evidence,
    ),
    Scenario(
        "s3-down",
        f"S3 unreachable for the archive pool for {S3_OUTAGE:.0f} s (proxy cut)",
        s3_down,
        s3_evidence,
    ),
    Scenario(
        "duplicates-reorder-drops",
        "20 % duplicated, 20 % reordered, 10 % dropped events for the rest of the round",
        delivery_faults,
        delivery_evidence,
    ),
    Scenario(
        "malformed",
        "the malformed corpus mixed into the queue",
        malformed_mixed_in,
        malformed_evidence,
    ),
]


class Drills:
    """The running system the scenarios share, built on first use and rebuilt after a
    scenario failed (so one failure does not cascade into the next scenarios).

    One per pytest-xdist worker (session scope): a worker that is handed several scenarios,
    with other tests between them, starts the stack once."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._stack: ExitStack | None = None
        self._drill: Drill | None = None

    def get(self) -> Drill:
        if self._drill is None:
            self._stack = ExitStack()
            self._drill = self._stack.enter_context(self._factory())
        return self._drill

    def discard(self) -> None:
        stack, self._stack, self._drill = self._stack, None, None
        if stack is not None:
            stack.close()


@pytest.fixture(scope="session")
def drills(
    pg_base_url: str, pg_template: str, moto: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Drills]:
    count = 0

    @contextmanager
    def factory() -> Iterator[Drill]:
        nonlocal count
        count += 1
        with ExitStack() as stack:
            pg_url = stack.enter_context(private_database(pg_base_url, pg_template))
            log_dir = tmp_path_factory.mktemp(f"faults-{count}")
            yield stack.enter_context(
                build_drill(
                    pg_url=pg_url, aws_endpoint=moto.endpoint_url, log_dir=log_dir, seed=count
                )
            )

    holder = Drills(factory)
    yield holder
    holder.discard()


@pytest.mark.timeout(3600 if SOAK else 420)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_scenario(scenario: Scenario, drills: Drills) -> None:
    seed = zlib.crc32(scenario.name.encode()) % 1000
    row: dict[str, Any] = {"scenario": scenario.name, "what": scenario.what, "soak": SOAK}
    started = time.monotonic()
    problems: list[str] = ["did not finish"]
    settle_within = scenario.settle_within * (4 if SOAK else 1)  # a soak round is ~10x longer
    try:
        drill = drills.get()
        drill.notes = {}
        drill.stack.wait_ready(timeout=120)
        row["startup_seconds"] = round(time.monotonic() - started, 1)
        delivered_before = len(drill.delivered_ids())
        crashes_before = sum(u.crashes for u in drill.stack.usage().values())
        with streaming(drill, seed):
            time.sleep(FAULT_AT)
            fault_started = time.monotonic()
            scenario.inject(drill)
            row["fault_seconds"] = round(time.monotonic() - fault_started, 1)
            row["recovery_seconds"] = recovery_seconds(drill, settle_within)
            drill.stack.wait_ready(timeout=120)
            drill.stream_done.wait(600)
        if drill.stream_error:
            raise drill.stream_error[0]
        settling = time.monotonic()
        with contextlib.suppress(AssertionError):  # the full check says what did not settle
            # drain: what the simulator holds back to reorder must go out in the end
            wait_until(
                lambda: drill.sim.drain() >= 0 and not invariants.settled(drill),
                settle_within,
                "settled",
            )
        row["settle_seconds"] = round(time.monotonic() - settling, 1)
        problems, figures = invariants.full_check(drill)
        problems += scenario.evidence(drill)
        row.update(
            events=len(drill.delivered_ids()) - delivered_before,
            events_total=figures.events,
            lost=figures.lost,
            duplicated=figures.duplicated,
            dropped_upstream=figures.dropped_upstream,
            callbacks=figures.callbacks,
            imported=figures.imported,
            given_up=figures.dead_lettered,
            **figures.extra,
            **drill.notes,
        )
        crashed = {n: u.crashes for n, u in drill.stack.usage().items() if u.crashes}
        row["crash_restarts"] = sum(crashed.values()) - crashes_before
        if row["crash_restarts"]:
            row["crashed"] = sorted(crashed)
        row["usage"] = {
            name: {"cpu_s": round(u.cpu_seconds, 1), "peak_rss_mb": round(u.peak_rss_mb)}
            for name, u in drill.stack.usage().items()
        }
    finally:
        row["result"] = "passed" if not problems else "failed"
        row["problems"] = problems[:10]
        row["wall_seconds"] = round(time.monotonic() - started, 1)
        if problems:
            drills.discard()
        report = os.environ.get("FAULTS_REPORT")
        if report:
            dump_figures(Path(report), row)
        print(json.dumps(row, default=str))
    assert not problems, "\n".join(problems[:20])
