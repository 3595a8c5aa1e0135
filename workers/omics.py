"""HealthOmics calls of the run pipeline: every HTTP attempt rate-limited, every error classified.

Why a client of its own: HealthOmics quotas are per account (GetRun, ListRunTasks: 10 TPS), so the
limit must hold across all workers *and* across botocore's own retries.  The client registers a
``before-send`` hook that takes a slot from the :class:`~workers.ratelimit.GlobalRateLimiter`
(Redis-backed, shared by every process) before **each** HTTP attempt — the first one and every
retry botocore makes — so a burst of 429s cannot turn into a burst of retries above the quota.
Retries themselves are botocore's (``AWS_RETRY_MODE``, ``standard`` by default).

Every call goes through :func:`call`, which turns botocore's errors into an :class:`OmicsError`;
the imports pool (:mod:`workers.imports.services`) wraps its calls with it too, under a budget
of its own.

Errors are sorted into what a stage does with them (reference §4.1):

============================================  ===========  ==================================
code                                          kind         the stage
============================================  ===========  ==================================
ThrottlingException, RateLimitTimeout          ``wait``     runs again in a few seconds
ServiceQuotaExceededException                  ``quota``    runs again in a minute or more
ResourceNotFoundException                      ``gone``     records it, does not retry
AccessDeniedException                          ``denied``   records it, does not retry
ValidationException, NotSupportedOperation…    ``invalid``  records it, does not retry
anything else (500, 408, connection errors)    ``error``    Celery retries, then dead letter
============================================  ===========  ==================================
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from workers.aws import client_config
from workers.errors import RetryLater
from workers.ratelimit import GlobalRateLimiter, RateLimitTimeout
from workers.runtime import Runtime

log = logging.getLogger(__name__)

WAIT_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
QUOTA_CODES = frozenset({"ServiceQuotaExceededException"})
GONE_CODES = frozenset({"ResourceNotFoundException"})
DENIED_CODES = frozenset({"AccessDeniedException", "UnauthorizedException"})
INVALID_CODES = frozenset(
    {"ValidationException", "NotSupportedOperationException", "RangeNotSatisfiableException"}
)


class OmicsError(Exception):
    """A HealthOmics call that did not succeed, with its :func:`kind`."""

    def __init__(self, operation: str, code: str, message: str, kind: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message
        self.kind = kind


def kind_of(code: str) -> str:
    if code in WAIT_CODES or code == "RateLimitTimeout":
        return "wait"
    if code in QUOTA_CODES:
        return "quota"
    if code in GONE_CODES:
        return "gone"
    if code in DENIED_CODES:
        return "denied"
    if code in INVALID_CODES:
        return "invalid"
    return "error"


def as_retry_later(error: OmicsError) -> RetryLater:
    """The wait a throttled or over-quota call asks for, jittered so workers do not align."""
    if error.kind == "quota":
        return RetryLater(str(error), random.uniform(60.0, 120.0))
    return RetryLater(str(error), random.uniform(1.0, 4.0))


def call(operation: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """``fn(**kwargs)``, whose botocore error or slot timeout becomes an :class:`OmicsError`.

    The one wrapper of every HealthOmics call: the run stages' (:class:`OmicsApi`) and the
    imports pool's (:class:`workers.imports.services.ImportsApi`), so both classify alike.
    """
    try:
        return fn(**kwargs)
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code") or "ClientError")
        message = str(details.get("Message") or "")
        raise OmicsError(operation, code, message, kind_of(code)) from error
    except RateLimitTimeout as error:
        raise OmicsError(operation, "RateLimitTimeout", str(error), "wait") from error


class OmicsApi:
    """The omics operations the enrich, callback and reconcile stages need."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.limiter = GlobalRateLimiter.from_settings(settings)
        session = boto3.session.Session(region_name=settings.aws_region)
        self.client = session.client("omics", config=client_config(settings, "omics"))
        self.client.meta.events.register("before-send.omics", self._take_slot)

    @classmethod
    def of(cls, runtime: Runtime) -> OmicsApi:
        """The process's instance (built on first use, rebuilt after a fork)."""
        return runtime.resource("omics-api", cls)

    def _take_slot(self, event_name: str = "", **_: Any) -> None:
        self.limiter.wait(event_name.rsplit(".", 1)[-1])

    def get_run(self, run_id: str) -> dict[str, Any]:
        response = call("GetRun", self.client.get_run, id=run_id)
        return dict(response)

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run the account lists, all pages (the reconciler's discovery)."""
        paginator = self.client.get_paginator("list_runs")
        listed: list[dict[str, Any]] = []

        def collect() -> None:
            for page in paginator.paginate(PaginationConfig={"PageSize": 100}):
                listed.extend(page.get("items", []))

        call("ListRuns", collect)
        return listed

    def list_run_tasks(self, run_id: str) -> list[dict[str, Any]]:
        """Every task of the run, all pages (the Lambda read only the first 10)."""
        paginator = self.client.get_paginator("list_run_tasks")
        pages = paginator.paginate(id=run_id, PaginationConfig={"PageSize": 100})
        tasks: list[dict[str, Any]] = []

        def collect() -> None:
            for page in pages:
                tasks.extend(page.get("items", []))

        call("ListRunTasks", collect)
        return tasks
