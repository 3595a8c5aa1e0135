"""Store and task projections (``stores``, ``tasks``).

Both are folds over ``events`` (eventlog/resource_projections.py), so this migration only
creates empty tables; a database upgraded after events were logged fills them with
``omics-events rebuild``, not by a data migration.  It branches from 0001 like 0002 and 0003:
the tables are independent of theirs, and ``upgrade`` goes to every head.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("store_type", sa.String(16), nullable=False),
        sa.Column("store_id", sa.String(256), nullable=False),
        sa.Column("arn", sa.String(2048)),
        sa.Column("store_name", sa.String(256)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_rank", sa.Integer, nullable=False),
        sa.Column("status_final", sa.Integer, nullable=False),
        sa.Column("status_time", Stamp, nullable=False),
        sa.Column("status_event_id", sa.String(256), nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("first_event_time", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("store_type", "store_id", name="pk_stores"),
    )
    op.create_index("ix_stores_status", "stores", ["status"])
    op.create_table(
        "tasks",
        sa.Column("run_uuid", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("arn", sa.String(2048)),
        sa.Column("run_id", sa.String(32)),
        sa.Column("run_arn", sa.String(2048)),
        sa.Column("run_name", sa.String(256)),
        sa.Column("workflow_id", sa.String(64)),
        sa.Column("workflow_name", sa.String(256)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_rank", sa.Integer, nullable=False),
        sa.Column("status_time", Stamp, nullable=False),
        sa.Column("status_event_id", sa.String(256), nullable=False),
        sa.Column("first_event_time", Stamp, nullable=False),
        sa.Column("running_time", Stamp),
        sa.Column("stop_time", Stamp),
        sa.Column("duration_seconds", sa.Float),
        sa.PrimaryKeyConstraint("run_uuid", "task_id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_run_id", "tasks", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_run_id", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_stores_status", table_name="stores")
    op.drop_table("stores")
