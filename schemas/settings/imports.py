"""Settings of the automatic read-set imports: sources, ids, pairing, batching, retries, the
account's quotas and who is told about failures."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from schemas.settings.fields import CsvList, env_var, split_csv


class ImportSettings(BaseModel):
    """What is imported into HealthOmics sequence stores, and how."""

    import_sources: CsvList = Field(
        default_factory=list,
        validation_alias=env_var("IMPORT_SOURCES"),
        description="Comma-separated `s3://bucket/prefix` locations whose new read files "
        "(S3 `Object Created` events) are imported automatically. Empty: no automatic import "
        "(failed import jobs are still retried).",
    )
    import_sequence_store_id: str | None = Field(
        default=None,
        validation_alias=env_var("IMPORT_SEQUENCE_STORE_ID"),
        description="HealthOmics sequence store that automatic imports go to.",
    )
    import_role_arn: str | None = Field(
        default=None,
        validation_alias=env_var("IMPORT_ROLE_ARN"),
        description="IAM role HealthOmics assumes to read the files of automatic imports.",
    )
    import_reference_arn: str | None = Field(
        default=None,
        validation_alias=env_var("IMPORT_REFERENCE_ARN"),
        description="Reference genome ARN for aligned files (BAM, CRAM). Unset: aligned files "
        "without a `referenceArn` in their sidecar manifest are reported, not imported.",
    )
    import_ids_from: str = Field(
        default="path",
        validation_alias=env_var("IMPORT_IDS_FROM"),
        description="Where subject and sample ids come from: `path` (`IMPORT_PATH_TEMPLATE`) or "
        "`sidecar` (a JSON manifest `<file><IMPORT_SIDECAR_SUFFIX>` next to the file).",
    )
    import_path_template: str = Field(
        default="{subject}/{sample}/{file}",
        validation_alias=env_var("IMPORT_PATH_TEMPLATE"),
        description="Key layout below the `IMPORT_SOURCES` prefix, one placeholder per path "
        "segment: `{subject}`, `{sample}`, `{file}` (the file name, last), `{*}` (any).",
    )
    import_sidecar_suffix: str = Field(
        default=".json",
        validation_alias=env_var("IMPORT_SIDECAR_SUFFIX"),
        description='Suffix of sidecar manifests (`reads_R1.fastq.gz.json`: `{"subjectId", '
        '"sampleId"}` and optionally `referenceArn`, `name`, `description`, `tags`).',
    )
    import_mate_wait: float = Field(
        default=900.0,
        ge=0,
        validation_alias=env_var("IMPORT_MATE_WAIT"),
        description="Seconds a FASTQ file waits for its R1/R2 mate (or a file for its sidecar "
        "manifest) before it is reported; a mate arriving later is still paired.",
    )
    import_batch_window: float = Field(
        default=30.0,
        ge=0,
        validation_alias=env_var("IMPORT_BATCH_WINDOW"),
        description="Seconds a ready source waits for others, so files landing together are "
        "imported together (fewer jobs under the concurrent-job quota).",
    )
    import_max_sources_per_job: int = Field(
        default=100,
        ge=1,
        le=100,
        validation_alias=env_var("IMPORT_MAX_SOURCES_PER_JOB"),
        description="Sources per StartReadSetImportJob (HealthOmics' limit is 100).",
    )
    import_max_attempts: int = Field(
        default=3,
        ge=1,
        validation_alias=env_var("IMPORT_MAX_ATTEMPTS"),
        description="Import attempts per source, the first included; a source still failing "
        "transiently after them is dead-lettered and notified.",
    )
    import_retry_delay: float = Field(
        default=300.0,
        ge=0,
        validation_alias=env_var("IMPORT_RETRY_DELAY"),
        description="Seconds before the first retry of transiently failed sources; doubles "
        "with every attempt up to `IMPORT_RETRY_DELAY_MAX`.",
    )
    import_retry_delay_max: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=env_var("IMPORT_RETRY_DELAY_MAX"),
        description="Cap, in seconds, of the delay between two import attempts.",
    )
    import_max_concurrent_jobs: int = Field(
        default=5,
        ge=1,
        validation_alias=env_var("IMPORT_MAX_CONCURRENT_JOBS"),
        description="Import jobs running at once for the whole account (HealthOmics quota "
        "`L-F57A8D18`, default 5), shared by every worker through Redis.",
    )
    import_tps: float = Field(
        default=5.0,
        gt=0,
        validation_alias=env_var("IMPORT_TPS"),
        description="Start/GetReadSetImportJob calls per second for the whole account "
        "(one budget for both; HealthOmics' quota is 5), shared through Redis.",
    )
    import_quota_wait: float = Field(
        default=60.0,
        gt=0,
        validation_alias=env_var("IMPORT_QUOTA_WAIT"),
        description="Seconds a job waits before trying again when the concurrent-job limit "
        "is full or HealthOmics answers ServiceQuotaExceeded/Throttling.",
    )
    import_slot_ttl: float = Field(
        default=21600.0,
        gt=0,
        validation_alias=env_var("IMPORT_SLOT_TTL"),
        description="Seconds after which a concurrent-job slot whose job never reported an end "
        "(a lost event) is given back.",
    )
    import_job_watch_interval: float = Field(
        default=900.0,
        gt=0,
        validation_alias=env_var("IMPORT_JOB_WATCH_INTERVAL"),
        description="Seconds after starting an import job, and between later looks, that the "
        "imports pool asks GetReadSetImportJob whether it ended, in case its end event never "
        "comes (EventBridge delivery is best effort).",
    )
    import_notify_topic_arn: str | None = Field(
        default=None,
        validation_alias=env_var("IMPORT_NOTIFY_TOPIC_ARN"),
        description="SNS topic told about sources that cannot be imported (permanent failures, "
        "attempts exhausted, rejected files). Unset: `ALERTS_TOPIC_ARN`.",
    )

    @field_validator("import_sources", mode="before")
    @classmethod
    def _import_sources_csv(cls, value: Any) -> Any:
        return split_csv(value)

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
