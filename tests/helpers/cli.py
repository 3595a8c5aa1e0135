"""Running ``omics-events`` in the test's process, and more databases for a test that needs them.

``omics_cli`` and ``make_pg`` are fixtures (registered in tests/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from omics_events import cli
from tests.helpers.common import libpq, unique

CHECKSUM = re.compile(r"checksum ([0-9a-f]{64})")


@pytest.fixture
def omics_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``omics-events ARGS`` in this process, against ``database_url``; returns the result."""
    runner = CliRunner()

    def invoke(database_url: str, *args: str, code: int = 0) -> Any:
        for name in ("REDIS_URL", "LOG_FORMAT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DATABASE_URL", database_url)
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def printed_checksum(result: Any) -> str:
    found = CHECKSUM.findall(result.stdout)
    assert found, result.output
    return str(found[-1])


@pytest.fixture
def make_pg(pg_base_url: str, pg_template: str) -> Iterator[Callable[[], str]]:
    """More fresh, migrated PostgreSQL databases for one test."""
    names: list[str] = []

    def make() -> str:
        name = unique("oe_rr_")
        with psycopg.connect(libpq(pg_base_url), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        names.append(name)
        return make_url(pg_base_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with psycopg.connect(libpq(pg_base_url), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
