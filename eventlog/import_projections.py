"""Read models of read-set imports folded from the log: ``import_jobs``, ``import_sources``,
``read_sets``.

Why folds: the log is the truth (docs/design.md §3 step 6), so what ``omics-events imports`` shows,
and what the imports pool reads to decide what to batch next, must be rebuildable from it.
:func:`apply` folds one stored event.  :func:`eventlog.store.append_many` calls it (through
:mod:`eventlog.projection_set`) for every new event in the appending transaction; the imports
pool folds its own facts once more when it records them, which changes nothing.  A rebuild
(:mod:`eventlog.rebuild`, or :func:`rebuild` for these tables alone) empties the tables and
folds the whole log again in log order.

Why arrival order does not matter: EventBridge delivers out of order and twice, two workers
append facts about the same source concurrently (a FASTQ pair's R1 and R2), and a rebuild folds
in log order what the live fold saw in another.  So every field is chosen by a total order over
the facts that can set it, never by "last write wins":

* a source's outcome is the maximum of ``(final, attempt, rank)`` over its facts, with
  ``waiting < orphaned < ready < planned < submitted < failed`` within one attempt, a later
  attempt above an earlier one, and the final outcomes (``imported``, ``dead``, ``rejected``)
  above everything: a source is never "un-imported";
* a FASTQ pair's fields come from its R1 when the R1 has been seen, else from its R2;
* a job's status is the maximum of ``(rank, status)``, ``SUBMITTED < IN_PROGRESS < CANCELLING <``
  the terminal statuses: a terminal status is never replaced;
* a read set's status is the maximum of ``(event time, rank, status)``: read sets go back and
  forth (ACTIVE ⇄ ARCHIVED), so time comes first, and the rank orders a same-second pair
  (PROCESSING_UPLOAD then ACTIVE).

A maximum under a total order is commutative and idempotent, so the same events in any order,
duplicates included, fold to the same rows, and folding an event twice is harmless.  :func:`apply`
never raises for odd content: an event it cannot read folds to nothing.

The pipeline facts folded here are appended by the imports pool (``workers/imports.py``); their
detail-types are defined here, next to their folds, because ``eventlog`` may not import workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import DBAPIError

from eventlog import dialect, projection_contract
from eventlog.entries import stored_event
from eventlog.tables import events, import_jobs, import_sources, read_sets
from schemas.vocabulary import (
    FILE_REGISTERED,
    FILE_REJECTED,
    IMPORT_JOB_STATUS_CHANGE,
    JOB_CHECKED,
    JOB_PLANNED,
    JOB_RANK,
    JOB_STARTED,
    JOB_TERMINAL,
    MATE_MISSING,
    READ_SET_STATUS_CHANGE,
    SOURCES_FAILED,
)

log = logging.getLogger(__name__)

#: Read set status -> rank, for statuses sharing one event time.
READ_SET_RANK: dict[str, int] = {
    "PROCESSING_UPLOAD": 1,
    "ACTIVATING": 2,
    "ACTIVE": 3,
    "ARCHIVED": 3,
    "UPLOAD_FAILED": 4,
    "DELETING": 5,
    "DELETED": 6,
}

#: Source outcome -> rank within one attempt.
OUTCOME_RANK: dict[str, int] = {
    "new": 0,
    "waiting": 10,
    "orphaned": 15,
    "ready": 20,
    "planned": 30,
    "submitted": 40,
    "failed": 50,
    "imported": 90,
    "dead": 95,
    "rejected": 99,
}
FINAL_OUTCOMES = frozenset({"imported", "dead", "rejected"})
#: Outcomes ``omics-events imports --failed`` shows.
FAILED_OUTCOMES = frozenset({"failed", "dead", "rejected", "orphaned"})


# --- helpers ----------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str) and value:
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    return text[:limit] if limit else text


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _locked_row(
    connection: Connection, table: Any, key: str, value: str, defaults: dict[str, Any]
) -> dict[str, Any]:
    """The row keyed ``value``, created with ``defaults`` if absent, locked until commit on
    PostgreSQL (SQLite serialises writers), so concurrent folds of one row cannot lose updates."""
    connection.execute(
        dialect.insert(connection, table)
        .values({key: value, **defaults})
        .on_conflict_do_nothing(index_elements=[key])
    )
    query = dialect.for_update(connection, select(table).where(table.c[key] == value))
    return dict(connection.execute(query).one()._mapping)


def _save(
    connection: Connection, table: Any, key: str, value: str, changes: dict[str, Any]
) -> None:
    if changes:
        connection.execute(update(table).where(table.c[key] == value).values(changes))


def _earliest(current: datetime | None, candidate: datetime | None) -> datetime | None:
    current, candidate = _utc(current), _utc(candidate)
    if current is None:
        return candidate
    if candidate is None:
        return current
    return min(current, candidate)


def _latest(current: datetime | None, candidate: datetime | None) -> datetime | None:
    current, candidate = _utc(current), _utc(candidate)
    if current is None:
        return candidate
    if candidate is None:
        return current
    return max(current, candidate)


def _detail(event: Any) -> dict[str, Any]:
    payload = event.payload if isinstance(event.payload, dict) else {}
    detail = payload.get("detail")
    return detail if isinstance(detail, dict) else {}


# --- sources ----------------------------------------------------------------------------------


def _source_row(connection: Connection, key: str, origin: str, when: datetime) -> dict[str, Any]:
    return _locked_row(
        connection,
        import_sources,
        "source_key",
        key,
        {
            "origin": origin,
            "outcome": "new",
            "outcome_final": 0,
            "attempts": 0,
            "outcome_rank": 0,
            "paired": 0,
            "updated_at": when,
        },
    )


def outcome_key(outcome: str, attempt: int) -> tuple[int, int, int]:
    """The order a source's outcomes are chosen by (see the module docstring)."""
    return (int(outcome in FINAL_OUTCOMES), attempt, OUTCOME_RANK[outcome])


def _merge_outcome(
    row: dict[str, Any],
    changes: dict[str, Any],
    outcome: str,
    attempt: int,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Move the source to ``outcome`` if it beats the current one; True if it did."""
    new = outcome_key(outcome, attempt)
    old = (row["outcome_final"], row["attempts"], row["outcome_rank"])
    if new <= old:
        return False
    changes.update(
        outcome=outcome,
        outcome_final=new[0],
        attempts=new[1],
        outcome_rank=new[2],
        **(fields or {}),
    )
    row.update(changes)
    return True


def _touch(row: dict[str, Any], changes: dict[str, Any], when: datetime) -> None:
    latest = _latest(row.get("updated_at"), when)
    if latest != _utc(row.get("updated_at")):
        changes["updated_at"] = latest


def _fill_spec(row: dict[str, Any], changes: dict[str, Any], spec: dict[str, Any]) -> None:
    """Fill a source's descriptive fields from a StartReadSetImportJob-shaped spec, where empty
    (a job's spec never contradicts the registration it was built from)."""
    files = spec.get("sourceFiles") or {}
    candidates: dict[str, Any] = {
        "source1": _text(files.get("source1"), 1100),
        "source2": _text(files.get("source2"), 1100),
        "file_type": _text(spec.get("sourceFileType"), 8),
        "subject_id": _text(spec.get("subjectId"), 128),
        "sample_id": _text(spec.get("sampleId"), 128),
        "reference_arn": _text(spec.get("referenceArn"), 2048),
        "name": _text(spec.get("name"), 128),
    }
    extra = {k: spec[k] for k in ("description", "generatedFrom", "tags") if spec.get(k)}
    candidates["extra"] = extra or None
    for column, value in candidates.items():
        if value is not None and row.get(column) is None:
            changes[column] = value
            row[column] = value
    if candidates["source2"] and not row.get("paired"):
        changes["paired"] = row["paired"] = 1


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
        key = _text(spec.get("sourceKey"), 1100)
        if not key:
            continue
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


# --- the entry points ---------------------------------------------------------------------------

#: detail-type -> its fold.
FOLDS: dict[str, Callable[[Connection, Any], None]] = {
    FILE_REGISTERED: _fold_registered,
    FILE_REJECTED: _fold_rejected,
    MATE_MISSING: _fold_mate_missing,
    JOB_PLANNED: _fold_planned,
    JOB_STARTED: _fold_started,
    JOB_CHECKED: _fold_checked,
    SOURCES_FAILED: _fold_failed,
    IMPORT_JOB_STATUS_CHANGE: _fold_job_status,
    READ_SET_STATUS_CHANGE: _fold_read_set,
}
#: HealthOmics' own events among them; the rest must be the pipeline's facts.
AWS_DETAIL_TYPES = frozenset({IMPORT_JOB_STATUS_CHANGE, READ_SET_STATUS_CHANGE})

#: Projection tables in the order a rebuild empties them.
TABLES = (read_sets, import_sources, import_jobs)


def apply(connection: Connection, event: Any) -> None:
    """Fold one stored event (:class:`eventlog.entries.StoredEvent`) into the import projections.

    Idempotent and order-independent (module docstring); an unrelated event folds to nothing.
    """
    fold = FOLDS.get(event.detail_type)
    if fold is None:
        return
    if (event.detail_type in AWS_DETAIL_TYPES) != (event.origin == "aws"):
        return  # a pipeline look-alike of an AWS event, or an AWS look-alike of our facts
    try:
        fold(connection, event)
    except DBAPIError:
        raise  # the transaction is broken: the caller's retry folds it again
    except Exception:  # odd content: a projection must never refuse an event the log accepted
        log.exception(
            "could not fold %s %s into the import projections", event.detail_type, event.event_id
        )


class Imports(projection_contract.Projection):
    """``import_jobs``, ``import_sources``, ``read_sets``: folded event by event in SQL (each
    fold reads and locks the rows it changes), batch by batch in a rebuild too."""

    name = "imports"
    tables = TABLES
    folds = FOLDS

    def apply_many(self, connection: Connection, events: Sequence[Any]) -> None:
        for event in events:
            apply(connection, event)


def rebuild(connection: Connection, *, batch: int = 1000) -> int:
    """Empty the import projections and fold the log again, in log order; returns events folded."""
    for table in TABLES:
        connection.execute(delete(table))
    folded = 0
    after = 0
    while True:
        rows = connection.execute(
            select(events)
            .where(events.c.seq > after, events.c.detail_type.in_(list(FOLDS)))
            .order_by(events.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return folded
        for row in rows:
            apply(connection, stored_event(row))
            folded += 1
        after = rows[-1]._mapping["seq"]


def snapshot(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The projections' folded columns, sorted: equal after a rebuild (``updated_at`` aside,
    which is the newest fact's time and so equal too)."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        key = next(iter(table.primary_key.columns))
        rows: Iterable[Any] = connection.execute(select(table).order_by(key)).all()
        result[table.name] = [tuple(row) for row in rows]
    return result
