"""Every AWS client of every process comes from here, built from settings.

Endpoints are botocore's business: ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` are
read by botocore itself, so pointing a process at moto, LocalStack or a VPC endpoint needs no
setting of ours.  What we add:

* botocore's ``standard`` (or ``adaptive``) retry mode on every client — the default ``legacy``
  mode does not retry HealthOmics' ``RequestTimeoutException`` (reference §0.8);
* host-prefix injection turned off for ``omics`` when its endpoint is overridden: HealthOmics
  operations carry host prefixes (``workflows-``, ``control-storage-``) that would turn
  ``127.0.0.1`` into ``workflows-127.0.0.1``;
* one client per service per process, created lazily (boto3 clients are thread-safe, sessions
  are not, so the session is guarded).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

from schemas.settings import Settings

_SERVICE_ENV_NAMES = {
    "omics": "OMICS",
    "s3": "S3",
    "sqs": "SQS",
    "sns": "SNS",
    "cloudwatch": "CLOUDWATCH",
    "secretsmanager": "SECRETS_MANAGER",
}


def endpoint_overridden(service: str) -> bool:
    """True when botocore will send ``service`` calls to a custom endpoint."""
    specific = f"AWS_ENDPOINT_URL_{_SERVICE_ENV_NAMES.get(service, service.upper())}"
    return bool(os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL"))


def client_config(settings: Settings, service: str, **overrides: Any) -> Config:
    options: dict[str, Any] = {
        "region_name": settings.aws_region,
        "retries": {"mode": settings.aws_retry_mode, "max_attempts": settings.aws_max_attempts},
        "connect_timeout": 5,
        "read_timeout": 30,
        "max_pool_connections": 20,
    }
    if service == "omics" and endpoint_overridden("omics"):
        options["inject_host_prefix"] = False
    options.update(overrides)
    return Config(**options)


class AwsClients:
    """Lazily built, cached boto3 clients for one process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        with self._lock:
            if service not in self._clients:
                if self._session is None:
                    self._session = boto3.session.Session(region_name=self._settings.aws_region)
                self._clients[service] = self._session.client(
                    service, config=client_config(self._settings, service)
                )
            return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.get("s3")

    @property
    def sqs(self) -> Any:
        return self.get("sqs")

    @property
    def omics(self) -> Any:
        return self.get("omics")
