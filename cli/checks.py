"""``omics-events config check``: is every dependency this configuration names reachable?

One check per dependency, each answering one line — ``ok`` with what was verified, or the
error — so an operator deploying a new environment sees at once which variable is wrong.
Checks never print secrets: URLs are shown with their passwords masked.

=================  =============================================================
dependency         what "ok" means
=================  =============================================================
redis              ``PING`` answered (skipped on the embedded in-memory broker)
database           connected, and migrated to the code's head revision
archive            the S3 bucket answers ``HeadBucket`` / the folder is writable
sqs                every ``POLLER_QUEUE_URLS`` queue answers ``GetQueueAttributes``
ngs360             the API host answers HTTP (any status: reachability, not auth)
healthomics        ``ListRuns`` answered (the omics endpoint and credentials work)
=================  =============================================================
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import redis

from eventlog.db import create_db_engine, current_revision, head_revision
from schemas.settings import Settings, mask_url
from workers.aws import AwsClients


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:300]


def check_redis(settings: Settings, _aws: AwsClients) -> str:
    if settings.redis_url is None:
        return "embedded in-memory broker (REDIS_URL not set)"
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    client.ping()
    return f"PING answered at {mask_url(settings.redis_url)}"


def check_database(settings: Settings, _aws: AwsClients) -> str:
    where = mask_url(settings.database_url)
    options = {} if settings.is_sqlite else {"connect_args": {"connect_timeout": 5}}
    engine = create_db_engine(settings.database_url, **options)
    try:
        current, head = current_revision(engine), head_revision()
    except Exception as error:
        raise RuntimeError(f"{where}: {_short(error)}") from error
    finally:
        engine.dispose()
    if current != head:
        raise RuntimeError(
            f"{where} is at migration {current or 'none'}, the code needs {head}: "
            "run `omics-events db upgrade`"
        )
    return f"{where} at migration {current}"


def check_archive(settings: Settings, aws: AwsClients) -> str:
    parts = urlsplit(settings.archive_uri)
    if parts.scheme == "file":
        root = Path(unquote(parts.netloc + parts.path))
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".check-"):
            pass
        return f"folder {root} is writable"
    aws.s3.head_bucket(Bucket=parts.netloc)
    return f"bucket {parts.netloc} answers"


def check_sqs(settings: Settings, aws: AwsClients) -> str:
    if not settings.poller_queue_urls:
        return "no POLLER_QUEUE_URLS configured (only the poller needs them)"
    for url in settings.poller_queue_urls:
        aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return f"{len(settings.poller_queue_urls)} queue(s) answer"


def check_ngs360(settings: Settings, _aws: AwsClients) -> str:
    url = getattr(settings, "ngs360_api_url", None)
    if not url:
        return "NGS360_API_URL not set (callbacks are skipped)"
    response = httpx.get(str(url), timeout=5)
    return f"{url} answers HTTP {response.status_code}"


def check_healthomics(settings: Settings, aws: AwsClients) -> str:
    aws.omics.list_runs(maxResults=1)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_OMICS") or os.environ.get("AWS_ENDPOINT_URL")
    return f"ListRuns answered{f' at {endpoint}' if endpoint else ''}"


CHECKS: list[tuple[str, Callable[[Settings, AwsClients], str]]] = [
    ("redis", check_redis),
    ("database", check_database),
    ("archive", check_archive),
    ("sqs", check_sqs),
    ("ngs360", check_ngs360),
    ("healthomics", check_healthomics),
]


def run_checks(settings: Settings) -> list[CheckResult]:
    aws = AwsClients(settings)
    results = []
    for name, check in CHECKS:
        try:
            results.append(CheckResult(name, True, check(settings, aws)))
        except Exception as error:
            results.append(CheckResult(name, False, _short(error)))
    return results
