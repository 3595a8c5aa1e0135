"""Fixtures that start what a test needs, against real servers, and clean up after it.

* PostgreSQL and Redis are the real servers named by ``DATABASE_URL`` and ``REDIS_URL``
  (defaults: the local ones on 127.0.0.1).  Each test gets its own PostgreSQL database, cloned
  from a migrated template, and its own Redis key prefix, so tests are independent and
  parallel-safe.
* AWS is a moto server over real HTTP (one per session); each test gets its own bucket.
* ``backend`` parametrises a test over SQLite and PostgreSQL: one contract, every backend.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import redis as redis_lib
from sqlalchemy.engine import make_url

from eventlog.db import create_db_engine, upgrade
from producers.local_aws import LocalAws, local_aws_environment, start_local_aws
from schemas.settings import Settings

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REPO = Path(__file__).resolve().parent.parent
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not url.startswith("postgres"):
        url = DEFAULT_DATABASE_URL
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable at {url}: {error}")
    return url


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(base_url: str) -> psycopg.Connection:
    return psycopg.connect(_libpq(base_url), autocommit=True)


@pytest.fixture(scope="session")
def pg_template(pg_base_url: str) -> Iterator[str]:
    """A migrated database that every test's database is cloned from (fast)."""
    name = unique("oe_tmpl_")
    with _admin(pg_base_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    template_url = make_url(pg_base_url).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(template_url)
    upgrade(engine)
    engine.dispose()
    yield name
    with _admin(pg_base_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_base_url: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = unique("oe_test_")
    with _admin(pg_base_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield make_url(pg_base_url).set(database=name).render_as_string(hide_password=False)
    with _admin(pg_base_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/events.db"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database URL of each backend in turn: one contract suite, every backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        redis_lib.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis_lib.RedisError as error:
        pytest.skip(f"Redis not reachable at {url}: {error}")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = unique("oe-test-") + ":"
    yield prefix
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def moto() -> Iterator[LocalAws]:
    aws = start_local_aws()
    yield aws
    aws.stop()


@pytest.fixture
def aws_env(moto: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point botocore (every client of ours) at the moto server; returns its endpoint."""
    for key, value in local_aws_environment(moto.endpoint_url).items():
        monkeypatch.setenv(key, value)
    return moto.endpoint_url


@pytest.fixture
def s3(aws_env: str) -> Any:
    return boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = unique("oe-archive-")
    s3.create_bucket(Bucket=name)
    return name


# --- settings and apps -----------------------------------------------------------------------


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Settings from explicit values only: the developer's environment cannot leak in."""
    for name in ("DATABASE_URL", "REDIS_URL", "ARCHIVE_URI", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)

    def build(**values: Any) -> Settings:
        return Settings(**values)

    return build


@pytest.fixture
def pipeline_settings(
    make_settings: Callable[..., Settings],
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    bucket: str,
) -> Settings:
    """The production shape: PostgreSQL, Redis, S3 (moto)."""
    return make_settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        archive_uri=f"s3://{bucket}/omics-run-events",
        outbox_redeliver_after=2.0,
        task_retry_backoff_max=2,
    )
