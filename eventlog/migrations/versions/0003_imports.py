"""Read-set import projections (``import_jobs``, ``import_sources``, ``read_sets``) and the
cursors of log followers (``log_cursors``: the metrics pool and the alerts).

The projections are folds over ``events`` (eventlog/import_projections.py), so this migration
only creates empty tables; a database upgraded after events were logged fills them by folding
the log again (``import_projections.rebuild``), not by a data migration.  It branches from 0001,
like 0002: the two issues' tables are independent, and ``upgrade`` goes to every head.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

JsonColumn = sa.JSON().with_variant(JSONB(), "postgresql")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("role_arn", sa.String(2048)),
        sa.Column("status", sa.String(32)),
        sa.Column("status_rank", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status_message", sa.Text),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("plan_id", sa.String(256)),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("parent_job_id", sa.String(64)),
        sa.Column("client_token", sa.String(128)),
        sa.Column("source_count", sa.Integer),
        sa.Column("finished_count", sa.Integer),
        sa.Column("failed_count", sa.Integer),
        sa.Column("created_at", Stamp),
        sa.Column("completed_at", Stamp),
        sa.PrimaryKeyConstraint("job_id", name="pk_import_jobs"),
    )
    op.create_index("ix_import_jobs_plan_id", "import_jobs", ["plan_id"])
    op.create_index("ix_import_jobs_status_rank", "import_jobs", ["status_rank"])

    op.create_table(
        "import_sources",
        sa.Column("source_key", sa.String(1100), nullable=False),
        sa.Column("source1", sa.String(1100)),
        sa.Column("source2", sa.String(1100)),
        sa.Column("paired", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source1_event_id", sa.String(256)),
        sa.Column("source2_event_id", sa.String(256)),
        sa.Column("file_type", sa.String(8)),
        sa.Column("subject_id", sa.String(128)),
        sa.Column("sample_id", sa.String(128)),
        sa.Column("reference_arn", sa.String(2048)),
        sa.Column("name", sa.String(128)),
        sa.Column("extra", JsonColumn),
        sa.Column("store_id", sa.String(64)),
        sa.Column("role_arn", sa.String(2048)),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_final", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("outcome_rank", sa.Integer, nullable=False, server_default="0"),
        sa.Column("plan_id", sa.String(256)),
        sa.Column("job_id", sa.String(64)),
        sa.Column("read_set_id", sa.String(64)),
        sa.Column("classification", sa.String(16)),
        sa.Column("status_message", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("registered_at", Stamp),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("source_key", name="pk_import_sources"),
    )
    op.create_index("ix_import_sources_outcome", "import_sources", ["outcome", "store_id"])
    op.create_index("ix_import_sources_job_id", "import_sources", ["job_id"])

    op.create_table(
        "read_sets",
        sa.Column("read_set_id", sa.String(64), nullable=False),
        sa.Column("store_id", sa.String(64)),
        sa.Column("status", sa.String(32)),
        sa.Column("status_rank", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status_time", Stamp),
        sa.Column("status_message", sa.Text),
        sa.Column("job_id", sa.String(64)),
        sa.Column("source_key", sa.String(1100)),
        sa.Column("subject_id", sa.String(128)),
        sa.Column("sample_id", sa.String(128)),
        sa.PrimaryKeyConstraint("read_set_id", name="pk_read_sets"),
    )
    op.create_index("ix_read_sets_job_id", "read_sets", ["job_id"])
    op.create_index("ix_read_sets_source_key", "read_sets", ["source_key"])

    op.create_table(
        "log_cursors",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_dead_letter_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(256)),
        sa.Column("lease_until", Stamp),
        sa.Column("emitted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("dropped", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("state", JsonColumn),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_log_cursors"),
    )


def downgrade() -> None:
    op.drop_table("log_cursors")
    op.drop_index("ix_read_sets_source_key", table_name="read_sets")
    op.drop_index("ix_read_sets_job_id", table_name="read_sets")
    op.drop_table("read_sets")
    op.drop_index("ix_import_sources_job_id", table_name="import_sources")
    op.drop_index("ix_import_sources_outcome", table_name="import_sources")
    op.drop_table("import_sources")
    op.drop_index("ix_import_jobs_status_rank", table_name="import_jobs")
    op.drop_index("ix_import_jobs_plan_id", table_name="import_jobs")
    op.drop_table("import_jobs")
