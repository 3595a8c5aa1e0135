"""Fixtures that start what a test needs, against real servers, and clean up after it.

* PostgreSQL and Redis are the real servers named by ``DATABASE_URL`` and ``REDIS_URL``
  (defaults: the local ones on 127.0.0.1).  Each test gets its own PostgreSQL database, cloned
  from a migrated template, and its own Redis key prefix, so tests are independent and
  parallel-safe.
* AWS is a moto server over real HTTP (one per session); each test gets its own bucket.
* ``backend`` parametrises a test over SQLite and PostgreSQL: one contract, every backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import redis as redis_lib
from sqlalchemy.engine import make_url

from eventlog.db import create_db_engine, upgrade
from schemas.settings import Settings
from simulator.local_aws import LocalAws, local_aws_environment, start_local_aws
from tests.helpers.callback_rig import make_rig as make_rig
from tests.helpers.cli import make_pg as make_pg
from tests.helpers.cli import omics_cli as omics_cli
from tests.helpers.common import libpq, unique
from tests.helpers.import_world import import_world as import_world

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
logging.getLogger("werkzeug").setLevel(logging.WARNING)


# --- scheduling (pytest-xdist) ----------------------------------------------------------------
#
# The suite's time is in a few dozen long tests, each marked ``slow`` (the marker's meaning:
# more than a few seconds).  ``--dist load --maxschedchunk 1`` hands the next test to whichever
# worker is free, in collection order; so the slow tests come first, and a long test cannot
# start last and run alone while the other workers idle.  The slow tests are interleaved over
# their modules (the first slow test of every module, then the second, ...) so that the fault
# scenarios, each driving a whole process stack, do not all run at once on two cores.
# Only the order changes: every test runs, on its own, as before.


def _slow_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """Slow tests first, interleaved over their modules; then the rest in file order."""
    rank_in_module: dict[str, int] = {}
    module_order: dict[str, int] = {}
    keys: dict[str, tuple[int, int, int]] = {}
    for position, item in enumerate(items):
        module = item.nodeid.partition("::")[0]
        module_order.setdefault(module, len(module_order))
        if item.get_closest_marker("slow") is None:
            keys[item.nodeid] = (1, 0, position)
            continue
        rank = rank_in_module.get(module, 0)
        rank_in_module[module] = rank + 1
        keys[item.nodeid] = (0, rank, module_order[module])
    return sorted(items, key=lambda item: keys[item.nodeid])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist workers only (each sorts alike, so their collections still agree): the
    order above.  A plain ``pytest`` run keeps the file order."""
    if hasattr(config, "workerinput"):
        items[:] = _slow_first(items)


#: pytest-xdist workers per core for ``-n auto``.  The long tests mostly wait on the clock — an
#: outage of a minute, a receiver answering 503, a watchdog's interval — not on a core: on the
#: 2-core CI machine two workers ran the suite in 12 min with the cores half idle, four in 9.
WORKERS_PER_CORE = 2


@pytest.hookimpl(optionalhook=True, wrapper=True)  # a pytest-xdist hook
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """``-n auto``: :data:`WORKERS_PER_CORE` times the cores pytest-xdist counts (its count
    honours CPU affinity); ``PYTEST_XDIST_AUTO_NUM_WORKERS``, when set, is taken as it is."""
    cores = yield
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return cores
    return WORKERS_PER_CORE * cores


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not url.startswith("postgres"):
        url = DEFAULT_DATABASE_URL
    try:
        with psycopg.connect(libpq(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable at {url}: {error}")
    return url


def _admin(base_url: str) -> psycopg.Connection:
    return psycopg.connect(libpq(base_url), autocommit=True)


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


class _Clones:
    """Fresh clones of the template, made one ahead and dropped behind, in a thread of their
    own: a test still gets a database nobody has touched, without waiting for PostgreSQL to
    copy one (or to drop the last test's) in between."""

    def __init__(self, base_url: str, template: str) -> None:
        self.base_url, self.template = base_url, template
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-clones")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def _create(self) -> str:
        name = unique("oe_test_")
        with _admin(self.base_url) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop(self, name: str) -> None:
        with _admin(self.base_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        ahead, self._next = self._next, None
        try:
            name = ahead.result() if ahead is not None else self._create()
        except Exception:  # made ahead and failed: try again here, where a failure is seen
            name = self._create()
        self._next = self._thread.submit(self._create)
        return name

    def give_back(self, name: str) -> None:
        self._drops.append(self._thread.submit(self._drop, name))

    def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):
                self.give_back(self._next.result())
        self._thread.shutdown(wait=True)
        for drop in self._drops:
            drop.result()  # a database that could not be dropped is an error, as before


@pytest.fixture(scope="session")
def _pg_clones(pg_base_url: str, pg_template: str) -> Iterator[_Clones]:
    clones = _Clones(pg_base_url, pg_template)
    yield clones
    clones.close()


@pytest.fixture
def pg_url(pg_base_url: str, _pg_clones: _Clones) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = _pg_clones.take()
    yield make_url(pg_base_url).set(database=name).render_as_string(hide_password=False)
    _pg_clones.give_back(name)


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
