"""The archive stage: flatten an event and put it, raw and flattened, in the archive.

Reads the event from the log (the task carries only its id, so a message can never disagree
with the log), writes two objects under deterministic keys (:mod:`workers.storage`), then
appends an *Event Archived* fact whose id derives from the event's, and finishes the outbox
work — both in one transaction.  Run twice, it rewrites identical bytes to the same keys and
appends nothing: the S3 objects and the log hold the event exactly once.

A pipeline fact (``origin = 'pipeline'``: an enrichment, a callback attempt, an import step)
is archived as its log row under ``facts/`` (:func:`fact_record`, :func:`workers.storage.fact_key`)
and appends no *Event Archived* of its own: the fact's outbox work being done is the record.
"""

from __future__ import annotations

import json
from typing import Any

from eventlog import store
from eventlog.store import LogEntry, StoredEvent, as_utc
from schemas.flatten import FLATTEN_STYLES
from schemas.parsing import canonical_json
from workers.errors import PermanentError
from workers.logs import bind_event
from workers.runtime import Runtime
from workers.storage import fact_key, flattened_key, raw_key

STAGE = "archive"
ARCHIVED = "Event Archived"


def flattened_record(payload: dict[str, Any], style: str) -> bytes:
    flat = FLATTEN_STYLES[style](payload)
    return json.dumps(flat, ensure_ascii=False, sort_keys=True, default=str).encode()


def fact_record(event: StoredEvent) -> bytes:
    """A fact as its log row (all but the reception time), which a replay appends as it is."""
    return canonical_json(
        {
            "seq": event.seq,
            "event_id": event.event_id,
            "origin": event.origin,
            "source": event.source,
            "detail_type": event.detail_type,
            "event_time": as_utc(event.event_time).isoformat(),
            "resource_arn": event.resource_arn,
            "resource_id": event.resource_id,
            "status": event.status,
            "caused_by": event.caused_by,
            "payload": event.payload,
        }
    )


def _archive_fact(runtime: Runtime, event: StoredEvent) -> str:
    archive = runtime.archive
    archive.put(
        fact_key(archive.prefix, event.seq, event.event_id, event.event_time), fact_record(event)
    )
    with runtime.engine.begin() as connection:
        store.complete(connection, event.event_id, STAGE, "archived")
    return "archived"


def archive_event(runtime: Runtime, event_id: str) -> str:
    engine = runtime.engine
    with engine.connect() as connection:
        event = store.get(connection, event_id)
        if event is None:
            raise PermanentError(f"event {event_id} is not in the log")
        bind_event(event)
        if store.is_done(connection, event_id, STAGE):
            return "already-archived"
    if event.origin == "pipeline":
        return _archive_fact(runtime, event)

    archive = runtime.archive
    raw = raw_key(archive.prefix, event.event_id, event.event_time)
    flat = flattened_key(archive.prefix, event.event_id, event.event_time)
    archive.put(raw, canonical_json(event.payload))
    archive.put(flat, flattened_record(event.payload, runtime.settings.archive_flatten_style))

    detail = {
        "raw": archive.location(raw),
        "flattened": archive.location(flat),
        "flattenStyle": runtime.settings.archive_flatten_style,
    }
    if archive.location(raw).startswith("s3://"):
        detail["serverSideEncryption"] = runtime.settings.archive_sse.value
    with engine.begin() as connection:
        store.append(connection, LogEntry.pipeline(event, ARCHIVED, detail))
        store.complete(connection, event_id, STAGE, "archived")
    return "archived"
