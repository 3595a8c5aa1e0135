"""The NGS360 callback payload, exactly as the server validates it.

The contract: ``docs/reference/ngs360-callback.md``.

Why a model of our own: the server refuses a body that breaks a limit (422, permanent), and a
422 would dead-letter a status change that was perfectly deliverable.  So the callback worker
builds the payload with :func:`build_payload` — which truncates long texts, writes times in UTC
with a ``Z``, and keeps output mappings only on COMPLETED and log URLs only on terminal
statuses — and validates it against :class:`OmicsStateChange` before it leaves the process: a
bug here fails loudly on our side, not as a refused callback.

Statuses the server does not accept (``DELETED``) have no payload: :func:`skip_reason` says why,
and so does a run without a usable ``WESRunId`` tag.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The fixed path of the callback endpoint (it does not move with the server's API prefix).
CALLBACK_PATH = "/internal/callbacks/omics-state-change"
#: The header carrying the shared secret.
API_KEY_HEADER = "X-Internal-API-Key"

#: Statuses the server accepts (its ``status`` pattern).
ACCEPTED_STATUSES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "CANCELLED_RUNNING",
        "CANCELLED_STARTING",
        "RUNNING",
        "STARTING",
        "PENDING",
        "QUEUED",
        "STOPPING",
        "TERMINATING",
    }
)
#: HealthOmics run statuses after which a run changes no more (log URLs are sent on these).
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

MAX_RUN_ID = 50
WES_RUN_ID_LENGTH = 36
MAX_EVENT_ID = 100
MAX_STATUS_MESSAGE = 1000
MAX_FAILURE_REASON = 2000
#: Marks a text cut to fit a limit.
ELLIPSIS = "…"


#: The port a scheme means when a URL or an allow-list entry names none.
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Where a callback may go: (scheme, host, port), host lower case.
Origin = tuple[str, str, int]


def callback_origin(text: str, *, entry: bool = False) -> Origin:
    """The (scheme, host, port) of a URL, or of a ``CALLBACK_ALLOWED_HOSTS`` entry.

    Why all three: the key goes to whoever listens there, and on a host that serves NGS360 on
    443 another port can be anyone's (``https://api-host:22/`` must not match ``api-host``).
    An entry is ``https://host[:port]``, ``http://host[:port]`` or ``host[:port]`` (https); a
    missing port is the scheme's default.  An ``entry`` names no path and no credentials; a
    URL may (whoever reads it judges those).
    """
    value = text.strip()
    parts = urlsplit(value if "://" in value else f"https://{value}")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{text!r} is not http(s)")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"{text!r} names no host")
    if entry and (parts.username is not None or parts.password is not None):
        raise ValueError(f"{text!r} carries credentials")
    if entry and (parts.path not in {"", "/"} or parts.query or parts.fragment):
        raise ValueError(f"{text!r} is not [scheme://]host[:port]: it names a path")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def show_origin(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


class OmicsStateChange(BaseModel):
    """The request body; unknown fields are refused here so a typo cannot go unnoticed."""

    model_config = ConfigDict(extra="forbid")

    omics_run_id: str = Field(min_length=1, max_length=MAX_RUN_ID)
    status: str
    wes_run_id: str = Field(min_length=WES_RUN_ID_LENGTH, max_length=WES_RUN_ID_LENGTH)
    event_time: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
    event_id: str = Field(min_length=1, max_length=MAX_EVENT_ID)
    status_message: str | None = Field(default=None, max_length=MAX_STATUS_MESSAGE)
    failure_reason: str | None = Field(default=None, max_length=MAX_FAILURE_REASON)
    output_mapping: dict[str, Any] | None = None
    log_urls: dict[str, Any] | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in ACCEPTED_STATUSES:
            raise ValueError(f"{value!r} is not a status the server accepts")
        return value


def utc_z(when: datetime) -> str:
    """``2026-01-22T22:16:09Z``: UTC, whole seconds, ``Z`` (naive datetimes are taken as UTC)."""
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(text: str | None, limit: int) -> str | None:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def skip_reason(status: str, wes_run_id: str | None) -> str | None:
    """Why no callback can be sent for this status of this run, or None if one can."""
    if status not in ACCEPTED_STATUSES:
        return f"status {status} is not accepted by the NGS360 callback endpoint"
    if not wes_run_id:
        return "the run has no WESRunId tag"
    if len(wes_run_id) != WES_RUN_ID_LENGTH:
        return (
            f"the run's WESRunId tag {wes_run_id[:60]!r} is not a {WES_RUN_ID_LENGTH}-character "
            "WES run id"
        )
    return None


def build_payload(
    *,
    omics_run_id: str,
    status: str,
    wes_run_id: str,
    event_time: datetime,
    event_id: str,
    status_message: str | None = None,
    failure_reason: str | None = None,
    output_mapping: dict[str, Any] | None = None,
    log_urls: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The validated JSON body for one status change; raises ``ValueError`` if it cannot be."""
    body: dict[str, Any] = {
        "omics_run_id": omics_run_id,
        "status": status,
        "wes_run_id": wes_run_id,
        "event_time": utc_z(event_time),
        "event_id": event_id,
        "status_message": truncate(status_message, MAX_STATUS_MESSAGE),
        "failure_reason": truncate(failure_reason, MAX_FAILURE_REASON),
        "output_mapping": output_mapping if status == "COMPLETED" and output_mapping else None,
        "log_urls": log_urls if status in TERMINAL and log_urls else None,
    }
    OmicsStateChange.model_validate(body)  # ValidationError is a ValueError
    return {key: value for key, value in body.items() if value is not None}
