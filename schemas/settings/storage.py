"""Settings of the storage: the event log's database, Redis and the archive."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from schemas.settings.fields import env_var

#: Where the embedded default keeps its SQLite log and local archive.
EMBEDDED_HOME = Path(".omics-events")


class ServerSideEncryption(StrEnum):
    AES256 = "AES256"
    KMS = "aws:kms"


class StorageSettings(BaseModel):
    """Where the log, the broker and the archive live."""

    database_url: str = Field(
        default=f"sqlite:///{EMBEDDED_HOME}/events.db",
        validation_alias=env_var("DATABASE_URL"),
        description="SQLAlchemy URL of the event log. Unset: an embedded SQLite file. "
        "`postgresql://` URLs use psycopg 3.",
    )
    database_connect_timeout: int = Field(
        default=10,
        ge=0,
        validation_alias=env_var("DATABASE_CONNECT_TIMEOUT"),
        description="Seconds a PostgreSQL connection attempt may take (libpq `connect_timeout`; "
        "0: wait forever).",
    )
    database_statement_timeout: float = Field(
        default=60.0,
        ge=0,
        validation_alias=env_var("DATABASE_STATEMENT_TIMEOUT"),
        description="Seconds a PostgreSQL statement of a worker, the poller or the sweeper may "
        "run before the server cancels it, so a stuck lock or a dead peer never holds a worker "
        "thread forever (0: no limit). `rebuild`, `replay` and migrations lift it for their "
        "long statements.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=env_var("REDIS_URL"),
        description="Redis for the Celery broker and the global rate limits. Unset: Celery's "
        "in-memory transport with workers inside the same process (embedded default).",
    )
    redis_key_prefix: str = Field(
        default="omics-events:",
        validation_alias=env_var("REDIS_KEY_PREFIX"),
        description="Prefix of every Redis key (broker queues and rate limits), so several "
        "deployments can share one Redis.",
    )
    redis_socket_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias=env_var("REDIS_SOCKET_TIMEOUT"),
        description="Seconds a Redis command of a lock or a rate limiter may wait for its "
        "answer before it fails (and the task is retried), instead of hanging on a dead peer.",
    )
    redis_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias=env_var("REDIS_CONNECT_TIMEOUT"),
        description="Seconds a connection to Redis for a lock or a rate limiter may take.",
    )
    archive_uri: str = Field(
        default="s3://omics-events-archive/omics-run-events",
        validation_alias=env_var("ARCHIVE_URI"),
        description="Where events are archived: `s3://bucket/prefix` or `file:///path`.",
    )
    archive_sse: ServerSideEncryption = Field(
        default=ServerSideEncryption.AES256,
        validation_alias=env_var("ARCHIVE_SSE"),
        description="Server-side encryption of archived objects: `AES256` or `aws:kms`.",
    )
    archive_kms_key_id: str | None = Field(
        default=None,
        validation_alias=env_var("ARCHIVE_KMS_KEY_ID"),
        description="KMS key id or ARN, used when `ARCHIVE_SSE=aws:kms`.",
    )

    archive_flatten_style: str = Field(
        default="dotted",
        validation_alias=env_var("ARCHIVE_FLATTEN_STYLE"),
        description="Shape of the flattened record: `dotted` (lossless, reversible) or "
        "`lambda` (the legacy Lambda's keys, for existing data-lake tables; lossy).",
    )
    archive_batch_events: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        validation_alias=env_var("ARCHIVE_BATCH_EVENTS"),
        description="Log rows (events and pipeline facts) per archive batch object at most.",
    )
    archive_batch_seconds: float = Field(
        default=1.0,
        gt=0,
        le=300,
        validation_alias=env_var("ARCHIVE_BATCH_SECONDS"),
        description="Seconds between two archive batches (a full batch goes at once); also how "
        "often a failed put is retried.",
    )
    archive_legacy_flattened: bool = Field(
        default=False,
        validation_alias=env_var("ARCHIVE_LEGACY_FLATTENED"),
        description="Also write each run event's flattened object under the legacy per-event "
        "key (`event_YYYYMMDD_HHMMSS_{id}.json`) for existing data-lake tables.",
    )

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

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: workers then run inside the process."""
        return self.redis_url is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
