"""What every simulated HealthOmics operation shares: the modelled errors, validation in the
AWS wording, page tokens, and the omission of absent members.

Kept apart from the operations themselves (:mod:`simulator.run_operations`,
:mod:`simulator.import_operations`) so both halves follow the same conventions, listed in
:mod:`simulator.operations`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

#: HTTP status of each modelled error (botocore ``omics`` model).
ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 402,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "NotSupportedOperationException": 405,
    "RequestTimeoutException": 408,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "UnknownOperationException": 404,
}

FILE_TYPES = ("FASTQ", "BAM", "CRAM", "UBAM")
JOB_STATUSES = (
    "SUBMITTED",
    "IN_PROGRESS",
    "CANCELLING",
    "CANCELLED",
    "FAILED",
    "COMPLETED",
    "COMPLETED_WITH_FAILURES",
)
TASK_STATUSES = ("PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED", "CANCELLED", "FAILED")

S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9\-.]{1,61}[a-z0-9])/(.{1,1024})$")
DIGITS = re.compile(r"^[0-9]+$")


class ApiError(Exception):
    """A modelled HealthOmics error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERROR_STATUS.get(code, 400)


def validation_error(value: object, where: str, constraint: str) -> ApiError:
    return ApiError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
        f"constraint: {constraint}",
    )


def check_digits(value: str, where: str, low: int, high: int) -> None:
    if not (low <= len(value) <= high):
        raise validation_error(
            value, where, f"Member must have length between {low} and {high}, inclusive"
        )
    if not DIGITS.match(value):
        raise validation_error(
            value, where, "Member must satisfy regular expression pattern: [0-9]+"
        )


def max_results_of(raw: str | None, where: str = "maxResults") -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise validation_error(raw, where, "Member must be an integer") from exc
    if not 1 <= value <= 100:
        raise validation_error(value, where, "Member must have value between 1 and 100, inclusive")
    return value


def encode_token(scope: str, offset: int) -> str:
    raw = json.dumps({"s": scope, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, scope: str, where: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] != scope or not isinstance(data["o"], int) or data["o"] < 0:
            raise ValueError(token)
        return int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ApiError("ValidationException", f"Invalid {where}.") from exc


def compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# -- runs -----------------------------------------------------------------------------------
