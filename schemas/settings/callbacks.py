"""Settings of the NGS360 callbacks: where they go, the API key, the allowed origins, the
timeouts and retries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from schemas.ngs360 import callback_origin
from schemas.settings.fields import CsvList, env_var, split_csv


class CallbackSettings(BaseModel):
    """Where and how run state changes are posted to NGS360."""

    ngs360_api_url: str | None = Field(
        default=None,
        validation_alias=env_var("NGS360_API_URL"),
        description="Base URL of the NGS360 (WES) API; callbacks are posted to "
        "`/internal/callbacks/omics-state-change` on its host. Unset: callbacks are skipped "
        "(recorded as `Callback Skipped`).",
    )
    ngs360_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=env_var("NGS360_API_KEY"),
        description="The `X-Internal-API-Key` shared secret. Never logged or archived.",
    )
    ngs360_api_key_secret: str | None = Field(
        default=None,
        validation_alias=env_var("NGS360_API_KEY_SECRET"),
        description="Name or ARN of an AWS Secrets Manager secret holding the API key, used when "
        "`NGS360_API_KEY` is unset; fetched once, cached, fetched again after a 403.",
    )
    ngs360_api_key_secret_field: str = Field(
        default="AUTH_TOKEN",
        validation_alias=env_var("NGS360_API_KEY_SECRET_FIELD"),
        description="Field holding the key when the secret is a JSON object (the Lambda's "
        "`AUTH_TOKEN`); a plain-text secret is the key itself.",
    )
    callback_allowed_hosts: CsvList = Field(
        default_factory=list,
        validation_alias=env_var("CALLBACK_ALLOWED_HOSTS"),
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
        validation_alias=env_var("CALLBACK_TIMEOUT"),
        description="Seconds a callback request may take (connect, read and write each).",
    )
    callback_retry_window: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=env_var("CALLBACK_RETRY_WINDOW"),
        description="Seconds during which a callback refused with 5xx/429, or timing out, is "
        "retried with exponential backoff and jitter before it is dead-lettered.",
    )
    callback_backoff_max: float = Field(
        default=300.0,
        gt=0,
        validation_alias=env_var("CALLBACK_BACKOFF_MAX"),
        description="Cap, in seconds, of the delay between two attempts of one callback.",
    )

    @field_validator("callback_allowed_hosts", mode="before")
    @classmethod
    def _hosts_csv(cls, value: Any) -> Any:
        return split_csv(value)

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
