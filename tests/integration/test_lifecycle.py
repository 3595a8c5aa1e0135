"""Every long-running process exits cleanly on SIGTERM, under load, and nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from producers.intake import Intake
from schemas.settings import Settings
from simulator.local_aws import free_port
from tests.helpers.archive_batches import (
    PREFIX,
    archived_count,
    check_ranges,
    event_ids,
    object_keys,
    s3_batches,
)
from tests.helpers.common import REPO, wait_for
from tests.helpers.factories import run_event
from tests.helpers.processes import worker_env
from workers import create_app

pytestmark = pytest.mark.slow


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as stream:
        return subprocess.Popen(
            [sys.executable, "-m", "omics_events", *args],
            cwd=REPO,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _terminate(process: subprocess.Popen[bytes], within: float = 30.0) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"did not exit within {within:.0f} s of SIGTERM") from None
    return time.monotonic() - started


@pytest.mark.parametrize("pool_type", ["prefork", "threads"])
def test_worker_warm_shutdown_under_load_loses_nothing(
    pipeline_settings: Settings, aws_env: str, s3, bucket: str, tmp_path: Path, pool_type: str
) -> None:
    app = create_app(pipeline_settings)
    batch = [run_event() for _ in range(600)]
    Intake(app).submit(batch)
    log = tmp_path / "worker.log"
    env = worker_env(
        pipeline_settings,
        WORKER_POOL=pool_type,
        WORKER_CONCURRENCY="2",
        ARCHIVE_BATCH_EVENTS="5",  # many small batches: the worker stops between two of them
    )
    worker = _start(["worker", "--pool", "archive"], env, log)
    wait_for(lambda: archived_count(app.runtime.engine) > 20, 90, "worker busy")
    _terminate(worker)
    assert worker.returncode == 0, log.read_text()[-3000:]
    assert archived_count(app.runtime.engine) < 600, "stop it while it still has work"
    restarted = _start(["worker", "--pool", "archive"], env, log)
    try:
        wait_for(lambda: archived_count(app.runtime.engine) == 600, 180, "the rest archived")
    finally:
        _terminate(restarted)
    assert restarted.returncode == 0
    batches = s3_batches(s3, bucket, PREFIX)
    check_ranges(batches)
    assert object_keys(s3, bucket) == sorted(batches)
    assert sorted(event_ids(batches)) == sorted(e["id"] for e in batch)  # each exactly once


def test_sweeper_exits_on_sigterm(pipeline_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "sweeper.log"
    health = tmp_path / "health"
    sweeper = _start(
        ["sweep", "--every", "1"], worker_env(pipeline_settings, HEALTH_FILE=str(health)), log
    )
    wait_for(health.exists, 60, "first sweep round")
    _terminate(sweeper)
    assert sweeper.returncode == 0, log.read_text()[-2000:]


def test_flower_exits_on_sigterm(pipeline_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "flower.log"
    flower = _start(
        ["flower"],
        worker_env(pipeline_settings, FLOWER_BASIC_AUTH="ops:pw", FLOWER_PORT=str(port)),
        log,
    )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2).is_success
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "flower up")
    _terminate(flower)
    assert flower.returncode in (0, -signal.SIGTERM), log.read_text()[-2000:]
