"""The SQL shape of the event log, its outbox and its dead letters.

``events``
    The append-only log: every HealthOmics event received (``origin='aws'``) and every fact the
    pipeline established about one (``origin='pipeline'``: *Event Archived*, *Run Enriched*, …).
    ``seq`` is the log order; ``event_id`` is unique, so appending the same event twice is a no-op.
    Triggers reject UPDATE, DELETE and TRUNCATE on PostgreSQL and SQLite (and the processes'
    role may not issue them, ``eventlog/roles.sql``): history cannot be rewritten.

``outbox``
    The work an appended event still owes, one row per (event, stage).  It is written in the same
    transaction as the event, so no event can be durable without its work being durable too; the
    sweeper re-publishes rows whose task never finished (lost broker, killed worker).
    ``not_before`` holds long delays (callback backoff, quota waits) that must not live in a Celery
    countdown (a countdown longer than the broker's visibility timeout runs twice on Redis).

``dead_letters``
    What could not be accepted or could not be done, with the reason and the raw bytes, so that
    nothing is lost silently and an operator can fix and resend it.

``runs``, ``deliveries``
    Read models folded from the log (:mod:`eventlog.projections`): every run keyed by its
    ``uuid`` with its status (never moving backwards), enrichment and callback state; every
    callback attempt's outcome.  ``run_checks`` is the reconciler's bookkeeping, not a fold.

The payload column is JSONB on PostgreSQL and JSON on SQLite (:data:`JsonColumn`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

#: JSONB where the database has it, plain JSON elsewhere.
JsonColumn = JSON().with_variant(JSONB(), "postgresql")
#: SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for a log.
SeqColumn = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = Table(
    "events",
    metadata,
    Column("seq", SeqColumn, primary_key=True, autoincrement=True),
    Column("event_id", String(256), nullable=False, unique=True),
    Column("origin", String(16), nullable=False),  # 'aws' | 'pipeline'
    Column("source", String(128), nullable=False),
    Column("detail_type", String(128), nullable=False),
    Column("resource_arn", String(2048)),
    Column("resource_id", String(1024)),
    Column("status", String(64)),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("caused_by", String(256)),
    Column("payload", JsonColumn, nullable=False),
    Index("ix_events_resource_id", "resource_id"),
    Index("ix_events_caused_by", "caused_by"),
    Index("ix_events_event_time", "event_time"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", SeqColumn, primary_key=True, autoincrement=True),
    Column("event_id", String(256), ForeignKey("events.event_id"), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("publish_count", Integer, nullable=False, default=0),
    Column("done_at", DateTime(timezone=True)),
    Column("outcome", String(64)),
    UniqueConstraint("event_id", "stage", name="uq_outbox_event_id_stage"),
    Index("ix_outbox_pending", "done_at", "not_before"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", SeqColumn, primary_key=True, autoincrement=True),
    Column("dead_letter_id", String(256), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),  # 'rejected' | 'stage' | 'security' …
    Column("stage", String(32)),
    Column("event_id", String(256)),
    Column("detail_type", String(128)),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Index("ix_dead_letters_event_id", "event_id"),
)

# --- projections of the run pipeline -----------------------------------------------------------
#
# ``runs`` and ``deliveries`` are folds over the log (:mod:`eventlog.projections`), updated in the
# transaction that appends the event they fold, and rebuildable by folding the log again.
# ``run_checks`` is not a fold: it is the reconciler's memory of when it last asked HealthOmics
# about a run, so a long-running run is not asked again every round.

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(64), primary_key=True),  # run ids are reused; uuids are not
    Column("run_id", String(32)),
    Column("arn", String(2048)),
    Column("run_name", String(256)),
    Column("status", String(32), nullable=False),
    Column("status_rank", Integer, nullable=False),
    Column("status_time", DateTime(timezone=True), nullable=False),
    Column("status_event_id", String(256), nullable=False),
    Column("wes_run_id", String(256)),
    Column("workflow_id", String(64)),
    Column("workflow_name", String(256)),
    Column("run_group_id", String(64)),
    Column("run_output_uri", Text),
    Column("creation_time", DateTime(timezone=True)),
    Column("start_time", DateTime(timezone=True)),
    Column("stop_time", DateTime(timezone=True)),
    Column("duration_seconds", Float),
    Column("status_message", Text),
    Column("failure_reason", String(256)),
    Column("tags", JsonColumn),
    Column("output_mapping", JsonColumn),
    Column("log_urls", JsonColumn),
    Column("enriched_event_id", String(256)),
    Column("enriched_rank", Integer),
    Column("enriched_time", DateTime(timezone=True)),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_event_time", DateTime(timezone=True), nullable=False),
    Column("last_event_id", String(256), nullable=False),
    Column("callback_status", String(32)),
    Column("callback_rank", Integer),
    Column("callback_event_id", String(256)),
    Column("callback_event_time", DateTime(timezone=True)),
    Column("callback_delivered_at", DateTime(timezone=True)),
    Index("ix_runs_run_id", "run_id"),
    Index("ix_runs_wes_run_id", "wes_run_id"),
    Index("ix_runs_status_rank", "status_rank", "last_seen_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", SeqColumn, primary_key=True, autoincrement=True),
    Column("delivery_id", String(256), nullable=False, unique=True),  # the pipeline event's id
    Column("event_id", String(256), nullable=False),  # the callback's event_id
    Column("caused_by", String(256)),  # the status event the callback stage ran for
    Column("run_uuid", String(64)),
    Column("run_id", String(32)),
    Column("wes_run_id", String(256)),
    Column("status", String(32)),
    Column("outcome", String(32), nullable=False),
    Column("http_status", Integer),
    Column("response_body", Text),
    Column("attempts", Integer, nullable=False),
    Column("url", String(2048)),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_deliveries_event_id", "event_id"),
    Index("ix_deliveries_run_uuid", "run_uuid"),
    Index("ix_deliveries_outcome", "outcome"),
)

run_checks = Table(
    "run_checks",
    metadata,
    Column("run_uuid", String(64), primary_key=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("api_status", String(32)),
    Column("result", String(64), nullable=False),
)

# --- read-set imports and log followers ----------------------------------------------------------
#
# ``import_jobs``, ``import_sources`` and ``read_sets`` are folds over the log
# (:mod:`eventlog.import_projections`): HealthOmics' import-job and read-set events plus the
# imports pool's own facts (*Import File Registered*, *Import Job Started*, …).  ``log_cursors``
# is not a fold: it is where a log follower (the metrics pool, the alerts) has got to.

import_jobs = Table(
    "import_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("store_id", String(64), nullable=False),
    Column("role_arn", String(2048)),
    Column("status", String(32)),
    Column("status_rank", Integer, nullable=False, default=0),
    Column("status_message", Text),
    Column("origin", String(16), nullable=False),  # 'ours' | 'external'
    Column("plan_id", String(256)),  # the Import Job Planned fact that started it
    Column("attempt", Integer, nullable=False, default=1),
    Column("parent_job_id", String(64)),
    Column("client_token", String(128)),
    Column("source_count", Integer),
    Column("finished_count", Integer),
    Column("failed_count", Integer),
    Column("created_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Index("ix_import_jobs_plan_id", "plan_id"),
    Index("ix_import_jobs_status_rank", "status_rank"),
)

import_sources = Table(
    "import_sources",
    metadata,
    Column("source_key", String(1100), primary_key=True),  # the source1 URI
    Column("source1", String(1100)),
    Column("source2", String(1100)),
    Column("paired", Integer, nullable=False, default=0),  # 1: a FASTQ pair (needs source2)
    Column("source1_event_id", String(256)),  # the S3 Object Created events
    Column("source2_event_id", String(256)),
    Column("file_type", String(8)),
    Column("subject_id", String(128)),
    Column("sample_id", String(128)),
    Column("reference_arn", String(2048)),
    Column("name", String(128)),
    Column("extra", JsonColumn),  # description, generatedFrom, tags (from a sidecar manifest)
    Column("store_id", String(64)),
    Column("role_arn", String(2048)),
    Column("origin", String(16), nullable=False),  # 's3' (auto-import) | 'external'
    # outcome: waiting | orphaned | ready | planned | submitted | failed | imported | dead |
    # rejected; chosen by the order (final, attempts, outcome_rank), never by arrival
    Column("outcome", String(16), nullable=False),
    Column("outcome_final", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("outcome_rank", Integer, nullable=False, default=0),
    Column("plan_id", String(256)),
    Column("job_id", String(64)),
    Column("read_set_id", String(64)),
    Column("classification", String(16)),  # transient | permanent
    Column("status_message", Text),
    Column("reason", Text),
    Column("registered_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_import_sources_outcome", "outcome", "store_id"),
    Index("ix_import_sources_job_id", "job_id"),
)

read_sets = Table(
    "read_sets",
    metadata,
    Column("read_set_id", String(64), primary_key=True),
    Column("store_id", String(64)),
    Column("status", String(32)),
    Column("status_rank", Integer, nullable=False, default=0),
    Column("status_time", DateTime(timezone=True)),
    Column("status_message", Text),
    Column("job_id", String(64)),
    Column("source_key", String(1100)),
    Column("subject_id", String(128)),
    Column("sample_id", String(128)),
    Index("ix_read_sets_job_id", "job_id"),
    Index("ix_read_sets_source_key", "source_key"),
)

log_cursors = Table(
    "log_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("last_dead_letter_id", BigInteger, nullable=False, default=0),
    Column("owner", String(256)),
    Column("lease_until", DateTime(timezone=True)),
    Column("emitted", BigInteger, nullable=False, default=0),
    Column("dropped", BigInteger, nullable=False, default=0),
    Column("state", JsonColumn),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- stores and tasks ------------------------------------------------------------------------
#
# Folds over the log (:mod:`eventlog.resource_projections`): the status of every sequence,
# reference, variant and annotation store, and of every run task.  :mod:`eventlog.projection_set`
# lists every projection; ``omics-events rebuild`` refolds them all.

stores = Table(
    "stores",
    metadata,
    Column("store_type", String(16), primary_key=True),  # sequence|reference|variant|annotation
    Column("store_id", String(256), primary_key=True),
    Column("arn", String(2048)),
    Column("store_name", String(256)),
    Column("status", String(32), nullable=False),
    Column("status_rank", Integer, nullable=False),
    Column("status_final", Integer, nullable=False),  # 1: DELETED / creation failed, for good
    Column("status_time", DateTime(timezone=True), nullable=False),
    Column("status_event_id", String(256), nullable=False),
    Column("status_message", Text),
    Column("first_event_time", DateTime(timezone=True), nullable=False),
    Index("ix_stores_status", "status"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("run_uuid", String(64), primary_key=True),  # '' when the event named no run uuid
    Column("task_id", String(64), primary_key=True),  # task ids may be reused across runs
    Column("arn", String(2048)),
    Column("run_id", String(32)),
    Column("run_arn", String(2048)),
    Column("run_name", String(256)),
    Column("workflow_id", String(64)),
    Column("workflow_name", String(256)),
    Column("status", String(32), nullable=False),
    Column("status_rank", Integer, nullable=False),
    Column("status_time", DateTime(timezone=True), nullable=False),
    Column("status_event_id", String(256), nullable=False),
    Column("first_event_time", DateTime(timezone=True), nullable=False),
    Column("running_time", DateTime(timezone=True)),
    Column("stop_time", DateTime(timezone=True)),
    Column("duration_seconds", Float),
    Index("ix_tasks_run_id", "run_id"),
)
