"""Settings of the CloudWatch metrics and of the operational alerts (SNS)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.settings.fields import env_var


class MetricsSettings(BaseModel):
    """What is measured and put into CloudWatch, and when an operator is alerted."""

    metrics_enabled: bool = Field(
        default=True,
        validation_alias=env_var("METRICS_ENABLED"),
        description="Whether the metrics pool puts metrics into CloudWatch (0 to turn off).",
    )
    metrics_namespace: str = Field(
        default="HealthOmicsEventWorkers",
        min_length=1,
        max_length=255,
        validation_alias=env_var("METRICS_NAMESPACE"),
        description="CloudWatch namespace of every metric (`docs/metrics.md`).",
    )
    metrics_flush_interval: float = Field(
        default=5.0,
        gt=0,
        validation_alias=env_var("METRICS_FLUSH_INTERVAL"),
        description="Seconds between two PutMetricData batches (and a last one at shutdown).",
    )
    metrics_batch_size: int = Field(
        default=1000,
        ge=1,
        le=1000,
        validation_alias=env_var("METRICS_BATCH_SIZE"),
        description="Metric data per PutMetricData call (CloudWatch accepts at most 1000).",
    )
    metrics_drop_after: float = Field(
        default=900.0,
        ge=0,
        validation_alias=env_var("METRICS_DROP_AFTER"),
        description="Seconds a batch CloudWatch keeps refusing is retried before it is dropped "
        "with a counted warning (the pipeline never waits for metrics).",
    )
    alerts_topic_arn: str | None = Field(
        default=None,
        validation_alias=env_var("ALERTS_TOPIC_ARN"),
        description="SNS topic for operational alerts (dead letters, repeated import failures). "
        "Unset: alerts are only logged.",
    )
    alert_import_failures: int = Field(
        default=10,
        ge=1,
        validation_alias=env_var("ALERT_IMPORT_FAILURES"),
        description="Alert when a sequence store has this many failed import sources within "
        "`ALERT_IMPORT_WINDOW`.",
    )
    alert_import_window: float = Field(
        default=3600.0,
        gt=0,
        validation_alias=env_var("ALERT_IMPORT_WINDOW"),
        description="Window, in seconds, of `ALERT_IMPORT_FAILURES` (and the least time between "
        "two such alerts for one store).",
    )
    alert_dead_letter_interval: float = Field(
        default=300.0,
        ge=0,
        validation_alias=env_var("ALERT_DEAD_LETTER_INTERVAL"),
        description="Least seconds between two dead-letter alerts; letters arriving meanwhile "
        "are summed up in the next one.",
    )
