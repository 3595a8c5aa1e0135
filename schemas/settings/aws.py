"""Settings of the AWS clients: region, botocore retries and the shared HealthOmics rate
limits.

AWS endpoints are *not* settings of ours: botocore reads ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` itself (:data:`schemas.settings.docs.BOTOCORE_VARIABLES`).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator

from schemas.settings.fields import CsvList, env_var, split_csv


class AwsSettings(BaseModel):
    """How every AWS client is made, and how fast HealthOmics may be called."""

    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="AWS region of every client (`AWS_DEFAULT_REGION` is read too).",
    )
    aws_retry_mode: str = Field(
        default="standard",
        validation_alias=env_var("AWS_RETRY_MODE"),
        description="botocore retry mode of every client: `standard` or `adaptive`.",
    )
    aws_max_attempts: int = Field(
        default=5,
        ge=1,
        validation_alias=env_var("AWS_MAX_ATTEMPTS"),
        description="botocore attempts per AWS call, the first included.",
    )

    omics_rate_limits: CsvList = Field(
        default_factory=list,
        validation_alias=env_var("OMICS_RATE_LIMITS"),
        description="Account-wide HealthOmics calls per second, shared by every worker through "
        "Redis, as `Operation=TPS` pairs (`GetRun=5,ListRunTasks=5`) overriding the documented "
        "quotas (GetRun, ListRunTasks 10/s; ListTagsForResource 5/s).",
    )

    omics_rate_margin: float = Field(
        default=0.1,
        ge=0,
        le=5,
        validation_alias=env_var("OMICS_RATE_MARGIN"),
        description="Seconds added to every rate-limit window, so calls granted at the quota "
        "still arrive within it after scheduling and network delays. 0: exact windows.",
    )

    @field_validator("omics_rate_limits", mode="before")
    @classmethod
    def _rate_limits_csv(cls, value: Any) -> Any:
        return split_csv(value)

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

    @field_validator("aws_retry_mode")
    @classmethod
    def _retry_mode(cls, value: str) -> str:
        if value not in {"standard", "adaptive", "legacy"}:
            raise ValueError("must be standard, adaptive or legacy")
        return value

    @property
    def omics_rate_overrides(self) -> dict[str, float]:
        """``OMICS_RATE_LIMITS`` as ``{operation: calls per second}``."""
        pairs = (pair.partition("=") for pair in self.omics_rate_limits)
        return {operation.strip(): float(tps) for operation, _, tps in pairs}
