"""The deployment files, checked without a Docker engine (none runs on CI machines)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas.settings import BOTOCORE_VARIABLES, Settings, env_example, env_name
from tests.helpers.common import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = {
    name: spec
    for name, spec in SERVICES.items()
    if spec.get("image", "").startswith("healthomics-event-workers")
}
KNOWN = {env_name(field) for field in Settings.model_fields.values()} | set(BOTOCORE_VARIABLES)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    # the x-app anchor is an extension field, allowed by the spec's ^x- pattern
    jsonschema.validate(COMPOSE, schema)


def test_compose_has_every_process() -> None:
    expected = {
        "redis",
        "postgres",
        "migrate",
        "poller",
        "sweeper",
        "archive",
        "enrich",
        "callback",
        "imports",
        "metrics",
        "flower",
        "moto",
        "simulator",
        "receiver",
    }
    assert expected <= set(SERVICES)
    assert {
        SERVICES[name].get("profiles", []) == ["local"]
        for name in ("moto", "simulator", "receiver")
    } == {True}
    assert any(v.startswith("postgres-data:") for v in SERVICES["postgres"]["volumes"])


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_every_service_command_is_a_real_subcommand(service: str) -> None:
    command = APP_SERVICES[service]["command"]
    words = [word for word in command if not word.startswith("-")]
    # the subcommand path is the leading words up to the first option or value
    path = []
    for word in command:
        if word.startswith("-"):
            break
        path.append(word)
    assert words, service
    done = subprocess.run(
        [sys.executable, "-m", "omics_events", *path, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
    )
    assert done.returncode == 0, f"{service}: {' '.join(path)} --help\n{done.stderr}"
    assert "Usage" in done.stdout or "usage" in done.stdout


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_every_variable_a_service_sets_is_one_the_settings_know(service: str) -> None:
    environment = APP_SERVICES[service].get("environment", {})
    unknown = set(environment) - KNOWN
    assert not unknown, f"{service} sets variables the settings do not know: {unknown}"


def test_services_that_need_redis_or_postgres_wait_for_their_health_checks() -> None:
    for name, spec in SERVICES.items():
        depends = spec.get("depends_on", {})
        for dependency in ("redis", "postgres"):
            if dependency in depends:
                assert depends[dependency]["condition"] == "service_healthy", (name, dependency)
    for name in (
        "poller",
        "sweeper",
        "archive",
        "enrich",
        "callback",
        "imports",
        "metrics",
        "flower",
        "migrate",
    ):
        depends = SERVICES[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    for dependency in ("redis", "postgres"):
        assert "test" in SERVICES[dependency]["healthcheck"]


def test_workers_wait_for_migrations_and_each_pool_is_sized_on_its_own() -> None:
    for pool in ("archive", "enrich", "callback", "imports", "metrics"):
        spec = SERVICES[pool]
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert spec["command"] == ["worker", "--pool", pool]
        assert {"WORKER_POOL", "WORKER_CONCURRENCY", "OMICS_PROCESS"} <= set(spec["environment"])


def test_flower_is_authenticated_and_published_on_loopback_only() -> None:
    flower = SERVICES["flower"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])


def test_env_example_lists_every_variable() -> None:
    text = (REPO / ".env.example").read_text()
    assert text == env_example(), "run `make docs` to regenerate .env.example"
    for field in Settings.model_fields.values():
        assert re.search(rf"^# {env_name(field)}=", text, re.MULTILINE), env_name(field)


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_the_command_as_entrypoint() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert re.search(
        r"^HEALTHCHECK .*\n\s+CMD \[\"omics-events\", \"health\"\]", dockerfile, re.MULTILINE
    )
    assert 'ENTRYPOINT ["omics-events"]' in dockerfile
    assert "pip install ." in dockerfile  # dependencies from pyproject.toml


def test_health_command_reports_progress(tmp_path: Path) -> None:
    health_file = tmp_path / "health"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    env |= {"HEALTH_FILE": str(health_file), "HEALTH_MAX_AGE": "60"}

    def run(kind: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "omics_events", "health", "--kind", kind],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    assert run("poller").returncode == 1  # no progress recorded yet
    health_file.touch()
    assert run("poller").returncode == 0
    os.utime(health_file, (0, 0))  # progress long ago: stuck
    stuck = run("poller")
    assert stuck.returncode == 1 and "unhealthy" in stuck.stdout
    assert run("worker:archive").returncode == 0  # an idle worker (empty queue) is healthy
