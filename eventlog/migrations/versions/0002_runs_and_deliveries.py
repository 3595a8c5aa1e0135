"""Run and callback projections (``runs``, ``deliveries``) and the reconciler's ``run_checks``.

Both projections are folds over ``events`` (eventlog/projections.py), so this migration only
creates empty tables: a database upgraded after events were logged gets them filled by folding
the log again (the rebuild), not by a data migration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JsonColumn = sa.JSON().with_variant(JSONB(), "postgresql")
SeqColumn = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_uuid", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("arn", sa.String(2048)),
        sa.Column("run_name", sa.String(256)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_rank", sa.Integer, nullable=False),
        sa.Column("status_time", Stamp, nullable=False),
        sa.Column("status_event_id", sa.String(256), nullable=False),
        sa.Column("wes_run_id", sa.String(256)),
        sa.Column("workflow_id", sa.String(64)),
        sa.Column("workflow_name", sa.String(256)),
        sa.Column("run_group_id", sa.String(64)),
        sa.Column("run_output_uri", sa.Text),
        sa.Column("creation_time", Stamp),
        sa.Column("start_time", Stamp),
        sa.Column("stop_time", Stamp),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("status_message", sa.Text),
        sa.Column("failure_reason", sa.String(256)),
        sa.Column("tags", JsonColumn),
        sa.Column("output_mapping", JsonColumn),
        sa.Column("log_urls", JsonColumn),
        sa.Column("enriched_event_id", sa.String(256)),
        sa.Column("enriched_rank", sa.Integer),
        sa.Column("enriched_time", Stamp),
        sa.Column("first_seen_at", Stamp, nullable=False),
        sa.Column("last_seen_at", Stamp, nullable=False),
        sa.Column("last_event_time", Stamp, nullable=False),
        sa.Column("last_event_id", sa.String(256), nullable=False),
        sa.Column("callback_status", sa.String(32)),
        sa.Column("callback_rank", sa.Integer),
        sa.Column("callback_event_id", sa.String(256)),
        sa.Column("callback_event_time", Stamp),
        sa.Column("callback_delivered_at", Stamp),
        sa.PrimaryKeyConstraint("run_uuid", name="pk_runs"),
    )
    op.create_index("ix_runs_run_id", "runs", ["run_id"])
    op.create_index("ix_runs_wes_run_id", "runs", ["wes_run_id"])
    op.create_index("ix_runs_status_rank", "runs", ["status_rank", "last_seen_at"])

    op.create_table(
        "deliveries",
        sa.Column("id", SeqColumn, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(256), nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("caused_by", sa.String(256)),
        sa.Column("run_uuid", sa.String(64)),
        sa.Column("run_id", sa.String(32)),
        sa.Column("wes_run_id", sa.String(256)),
        sa.Column("status", sa.String(32)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("response_body", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("url", sa.String(2048)),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint("delivery_id", name="uq_deliveries_delivery_id"),
    )
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    op.create_index("ix_deliveries_run_uuid", "deliveries", ["run_uuid"])
    op.create_index("ix_deliveries_outcome", "deliveries", ["outcome"])

    op.create_table(
        "run_checks",
        sa.Column("run_uuid", sa.String(64), nullable=False),
        sa.Column("checked_at", Stamp, nullable=False),
        sa.Column("api_status", sa.String(32)),
        sa.Column("result", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", name="pk_run_checks"),
    )


def downgrade() -> None:
    op.drop_table("run_checks")
    op.drop_table("deliveries")
    op.drop_table("runs")
