"""The imports pool's settings and per-process services: what every step is handed.

Why a module of its own: every step of the pool reads the same parsed settings
(:class:`ImportConfig`), takes account-wide job slots (:mod:`workers.concurrency`) and calls
HealthOmics under one budget (:class:`ImportsApi`); built once per process
(:meth:`Runtime.resource`) and handed to each step as :class:`ImportServices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from schemas.imports import ImportRule, PathTemplate, parse_rules
from schemas.settings import Settings
from workers.aws import client_config
from workers.concurrency import ConcurrencyLimiter
from workers.omics import call
from workers.ratelimit import GlobalRateLimiter
from workers.runtime import Runtime

#: One budget for StartReadSetImportJob and GetReadSetImportJob (whether HealthOmics counts them
#: in one bucket is unverified, reference §4.2: one budget is the safe reading).
IMPORT_CALLS = "ReadSetImportJobCalls"
#: Name of the account-wide concurrent-job slots.
JOB_SLOTS = "read-set-import-jobs"


@dataclass(frozen=True)
class ImportConfig:
    """The import settings, parsed once."""

    rules: tuple[ImportRule, ...]
    template: PathTemplate
    ids_from: str
    sidecar_suffix: str
    store_id: str | None
    role_arn: str | None
    reference_arn: str | None
    mate_wait: float
    batch_window: float
    max_sources: int
    max_attempts: int
    retry_delay: float
    retry_delay_max: float
    quota_wait: float
    watch_interval: float
    notify_topic: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportConfig:
        return cls(
            rules=tuple(parse_rules(settings.import_sources)),
            template=PathTemplate(settings.import_path_template),
            ids_from=settings.import_ids_from,
            sidecar_suffix=settings.import_sidecar_suffix,
            store_id=settings.import_sequence_store_id,
            role_arn=settings.import_role_arn,
            reference_arn=settings.import_reference_arn,
            mate_wait=settings.import_mate_wait,
            batch_window=settings.import_batch_window,
            max_sources=settings.import_max_sources_per_job,
            max_attempts=settings.import_max_attempts,
            retry_delay=settings.import_retry_delay,
            retry_delay_max=settings.import_retry_delay_max,
            quota_wait=settings.import_quota_wait,
            watch_interval=settings.import_job_watch_interval,
            notify_topic=settings.import_notify_topic_arn or settings.alerts_topic_arn,
        )

    def match(self, bucket: str, key: str) -> tuple[ImportRule, str] | None:
        for rule in self.rules:
            relative = rule.relative(bucket, key)
            if relative is not None:
                return rule, relative
        return None

    def retry_delay_for(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``: doubling from ``IMPORT_RETRY_DELAY``, capped."""
        return float(min(self.retry_delay_max, self.retry_delay * 2 ** max(0, attempt - 1)))


class ImportsApi:
    """StartReadSetImportJob and GetReadSetImportJob under the account-wide budget.

    The budget is taken in a ``before-send`` hook, i.e. before *every* HTTP attempt, botocore's
    retries included, so throttling cannot turn into a burst of retries above the quota.
    """

    def __init__(self, settings: Settings) -> None:
        self.limiter = GlobalRateLimiter.from_settings(
            settings, {IMPORT_CALLS: settings.import_tps}
        )
        session = boto3.session.Session(region_name=settings.aws_region)
        self.client = session.client("omics", config=client_config(settings, "omics"))
        for operation in ("StartReadSetImportJob", "GetReadSetImportJob"):
            self.client.meta.events.register(f"before-send.omics.{operation}", self._take_token)

    def _take_token(self, **_: Any) -> None:
        self.limiter.wait(IMPORT_CALLS)

    def start(
        self, store_id: str, role_arn: str, client_token: str, sources: list[dict[str, Any]]
    ) -> dict[str, Any]:
        response = call(
            "StartReadSetImportJob",
            self.client.start_read_set_import_job,
            sequenceStoreId=store_id,
            roleArn=role_arn,
            clientToken=client_token,
            sources=sources,
        )
        return dict(response)

    def get(self, store_id: str, job_id: str) -> dict[str, Any]:
        response = call(
            "GetReadSetImportJob",
            self.client.get_read_set_import_job,
            sequenceStoreId=store_id,
            id=job_id,
        )
        return dict(response)


class ImportServices:
    """What the imports stage needs, built once per process (:meth:`Runtime.resource`)."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.config = ImportConfig.from_settings(settings)
        self.slots = ConcurrencyLimiter.from_settings(
            settings,
            JOB_SLOTS,
            limit=settings.import_max_concurrent_jobs,
            ttl=settings.import_slot_ttl,
        )
        self.api = ImportsApi(settings)

    @classmethod
    def of(cls, runtime: Runtime) -> ImportServices:
        return runtime.resource("imports", cls)
