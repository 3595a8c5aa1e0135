"""The archive path end to end: intake → log → archive follower → S3 batches, on real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from celeryconfig import task_name
from eventlog import cursors, store
from eventlog.entries import LogEntry
from eventlog.tables import dead_letters, events
from producers.intake import Intake
from schemas.flatten import unflatten
from schemas.parsing import parse_event
from schemas.settings import Settings
from tests.helpers.archive_batches import (
    PREFIX,
    archived_count,
    check_ranges,
    event_ids,
    folder_batches,
    object_keys,
    s3_batches,
)
from tests.helpers.common import REPO
from tests.helpers.factories import as_bytes, run_event
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.malformed_corpus import MALFORMED
from workers import create_app, embedded_worker, sweep
from workers.archive import CURSOR, ArchiveFollower, archived_through
from workers.storage import BATCH_SUFFIX, batch_range, flattened_key


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll until ``condition`` holds; a deadline, not a timed assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or condition}")
        time.sleep(0.1)


def test_same_event_three_times_is_archived_once_with_sse(
    pipeline_settings: Settings, s3: Any, bucket: str
) -> None:
    app = create_app(pipeline_settings)
    engine = app.runtime.engine
    event = run_event()
    with embedded_worker(app, ["archive"]):
        intake = Intake(app)
        reports = [intake.submit([as_bytes(event)]) for _ in range(3)]
        wait_for(lambda: archived_count(engine, event["id"]) == 1, what="archive")
    assert [r.accepted for r in reports] == [1, 0, 0]
    assert [r.duplicates for r in reports] == [0, 1, 1]
    with engine.connect() as connection:
        aws_rows = connection.execute(
            select(func.count()).select_from(events).where(events.c.origin == "aws")
        ).scalar_one()
        stored = store.get(connection, event["id"])
    assert aws_rows == 1 and stored is not None
    batches = s3_batches(s3, bucket, PREFIX)
    check_ranges(batches)
    assert object_keys(s3, bucket) == sorted(batches)  # batches only: legacy objects are opt-in
    assert event_ids(batches) == [event["id"]]
    for key in batches:
        assert key.startswith(f"{PREFIX}/batches/dt=") and key.endswith(BATCH_SUFFIX)
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentType"] == "application/gzip"
    (line,) = [line for lines in batches.values() for line in lines if "event" in line]
    assert line["event"] == event and line["seq"] == stored.seq


def test_legacy_flattened_objects_for_run_events_when_asked(
    make_settings: Callable[..., Settings],
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    s3: Any,
    bucket: str,
) -> None:
    settings = make_settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        archive_uri=f"s3://{bucket}/{PREFIX}",
        archive_legacy_flattened=True,
        enrich_runs=False,
    )
    app = create_app(settings)
    event = run_event()
    other = json.loads((REPO / "tests/events/read_set_status_change__active.json").read_text())
    with embedded_worker(app, ["archive"]):
        report = Intake(app).submit([event, other])
        wait_for(lambda: archived_count(app.runtime.engine) == report.accepted, what="archive")
    with app.runtime.engine.connect() as connection:
        stored = store.get(connection, event["id"])
    assert stored is not None
    legacy = flattened_key(PREFIX, event["id"], stored.event_time)
    assert legacy.endswith(f"event_20221020_220735_{event['id']}.json")
    batches = s3_batches(s3, bucket, PREFIX)
    assert object_keys(s3, bucket) == sorted([legacy, *batches])  # the run event's only
    assert s3.head_object(Bucket=bucket, Key=legacy)["ServerSideEncryption"] == "AES256"
    flat = json.loads(s3.get_object(Bucket=bucket, Key=legacy)["Body"].read())
    assert unflatten(flat) == event


def test_s3_outage_keeps_the_range_pending_and_the_retry_overwrites_the_same_key(
    pipeline_settings: Settings,
    aws_env: str,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = FaultProxy(aws_env).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    settings = pipeline_settings.model_copy(update={"aws_max_attempts": 1})
    app = create_app(settings)
    engine = app.runtime.engine
    follower = ArchiveFollower(app.runtime)
    intake = Intake(app, publish=False)
    try:
        first = [run_event() for _ in range(3)]
        intake.submit(first)
        proxy.cut()
        assert follower.run_once() == 0  # the put failed: nothing moves …
        assert follower.stats.failures == 1
        with engine.connect() as connection:
            cursor = cursors.read(connection, CURSOR)
        assert cursor is not None and cursor.last_seq == 0
        pending = cursor.state["pending"]
        later = [run_event() for _ in range(2)]
        intake.submit(later)  # … and the intake never waited for S3
        assert follower.run_once() == 0  # still down: the same range, tried again
        proxy.restore()
        assert follower.run_once() == 3  # exactly the pending range, not the later events
        assert follower.run_once() == 2
    finally:
        proxy.stop()
    follower.close()
    batches = s3_batches(s3, bucket, PREFIX)
    check_ranges(batches)
    after = (pending[1] + 1, pending[1] + 2)
    assert [batch_range(key) for key in batches] == [tuple(pending), after]
    assert event_ids(batches) == [e["id"] for e in first + later]
    with engine.connect() as connection:
        assert archived_through(connection) == pending[1] + 2
        assert "pending" not in (cursors.read(connection, CURSOR) or cursor).state


def test_a_leftover_archive_outbox_row_is_finished_without_writing(
    backend: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """An ``archive`` row owed before batches (an upgraded database) is only marked done."""
    app = create_app(make_settings(database_url=backend, archive_uri=f"file://{tmp_path}/a"))
    event = run_event()
    with app.runtime.engine.begin() as connection:
        store.append(connection, LogEntry.from_parsed(parse_event(as_bytes(event))), ["archive"])
    assert app.tasks[task_name("archive")].apply(args=[event["id"]]).result == "batched"
    with app.runtime.engine.connect() as connection:
        assert store.is_done(connection, event["id"], "archive")
    assert not (tmp_path / "a").exists()


def test_kms_encryption_when_configured(
    make_settings: Callable[..., Settings],
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    s3: Any,
    bucket: str,
) -> None:
    settings = make_settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        archive_uri=f"s3://{bucket}/{PREFIX}",
        archive_sse="aws:kms",
        archive_kms_key_id="alias/omics-archive",
    )
    app = create_app(settings)
    event = run_event()
    with embedded_worker(app, ["archive"]):
        Intake(app).submit([event])
        wait_for(lambda: archived_count(app.runtime.engine) == 1, what="archive")
    for key in object_keys(s3, bucket):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert "omics-archive" in head.get("SSEKMSKeyId", "")


def test_embedded_default_sqlite_memory_broker_folder_archive(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path}/log.db",
        archive_uri=f"file://{tmp_path}/archive",
    )
    assert settings.embedded
    from eventlog.db import upgrade

    app = create_app(settings)
    upgrade(app.runtime.engine)
    events_in = [run_event(status=s) for s in ("RUNNING", "STOPPING", "COMPLETED")]
    with embedded_worker(app):
        report = Intake(app).submit(events_in)
        wait_for(lambda: archived_count(app.runtime.engine) == 3, what="archive")
    assert report.accepted == 3
    root = tmp_path / "archive"
    batches = folder_batches(root)
    check_ranges(batches)
    assert sorted(event_ids(batches)) == sorted(e["id"] for e in events_in)
    assert all(key.startswith("batches/dt=") for key in batches)
    assert not list(root.rglob(".tmp-*")) and not (root / "raw").exists()


def test_malformed_inputs_become_dead_letters_with_raw_bytes(backend: str, make_settings) -> None:
    app = create_app(make_settings(database_url=backend))
    report = Intake(app, publish=False).submit([raw for _, raw in MALFORMED])
    assert report.rejected == len(MALFORMED)
    with app.runtime.engine.connect() as connection:
        rows = connection.execute(select(dead_letters).order_by(dead_letters.c.id)).all()
    assert len(rows) == len(MALFORMED)
    assert {bytes(row.raw) for row in rows} == {raw for _, raw in MALFORMED}
    assert len({row.reason for row in rows}) == len(MALFORMED)
    assert all(row.kind == "rejected" and row.reason for row in rows)


def test_redis_flushed_after_append_sweeper_republishes(
    pipeline_settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    app = create_app(pipeline_settings)
    batch = [run_event() for _ in range(20)]
    report = Intake(app).submit(batch)
    owed = report.published  # the run events' enrichment (archiving is not owed work)
    assert report.accepted == 20 and owed == 20
    client = redis_lib.Redis.from_url(redis_url)
    lost = list(client.scan_iter(match=f"{redis_prefix}*"))
    assert lost, "the published tasks should be waiting in Redis"
    client.delete(*lost)  # Redis restarted with its data lost
    # nothing is published yet within the redelivery window …
    assert sweep(app, redeliver_after=3600) == 0
    # … and everything once the work is overdue
    assert sweep(app, redeliver_after=0) == owed
    with embedded_worker(app, ["archive"]):  # the archive never waited for Redis
        wait_for(lambda: archived_count(app.runtime.engine) == 20, what="all archived")


def _worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "ARCHIVE_URI": settings.archive_uri,
            "BROKER_VISIBILITY_TIMEOUT": "6",
            "WORKER_CONCURRENCY": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@pytest.mark.slow
def test_worker_killed_mid_put_ends_archived_once_under_the_same_key(
    pipeline_settings: Settings, aws_env: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The batch range is recorded before the put; the next follower writes exactly that range
    again, to the same key, so the archive holds each event once."""
    proxy = FaultProxy(aws_env).start()
    proxy.holding.set()
    command = [sys.executable, "-m", "omics_events", "worker", "--pool", "archive"]
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        stalled = subprocess.Popen(
            command,
            cwd=REPO,
            env=_worker_env(pipeline_settings, AWS_ENDPOINT_URL_S3=proxy.url),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = create_app(pipeline_settings)
    first = run_event()
    try:
        Intake(app).submit([first])
        proxy.held.wait(60)
        assert proxy.held.is_set(), log_path.read_text()
        os.killpg(stalled.pid, signal.SIGKILL)  # the whole worker, in the middle of a PUT
        stalled.wait(10)
        assert archived_count(app.runtime.engine) == 0
    finally:
        proxy.stop()
        if stalled.poll() is None:
            os.killpg(stalled.pid, signal.SIGKILL)
    later = run_event()  # appended after the range was recorded: it goes in the next batch
    Intake(app).submit([later])

    with open(log_path, "ab") as log:
        restarted = subprocess.Popen(
            command,
            cwd=REPO,
            env=_worker_env(pipeline_settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # the dead worker's lease runs out (15 s), then the pending range is written again
        wait_for(lambda: archived_count(app.runtime.engine) == 2, 90, "archive after a kill")
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
    assert restarted.returncode == 0, log_path.read_text()[-3000:]
    batches = s3_batches(s3, bucket, PREFIX)
    check_ranges(batches)
    assert event_ids(batches) == [first["id"], later["id"]]
    assert [len(lines) for lines in batches.values()] == [1, 1]


@pytest.mark.slow
def test_celery_command_starts_the_archive_pool(
    pipeline_settings: Settings, aws_env: str, tmp_path: Path
) -> None:
    app = create_app(pipeline_settings)
    batch = [run_event() for _ in range(5)]
    Intake(app).submit(batch)
    log_path = tmp_path / "celery.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "-Q",
                "archive",
                "--pool",
                "solo",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=REPO,
            env=_worker_env(pipeline_settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: archived_count(app.runtime.engine) == 5, 90, "celery worker")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0, log_path.read_text()[-3000:]


@pytest.mark.slow
def test_send_command_reads_files_and_prints_a_summary(
    make_settings, pg_url: str, tmp_path: Path, aws_env: str, bucket: str
) -> None:
    good = [run_event(status=s) for s in ("RUNNING", "COMPLETED")]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in good) + "\n{not json\n")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {
            "DATABASE_URL": pg_url,
            "ARCHIVE_URI": f"s3://{bucket}/{PREFIX}",
            "COLUMNS": "200",
            "ENRICH_RUNS": "false",
        }  # no HealthOmics here: the sample runs cannot be enriched
    )
    done = subprocess.run(
        [sys.executable, "-m", "omics_events", "send", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # 1: some of it was rejected
    assert "rejected ×1: not valid JSON" in done.stdout
    app = create_app(make_settings(database_url=pg_url))
    assert archived_count(app.runtime.engine) == 2
