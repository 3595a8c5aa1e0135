"""Engines and migrations, built from settings — never at import time.

PostgreSQL URLs are driven by psycopg 3 (``postgresql://`` is rewritten to
``postgresql+psycopg://``).  SQLite files get WAL journaling and a busy timeout, so the embedded
default tolerates the poller and in-process workers writing at once.

A process's engine (:func:`engine_for`) has a connect timeout and a statement timeout on
PostgreSQL (``DATABASE_CONNECT_TIMEOUT``, ``DATABASE_STATEMENT_TIMEOUT``): under the ``threads``
pool a connection attempt to a dead server, or a statement stuck behind a lock, would otherwise
hold a worker thread forever; with them it fails, and the task is retried.  Work that is long
by nature — a rebuild's reads and swap, a migration — lifts the limit for its own transaction
only (:func:`eventlog.dialect.lift_statement_timeout`, ``SET LOCAL``), so nothing else runs
without it.

Migrations are Alembic's, shipped inside the package (``eventlog/migrations``) so an installed
wheel can upgrade a database without a checkout: ``omics-events db upgrade``.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from eventlog.dialect import lift_statement_timeout

if TYPE_CHECKING:
    from alembic.config import Config

    from schemas.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
#: The SQL that makes the role the processes connect as on PostgreSQL (``omics_events_app``:
#: may append to and read the log, never change it; no DDL).  Run by the tables' owner;
#: docker-compose runs it when it creates the database.  Its header says the rest.
APP_ROLE_SQL = Path(__file__).with_name("roles.sql")


def normalise_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL; SQLite as is."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def engine_for(settings: Settings, **kwargs: Any) -> Engine:
    """The engine of a long-running process: ``DATABASE_URL`` with the configured timeouts."""
    return create_db_engine(
        settings.database_url,
        connect_timeout=settings.database_connect_timeout,
        statement_timeout=settings.database_statement_timeout,
        **kwargs,
    )


def create_db_engine(
    url: str,
    *,
    connect_timeout: int | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for the log; SQLite parent folders are created on demand.

    ``connect_timeout`` (seconds) and ``statement_timeout`` (seconds) apply to PostgreSQL;
    ``None`` or 0 means no limit (a tool's or a test's engine; processes use :func:`engine_for`).
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 5)
    kwargs.setdefault("json_deserializer", loads_json)
    if connect_timeout:
        connect_args = {"connect_timeout": connect_timeout, **kwargs.get("connect_args", {})}
        kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    session = "SET TIME ZONE 'UTC'"
    if statement_timeout:
        session += f"; SET statement_timeout = {max(1, round(statement_timeout * 1000))}"
    event.listen(engine, "connect", partial(_postgresql_session, statements=session))
    return engine


def _postgresql_session(dbapi_connection: Any, _record: Any, *, statements: str) -> None:
    # sessions in UTC: psycopg then hands timestamps back with datetime.UTC itself, which every
    # reader of the log wants anyway (no astimezone() per value in a rebuild).  SETs, not startup
    # options (``options=-c …``): connection poolers (PgBouncer) refuse unknown startup
    # parameters.  One round trip for all of them.
    with dbapi_connection.cursor() as cursor:
        cursor.execute(statements)
    dbapi_connection.commit()


#: Digits as b"0", everything else as a space: a run of 19 digits — an integer orjson may
#: read as a float (it keeps 64 bits) — is then one bytes.find (≈ 1 µs; a regex took 11).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_INTEGER = b"0" * 19


def loads_json(data: str | bytes) -> Any:
    """JSONB and JSON values from PostgreSQL: orjson (3-4 times faster than :func:`json.loads`
    — a rebuild decodes every payload of the log), the standard decoder where orjson would
    not give the same value: integers past 64 bits, and anything it refuses."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if raw.translate(_DIGITS_ONLY).find(_LONG_INTEGER) < 0:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config() -> Config:
    # Alembic is imported where it is used: importing it costs half a second, which every
    # process that only reads or folds the log (a rebuild's fold processes) would pay
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The code's migration head(s), comma-joined when branches exist."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    return ",".join(sorted(heads)) or None


def current_revision(engine: Engine) -> str | None:
    """The database's revision(s), comma-joined like :func:`head_revision`."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None


def upgrade(engine: Engine, revision: str = "heads") -> str | None:
    """Apply migrations up to ``revision``; returns the revision the database is now at."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        lift_statement_timeout(connection)  # an index on a big log may take a while
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(engine)


class SchemaOutOfDate(RuntimeError):
    """The database is not at the code's migration head."""


def require_head(engine: Engine) -> None:
    """Refuse to run against a database the code does not match."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database is at migration {current or 'none'}, the code needs {head}: "
            "run `omics-events db upgrade`"
        )
