"""Secrets never reach a terminal: not in `config show`, not in a bad setting's error line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.common import REPO

SECRET = "hunter2-must-not-leak"


def _omics_events(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "NGS360_API_URL", "NGS360_API_KEY"}
    }
    return subprocess.run(
        [sys.executable, "-m", "omics_events", *args],
        cwd=REPO,
        env=base | env | {"COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        # a secret field: nothing of it, whatever is wrong with it
        ("FLOWER_BASIC_AUTH", f"ops:{SECRET},admin", "FLOWER_BASIC_AUTH='********': must be"),
        (
            "DATABASE_URL",
            f"mysql://omics:{SECRET}@db/omics",
            "DATABASE_URL='mysql://omics:********@db/omics': unsupported database",
        ),
        (
            "DATABASE_URL",
            f"mysql://db/omics?user=omics&password={SECRET}",
            "DATABASE_URL='mysql://db/omics?user=omics&password=********'",
        ),
        (
            "REDIS_URL",
            f"http://:{SECRET}@cache:6379/0",
            "REDIS_URL='http://:********@cache:6379/0'",
        ),
        (
            "NGS360_API_URL",
            f"ftp://api/?api_key={SECRET}",
            "NGS360_API_URL='ftp://api/?api_key=********'",
        ),
        ("IMPORT_SOURCES", f"https://u:{SECRET}@reads/x", "IMPORT_SOURCES="),
    ],
)
def test_a_bad_setting_names_the_variable_without_its_secret(
    variable: str, value: str, shown: str
) -> None:
    done = _omics_events("config", "show", **{variable: value})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), done.stderr
    assert shown in lines[0]
    assert SECRET not in done.stdout + done.stderr


def test_config_show_masks_every_kind_of_secret() -> None:
    done = _omics_events(
        "config",
        "show",
        DATABASE_URL=f"postgresql://omics@db:5432/omics?sslmode=require&password={SECRET}",
        REDIS_URL=f"redis://:{SECRET}@cache:6379/0",
        NGS360_API_URL=f"https://api.example.org/?token={SECRET}&page=1",
        NGS360_API_KEY=SECRET,
        FLOWER_BASIC_AUTH=f"ops:{SECRET}",
        POLLER_QUEUE_URLS=f"https://sqs/q1?X-Amz-Signature={SECRET},https://sqs/q2",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert SECRET not in out + done.stderr
    assert "postgresql://omics@db:5432/omics?sslmode=require&password=********" in out
    assert "redis://:********@cache:6379/0" in out
    assert "https://api.example.org/?token=********&page=1" in out
    assert "https://sqs/q1?X-Amz-Signature=********,https://sqs/q2" in out


def test_a_socket_url_with_a_password_parameter_is_masked_too() -> None:
    done = _omics_events("config", "show", DATABASE_URL=f"postgresql:///omics?password={SECRET}")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout and "postgresql:///omics?password=********" in done.stdout
