"""Settings of the logs: level and format."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from schemas.settings.fields import env_var


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogSettings(BaseModel):
    """How a process logs."""

    log_level: str = Field(
        default="INFO",
        validation_alias=env_var("LOG_LEVEL"),
        description="Python log level.",
    )
    log_format: LogFormat = Field(
        default=LogFormat.TEXT,
        validation_alias=env_var("LOG_FORMAT"),
        description="`text` for people, `json` for log shippers (one object per line).",
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return upper
