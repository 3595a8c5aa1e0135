"""Projections, rebuild and replay, against real PostgreSQL, SQLite, Redis and moto.

The contract: the projections are a function of the *set* of events in the log — not of their
order, their duplicates, the database, or whether they came from SQS or back from the archive —
and ``omics-events rebuild`` / ``replay`` reproduce them, printing the same checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import make_url

from eventlog import cursors, rebuild, store
from eventlog.db import create_db_engine, upgrade
from eventlog.rebuild import checksum_of
from eventlog.store import LogEntry, StoredEvent
from eventlog.tables import events, log_cursors, outbox, runs, stores, tasks
from producers.intake import Intake
from producers.replay import open_source, replay
from schemas.parsing import ParsedEvent, canonical_json, parse_event
from schemas.settings import Settings
from simulator.simulated_day import simulated_day_events
from tests.helpers.archive_batches import (
    archived_count,
    check_ranges,
    event_ids,
    s3_batches,
    s3_keys,
)
from tests.helpers.cli import CHECKSUM, printed_checksum
from tests.helpers.common import REPO, libpq, unique, wait_for
from workers import alerts, archive, create_app, embedded_worker, metrics
from workers.storage import raw_key

PREFIX = "omics-run-events"


# --- helpers ------------------------------------------------------------------------------------


def ingest(settings: Settings, raws: list[dict[str, Any]], batch: int = 500) -> Engine:
    """Events through the intake (parse → append + owed work), nothing published."""
    app = create_app(settings)
    intake = Intake(app, publish=False)
    for start in range(0, len(raws), batch):
        intake.submit(raws[start : start + batch])
    return app.runtime.engine


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(table)
        for condition in where:
            query = query.where(condition)
        return int(connection.execute(query).scalar_one())


def unique_events(raws: list[dict[str, Any]]) -> list[ParsedEvent]:
    seen: dict[str, ParsedEvent] = {}
    for raw in raws:
        parsed = parse_event(raw)
        if isinstance(parsed, ParsedEvent):
            seen.setdefault(parsed.event_id, parsed)
    return list(seen.values())


def fresh_url(backend: str, make_pg: Callable[[], str], tmp_path: Path) -> str:
    """Another empty, migrated database of the same kind as ``backend``."""
    if backend.startswith("postgresql"):
        return make_pg()
    url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.db"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


# --- (a) a simulated day: rebuild --check, and the same checksum twice ---------------------------


def _day_rebuilds_to_the_same_checksum(
    url: str, raws: list[dict[str, Any]], make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    engine = ingest(make_settings(database_url=url), raws)
    live = checksum_of(engine)
    assert count(engine, tasks) > 0 and count(engine, runs) > 0 and count(engine, stores) > 0
    checked = omics_cli(url, "rebuild", "--check")
    assert "OK" in checked.stdout and printed_checksum(checked) == live.digest
    first = printed_checksum(omics_cli(url, "rebuild"))
    second = printed_checksum(omics_cli(url, "rebuild"))
    assert first == second == live.digest  # the live folds and the rebuild agree
    omics_cli(url, "rebuild", "--check")


def test_simulated_day_passes_check_and_rebuilds_to_one_checksum(
    backend: str, make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    raws = simulated_day_events(5000, seed=11)
    assert len({e["id"] for e in raws}) < len(raws)  # duplicates and replays are in it
    _day_rebuilds_to_the_same_checksum(backend, raws, make_settings, omics_cli)


@pytest.mark.slow
def test_a_full_simulated_day_of_50k_events(
    pg_url: str, make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    raws = simulated_day_events(50_000, seed=12, reorder_rate=0.2)
    _day_rebuilds_to_the_same_checksum(pg_url, raws, make_settings, omics_cli)


def test_check_names_the_first_difference_and_rebuild_repairs_it(
    backend: str, make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    engine = ingest(make_settings(database_url=backend), simulated_day_events(1500, seed=13))
    with engine.connect() as connection:
        run_uuid = connection.execute(select(runs.c.run_uuid).order_by(runs.c.run_uuid)).scalar()
    before = checksum_of(engine)
    with engine.begin() as connection:  # a projection that drifted from the log
        connection.execute(update(runs).where(runs.c.run_uuid == run_uuid).values(status="PENDING"))
    assert checksum_of(engine) != before
    result = omics_cli(backend, "rebuild", "--check", code=1)
    assert f"runs [run_uuid='{run_uuid}'] status: live \"PENDING\"" in result.stdout
    assert printed_checksum(omics_cli(backend, "rebuild")) == before.digest
    omics_cli(backend, "rebuild", "--check")


def test_projections_folded_in_parallel_processes_equal_one_process(
    pg_url: str, make_settings: Callable[..., Settings]
) -> None:
    engine = ingest(make_settings(database_url=pg_url), simulated_day_events(3000, seed=23))
    pipeline_facts(engine, random.Random(3))  # deliveries: a table with a surrogate id
    serial = rebuild.rebuild(engine, workers=1)
    parallel = rebuild.rebuild(engine, workers=3)  # one process per projection
    assert parallel.checksum == serial.checksum and parallel.rows == serial.rows
    assert parallel.rows["deliveries"] > 0
    checked = rebuild.check(engine, workers=2)
    assert checked.ok and checked.checksum == serial.checksum


def test_a_fold_split_over_ranges_of_the_log_equals_one_process(
    pg_url: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tasks``/``stores`` folded in two ranges of the log by two processes, the other
    process's rows merged: the same projections as one process folding it all."""
    raws = simulated_day_events(3000, seed=24)
    random.Random(4).shuffle(raws)  # a task's events spread over both ranges
    engine = ingest(make_settings(database_url=pg_url), raws)
    serial = rebuild.rebuild(engine, workers=1)
    monkeypatch.setattr(rebuild, "START_COST", 0)
    with engine.connect() as connection:
        plan = rebuild._plan(connection, rebuild.log_bounds(connection)[1], 2)
    assert [part.names for part in plan[0]] == [("resources",)] and plan[0][0].after > 0
    assert ("resources",) in [part.names for part in plan[1]]
    split = rebuild.rebuild(engine, workers=2)
    assert split.checksum == serial.checksum and split.rows == serial.rows
    checked = rebuild.check(engine, workers=2)
    assert checked.ok and checked.checksum == serial.checksum


@pytest.mark.slow
def test_events_appended_during_a_parallel_rebuild_reach_the_rows_other_processes_folded(
    pg_url: str,
    make_pg: Callable[[], str],
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fold processes hand their rows back to be written straight to the live tables; events
    appended after the rebuild's snapshot change some of them, so then those rows go through
    the scratch tables and the late events are folded into them there."""
    raws = simulated_day_events(3000, seed=25)
    late = [raw for raw in raws[2400:] if raw["detail-type"] == "Run Status Change"]
    assert late
    early = [raw for raw in raws if raw not in late]
    engine = ingest(make_settings(database_url=pg_url), early)
    fold_log = rebuild._fold_log

    def fold_then_append(*args: Any, **kwargs: Any) -> Any:
        folded = fold_log(*args, **kwargs)
        assert folded[2], "no rows were handed over by another process"
        ingest(make_settings(database_url=pg_url), late)
        return folded

    monkeypatch.setattr(rebuild, "_fold_log", fold_then_append)
    rebuilt = rebuild.rebuild(engine, workers=3)  # runs and imports in other processes
    monkeypatch.undo()
    reference = ingest(make_settings(database_url=make_pg()), raws)
    assert rebuilt.checksum == checksum_of(reference)
    assert rebuild.check(engine).ok


# --- (d) and (e): any order, either database --------------------------------------------------


@pytest.mark.slow
def test_three_orders_fold_to_one_checksum(
    backend: str,
    make_pg: Callable[[], str],
    tmp_path: Path,
    make_settings: Callable[..., Settings],
) -> None:
    raws = simulated_day_events(3000, seed=14)
    shuffled = list(raws)
    random.Random(5).shuffle(shuffled)
    orders = [raws, list(reversed(raws)), shuffled]
    sums = []
    for order in orders:
        url = fresh_url(backend, make_pg, tmp_path)
        engine = ingest(make_settings(database_url=url), order, batch=250)
        sums.append(checksum_of(engine))  # the live projections, folded as the events came
        assert rebuild.rebuild(engine).checksum == sums[-1]
        engine.dispose()
    assert sums[0].digest == sums[1].digest == sums[2].digest
    assert {t.name: t.rows for t in sums[0].tables}["tasks"] > 100


def pipeline_facts(engine: Engine, rng: random.Random) -> None:
    """What the enrich and callback pools append about terminal runs: JSON, floats, times."""
    with engine.begin() as connection:
        finals = [
            row
            for row in connection.execute(
                select(events).where(events.c.detail_type == "Run Status Change")
            )
            if row.status in {"COMPLETED", "FAILED"}
        ]
        for row in sorted(finals, key=lambda r: r.event_id):
            cause = StoredEvent(**{k: row._mapping[k] for k in StoredEvent.__dataclass_fields__})
            detail = cause.payload["detail"]
            enriched = {
                "uuid": detail["uuid"],
                "runId": detail["runId"],
                "status": cause.status,
                "eventTime": cause.payload["time"],
                "fromApi": True,
                "wesRunId": f"wes-{rng.randrange(10**6)}",
                "tags": {"WESRunId": "x", "lab": "Zürich", "n": 3},
                "durationSeconds": rng.random() * 10_000,
                "startTime": "2026-01-22T23:00:00.123456Z",
                "stopTime": "2026-01-23T01:00:00+02:00",
                "outputMapping": {"vcf": "s3://out/a.vcf", "qc": {"score": 0.1 + 0.2}},
                "logUrls": {"run": "https://console/logs?a=1&b=ü"},
            }
            when = cause.event_time + timedelta(seconds=5)
            store.append(
                connection,
                LogEntry.pipeline(
                    cause, "Run Enriched", enriched, status=cause.status, event_time=when
                ),
            )
            sent = {
                "eventId": cause.event_id,
                "eventTime": cause.payload["time"],
                "uuid": detail["uuid"],
                "runId": detail["runId"],
                "status": cause.status,
                "url": "https://ngs360/cb",
                "httpStatus": 200,
                "attempts": 1,
            }
            store.append(
                connection,
                LogEntry.pipeline(
                    cause,
                    "Callback Delivered",
                    sent,
                    status=cause.status,
                    event_time=when + timedelta(seconds=1),
                ),
            )
        store.dead_letter(connection, kind="rejected", reason="not JSON", raw=b"\xff{not json")


@pytest.mark.slow
def test_the_checksum_is_the_same_on_sqlite_and_postgresql(
    sqlite_url: str, pg_url: str, make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    raws = simulated_day_events(3000, seed=15)
    sums = {}
    for url in (sqlite_url, pg_url):
        engine = ingest(make_settings(database_url=url), raws)
        pipeline_facts(engine, random.Random(1))
        sums[url] = checksum_of(engine)
        assert printed_checksum(omics_cli(url, "rebuild")) == sums[url].digest
        omics_cli(url, "rebuild", "--check")
    assert sums[sqlite_url] == sums[pg_url]
    per_table = {t.name: t.rows for t in sums[pg_url].tables}
    assert per_table["deliveries"] > 0 and per_table["dead_letters"] == 1
    with create_db_engine(pg_url).connect() as connection:
        enriched = connection.execute(
            select(func.count()).select_from(runs).where(runs.c.wes_run_id.is_not(None))
        ).scalar_one()
    assert enriched > 0  # the enrichment's JSON, floats and times are in what was compared


# --- (b) lose the database, replay the S3 archive ----------------------------------------------


def test_replay_from_the_s3_archive_after_losing_the_database(
    pipeline_settings: Settings,
    pg_base_url: str,
    s3: Any,
    bucket: str,
    aws_env: str,
    omics_cli: Any,
    tmp_path: Path,
) -> None:
    raws = simulated_day_events(700, seed=16, replay_rate=0.02)
    app = create_app(pipeline_settings)
    engine = app.runtime.engine
    expected = unique_events(raws)
    with embedded_worker(app, ["archive"], pool="threads", concurrency=8):
        intake = Intake(app)
        for start in range(0, len(raws), 100):
            intake.submit(raws[start : start + 100])
        wait_for(
            lambda: archived_count(engine) == len(expected), timeout=120, what="the archive pool"
        )
    batches = s3_batches(s3, bucket, PREFIX)
    check_ranges(batches)  # events (and facts, if any) in batch objects, each exactly once
    assert sorted(event_ids(batches)) == sorted(p.event_id for p in expected)
    assert not [key for key in s3_keys(s3, bucket, PREFIX) if "/raw/" in key]
    before = checksum_of(engine)
    url = pipeline_settings.database_url
    engine.dispose()

    name = make_url(url).database
    with psycopg.connect(libpq(pg_base_url), autocommit=True) as admin:  # the database is lost
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    omics_cli(url, "db", "upgrade")
    replayed = omics_cli(url, "replay", f"s3://{bucket}/{PREFIX}")
    assert printed_checksum(replayed) == before.digest

    restored = create_db_engine(url)
    assert count(restored, events) == len(expected)  # the AWS events, nothing else
    assert count(restored, outbox) == 0  # no enrichment, callback, import or archive owed
    # the log followers were moved past the replay: CloudWatch and SNS hear nothing of it
    with restored.connect() as connection:
        top = connection.execute(select(func.max(events.c.seq))).scalar_one()
        positions = {
            name: seq
            for name, seq in connection.execute(select(log_cursors.c.name, log_cursors.c.last_seq))
        }
    assert positions == {metrics.CURSOR: top, alerts.CURSOR: top, archive.CURSOR: top}
    settings = pipeline_settings.model_copy(update={"metrics_namespace": unique("Replay")})
    runtime = create_app(settings).runtime
    runtime.use_engine(restored)
    emitter = metrics.MetricsEmitter(runtime)
    assert emitter.run_once() == 0 and emitter.stats.calls == 0
    alerter = alerts.AlertsFollower(runtime)
    assert alerter.run_once() == 0
    alerter.close()
    cloudwatch = boto3.client("cloudwatch", endpoint_url=aws_env, region_name="us-east-1")
    assert cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"] == []
    # …while a live event after the replay is reported (the follower does work)
    Intake(create_app(settings), publish=False).submit([dict(raws[0], id=str(uuid.uuid4()))])
    assert emitter.run_once() > 0
    emitter.close()  # stops following (gives its lease up), as a stopped metrics pool does

    owed = count(restored, outbox)  # the live event's work

    # EventBridge's own archive replay re-sends events with replay-name: the same events
    resent = [dict(event, **{"replay-name": "eb-archive-replay"}) for event in raws[:200]]
    lines = tmp_path / "replayed.jsonl"
    lines.write_text("\n".join(json.dumps(event) for event in resent))
    again = omics_cli(url, "replay", str(lines))
    assert re.search(r"appended\s+│\s+0\b", again.stdout), again.stdout
    assert count(restored, events) == len(expected) + 1
    assert count(restored, outbox) == owed


def test_replay_window_skips_whole_days_and_bounds_by_event_time(
    sqlite_url: str, omics_cli: Any, tmp_path: Path
) -> None:
    raws = simulated_day_events(2000, seed=17)
    archive = tmp_path / "archive"
    expected = unique_events(raws)
    for parsed in expected:
        path = archive / raw_key(PREFIX, parsed.event_id, parsed.time)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(canonical_json(parsed.payload))
    days = sorted({p.time.date() for p in expected})
    assert len(days) >= 2
    since = datetime.combine(days[1], datetime.min.time(), UTC) + timedelta(hours=1)
    until = since + timedelta(hours=6)
    inside = [p for p in expected if since <= p.time < until]
    result = omics_cli(
        sqlite_url,
        "replay",
        str(archive / PREFIX),
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    )
    engine = create_db_engine(sqlite_url)
    assert count(engine, events) == len(inside) > 0
    listed = int(re.search(r"objects listed\s+│\s+([\d,]+)", result.stdout)[1].replace(",", ""))
    assert listed == sum(1 for p in expected if p.time.date() == days[1]) < len(expected)


@pytest.mark.slow
def test_replay_of_archive_batches_in_worker_processes_gives_the_same_checksum(
    make_pg: Callable[[], str],
    make_settings: Callable[..., Settings],
    sqlite_url: str,
    omics_cli: Any,
    tmp_path: Path,
) -> None:
    """A folder of batch objects, as the archive pool writes them, read by the replay's worker
    processes (many objects, a small --batch): the same checksum on PostgreSQL and SQLite."""
    raws = simulated_day_events(3000, seed=22)
    root = tmp_path / "archive" / PREFIX
    settings = make_settings(
        database_url=make_pg(), archive_uri=f"file://{root}", archive_batch_events=100
    )
    app = create_app(settings)
    reference = checksum_of(ingest(settings, raws))
    app.runtime.use_engine(create_db_engine(settings.database_url))
    follower = archive.ArchiveFollower(app.runtime)
    while follower.run_once():
        pass
    follower.close()
    objects = sorted(root.rglob("*.jsonl.gz"))
    assert len(objects) > 10 and all("batches/dt=" in p.as_posix() for p in objects)
    for url in (sqlite_url, make_pg()):
        result = omics_cli(url, "replay", str(root), "--batch", "250", "--processes", "2")
        assert printed_checksum(result) == reference.digest
        omics_cli(url, "rebuild", "--check")
        assert count(create_db_engine(url), events) == len(unique_events(raws))


# --- (c) interrupted and resumed ------------------------------------------------------------


@pytest.mark.slow
def test_replay_interrupted_by_sigint_resumes_without_duplicates(
    pg_url: str,
    make_pg: Callable[[], str],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    raws = simulated_day_events(6000, seed=18)
    expected = unique_events(raws)
    archive = tmp_path / "archive"
    for parsed in expected:
        path = archive / raw_key(PREFIX, parsed.event_id, parsed.time)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(canonical_json(parsed.payload))
    reference = checksum_of(ingest(make_settings(database_url=make_pg()), raws))

    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "ARCHIVE_URI"}}
    env.update(DATABASE_URL=pg_url, PYTHONPATH=str(REPO), LOG_FORMAT="text")
    command = [
        sys.executable,
        "-m",
        "omics_events",
        "replay",
        str(archive / PREFIX),
        "--batch",
        "200",
        "--max-rate",
        "1500",
    ]
    engine = create_db_engine(pg_url)
    first = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(
            lambda: count(engine, events) >= len(expected) // 3,
            timeout=120,
            what="a third replayed",
        )
        first.send_signal(signal.SIGINT)
        output, errors = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, output + errors
    assert "interrupted" in output
    halfway = count(engine, events)
    assert 0 < halfway < len(expected)

    second = subprocess.run(
        command[:-2], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stdout + second.stderr
    skipped = re.search(r"already in the log \(not fetched\)\s+│\s+([\d,]+)", second.stdout)
    assert skipped and int(skipped[1].replace(",", "")) == halfway
    assert CHECKSUM.findall(second.stdout)[-1] == reference.digest
    with engine.connect() as connection:
        ids = connection.execute(select(events.c.event_id)).scalars().all()
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {p.event_id for p in expected}


# --- side effects, followers, inspection ----------------------------------------------------


def test_side_effects_are_owed_only_when_asked_for(
    sqlite_url: str, omics_cli: Any, tmp_path: Path
) -> None:
    raws = simulated_day_events(400, seed=19)
    source = tmp_path / "events.json"
    source.write_text(json.dumps(raws))
    omics_cli(sqlite_url, "replay", str(source), "--with-side-effects", "--no-rebuild")
    engine = create_db_engine(sqlite_url)
    with engine.connect() as connection:
        query = select(outbox.c.stage, func.count()).group_by(outbox.c.stage)
        owed = {stage: n for stage, n in connection.execute(query)}
    runs_seen = len({e["detail"]["uuid"] for e in raws if e["detail-type"] == "Run Status Change"})
    assert "archive" not in owed and owed["enrich"] >= runs_seen
    assert count(engine, log_cursors) == 0  # with side effects the followers see everything


def test_replay_refuses_while_a_log_follower_runs(
    sqlite_url: str, omics_cli: Any, tmp_path: Path
) -> None:
    engine = create_db_engine(sqlite_url)
    with engine.begin() as connection:
        assert cursors.lease(connection, metrics.CURSOR, "metrics-worker-1", timedelta(minutes=2))
    source = tmp_path / "events.json"
    source.write_text(json.dumps(simulated_day_events(50, seed=20)))
    result = omics_cli(sqlite_url, "replay", str(source), code=1)
    assert "metrics-worker-1" in result.output and "--with-side-effects" in result.output
    assert count(engine, events) == 0


def test_run_timeline_and_runs_listing(
    sqlite_url: str, make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    raws = simulated_day_events(1500, seed=21)
    engine = ingest(make_settings(database_url=sqlite_url), raws)
    pipeline_facts(engine, random.Random(2))
    with engine.connect() as connection:
        row = connection.execute(
            select(runs).where(runs.c.status == "COMPLETED").order_by(runs.c.run_uuid)
        ).first()
    assert row is not None
    by_id = json.loads(omics_cli(sqlite_url, "run", row.run_id, "--json").stdout)
    by_uuid = json.loads(omics_cli(sqlite_url, "run", row.run_uuid, "--json").stdout)
    assert by_id == by_uuid and by_id["run"]["status"] == "COMPLETED"
    timeline = by_id["timeline"]
    assert [e["seq"] for e in timeline] == sorted(e["seq"] for e in timeline)
    kinds = {e["detail_type"] for e in timeline}
    assert {
        "Run Status Change",
        "Task Status Change",
        "Run Enriched",
        "Callback Delivered",
    } <= kinds
    statuses = [e["status"] for e in timeline if e["detail_type"] == "Run Status Change"]
    assert "COMPLETED" in statuses and "PENDING" in statuses
    assert all(
        e["detail"].get("runUuid") == row.run_uuid
        for e in timeline
        if e["detail_type"] == "Task Status Change"
    )
    assert len(by_id["tasks"]) == len(
        {e["detail"]["arn"] for e in timeline if e["detail_type"] == "Task Status Change"}
    )
    table = omics_cli(sqlite_url, "run", row.run_uuid, "--no-tasks").stdout
    assert "Callback Delivered" in table and "Task Status Change" not in table

    listed = json.loads(
        omics_cli(sqlite_url, "runs", "--status", "completed", "--json", "--limit", "0").stdout
    )
    assert listed and {r["status"] for r in listed} == {"COMPLETED"}
    assert row.run_uuid in {r["run_uuid"] for r in listed}
    times = sorted(r["last_event_time"] for r in listed)
    since = times[len(times) // 2]
    recent = json.loads(
        omics_cli(
            sqlite_url, "runs", "--status", "COMPLETED", "--since", since, "--json", "--limit", "0"
        ).stdout
    )
    assert 0 < len(recent) < len(listed) and all(r["last_event_time"] >= since for r in recent)
    assert "wes-" in omics_cli(sqlite_url, "runs").stdout


def test_a_reused_run_id_shows_the_newest_run_and_names_the_others(
    sqlite_url: str, make_settings: Callable[..., Settings], omics_cli: Any
) -> None:
    from tests.helpers.factories import run_event

    old = run_event(run_uuid=str(uuid.uuid4()), run_id="4242", time="2026-01-01T00:00:00Z")
    new = run_event(
        run_uuid=str(uuid.uuid4()), run_id="4242", time="2026-02-01T00:00:00Z", status="RUNNING"
    )
    ingest(make_settings(database_url=sqlite_url), [old, new])
    shown = json.loads(omics_cli(sqlite_url, "run", "4242", "--json").stdout)
    assert shown["run"]["run_uuid"] == new["detail"]["uuid"]
    assert shown["other_runs_with_this_id"] == [old["detail"]["uuid"]]
    omics_cli(sqlite_url, "run", "no-such-run", code=1)


# --- the folds of this issue: stores and tasks ----------------------------------------------------


@pytest.mark.slow
def test_task_and_store_folds_do_not_depend_on_order_or_duplicates(
    make_pg: Callable[[], str], sqlite_url: str
) -> None:
    raws = [
        e
        for e in simulated_day_events(2500, seed=22)
        if e["detail-type"] == "Task Status Change" or "Store" in e["detail-type"]
    ]
    parsed = unique_events(raws)
    rng = random.Random(9)
    digests = set()
    for url in (make_pg(), sqlite_url, make_pg()):
        engine = create_db_engine(url)
        order = parsed + rng.sample(parsed, len(parsed) // 5)  # duplicates, appended one by one
        rng.shuffle(order)
        for item in order:
            with engine.begin() as connection:
                store.append(connection, LogEntry.from_parsed(item))
        digests.add(checksum_of(engine).digest)
        with engine.connect() as connection:
            done = connection.execute(select(tasks).where(tasks.c.status == "COMPLETED")).first()
            final = connection.execute(select(stores).where(stores.c.status_final == 1)).all()
        assert done is not None and done.duration_seconds is not None
        assert done.stop_time is not None and done.running_time is not None
        assert {row.status for row in final} <= {"DELETED", "CREATION_FAILED"} and final
        engine.dispose()
    assert len(digests) == 1


def test_the_checksum_covers_every_column_that_is_not_a_reception_time() -> None:
    specs = {spec.name: spec for spec in rebuild.table_specs()}
    assert set(specs) == {
        "dead_letters",
        "deliveries",
        "import_jobs",
        "import_sources",
        "read_sets",
        "runs",
        "stores",
        "tasks",
    }
    assert specs["runs"].key == ("run_uuid",) and specs["deliveries"].key == ("delivery_id",)
    assert specs["tasks"].key == ("run_uuid", "task_id")
    assert "id" not in specs["deliveries"].columns
    assert set(specs["runs"].columns) - set(specs["runs"].hashed) == {
        "first_seen_at",
        "last_seen_at",
    }
    assert "created_at" not in specs["dead_letters"].hashed
    raw = b"\x00\xff"
    assert rebuild.canonical(raw) == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (
        rebuild.canonical(datetime(2026, 1, 1, 1, tzinfo=UTC) + timedelta(microseconds=5))
        == "2026-01-01T01:00:00.000005Z"
    )
    assert rebuild.canonical({"b": 2.0, "a": [1.5]}) == {"a": [1.5], "b": 2}


def test_a_replay_prepared_in_worker_processes_appends_what_the_intake_would(
    backend: str,
    make_pg: Callable[[], str],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """Many small batches prepared by two worker processes (producers/replay_prepare.py): a
    plain folder (no event ids in the names, so duplicates meet in the log and PostgreSQL's
    direct COPY falls back to the staging table), events the log already has, junk that is
    dead-lettered and an SNS notification around an event — the same log and projections as
    the intake makes of the same events."""
    raws = simulated_day_events(1200, seed=23, reorder_rate=0.2)
    inner = raws[7]
    notification = {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(inner)}
    junk = [b"{not json", b'{"id": "x"}', b"\xff\xfe not UTF-8"]
    reference = ingest(
        make_settings(database_url=fresh_url(backend, make_pg, tmp_path)),
        [*raws, notification, *junk],
    )
    expected = unique_events(raws)

    folder = tmp_path / "events"
    folder.mkdir()
    for index, body in enumerate(
        [*(json.dumps(raw).encode() for raw in raws), json.dumps(notification).encode(), *junk]
    ):
        (folder / f"{index:06d}.json").write_bytes(body)
    app = create_app(make_settings(database_url=backend))
    Intake(app, publish=False).submit(raws[:100])  # some are in the log already
    already = count(app.runtime.engine, events)

    report = replay(app, open_source(str(folder), s3_client=lambda: None), batch=100, processes=2)
    assert report.listed == len(raws) + 1 + len(junk) and not report.interrupted
    assert report.appended == len(expected) - already
    assert report.rejected == len(junk)
    assert report.rebuilt is not None
    assert report.rebuilt.checksum.digest == checksum_of(reference).digest
    engine = app.runtime.engine
    assert count(engine, events) == len(expected)
    with engine.connect() as connection:
        stored = connection.execute(
            select(events.c.payload).where(events.c.event_id == inner["id"])
        ).scalar_one()
    assert stored == inner  # the event inside the notification, not the notification


def test_replay_workers_fail_a_batch_they_cannot_read_and_go_on(tmp_path: Path) -> None:
    """A worker process reports what preparing a batch raised (an object gone since the
    listing) on that batch's future and prepares the next; a worker that died fails every
    batch given to it with a clear error instead of leaving the replay waiting."""
    from producers.replay_prepare import Job, Preparers
    from producers.replay_sources import Item, Window
    from schemas.parsing import DEFAULT_LIMITS

    raws = simulated_day_events(30, seed=5)
    for raw in raws:
        (tmp_path / f"{raw['id']}.json").write_bytes(json.dumps(raw).encode())
    source = open_source(str(tmp_path), s3_client=lambda: None)
    items = source.items(Window())

    def job(batch: list[Item]) -> Job:
        return Job(DEFAULT_LIMITS, Window(), "copy", source=source, items=batch)

    preparers = Preparers(1)
    try:
        gone = preparers.submit(job([*items[:3], Item(key="gone.json")]))
        after = preparers.submit(job(items))
        with pytest.raises(FileNotFoundError, match=r"gone\.json"):
            gone.result(timeout=60)
        prepared = after.result(timeout=60)
        assert sorted(prepared.event_ids) == sorted(e.event_id for e in unique_events(raws))
        assert prepared.copy_text.count(b"\n") == len(prepared.event_ids)

        worker = preparers._workers[0]
        worker.process.kill()
        worker.process.wait()
        with pytest.raises(RuntimeError, match="replay worker process ended"):
            preparers.submit(job(items)).result(timeout=60)
        with pytest.raises(RuntimeError, match="replay worker process ended"):
            preparers.submit(job(items)).result(timeout=60)
    finally:
        preparers.close()
