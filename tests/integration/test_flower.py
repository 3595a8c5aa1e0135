"""Flower: refused without credentials, 401 without them, workers and queues with them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from celeryconfig import QUEUES
from schemas.settings import Settings
from simulator.local_aws import free_port
from tests.helpers.common import REPO, wait_for
from tests.helpers.processes import worker_env
from workers import create_app


def test_flower_refuses_to_start_without_credentials(pipeline_settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omics_events", "flower"],
        cwd=REPO,
        env=worker_env(pipeline_settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH is not set" in done.stderr


@pytest.mark.slow
def test_flower_requires_auth_and_shows_every_pool(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    credentials = ("operator", "flower-secret-pw")
    log = open(tmp_path / "processes.log", "wb")  # noqa: SIM115 - closed in finally
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "omics_events", "worker", "--pool", pool, "--pool-type", "solo"],
            cwd=REPO,
            env=worker_env(pipeline_settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for pool in QUEUES
    ]
    processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "omics_events", "flower"],
            cwd=REPO,
            env=worker_env(
                pipeline_settings,
                FLOWER_BASIC_AUTH=":".join(credentials),
                FLOWER_PORT=str(port),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"{base}/healthcheck", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 60, "flower up")
        assert httpx.get(f"{base}/api/workers", timeout=10).status_code == 401
        assert httpx.get(f"{base}/", timeout=10).status_code == 401
        assert (
            httpx.get(f"{base}/api/workers", auth=("operator", "wrong"), timeout=10).status_code
            == 401
        )

        def pools_seen() -> set[str]:
            response = httpx.get(
                f"{base}/api/workers", params={"refresh": 1}, auth=credentials, timeout=20
            )
            assert response.status_code == 200
            return {name.split("@", 1)[0] for name in response.json()}

        wait_for(lambda: set(QUEUES) <= pools_seen(), 90, "all five pools in flower")
        lengths = httpx.get(f"{base}/api/queues/length", auth=credentials, timeout=20)
        assert lengths.status_code == 200
        names = {queue["name"] for queue in lengths.json()["active_queues"]}
        assert set(QUEUES) <= names
        assert all(isinstance(q["messages"], int) for q in lengths.json()["active_queues"])
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
    text = (tmp_path / "processes.log").read_text()
    assert "flower-secret-pw" not in text
    assert all(process.returncode is not None for process in processes)


def test_workers_send_no_task_events_unless_asked(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Task events cost CPU on every task; Flower turns them on itself in what it watches."""
    monkeypatch.delenv("CELERY_TASK_EVENTS", raising=False)
    default = create_app(make_settings()).conf
    assert not default.worker_send_task_events and not default.task_send_sent_event
    asked = create_app(make_settings(celery_task_events=True)).conf
    assert asked.worker_send_task_events and asked.task_send_sent_event
