"""Logs of a full demo run: JSON parses line by line, every format keeps secrets out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.helpers.common import REPO

API_KEY = "ngs360-key-that-must-never-leak-7f3a"
DB_PASSWORD = "db-password-that-must-never-leak-91c2"


def _demo(tmp_path: Path, pg_url: str, log_format: str) -> subprocess.CompletedProcess[str]:
    url = make_url(pg_url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "ARCHIVE_URI"} and not k.startswith("AWS_")
    }
    env |= {
        "DATABASE_URL": url,  # trust auth here: the password is carried, never checked
        "NGS360_API_KEY": API_KEY,
        "LOG_FORMAT": log_format,
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "omics_events", "demo", "--runs", "6"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_demo_logs_hold_no_secret(tmp_path: Path, pg_url: str, log_format: str) -> None:
    done = _demo(tmp_path, pg_url, log_format)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    everything = done.stdout + done.stderr
    assert API_KEY not in everything
    assert DB_PASSWORD not in everything
    if log_format == "json":
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines, "the demo logs something"
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        about_events = [r for r in records if "event_id" in r]
        assert all("detail_type" in r or r.get("stage") for r in about_events)
