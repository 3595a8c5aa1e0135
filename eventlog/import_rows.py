"""The rows the import folds read and write, and the orders they merge by.

Why its own module: every import fold (:mod:`eventlog.import_folds`) reads a row locked, merges
a fact into it by a total order (:mod:`eventlog.import_projections` says why) and saves only what
changed; the ranks, the merges of a source's outcome and the readers of odd event content are
shared by all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from eventlog import dialect
from eventlog.tables import import_sources

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
