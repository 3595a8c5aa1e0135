"""Step 5 of the imports pool: an SNS notification for every batch of sources given up.

Why a module of its own: an *Import Sources Failed* fact
(:func:`workers.imports.results.fail_sources`) owes a task that tells a person what could not be
imported, where to look and what to do: the text of :func:`failure_message`, published to
``IMPORT_NOTIFY_TOPIC_ARN`` (or ``ALERTS_TOPIC_ARN``).  It is sent before the task records its
work done, so at least once.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from eventlog.store import StoredEvent
from workers.errors import PermanentError
from workers.imports.facts import finish
from workers.imports.services import ImportServices
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def failure_message(detail: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) of the SNS notification about sources given up: what, where, what to do."""
    items = [i for i in detail.get("sources") or [] if isinstance(i, dict)]
    store_id = detail.get("storeId")
    job_id = detail.get("jobId")
    subject = f"HealthOmics import: {len(items)} file(s) could not be imported"[:100]
    lines = [
        f"{len(items)} read-set source(s) could not be imported into sequence store {store_id}"
        + (f" (import job {job_id})." if job_id else "."),
        "",
        "What:",
    ]
    for item in items:
        files = " + ".join(f for f in (item.get("source1"), item.get("source2")) if f)
        lines.append(f"  - {files} (sample {item.get('sampleId')}): {item.get('reason')}")
    lines += [
        "",
        "Where: sequence store "
        + str(store_id)
        + (f", import job {job_id}" if job_id else "")
        + "; `omics-events imports --failed` lists them, `omics-events dead-letters` has the "
        "details.",
        "",
        "What to do:",
        "  - permanent: fix the file or its access (S3 object, IAM role, format, ids) and "
        "start an import for it;",
        "  - exhausted: HealthOmics kept failing transiently; check the service health and "
        "re-import the files once it is healthy.",
    ]
    return subject, "\n".join(lines)


def notify_failed(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    topic = services.config.notify_topic
    if not topic:
        log.warning(
            "import failures not notified: set IMPORT_NOTIFY_TOPIC_ARN or ALERTS_TOPIC_ARN",
            extra={"event_id": event.event_id},
        )
        return finish(runtime, event, "not notified: no topic")
    subject, text = failure_message(event.payload.get("detail") or {})
    try:
        runtime.aws.get("sns").publish(TopicArn=topic, Subject=subject, Message=text)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"NotFound", "InvalidParameter", "AuthorizationError", "KMSDisabled"}:
            raise PermanentError(f"cannot publish to {topic}: {code}") from error
        raise
    except BotoCoreError:
        raise
    return finish(runtime, event, "notified")
