"""`omics-events config check` against the test services: one line per dependency."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import boto3

from schemas.settings import Settings
from simulator import Simulator, SimulatorServer
from tests.helpers.common import REPO, unique


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omics_events", "config", "check"],
        cwd=REPO,
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_config_check_all_ok_then_a_wrong_database(
    pipeline_settings: Settings, aws_env: str, s3: Any
) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name="us-east-1")
    queue = sqs.create_queue(QueueName=unique("oe-check-"))["QueueUrl"]
    with SimulatorServer(Simulator(seed=1)) as server:
        env = os.environ | {
            "DATABASE_URL": pipeline_settings.database_url,
            "REDIS_URL": pipeline_settings.redis_url or "",
            "ARCHIVE_URI": pipeline_settings.archive_uri,
            "POLLER_QUEUE_URLS": queue,
            "NGS360_API_URL": aws_env,
            "NGS360_API_KEY": "check-secret-key",
            "AWS_ENDPOINT_URL_OMICS": server.url,
        }
        good = _run(env)
        bad = _run(env | {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    assert good.returncode == 0, good.stdout + good.stderr
    lines = [line for line in good.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert [line.split()[1] for line in lines] == [
        "redis",
        "database",
        "archive",
        "sqs",
        "ngs360",
        "healthomics",
    ]
    assert all(line.startswith("ok") for line in lines), good.stdout
    assert "check-secret-key" not in good.stdout + good.stderr
    assert bad.returncode != 0
    failed = [line for line in bad.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].split()[1] == "database"
    assert "127.0.0.1:1/nowhere" in failed[0]
