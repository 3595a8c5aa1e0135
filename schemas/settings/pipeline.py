"""Settings of the pipeline's processes: the outbox sweeper, Celery and its pools, the SQS
poller and the health check."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from schemas.settings.fields import CsvList, env_var, split_csv


class PipelineSettings(BaseModel):
    """How work moves: outbox, Celery workers, the poller, and how a process reports health."""

    outbox_redeliver_after: float = Field(
        default=300.0,
        ge=0,
        validation_alias=env_var("OUTBOX_REDELIVER_AFTER"),
        description="Seconds after which the sweeper re-publishes outbox work that was "
        "published but has not finished, if the broker lost it: no message waiting in Redis, "
        "nor held by a worker for less than this (lost broker, killed worker).",
    )
    sweep_interval: float = Field(
        default=30.0,
        gt=0,
        validation_alias=env_var("SWEEP_INTERVAL"),
        description="Seconds between two outbox sweeps in long-running processes.",
    )
    task_max_retries: int = Field(
        default=8,
        ge=0,
        validation_alias=env_var("TASK_MAX_RETRIES"),
        description="Celery retries of a failing task before its work is left to the sweeper.",
    )
    task_retry_backoff_max: int = Field(
        default=60,
        ge=1,
        le=120,
        validation_alias=env_var("TASK_RETRY_BACKOFF_MAX"),
        description="Cap, in seconds, of Celery's exponential retry delay. Kept short: longer "
        "waits belong in the outbox, not in a broker countdown.",
    )
    broker_visibility_timeout: int = Field(
        default=1800,
        ge=5,
        validation_alias=env_var("BROKER_VISIBILITY_TIMEOUT"),
        description="Seconds before Redis redelivers an unacknowledged task; must exceed the "
        "longest task and the retry cap.",
    )
    celery_task_events: bool = Field(
        default=False,
        validation_alias=env_var("CELERY_TASK_EVENTS"),
        description="Set to 1 to make workers send Celery task events (and producers "
        "`task-sent` ones) from the start. Off by default: they cost CPU on every task and "
        "nobody reads them unless a monitor watches; Flower turns them on by itself in the "
        "workers it watches (every 5 s, its `--enable_events`, default on), and they stay on "
        "until `celery control disable_events`.",
    )
    worker_concurrency: int = Field(
        default=2,
        ge=1,
        validation_alias=env_var("WORKER_CONCURRENCY"),
        description="Processes (or threads) per worker pool.",
    )
    callback_threads: int = Field(
        default=16,
        ge=0,
        le=256,
        validation_alias=env_var("CALLBACK_THREADS"),
        description="The callback pool runs Celery's threads pool with this many threads: "
        "each waits on one NGS360 POST, so this bounds the callbacks in flight (16 threads at "
        "200 ms a POST: 80 callbacks/s). 0: like the other pools, `WORKER_POOL` x "
        "`WORKER_CONCURRENCY`.",
    )
    worker_pool: str = Field(
        default="prefork",
        validation_alias=env_var("WORKER_POOL"),
        description="Celery execution pool of a worker: `prefork`, `threads` or `solo`.",
    )

    # --- poller --------------------------------------------------------------------------
    poller_queue_urls: CsvList = Field(
        default_factory=list,
        validation_alias=env_var("POLLER_QUEUE_URLS"),
        description="Comma-separated SQS queue URLs the poller long-polls (the EventBridge "
        "rule's targets).",
    )
    poller_receivers: int = Field(
        default=2,
        ge=1,
        le=64,
        validation_alias=env_var("POLLER_RECEIVERS"),
        description="Concurrent receive loops per queue.",
    )
    poller_wait_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        validation_alias=env_var("POLLER_WAIT_SECONDS"),
        description="SQS long-poll wait per receive (20 is SQS's maximum and the cheapest).",
    )
    poller_max_outbox: int = Field(
        default=10_000,
        ge=1,
        validation_alias=env_var("POLLER_MAX_OUTBOX"),
        description="Backpressure: the poller stops receiving while more outbox work than "
        "this is unfinished.",
    )
    poller_report_interval: float = Field(
        default=30.0,
        gt=0,
        validation_alias=env_var("POLLER_REPORT_INTERVAL"),
        description="Seconds between two progress reports of the poller.",
    )

    # --- health ----------------------------------------------------------------------------
    omics_process: str = Field(
        default="worker:archive",
        validation_alias=env_var("OMICS_PROCESS"),
        description="What this container runs, for `omics-events health`: `poller`, "
        "`sweeper`, `flower` or `worker:<pool>`.",
    )
    health_file: str | None = Field(
        default=None,
        validation_alias=env_var("HEALTH_FILE"),
        description="File a long-running process touches when it makes progress (poller: "
        "each receive cycle; worker: each finished task; sweeper: each round).",
    )
    health_max_age: float = Field(
        default=300.0,
        gt=0,
        validation_alias=env_var("HEALTH_MAX_AGE"),
        description="`omics-events health` fails when the health file is older than this "
        "(for a worker: only while its queue is not empty — idle is healthy).",
    )

    @field_validator("poller_queue_urls", mode="before")
    @classmethod
    def _poller_csv(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("worker_pool")
    @classmethod
    def _pool(cls, value: str) -> str:
        if value not in {"prefork", "threads", "solo"}:
            raise ValueError("must be prefork, threads or solo")
        return value
