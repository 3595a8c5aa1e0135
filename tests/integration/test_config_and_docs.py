"""Settings fail loudly and early; the docs say what the code does; the demo runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.settings import ConfigurationError, Settings, load_settings, settings_table
from tests.helpers.common import REPO


def test_readme_configuration_table_is_generated_from_settings() -> None:
    readme = (REPO / "README.md").read_text()
    assert settings_table() in readme, "run `make docs` to regenerate the README table"


def test_every_setting_has_an_environment_variable_and_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert field.validation_alias is not None, name


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://x", "DATABASE_URL='mysql://x': unsupported database"),
        ("REDIS_URL", "http://localhost", "REDIS_URL='http://localhost': must start with"),
        ("ARCHIVE_URI", "s3://", "ARCHIVE_URI='s3://': s3:// URI has no bucket"),
        ("MAX_EVENT_BYTES", "ten", "MAX_EVENT_BYTES='ten'"),
        ("ARCHIVE_SSE", "rot13", "ARCHIVE_SSE='rot13'"),
    ],
)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("configuration error: ") and expected in message
    assert "\n" not in message


def test_bad_setting_stops_a_command_with_one_line(tmp_path: Path) -> None:
    env = os.environ | {"DATABASE_URL": "mysql://x"}
    done = subprocess.run(
        [sys.executable, "-m", "omics_events", "config", "show"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "configuration error: DATABASE_URL='mysql://x': unsupported database 'mysql': "
        "use sqlite:// or postgresql://"
    ]


def test_config_show_masks_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://omics:s3cr3t-pw@db:5432/omics")
    shown = load_settings().masked()
    assert shown["DATABASE_URL"] == "postgresql://omics:********@db:5432/omics"
    assert "s3cr3t-pw" not in repr(shown)


@pytest.mark.slow
def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    """`make demo` with nothing configured: SQLite, memory broker, in-process moto."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "ARCHIVE_URI"} and not k.startswith("AWS_")
    }
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "omics_events", "demo"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pending" in done.stdout and "archive: s3://omics-events-archive" in done.stdout
    assert (tmp_path / ".omics-events" / "events.db").exists()


def test_list_settings_accept_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_SOURCES", "aws.omics, aws.s3,custom.lab")
    monkeypatch.setenv("POLLER_QUEUE_URLS", "http://q/1,http://q/2")
    settings = load_settings()
    assert settings.allowed_sources == ["aws.omics", "aws.s3", "custom.lab"]
    assert settings.poller_queue_urls == ["http://q/1", "http://q/2"]
