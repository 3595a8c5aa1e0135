"""Settings of the intake: which events are accepted at all (sources, accounts, size, depth,
time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from schemas.settings.fields import CsvList, env_var, split_csv


class IntakeSettings(BaseModel):
    """What the gate every raw event goes through accepts."""

    allowed_sources: CsvList = Field(
        default_factory=lambda: ["aws.omics", "aws.s3"],
        validation_alias=env_var("ALLOWED_SOURCES"),
        description="Comma-separated event sources accepted; others are dead-lettered.",
    )
    allowed_accounts: CsvList = Field(
        default_factory=list,
        validation_alias=env_var("ALLOWED_ACCOUNTS"),
        description="Comma-separated AWS account ids accepted. Empty: any account.",
    )
    max_event_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        validation_alias=env_var("MAX_EVENT_BYTES"),
        description="Largest event accepted, in bytes (EventBridge's limit is 1 MB).",
    )
    max_json_depth: int = Field(
        default=32,
        ge=4,
        le=500,
        validation_alias=env_var("MAX_JSON_DEPTH"),
        description="Deepest JSON nesting accepted in an event.",
    )
    event_time_earliest: datetime = Field(
        default=datetime(2015, 1, 1, tzinfo=UTC),
        validation_alias=env_var("EVENT_TIME_EARLIEST"),
        description="Events whose `time` is before this ISO-8601 date-time (UTC if no zone) "
        "are dead-lettered: a year-1 time would pin a run's status for good.",
    )
    event_time_max_ahead: float = Field(
        default=86_400.0,
        ge=0,
        validation_alias=env_var("EVENT_TIME_MAX_AHEAD"),
        description="Events whose `time` is more than this many seconds after now are "
        "dead-lettered (a clock may be a little ahead; year 9999 is not).",
    )

    @field_validator("allowed_sources", "allowed_accounts", mode="before")
    @classmethod
    def _intake_csv(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("event_time_earliest")
    @classmethod
    def _utc_earliest(cls, value: datetime) -> datetime:
        """A date without a zone means UTC: event times are compared as UTC."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
