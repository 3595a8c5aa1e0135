"""The log cannot be rewritten: triggers on both backends, and on PostgreSQL a role for the
processes that may append to and read ``events`` but never change it (eventlog/roles.sql, the
SQL docker-compose runs when it creates the database)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from eventlog import store
from eventlog.db import APP_ROLE_SQL, create_db_engine, upgrade
from eventlog.entries import LogEntry
from eventlog.rebuild import rebuild
from eventlog.tables import events, outbox, runs
from tests.helpers.common import REPO, unique
from tests.helpers.factories import run_event

APP_ROLE = "omics_events_app"
WHEN = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def entry(event_id: str, status: str = "RUNNING", offset: int = 0) -> LogEntry:
    payload = run_event(event_id, status=status)
    return LogEntry(
        event_id=event_id,
        origin="aws",
        source="aws.omics",
        detail_type="Run Status Change",
        event_time=WHEN + timedelta(seconds=offset),
        payload=payload,
        resource_id=payload["detail"]["uuid"],
        status=status,
    )


REWRITES = ["UPDATE events SET status = 'COMPLETED'", "DELETE FROM events"]


@pytest.mark.parametrize("statement", REWRITES)
def test_update_and_delete_of_events_fail_on_every_backend(backend: str, statement: str) -> None:
    engine = create_db_engine(backend)
    with engine.begin() as connection:
        store.append(connection, entry("a-1"), ["archive"])
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text(statement))
    with engine.connect() as connection:
        assert connection.execute(sa.select(events.c.status)).scalars().all() == ["RUNNING"]
        # the tables around the log stay writable
        store.complete(connection, "a-1", "archive", "archived")
        connection.commit()
        assert connection.execute(sa.select(outbox.c.outcome)).scalar_one() == "archived"
    engine.dispose()


@pytest.fixture
def fresh_database(pg_base_url: str) -> Iterator[str]:
    """An empty PostgreSQL database (no migration yet), as docker-compose's server starts."""
    name = unique("oe_roles_")
    admin_url = make_url(pg_base_url).set(drivername="postgresql")
    with psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    yield make_url(pg_base_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # the role's only grants were in that database; another test run may hold it still
        with contextlib.suppress(psycopg.Error):
            db.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")


def _run_as_owner(url: str, sql: str, **settings: str) -> None:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as owner:
        for name, value in settings.items():
            owner.execute("SELECT set_config(%s, %s, false)", (name, value))
        owner.execute(sql)  # the file as psql runs it: several statements, DO blocks


def test_the_app_role_appends_and_reads_but_cannot_rewrite_the_log(fresh_database: str) -> None:
    # what docker-compose does: the init SQL when the database is created, then the migrations
    # as the owner, then every process as the app role
    _run_as_owner(fresh_database, APP_ROLE_SQL.read_text(), **{"omics.app_password": "app-pw"})
    owner = create_db_engine(fresh_database)
    upgrade(owner)
    with owner.connect() as connection:
        has_password = connection.execute(
            sa.text("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = :r"),
            {"r": APP_ROLE},
        ).scalar_one()
    owner.dispose()
    assert has_password
    app_url = (
        make_url(fresh_database).set(username=APP_ROLE).render_as_string(hide_password=False)
    )  # trust authentication here: the password is set, not checked
    app = create_db_engine(app_url)
    try:
        with app.begin() as connection:
            assert connection.execute(sa.text("SELECT current_user")).scalar_one() == APP_ROLE
            store.append(connection, entry("r-1"), ["archive"])
            # a big batch takes the COPY path through a temporary staging table
            numbers = range(2, store.BULK_FROM + 3)
            batch = [(entry(f"r-{i}", offset=i), ["archive"]) for i in numbers]
            store.append_many(connection, batch)
            store.append(connection, entry("r-end", status="COMPLETED", offset=999))
        with app.begin() as connection:
            store.complete(connection, "r-1", "archive", "archived")
            assert store.get(connection, "r-1") is not None
            assert connection.execute(sa.select(runs.c.status)).scalar_one() == "COMPLETED"
        rebuilt = rebuild(app)  # rewrites every projection row: allowed
        assert rebuilt.log_events == store.BULK_FROM + 3

        for statement in [*REWRITES, "TRUNCATE events CASCADE"]:
            with (
                pytest.raises(sa.exc.ProgrammingError, match="permission denied for table events"),
                app.begin() as connection,
            ):
                connection.execute(sa.text(statement))
        for statement in (
            "UPDATE alembic_version SET version_num = 'x'",
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete",
            "CREATE TABLE sneaky (id int)",
        ):
            with pytest.raises(sa.exc.ProgrammingError), app.begin() as connection:
                connection.execute(sa.text(statement))
        with app.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        assert count == store.BULK_FROM + 3
    finally:
        app.dispose()


def test_compose_migrates_as_the_owner_and_runs_everything_else_as_the_app_role() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and init[0].split(":")[0] == "./eventlog/roles.sql"
    assert (REPO / "eventlog" / "roles.sql").samefile(APP_ROLE_SQL)
    assert "omics.app_password" in services["postgres"]["environment"]["PGOPTIONS"]
    assert make_url(services["migrate"]["environment"]["DATABASE_URL"]).username == "omics"
    for name, spec in services.items():
        url = spec.get("environment", {}).get("DATABASE_URL")
        if url and name != "migrate":
            assert make_url(url).username == APP_ROLE, name
