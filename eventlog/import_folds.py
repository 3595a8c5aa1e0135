"""The import folds, one per detail-type: ``import_sources``, ``import_jobs``, ``read_sets``.

Why its own module: these are the per-event rules (the orders they obey are in
:mod:`eventlog.import_projections`); the entry points that pick a fold for an event, the
projection and the rebuild of these tables alone stay there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from eventlog.import_rows import (
    READ_SET_RANK,
    _detail,
    _earliest,
    _fill_spec,
    _int,
    _locked_row,
    _merge_outcome,
    _parse_time,
    _save,
    _source_row,
    _text,
    _touch,
    _utc,
)
from eventlog.tables import import_jobs, import_sources, read_sets
from schemas.vocabulary import (
    JOB_RANK,
    JOB_TERMINAL,
)


def _fold_registered(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    key = _text(detail.get("sourceKey"), 1100)
    uri = _text(detail.get("uri"), 1100)
    if not key or not uri:
        return
    row = _source_row(connection, key, "s3", event.event_time)
    changes: dict[str, Any] = {}
    mate = detail.get("mate")
    first_mate = mate != "R2"  # R1 or a single file: its fields win over an R2's
    if mate == "R2":
        if row.get("source2") != uri:
            changes["source2"] = row["source2"] = uri
        changes["source2_event_id"] = row["source2_event_id"] = _text(detail.get("s3EventId"), 256)
    else:
        if row.get("source1") != uri:
            changes["source1"] = row["source1"] = uri
        changes["source1_event_id"] = row["source1_event_id"] = _text(detail.get("s3EventId"), 256)
    values = {
        "file_type": _text(detail.get("fileType"), 8),
        "subject_id": _text(detail.get("subjectId"), 128),
        "sample_id": _text(detail.get("sampleId"), 128),
        "reference_arn": _text(detail.get("referenceArn"), 2048),
        "name": _text(detail.get("name"), 128),
        "store_id": _text(detail.get("storeId"), 64),
        "role_arn": _text(detail.get("roleArn"), 2048),
        "extra": detail.get("extra") if isinstance(detail.get("extra"), dict) else None,
    }
    r1_seen = row.get("source1_event_id") is not None
    for column, value in values.items():
        if value is None:
            continue
        if (first_mate or not r1_seen or row.get(column) is None) and row.get(column) != value:
            changes[column] = row[column] = value
    if detail.get("paired") and not row.get("paired"):
        changes["paired"] = row["paired"] = 1
    if row.get("origin") != "s3":
        changes["origin"] = row["origin"] = "s3"
    registered = _earliest(row.get("registered_at"), event.event_time)
    if registered != _utc(row.get("registered_at")):
        changes["registered_at"] = registered
    complete = bool(row.get("source1")) and (not row.get("paired") or bool(row.get("source2")))
    _merge_outcome(row, changes, "ready" if complete else "waiting", 0)
    _touch(row, changes, event.event_time)
    _save(connection, import_sources, "source_key", key, changes)


def _fold_rejected(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    uri = _text(detail.get("uri"), 1100)
    if not uri:
        return
    key = _text(detail.get("sourceKey"), 1100) or uri
    row = _source_row(connection, key, "s3", event.event_time)
    changes: dict[str, Any] = {}
    if row.get("source1") is None:
        changes["source1"] = row["source1"] = uri
    _merge_outcome(row, changes, "rejected", 0, {"reason": _text(detail.get("reason"))})
    _touch(row, changes, event.event_time)
    _save(connection, import_sources, "source_key", key, changes)


def _fold_mate_missing(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    key = _text(detail.get("sourceKey"), 1100)
    if not key:
        return
    row = _source_row(connection, key, "s3", event.event_time)
    changes: dict[str, Any] = {}
    _merge_outcome(row, changes, "orphaned", 0, {"reason": _text(detail.get("reason"))})
    _touch(row, changes, event.event_time)
    _save(connection, import_sources, "source_key", key, changes)


def _fold_planned(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    attempt = _int(detail.get("attempt"), 1)
    plan_id = _text(detail.get("planId"), 256) or event.event_id
    for spec in detail.get("sources") or []:
        if not isinstance(spec, dict):
            continue
        key = _text(spec.get("sourceKey"), 1100)
        if not key:
            continue
        row = _source_row(connection, key, "external", event.event_time)
        changes: dict[str, Any] = {}
        _fill_spec(row, changes, spec)
        for column, value in (
            ("store_id", _text(detail.get("storeId"), 64)),
            ("role_arn", _text(detail.get("roleArn"), 2048)),
        ):
            if value and row.get(column) is None:
                changes[column] = row[column] = value
        _merge_outcome(row, changes, "planned", attempt, {"plan_id": plan_id})
        _touch(row, changes, event.event_time)
        _save(connection, import_sources, "source_key", key, changes)


def _job_row(connection: Connection, job_id: str, store_id: str) -> dict[str, Any]:
    return _locked_row(
        connection,
        import_jobs,
        "job_id",
        job_id,
        {"store_id": store_id, "origin": "external", "status_rank": 0, "attempt": 1},
    )


def _merge_job_status(
    row: dict[str, Any],
    changes: dict[str, Any],
    status: str | None,
    message: str | None,
    when: datetime | None,
) -> None:
    if not status or status not in JOB_RANK:
        return
    new = (JOB_RANK[status], status)
    old = (row.get("status_rank") or 0, row.get("status") or "")
    if new > old:
        changes.update(status=status, status_rank=new[0], status_message=message)
        row.update(changes)
    if status == "SUBMITTED" and when is not None:
        created = _earliest(row.get("created_at"), when)
        if created != _utc(row.get("created_at")):
            changes["created_at"] = row["created_at"] = created
    if status in JOB_TERMINAL and when is not None:
        completed = _earliest(row.get("completed_at"), when)
        if completed != _utc(row.get("completed_at")):
            changes["completed_at"] = row["completed_at"] = completed


def _fold_job_status(connection: Connection, event: Any) -> None:
    if event.source != "aws.omics":
        return
    detail = _detail(event)
    job_id = _text(detail.get("id"), 64)
    store_id = _text(detail.get("sequenceStoreId"), 64)
    status = _text(detail.get("status"), 32)
    if not job_id or not store_id or not status:
        return
    row = _job_row(connection, job_id, store_id)
    changes: dict[str, Any] = {}
    _merge_job_status(
        row, changes, status.upper(), _text(detail.get("statusMessage")), event.event_time
    )
    _save(connection, import_jobs, "job_id", job_id, changes)


def _fold_started(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    job_id = _text(detail.get("jobId"), 64)
    store_id = _text(detail.get("storeId"), 64)
    if not job_id or not store_id:
        return
    attempt = _int(detail.get("attempt"), 1)
    keys = [k for k in detail.get("sourceKeys") or [] if isinstance(k, str) and k]
    row = _job_row(connection, job_id, store_id)
    changes: dict[str, Any] = {
        "origin": "ours",
        "plan_id": _text(detail.get("planId"), 256),
        "attempt": attempt,
        "parent_job_id": _text(detail.get("parentJobId"), 64),
        "client_token": _text(detail.get("clientToken"), 128),
        "role_arn": _text(detail.get("roleArn"), 2048),
        "source_count": len(keys),
    }
    changes = {k: v for k, v in changes.items() if row.get(k) != v}
    row.update(changes)
    created = _parse_time(detail.get("creationTime")) or event.event_time
    _merge_job_status(row, changes, "SUBMITTED", None, created)
    _save(connection, import_jobs, "job_id", job_id, changes)
    for key in keys:
        source = _source_row(connection, key[:1100], "external", event.event_time)
        source_changes: dict[str, Any] = {}
        _merge_outcome(source, source_changes, "submitted", attempt, {"job_id": job_id})
        _touch(source, source_changes, event.event_time)
        _save(connection, import_sources, "source_key", key[:1100], source_changes)


def _fold_checked(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    job_id = _text(detail.get("jobId"), 64)
    store_id = _text(detail.get("storeId"), 64)
    if not job_id or not store_id:
        return
    attempt = _int(detail.get("attempt"), 1)
    sources = [s for s in detail.get("sources") or [] if isinstance(s, dict)]
    row = _job_row(connection, job_id, store_id)
    changes: dict[str, Any] = {}
    counts: dict[str, Any] = {
        "source_count": len(sources),
        "finished_count": sum(1 for s in sources if s.get("status") == "FINISHED"),
        "failed_count": sum(1 for s in sources if s.get("status") != "FINISHED"),
    }
    role = _text(detail.get("roleArn"), 2048)
    if role and row.get("role_arn") is None:
        counts["role_arn"] = role
    changes.update({k: v for k, v in counts.items() if row.get(k) != v})
    row.update(changes)
    completed = _parse_time(detail.get("completionTime")) or event.event_time
    _merge_job_status(
        row,
        changes,
        _text(detail.get("status"), 32),
        _text(detail.get("statusMessage")),
        completed,
    )
    _save(connection, import_jobs, "job_id", job_id, changes)
    for spec in sources:
        _fold_checked_source(connection, event, spec, job_id, store_id, attempt)


def _fold_checked_source(
    connection: Connection,
    event: Any,
    spec: dict[str, Any],
    job_id: str,
    store_id: str,
    attempt: int,
) -> None:
    """One source of a checked job: its outcome, and the read set it was imported as."""
    key = _text(spec.get("sourceKey"), 1100)
    if not key:
        return
    source = _source_row(connection, key, "external", event.event_time)
    source_changes: dict[str, Any] = {}
    _fill_spec(source, source_changes, spec)
    if source.get("store_id") is None:
        source_changes["store_id"] = source["store_id"] = store_id
    read_set_id = _text(spec.get("readSetId"), 64)
    if spec.get("status") == "FINISHED":
        _merge_outcome(
            source,
            source_changes,
            "imported",
            attempt,
            {"job_id": job_id, "read_set_id": read_set_id, "status_message": None},
        )
    else:
        _merge_outcome(
            source,
            source_changes,
            "failed",
            attempt,
            {
                "job_id": job_id,
                "classification": _text(spec.get("classification"), 16),
                "status_message": _text(spec.get("statusMessage")),
            },
        )
    _touch(source, source_changes, event.event_time)
    _save(connection, import_sources, "source_key", key, source_changes)
    if read_set_id and spec.get("status") == "FINISHED":
        read_set = _locked_row(
            connection, read_sets, "read_set_id", read_set_id, {"store_id": store_id}
        )
        facts = {
            "job_id": job_id,
            "source_key": key,
            "subject_id": _text(spec.get("subjectId"), 128),
            "sample_id": _text(spec.get("sampleId"), 128),
        }
        _save(
            connection,
            read_sets,
            "read_set_id",
            read_set_id,
            {k: v for k, v in facts.items() if v is not None and read_set.get(k) != v},
        )


def _fold_failed(connection: Connection, event: Any) -> None:
    detail = _detail(event)
    for item in detail.get("sources") or []:
        if not isinstance(item, dict):
            continue
        key = _text(item.get("sourceKey"), 1100)
        if not key:
            continue
        source = _source_row(connection, key, "external", event.event_time)
        changes: dict[str, Any] = {}
        _merge_outcome(
            source,
            changes,
            "dead",
            _int(item.get("attempts"), 1),
            {
                "reason": _text(item.get("reason")),
                "classification": _text(item.get("classification"), 16),
            },
        )
        _touch(source, changes, event.event_time)
        _save(connection, import_sources, "source_key", key, changes)


def _fold_read_set(connection: Connection, event: Any) -> None:
    if event.source != "aws.omics":
        return
    detail = _detail(event)
    read_set_id = _text(detail.get("id"), 64)
    status = _text(detail.get("status"), 32)
    if not read_set_id or not status:
        return
    status = status.upper()
    row = _locked_row(
        connection,
        read_sets,
        "read_set_id",
        read_set_id,
        {"store_id": _text(detail.get("sequenceStoreId"), 64), "status_rank": 0},
    )
    changes: dict[str, Any] = {}
    when = _utc(event.event_time)
    new = (when, READ_SET_RANK.get(status, 0), status)
    current_time = _utc(row.get("status_time"))
    if (
        row.get("status") is None
        or current_time is None
        or new
        > (
            current_time,
            row.get("status_rank") or 0,
            row.get("status") or "",
        )
    ):
        changes.update(
            status=status,
            status_rank=new[1],
            status_time=when,
            status_message=_text(detail.get("statusMessage")),
        )
    job_id = _text(detail.get("creationJobId"), 64)
    if job_id and row.get("job_id") is None:
        changes["job_id"] = job_id
    if row.get("store_id") is None and detail.get("sequenceStoreId"):
        changes["store_id"] = _text(detail.get("sequenceStoreId"), 64)
    _save(connection, read_sets, "read_set_id", read_set_id, changes)
