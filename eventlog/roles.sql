-- The PostgreSQL role the long-running processes connect as: omics_events_app.
-- docs/operations.md (Security) explains the split; tests/test_app_role.py proves it.
--
-- Run by the owner of the tables (the role `omics-events db upgrade` connects as, with
-- CREATEROLE) in the database of the log, before the first migration or at any time after:
-- it is idempotent.  docker-compose mounts it in the server's /docker-entrypoint-initdb.d, so it
-- runs once when the database is created; on an existing database run it with psql -f.
--
-- What omics_events_app may do:
--   * the log (events): SELECT and INSERT only, never UPDATE, DELETE or TRUNCATE (on top of the
--     append-only triggers, which the owner could disable);
--   * every other table (outbox, projections, dead letters, cursors, ...): read and write rows,
--     as the pipeline, the sweeper and a rebuild do;
--   * no DDL, and no write to alembic_version: migrations are the owner's.
-- Tables the migrations create later get the same through default privileges; migration 0005
-- takes UPDATE/DELETE/TRUNCATE on events (and writes on alembic_version) back from every role
-- but the owner.
--
-- Its password is the session setting omics.app_password when one is given, e.g.
--   PGOPTIONS='-c omics.app_password=...' psql "$OWNER_URL" -f eventlog/roles.sql
-- (what docker-compose does); without it the role keeps the password it has (none when created
-- here: set one with ALTER ROLE, or authenticate the role another way).  The password never
-- appears in this file or in the statements the server may log.

DO $$
DECLARE
    password text := coalesce(current_setting('omics.app_password', true), '');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'omics_events_app') THEN
        CREATE ROLE omics_events_app LOGIN;
    END IF;
    IF password <> '' THEN
        EXECUTE format('ALTER ROLE omics_events_app LOGIN PASSWORD %L', password);
    END IF;
    EXECUTE format(
        'GRANT CONNECT, TEMPORARY ON DATABASE %I TO omics_events_app', current_database()
    );
END
$$;

GRANT USAGE ON SCHEMA public TO omics_events_app;

-- what the owner creates from now on (the migrations) ...
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO omics_events_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO omics_events_app;

-- ... and what it has already
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO omics_events_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO omics_events_app;

-- except the log, append-only, and the schema's version, the owner's
DO $$
BEGIN
    IF to_regclass('events') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON events FROM omics_events_app;
    END IF;
    IF to_regclass('alembic_version') IS NOT NULL THEN
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM omics_events_app;
    END IF;
END
$$;
