"""The read-set import part of ``make demo``: a lab drops read files, some imports fail.

Why a module of its own: the demo (``devtools/demo.py``) shows every pool at work; this is what
it needs for the imports and metrics pools, kept apart so the demo only calls four functions:

* :func:`with_imports` — settings that watch the demo's incoming bucket and import into the
  simulator's sequence store (unless ``IMPORT_SOURCES`` is configured), with short waits so the
  demo finishes in a minute;
* :func:`drop_lab_files` — the simulator drops paired FASTQ, BAM, CRAM, uBAM and a few junk
  files into S3 (with their ``Object Created`` events), and fails some sources: a share
  transiently (retried) and two permanently (dead letters and a notification);
* :func:`settled` — nothing left to import, and the metrics pool has caught up with the log;
* :func:`summary_table` — imports started, retried, succeeded, exhausted, files rejected, and
  metric samples emitted to CloudWatch.
"""

from __future__ import annotations

import random
from typing import Any

from rich.table import Table
from sqlalchemy import Engine, func, select

from eventlog import cursors
from eventlog.tables import events, import_jobs, import_sources, outbox
from schemas.settings import Settings
from simulator import Simulator

#: The simulated sequence store the demo imports into (10 digits, like the service's).
STORE_ID = "4815162342"
INCOMING_BUCKET = "omics-events-demo-incoming"
ROLE_ARN = "arn:aws:iam::123456789012:role/OmicsDemoImportRole"
REFERENCE_ARN = (
    "arn:aws:omics:us-east-1:123456789012:referenceStore/4815162342/reference/1234567890"
)


def with_imports(settings: Settings) -> Settings:
    """The demo's settings with automatic import on (when the operator configured none)."""
    if settings.import_sources:
        return settings
    return settings.model_copy(
        update={
            "import_sources": [f"s3://{INCOMING_BUCKET}/runs"],
            "import_sequence_store_id": STORE_ID,
            "import_role_arn": ROLE_ARN,
            "import_reference_arn": REFERENCE_ARN,
            "import_batch_window": 2.0,
            "import_mate_wait": 30.0,
            "import_retry_delay": 1.0,
            "import_retry_delay_max": 4.0,
            "import_quota_wait": 2.0,
            "import_max_attempts": 5,
            "import_max_sources_per_job": 10,
            "metrics_flush_interval": 1.0,
        }
    )


def drop_lab_files(simulator: Simulator, *, samples: int = 16, seed: int = 7) -> list[str]:
    """Drop a lab's worth of read files into the incoming bucket; returns their URIs."""
    rng = random.Random(seed)
    base = f"s3://{INCOMING_BUCKET}/runs"
    uris: list[str] = []
    for n in range(samples):
        sample = f"NA{12878 + n}"
        folder = f"{base}/SUBJ-{n % 5:03d}/{sample}"
        kind = rng.choice(("pair", "pair", "bam", "cram", "ubam"))
        if kind == "pair":
            uris += [f"{folder}/{sample}_R1_001.fastq.gz", f"{folder}/{sample}_R2_001.fastq.gz"]
        else:
            uris.append(f"{folder}/{sample}.{'unaligned.bam' if kind == 'ubam' else kind}")
    uris += [f"{base}/SUBJ-000/NA12878/SampleSheet.csv", f"{base}/SUBJ-001/.DS_Store"]
    rng.shuffle(uris)
    simulator.set_faults(transient_source_failure_rate=0.2)
    firsts = sorted(u for u in uris if not u.endswith(("R2_001.fastq.gz", ".csv", ".DS_Store")))
    for uri in firsts[:2]:  # these two fail for good: dead letters and a notification
        simulator.plan_source_outcomes(uri, "permanent")
    simulator.drop_files(uris)
    return uris


def _count(connection: Any, query: Any) -> int:
    return int(connection.execute(query).scalar_one() or 0)


def settled(engine: Engine, settings: Settings) -> bool:
    """No import work is owed, and the metrics pool has followed the whole log."""
    with engine.connect() as connection:
        owed = _count(
            connection,
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.stage == "imports", outbox.c.done_at.is_(None)),
        )
        if owed or not settings.metrics_enabled:
            return owed == 0
        cursor = cursors.read(connection, "cloudwatch")
        newest = _count(connection, select(func.max(events.c.seq)))
    return cursor is not None and cursor.last_seq >= newest


def summary_table(engine: Engine) -> Table:
    """Imports and metrics, for the demo's summary."""
    with engine.connect() as connection:
        started = _count(
            connection,
            select(func.count()).select_from(import_jobs).where(import_jobs.c.origin == "ours"),
        )
        retried = _count(
            connection,
            select(func.count()).select_from(import_jobs).where(import_jobs.c.attempt > 1),
        )
        outcomes = dict(
            connection.execute(
                select(import_sources.c.outcome, func.count()).group_by(import_sources.c.outcome)
            ).all()
        )
        cursor = cursors.read(connection, "cloudwatch")
    table = Table(title="read-set imports and metrics")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("import jobs started", str(started))
    table.add_row("  of which retries of failed sources", str(retried))
    table.add_row("sources imported (read sets)", str(outcomes.get("imported", 0)))
    table.add_row("sources given up (dead letters)", str(outcomes.get("dead", 0)))
    table.add_row("files rejected (not read files)", str(outcomes.get("rejected", 0)))
    table.add_row("metric samples emitted to CloudWatch", str(cursor.emitted if cursor else 0))
    table.add_row("metric samples dropped", str(cursor.dropped if cursor else 0))
    return table
