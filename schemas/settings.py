"""Every setting of every process, declared once.

Each field carries its environment variable (``validation_alias``), its default and its
documentation (``description``).  The README's configuration table is generated from this class
(``omics-events config table``) and a test fails when the two drift apart, so the documentation
cannot lie about the code.

AWS endpoints are *not* settings of ours: botocore reads ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` itself (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_OMICS``, …), so
the same variables that work for the AWS CLI work here.

Secrets (:class:`pydantic.SecretStr`), passwords inside URLs and password-like URL query
parameters (``?password=``, ``&token=``…) are masked whenever the configuration is printed
(:meth:`Settings.masked`) and in the line a bad value stops a process with: the line must name
the variable, never repeat a secret it holds.

A bad value stops a process at start with one line naming the variable
(:func:`load_settings`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.ngs360 import callback_origin

#: Where the embedded default keeps its SQLite log and local archive.
EMBEDDED_HOME = Path(".omics-events")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class ServerSideEncryption(StrEnum):
    AES256 = "AES256"
    KMS = "aws:kms"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


def _split_csv(value: Any) -> Any:
    """Accept ``a,b`` or a JSON list for list settings: operators type the former."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """The resolved configuration of one process."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, frozen=True
    )

    # --- storage -------------------------------------------------------------------------
    database_url: str = Field(
        default=f"sqlite:///{EMBEDDED_HOME}/events.db",
        validation_alias=_env("DATABASE_URL"),
        description="SQLAlchemy URL of the event log. Unset: an embedded SQLite file. "
        "`postgresql://` URLs use psycopg 3.",
    )
    database_connect_timeout: int = Field(
        default=10,
        ge=0,
        validation_alias=_env("DATABASE_CONNECT_TIMEOUT"),
        description="Seconds a PostgreSQL connection attempt may take (libpq `connect_timeout`; "
        "0: wait forever).",
    )
    database_statement_timeout: float = Field(
        default=60.0,
        ge=0,
        validation_alias=_env("DATABASE_STATEMENT_TIMEOUT"),
        description="Seconds a PostgreSQL statement of a worker, the poller or the sweeper may "
        "run before the server cancels it, so a stuck lock or a dead peer never holds a worker "
        "thread forever (0: no limit). `rebuild`, `replay` and migrations lift it for their "
        "long statements.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=_env("REDIS_URL"),
        description="Redis for the Celery broker and the global rate limits. Unset: Celery's "
        "in-memory transport with workers inside the same process (embedded default).",
    )
    redis_key_prefix: str = Field(
        default="omics-events:",
        validation_alias=_env("REDIS_KEY_PREFIX"),
        description="Prefix of every Redis key (broker queues and rate limits), so several "
        "deployments can share one Redis.",
    )
    redis_socket_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("REDIS_SOCKET_TIMEOUT"),
        description="Seconds a Redis command of a lock or a rate limiter may wait for its "
        "answer before it fails (and the task is retried), instead of hanging on a dead peer.",
    )
    redis_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_env("REDIS_CONNECT_TIMEOUT"),
        description="Seconds a connection to Redis for a lock or a rate limiter may take.",
    )
    archive_uri: str = Field(
        default="s3://omics-events-archive/omics-run-events",
        validation_alias=_env("ARCHIVE_URI"),
        description="Where events are archived: `s3://bucket/prefix` or `file:///path`.",
    )
    archive_sse: ServerSideEncryption = Field(
        default=ServerSideEncryption.AES256,
        validation_alias=_env("ARCHIVE_SSE"),
        description="Server-side encryption of archived objects: `AES256` or `aws:kms`.",
    )
    archive_kms_key_id: str | None = Field(
        default=None,
        validation_alias=_env("ARCHIVE_KMS_KEY_ID"),
        description="KMS key id or ARN, used when `ARCHIVE_SSE=aws:kms`.",
    )

    archive_flatten_style: str = Field(
        default="dotted",
        validation_alias=_env("ARCHIVE_FLATTEN_STYLE"),
        description="Shape of the flattened record: `dotted` (lossless, reversible) or "
        "`lambda` (the legacy Lambda's keys, for existing data-lake tables; lossy).",
    )
    archive_batch_events: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        validation_alias=_env("ARCHIVE_BATCH_EVENTS"),
        description="Log rows (events and pipeline facts) per archive batch object at most.",
    )
    archive_batch_seconds: float = Field(
        default=1.0,
        gt=0,
        le=300,
        validation_alias=_env("ARCHIVE_BATCH_SECONDS"),
        description="Seconds between two archive batches (a full batch goes at once); also how "
        "often a failed put is retried.",
    )
    archive_legacy_flattened: bool = Field(
        default=False,
        validation_alias=_env("ARCHIVE_LEGACY_FLATTENED"),
        description="Also write each run event's flattened object under the legacy per-event "
        "key (`event_YYYYMMDD_HHMMSS_{id}.json`) for existing data-lake tables.",
    )

    # --- intake --------------------------------------------------------------------------
    allowed_sources: CsvList = Field(
        default_factory=lambda: ["aws.omics", "aws.s3"],
        validation_alias=_env("ALLOWED_SOURCES"),
        description="Comma-separated event sources accepted; others are dead-lettered.",
    )
    allowed_accounts: CsvList = Field(
        default_factory=list,
        validation_alias=_env("ALLOWED_ACCOUNTS"),
        description="Comma-separated AWS account ids accepted. Empty: any account.",
    )
    max_event_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        validation_alias=_env("MAX_EVENT_BYTES"),
        description="Largest event accepted, in bytes (EventBridge's limit is 1 MB).",
    )
    max_json_depth: int = Field(
        default=32,
        ge=4,
        le=500,
        validation_alias=_env("MAX_JSON_DEPTH"),
        description="Deepest JSON nesting accepted in an event.",
    )
    event_time_earliest: datetime = Field(
        default=datetime(2015, 1, 1, tzinfo=UTC),
        validation_alias=_env("EVENT_TIME_EARLIEST"),
        description="Events whose `time` is before this ISO-8601 date-time (UTC if no zone) "
        "are dead-lettered: a year-1 time would pin a run's status for good.",
    )
    event_time_max_ahead: float = Field(
        default=86_400.0,
        ge=0,
        validation_alias=_env("EVENT_TIME_MAX_AHEAD"),
        description="Events whose `time` is more than this many seconds after now are "
        "dead-lettered (a clock may be a little ahead; year 9999 is not).",
    )

    # --- pipeline ------------------------------------------------------------------------
    outbox_redeliver_after: float = Field(
        default=300.0,
        ge=0,
        validation_alias=_env("OUTBOX_REDELIVER_AFTER"),
        description="Seconds after which the sweeper re-publishes outbox work that was "
        "published but has not finished, if the broker lost it: no message waiting in Redis, "
        "nor held by a worker for less than this (lost broker, killed worker).",
    )
    sweep_interval: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("SWEEP_INTERVAL"),
        description="Seconds between two outbox sweeps in long-running processes.",
    )
    task_max_retries: int = Field(
        default=8,
        ge=0,
        validation_alias=_env("TASK_MAX_RETRIES"),
        description="Celery retries of a failing task before its work is left to the sweeper.",
    )
    task_retry_backoff_max: int = Field(
        default=60,
        ge=1,
        le=120,
        validation_alias=_env("TASK_RETRY_BACKOFF_MAX"),
        description="Cap, in seconds, of Celery's exponential retry delay. Kept short: longer "
        "waits belong in the outbox, not in a broker countdown.",
    )
    broker_visibility_timeout: int = Field(
        default=1800,
        ge=5,
        validation_alias=_env("BROKER_VISIBILITY_TIMEOUT"),
        description="Seconds before Redis redelivers an unacknowledged task; must exceed the "
        "longest task and the retry cap.",
    )
    celery_task_events: bool = Field(
        default=False,
        validation_alias=_env("CELERY_TASK_EVENTS"),
        description="Set to 1 to make workers send Celery task events (and producers "
        "`task-sent` ones) from the start. Off by default: they cost CPU on every task and "
        "nobody reads them unless a monitor watches; Flower turns them on by itself in the "
        "workers it watches (every 5 s, its `--enable_events`, default on), and they stay on "
        "until `celery control disable_events`.",
    )
    worker_concurrency: int = Field(
        default=2,
        ge=1,
        validation_alias=_env("WORKER_CONCURRENCY"),
        description="Processes (or threads) per worker pool.",
    )
    callback_threads: int = Field(
        default=16,
        ge=0,
        le=256,
        validation_alias=_env("CALLBACK_THREADS"),
        description="The callback pool runs Celery's threads pool with this many threads: "
        "each waits on one NGS360 POST, so this bounds the callbacks in flight (16 threads at "
        "200 ms a POST: 80 callbacks/s). 0: like the other pools, `WORKER_POOL` x "
        "`WORKER_CONCURRENCY`.",
    )
    worker_pool: str = Field(
        default="prefork",
        validation_alias=_env("WORKER_POOL"),
        description="Celery execution pool of a worker: `prefork`, `threads` or `solo`.",
    )

    # --- poller --------------------------------------------------------------------------
    poller_queue_urls: CsvList = Field(
        default_factory=list,
        validation_alias=_env("POLLER_QUEUE_URLS"),
        description="Comma-separated SQS queue URLs the poller long-polls (the EventBridge "
        "rule's targets).",
    )
    poller_receivers: int = Field(
        default=2,
        ge=1,
        le=64,
        validation_alias=_env("POLLER_RECEIVERS"),
        description="Concurrent receive loops per queue.",
    )
    poller_wait_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        validation_alias=_env("POLLER_WAIT_SECONDS"),
        description="SQS long-poll wait per receive (20 is SQS's maximum and the cheapest).",
    )
    poller_max_outbox: int = Field(
        default=10_000,
        ge=1,
        validation_alias=_env("POLLER_MAX_OUTBOX"),
        description="Backpressure: the poller stops receiving while more outbox work than "
        "this is unfinished.",
    )
    poller_report_interval: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("POLLER_REPORT_INTERVAL"),
        description="Seconds between two progress reports of the poller.",
    )

    # --- health ----------------------------------------------------------------------------
    omics_process: str = Field(
        default="worker:archive",
        validation_alias=_env("OMICS_PROCESS"),
        description="What this container runs, for `omics-events health`: `poller`, "
        "`sweeper`, `flower` or `worker:<pool>`.",
    )
    health_file: str | None = Field(
        default=None,
        validation_alias=_env("HEALTH_FILE"),
        description="File a long-running process touches when it makes progress (poller: "
        "each receive cycle; worker: each finished task; sweeper: each round).",
    )
    health_max_age: float = Field(
        default=300.0,
        gt=0,
        validation_alias=_env("HEALTH_MAX_AGE"),
        description="`omics-events health` fails when the health file is older than this "
        "(for a worker: only while its queue is not empty — idle is healthy).",
    )

    # --- AWS -----------------------------------------------------------------------------
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="AWS region of every client (`AWS_DEFAULT_REGION` is read too).",
    )
    aws_retry_mode: str = Field(
        default="standard",
        validation_alias=_env("AWS_RETRY_MODE"),
        description="botocore retry mode of every client: `standard` or `adaptive`.",
    )
    aws_max_attempts: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("AWS_MAX_ATTEMPTS"),
        description="botocore attempts per AWS call, the first included.",
    )

    omics_rate_limits: CsvList = Field(
        default_factory=list,
        validation_alias=_env("OMICS_RATE_LIMITS"),
        description="Account-wide HealthOmics calls per second, shared by every worker through "
        "Redis, as `Operation=TPS` pairs (`GetRun=5,ListRunTasks=5`) overriding the documented "
        "quotas (GetRun, ListRunTasks 10/s; ListTagsForResource 5/s).",
    )

    omics_rate_margin: float = Field(
        default=0.1,
        ge=0,
        le=5,
        validation_alias=_env("OMICS_RATE_MARGIN"),
        description="Seconds added to every rate-limit window, so calls granted at the quota "
        "still arrive within it after scheduling and network delays. 0: exact windows.",
    )

    # --- enrichment and reconciliation ----------------------------------------------------
    enrich_runs: bool = Field(
        default=True,
        validation_alias=_env("ENRICH_RUNS"),
        description="Enrich every run status change from the HealthOmics API and send it to "
        "NGS360 (the `enrich` and `callback` pools). `false`: run events are only archived.",
    )
    enrich_outputs_wait: float = Field(
        default=300.0,
        ge=0,
        validation_alias=_env("ENRICH_OUTPUTS_WAIT"),
        description="Seconds after a COMPLETED event arrived during which enrichment keeps "
        "looking for the run's `outputs.json` (retrying with backoff) before it goes on without "
        "the output mapping.",
    )
    enrich_outputs_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("ENRICH_OUTPUTS_MAX_BYTES"),
        description="Largest `outputs.json` read, in bytes. A bigger one is not read: the run "
        "is enriched and its callback sent without the output mapping, and a dead letter says "
        "why.",
    )
    enrich_outputs_max_depth: int = Field(
        default=32,
        ge=2,
        le=500,
        validation_alias=_env("ENRICH_OUTPUTS_MAX_DEPTH"),
        description="Deepest JSON nesting read in an `outputs.json` (CWL records of arrays of "
        "files need a handful); a deeper one is treated like an oversized one.",
    )
    reconcile_after: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=_env("RECONCILE_AFTER"),
        description="Seconds without news after which a run the log holds as not finished is "
        "checked with GetRun by the reconciler (HealthOmics events are best effort).",
    )
    reconcile_interval: float = Field(
        default=300.0,
        ge=0,
        validation_alias=_env("RECONCILE_INTERVAL"),
        description="Seconds between two reconciler rounds inside the poller; 0 turns them off "
        "(`omics-events reconcile --every N` runs it on its own).",
    )
    reconcile_batch: int = Field(
        default=200,
        ge=1,
        validation_alias=_env("RECONCILE_BATCH"),
        description="Most runs checked in one reconciler round (oldest news first).",
    )
    reconcile_discover_interval: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=_env("RECONCILE_DISCOVER_INTERVAL"),
        description="Seconds between two listings of every run (ListRuns) by the poller's "
        "reconciler, which finds runs the log never heard of because every event of theirs was "
        "lost; 0 turns it off. Only runs created after the log's first event are reported.",
    )

    # --- NGS360 callbacks ----------------------------------------------------------------
    ngs360_api_url: str | None = Field(
        default=None,
        validation_alias=_env("NGS360_API_URL"),
        description="Base URL of the NGS360 (WES) API; callbacks are posted to "
        "`/internal/callbacks/omics-state-change` on its host. Unset: callbacks are skipped "
        "(recorded as `Callback Skipped`).",
    )
    ngs360_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("NGS360_API_KEY"),
        description="The `X-Internal-API-Key` shared secret. Never logged or archived.",
    )
    ngs360_api_key_secret: str | None = Field(
        default=None,
        validation_alias=_env("NGS360_API_KEY_SECRET"),
        description="Name or ARN of an AWS Secrets Manager secret holding the API key, used when "
        "`NGS360_API_KEY` is unset; fetched once, cached, fetched again after a 403.",
    )
    ngs360_api_key_secret_field: str = Field(
        default="AUTH_TOKEN",
        validation_alias=_env("NGS360_API_KEY_SECRET_FIELD"),
        description="Field holding the key when the secret is a JSON object (the Lambda's "
        "`AUTH_TOKEN`); a plain-text secret is the key itself.",
    )
    callback_allowed_hosts: CsvList = Field(
        default_factory=list,
        validation_alias=_env("CALLBACK_ALLOWED_HOSTS"),
        description="Comma-separated origins a run's `callback_url` tag may send callbacks (and "
        "the key) to, each `https://host[:port]`, `http://host[:port]` (loopback only) or "
        "`host[:port]` (meaning https); scheme, host and port must all match, a missing port "
        "being the scheme's default (443, 80). The origin of `NGS360_API_URL` is always allowed; "
        "empty: only that one. Any other tag is ignored (the default URL is used) and recorded "
        "as a security dead letter.",
    )
    callback_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("CALLBACK_TIMEOUT"),
        description="Seconds a callback request may take (connect, read and write each).",
    )
    callback_retry_window: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=_env("CALLBACK_RETRY_WINDOW"),
        description="Seconds during which a callback refused with 5xx/429, or timing out, is "
        "retried with exponential backoff and jitter before it is dead-lettered.",
    )
    callback_backoff_max: float = Field(
        default=300.0,
        gt=0,
        validation_alias=_env("CALLBACK_BACKOFF_MAX"),
        description="Cap, in seconds, of the delay between two attempts of one callback.",
    )

    # --- flower --------------------------------------------------------------------------
    flower_basic_auth: SecretStr | None = Field(
        default=None,
        validation_alias=_env("FLOWER_BASIC_AUTH"),
        description="`user:password` Flower requires (comma-separate several). Flower refuses "
        "to start without it unless `FLOWER_UNAUTHENTICATED=1`.",
    )
    flower_unauthenticated: bool = Field(
        default=False,
        validation_alias=_env("FLOWER_UNAUTHENTICATED"),
        description="Set to 1 to run Flower with no authentication (never on a shared network).",
    )
    flower_address: str = Field(
        default="127.0.0.1",
        validation_alias=_env("FLOWER_ADDRESS"),
        description="Address Flower binds to. Loopback by default: its `/metrics` endpoint is "
        "not covered by its authentication.",
    )
    flower_port: int = Field(
        default=5555,
        ge=1,
        le=65535,
        validation_alias=_env("FLOWER_PORT"),
        description="Port Flower listens on.",
    )

    # --- read-set imports -----------------------------------------------------------------
    import_sources: CsvList = Field(
        default_factory=list,
        validation_alias=_env("IMPORT_SOURCES"),
        description="Comma-separated `s3://bucket/prefix` locations whose new read files "
        "(S3 `Object Created` events) are imported automatically. Empty: no automatic import "
        "(failed import jobs are still retried).",
    )
    import_sequence_store_id: str | None = Field(
        default=None,
        validation_alias=_env("IMPORT_SEQUENCE_STORE_ID"),
        description="HealthOmics sequence store that automatic imports go to.",
    )
    import_role_arn: str | None = Field(
        default=None,
        validation_alias=_env("IMPORT_ROLE_ARN"),
        description="IAM role HealthOmics assumes to read the files of automatic imports.",
    )
    import_reference_arn: str | None = Field(
        default=None,
        validation_alias=_env("IMPORT_REFERENCE_ARN"),
        description="Reference genome ARN for aligned files (BAM, CRAM). Unset: aligned files "
        "without a `referenceArn` in their sidecar manifest are reported, not imported.",
    )
    import_ids_from: str = Field(
        default="path",
        validation_alias=_env("IMPORT_IDS_FROM"),
        description="Where subject and sample ids come from: `path` (`IMPORT_PATH_TEMPLATE`) or "
        "`sidecar` (a JSON manifest `<file><IMPORT_SIDECAR_SUFFIX>` next to the file).",
    )
    import_path_template: str = Field(
        default="{subject}/{sample}/{file}",
        validation_alias=_env("IMPORT_PATH_TEMPLATE"),
        description="Key layout below the `IMPORT_SOURCES` prefix, one placeholder per path "
        "segment: `{subject}`, `{sample}`, `{file}` (the file name, last), `{*}` (any).",
    )
    import_sidecar_suffix: str = Field(
        default=".json",
        validation_alias=_env("IMPORT_SIDECAR_SUFFIX"),
        description='Suffix of sidecar manifests (`reads_R1.fastq.gz.json`: `{"subjectId", '
        '"sampleId"}` and optionally `referenceArn`, `name`, `description`, `tags`).',
    )
    import_mate_wait: float = Field(
        default=900.0,
        ge=0,
        validation_alias=_env("IMPORT_MATE_WAIT"),
        description="Seconds a FASTQ file waits for its R1/R2 mate (or a file for its sidecar "
        "manifest) before it is reported; a mate arriving later is still paired.",
    )
    import_batch_window: float = Field(
        default=30.0,
        ge=0,
        validation_alias=_env("IMPORT_BATCH_WINDOW"),
        description="Seconds a ready source waits for others, so files landing together are "
        "imported together (fewer jobs under the concurrent-job quota).",
    )
    import_max_sources_per_job: int = Field(
        default=100,
        ge=1,
        le=100,
        validation_alias=_env("IMPORT_MAX_SOURCES_PER_JOB"),
        description="Sources per StartReadSetImportJob (HealthOmics' limit is 100).",
    )
    import_max_attempts: int = Field(
        default=3,
        ge=1,
        validation_alias=_env("IMPORT_MAX_ATTEMPTS"),
        description="Import attempts per source, the first included; a source still failing "
        "transiently after them is dead-lettered and notified.",
    )
    import_retry_delay: float = Field(
        default=300.0,
        ge=0,
        validation_alias=_env("IMPORT_RETRY_DELAY"),
        description="Seconds before the first retry of transiently failed sources; doubles "
        "with every attempt up to `IMPORT_RETRY_DELAY_MAX`.",
    )
    import_retry_delay_max: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=_env("IMPORT_RETRY_DELAY_MAX"),
        description="Cap, in seconds, of the delay between two import attempts.",
    )
    import_max_concurrent_jobs: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("IMPORT_MAX_CONCURRENT_JOBS"),
        description="Import jobs running at once for the whole account (HealthOmics quota "
        "`L-F57A8D18`, default 5), shared by every worker through Redis.",
    )
    import_tps: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_env("IMPORT_TPS"),
        description="Start/GetReadSetImportJob calls per second for the whole account "
        "(one budget for both; HealthOmics' quota is 5), shared through Redis.",
    )
    import_quota_wait: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_env("IMPORT_QUOTA_WAIT"),
        description="Seconds a job waits before trying again when the concurrent-job limit "
        "is full or HealthOmics answers ServiceQuotaExceeded/Throttling.",
    )
    import_slot_ttl: float = Field(
        default=21600.0,
        gt=0,
        validation_alias=_env("IMPORT_SLOT_TTL"),
        description="Seconds after which a concurrent-job slot whose job never reported an end "
        "(a lost event) is given back.",
    )
    import_job_watch_interval: float = Field(
        default=900.0,
        gt=0,
        validation_alias=_env("IMPORT_JOB_WATCH_INTERVAL"),
        description="Seconds after starting an import job, and between later looks, that the "
        "imports pool asks GetReadSetImportJob whether it ended, in case its end event never "
        "comes (EventBridge delivery is best effort).",
    )
    import_notify_topic_arn: str | None = Field(
        default=None,
        validation_alias=_env("IMPORT_NOTIFY_TOPIC_ARN"),
        description="SNS topic told about sources that cannot be imported (permanent failures, "
        "attempts exhausted, rejected files). Unset: `ALERTS_TOPIC_ARN`.",
    )

    # --- metrics and alerts --------------------------------------------------------------
    metrics_enabled: bool = Field(
        default=True,
        validation_alias=_env("METRICS_ENABLED"),
        description="Whether the metrics pool puts metrics into CloudWatch (0 to turn off).",
    )
    metrics_namespace: str = Field(
        default="HealthOmicsEventWorkers",
        min_length=1,
        max_length=255,
        validation_alias=_env("METRICS_NAMESPACE"),
        description="CloudWatch namespace of every metric (`docs/metrics.md`).",
    )
    metrics_flush_interval: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_env("METRICS_FLUSH_INTERVAL"),
        description="Seconds between two PutMetricData batches (and a last one at shutdown).",
    )
    metrics_batch_size: int = Field(
        default=1000,
        ge=1,
        le=1000,
        validation_alias=_env("METRICS_BATCH_SIZE"),
        description="Metric data per PutMetricData call (CloudWatch accepts at most 1000).",
    )
    metrics_drop_after: float = Field(
        default=900.0,
        ge=0,
        validation_alias=_env("METRICS_DROP_AFTER"),
        description="Seconds a batch CloudWatch keeps refusing is retried before it is dropped "
        "with a counted warning (the pipeline never waits for metrics).",
    )
    alerts_topic_arn: str | None = Field(
        default=None,
        validation_alias=_env("ALERTS_TOPIC_ARN"),
        description="SNS topic for operational alerts (dead letters, repeated import failures). "
        "Unset: alerts are only logged.",
    )
    alert_import_failures: int = Field(
        default=10,
        ge=1,
        validation_alias=_env("ALERT_IMPORT_FAILURES"),
        description="Alert when a sequence store has this many failed import sources within "
        "`ALERT_IMPORT_WINDOW`.",
    )
    alert_import_window: float = Field(
        default=3600.0,
        gt=0,
        validation_alias=_env("ALERT_IMPORT_WINDOW"),
        description="Window, in seconds, of `ALERT_IMPORT_FAILURES` (and the least time between "
        "two such alerts for one store).",
    )
    alert_dead_letter_interval: float = Field(
        default=300.0,
        ge=0,
        validation_alias=_env("ALERT_DEAD_LETTER_INTERVAL"),
        description="Least seconds between two dead-letter alerts; letters arriving meanwhile "
        "are summed up in the next one.",
    )

    @field_validator("event_time_earliest")
    @classmethod
    def _utc_earliest(cls, value: datetime) -> datetime:
        """A date without a zone means UTC: event times are compared as UTC."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("import_sources", mode="before")
    @classmethod
    def _import_sources_csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("import_sources")
    @classmethod
    def _import_sources(cls, value: list[str]) -> list[str]:
        for uri in value:
            parts = urlsplit(uri)
            if parts.scheme != "s3" or not parts.netloc:
                raise ValueError(f"{uri!r} is not s3://bucket[/prefix]")
        return value

    @field_validator("import_ids_from")
    @classmethod
    def _import_ids_from(cls, value: str) -> str:
        if value not in {"path", "sidecar"}:
            raise ValueError("must be path or sidecar")
        return value

    @field_validator("import_path_template")
    @classmethod
    def _import_path_template(cls, value: str) -> str:
        from schemas.imports import PathTemplate  # schemas.imports imports nothing of ours

        PathTemplate(value)  # raises ValueError naming what is wrong
        return value

    # --- logging -------------------------------------------------------------------------
    log_level: str = Field(
        default="INFO",
        validation_alias=_env("LOG_LEVEL"),
        description="Python log level.",
    )
    log_format: LogFormat = Field(
        default=LogFormat.TEXT,
        validation_alias=_env("LOG_FORMAT"),
        description="`text` for people, `json` for log shippers (one object per line).",
    )

    # --- validators ----------------------------------------------------------------------
    @field_validator("allowed_sources", "allowed_accounts", "poller_queue_urls", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("omics_rate_limits", "callback_allowed_hosts", mode="before")
    @classmethod
    def _csv_lists(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("omics_rate_limits")
    @classmethod
    def _rate_limits(cls, value: list[str]) -> list[str]:
        for pair in value:
            operation, _, tps = pair.partition("=")
            try:
                ok = bool(operation.strip()) and float(tps) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{pair!r} is not Operation=TPS with TPS > 0")
        return value

    @field_validator("ngs360_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s):// URL with a host")
        return value

    @field_validator("callback_allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            callback_origin(entry, entry=True)  # refuse a bad entry at start
        return [entry.lower() for entry in value]

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.split("+")[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(f"unsupported database {scheme!r}: use sqlite:// or postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in {"redis", "rediss"}:
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("archive_uri")
    @classmethod
    def _archive_uri(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"s3", "file"}:
            raise ValueError("must be s3://bucket/prefix or file:///path")
        if parts.scheme == "s3" and not parts.netloc:
            raise ValueError("s3:// URI has no bucket")
        return value

    @field_validator("archive_flatten_style")
    @classmethod
    def _flatten_style(cls, value: str) -> str:
        if value not in {"dotted", "lambda"}:
            raise ValueError("must be dotted or lambda")
        return value

    @field_validator("aws_retry_mode")
    @classmethod
    def _retry_mode(cls, value: str) -> str:
        if value not in {"standard", "adaptive", "legacy"}:
            raise ValueError("must be standard, adaptive or legacy")
        return value

    @field_validator("worker_pool")
    @classmethod
    def _pool(cls, value: str) -> str:
        if value not in {"prefork", "threads", "solo"}:
            raise ValueError("must be prefork, threads or solo")
        return value

    @field_validator("flower_basic_auth")
    @classmethod
    def _basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        for pair in value.get_secret_value().split(","):
            user, _, password = pair.partition(":")
            if not user or not password:
                raise ValueError("must be user:password (comma-separated for several)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return upper

    # --- derived -------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        """True when no broker is configured: workers then run inside the process."""
        return self.redis_url is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def omics_rate_overrides(self) -> dict[str, float]:
        """``OMICS_RATE_LIMITS`` as ``{operation: calls per second}``."""
        pairs = (pair.partition("=") for pair in self.omics_rate_limits)
        return {operation.strip(): float(tps) for operation, _, tps in pairs}

    def masked(self) -> dict[str, str]:
        """The configuration keyed by environment variable, safe to print."""
        shown: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = MASK if value.get_secret_value() else ""
            elif isinstance(value, list):
                text = ",".join(mask_url(str(item)) for item in value)
            elif value is None:
                text = ""
            else:
                text = mask_url(str(value))
            shown[env_name(field)] = text
        return shown


def env_name(field: Any) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias)


#: What is printed in place of a secret.
MASK = "********"
#: Query parameters whose values are secrets: ``?password=``, ``&auth_token=``, AWS presigned
#: ``X-Amz-Signature``/``X-Amz-Credential``/``X-Amz-Security-Token``, ``sslpassword``, ``apikey``…
#: Matching too much costs a masked harmless value; too little, a leaked secret.
SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"(?P<name>[^&;=]*)=(?P<value>[^&;]*)")
#: A URL inside free text (an error message): scheme, ``://``, then up to a space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_url(value: str) -> str:
    """``value`` with the secrets a URL can carry hidden: the password of
    ``scheme://user:password@host`` and the values of password-like query parameters
    (:data:`SECRET_PARAMETER`).  Anything that is not a URL comes back as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return _mask_unparsed(value)
    if not parts.scheme:
        return value
    masked = value
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password:
        start = masked.index("//") + 2  # a netloc is what follows the first //
        masked = f"{masked[:start]}{user}:{MASK}@{host}{masked[start + len(parts.netloc) :]}"
    query = _QUERY_PAIR.sub(_mask_pair, parts.query)
    if query != parts.query:
        # spliced into the text, not re-joined by urlunsplit, which drops an empty netloc's //
        start = masked.index("?") + 1
        masked = f"{masked[:start]}{query}{masked[start + len(parts.query) :]}"
    return masked


def _mask_pair(match: re.Match[str]) -> str:
    if SECRET_PARAMETER.search(match["name"]) and match["value"]:
        return f"{match['name']}={MASK}"
    return match.group()


def _mask_unparsed(url: str) -> str:
    """A URL urlsplit refuses (a bad IPv6 host): hide what looks secret all the same."""
    url = re.sub(r"(://[^/@:]*:)[^/@]*@", rf"\g<1>{MASK}@", url)
    _, mark, query = url.partition("?")
    if not mark:
        return url
    return url[: -len(query) or None] + _QUERY_PAIR.sub(_mask_pair, query)


def mask_secrets(text: str) -> str:
    """Free text (an error message) with every URL in it passed through :func:`mask_url`."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)


def is_secret(field: Any) -> bool:
    """Whether a settings field holds a secret (typed :class:`pydantic.SecretStr`)."""
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


class ConfigurationError(SystemExit):
    """Raised at start on a bad setting; its message is the one line an operator sees."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, or stop with one line naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else "?"
        # pydantic-settings names the environment variable, a keyword override the field
        by_variable = {env_name(field): field for field in Settings.model_fields.values()}
        field = Settings.model_fields.get(where) or by_variable.get(where)
        variable = env_name(field) if field is not None else where
        message = mask_secrets(str(error["msg"]).removeprefix("Value error, "))
        value = error.get("input")
        if field is not None and is_secret(field):
            if isinstance(value, str) and value:
                message = message.replace(value, MASK)
            shown = repr(MASK)
        else:
            shown = repr(mask_secrets(value) if isinstance(value, str) else value)
            shown = mask_secrets(shown)
        raise ConfigurationError(f"configuration error: {variable}={shown}: {message}") from None


def settings_table() -> str:
    """The Markdown configuration table of the README, generated from :class:`Settings`."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if isinstance(default, list):
            default = ",".join(default)
        if hasattr(default, "value"):
            default = default.value
        shown = f"`{default}`" if default not in (None, "") else "(unset)"
        rows.append(f"| `{env_name(field)}` | {shown} | {field.description} |")
    return "\n".join(rows)


#: Variables botocore reads itself; the deployment files may set them.
BOTOCORE_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_CLOUDWATCH",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_OMICS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


def env_example() -> str:
    """The ``.env.example`` file: every variable, its default and its documentation."""
    lines = [
        "# HealthOmics Event Workers: every environment variable, with its default.",
        "# Generated from schemas/settings.py by `omics-events config env-example`.",
        "# Copy to .env and uncomment what you change.",
        "",
    ]
    for field in Settings.model_fields.values():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if isinstance(default, list):
            default = ",".join(default)
        if hasattr(default, "value"):
            default = default.value
        text = " ".join(str(field.description).split()).replace("`", "")
        lines.append(f"# {text}")
        lines.append(f"# {env_name(field)}={'' if default is None else default}")
        lines.append("")
    lines.append("# AWS endpoints and credentials are botocore's own variables, e.g. for the")
    lines.append("# local profile of docker-compose (moto and the HealthOmics simulator):")
    lines.append("# AWS_ENDPOINT_URL=http://moto:5000")
    lines.append("# AWS_ENDPOINT_URL_OMICS=http://simulator:8080")
    lines.append("# AWS_ACCESS_KEY_ID=testing")
    lines.append("# AWS_SECRET_ACCESS_KEY=testing")
    lines.append("")
    lines.append("# docker-compose only: the PostgreSQL passwords of the bundled database, of")
    lines.append("# the tables' owner (migrations) and of the role every other process uses")
    lines.append("# (eventlog/roles.sql; no spaces)")
    lines.append("# POSTGRES_PASSWORD=omics")
    lines.append("# POSTGRES_APP_PASSWORD=omics-app")
    return "\n".join(lines) + "\n"
