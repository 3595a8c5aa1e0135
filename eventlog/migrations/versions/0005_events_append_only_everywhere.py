"""``events`` append-only on SQLite too, and by privilege on PostgreSQL.

SQLite: two triggers abort any UPDATE or DELETE of a row of ``events`` (SQLite has no
TRUNCATE; ``DELETE FROM events`` fires the trigger like any other delete).  Before this, the
embedded default let any statement rewrite history, which PostgreSQL's triggers (0001) refused.

PostgreSQL: the triggers of 0001 stay.  On top of them, no role but the table's owner keeps
UPDATE, DELETE or TRUNCATE on ``events``, nor any write on ``alembic_version``: a deployment that
gives its processes a role of their own through default privileges (``eventlog/roles.sql``,
docker-compose) would otherwise hand them those privileges on the tables the migrations create.
The processes then cannot rewrite the log even if a trigger is disabled, which only the owner
can do.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = {
    "events_no_update": "UPDATE",
    "events_no_delete": "DELETE",
}

#: Every grant of the given privileges on a table to a role other than its owner, revoked.
REVOKE_FROM_ALL_BUT_OWNER = """
DO $$
DECLARE
    grant_row record;
BEGIN
    FOR grant_row IN
        SELECT DISTINCT c.relname AS name,
               CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS role
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) AS acl
        LEFT JOIN pg_roles r ON r.oid = acl.grantee
        WHERE c.oid IN (to_regclass('events'), to_regclass('alembic_version'))
          AND acl.grantee <> c.relowner
          AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
          AND NOT (c.relname = 'events' AND acl.privilege_type = 'INSERT')
    LOOP
        IF grant_row.name = 'events' THEN
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON events FROM %s', grant_row.role);
        ELSE
            EXECUTE format(
                'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM %s', grant_row.role
            );
        END IF;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name, operation in SQLITE_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON events BEGIN "
                f"SELECT RAISE(ABORT, 'events is append-only: {operation} is not allowed'); END"
            )
    elif dialect == "postgresql":
        op.execute(REVOKE_FROM_ALL_BUT_OWNER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    # PostgreSQL: privileges are not handed back; eventlog/roles.sql grants what a role needs
