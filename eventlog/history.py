"""What happened to a run: the runs projection, and one run's timeline from the log.

Why: "what happened to run X" is the operator's first question, and its answer is spread over
HealthOmics' events (the run's status changes, its tasks'), and the pipeline's own facts about
them (archived, enriched, each callback attempt and its outcome).  The ``runs`` projection
answers "where is it now"; the log answers "how did it get there", in log order.

Runs are keyed by ``uuid``: HealthOmics reuses run ids after deletion, so a numeric id may name
several runs (:func:`find_runs` returns them all, newest first).  No rendering here: the command
(``omics-events runs`` / ``run``) draws tables or prints JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from eventlog.entries import StoredEvent, as_utc, stored_event
from eventlog.rebuild import canonical
from eventlog.tables import events, runs, tasks
from schemas.vocabulary import EVENT_ARCHIVED, TASK_STATUS_CHANGE


def _row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = as_utc(value)
    return out


def list_runs(
    connection: Connection,
    *,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = 50,
) -> list[dict[str, Any]]:
    """Runs from the projection, most recent activity first; ``since`` bounds the last event."""
    query = select(runs).order_by(runs.c.last_event_time.desc(), runs.c.run_uuid)
    if status:
        query = query.where(runs.c.status == status.upper())
    if since is not None:
        query = query.where(runs.c.last_event_time >= since)
    if limit:
        query = query.limit(limit)
    return [_row(row) for row in connection.execute(query)]


def find_runs(connection: Connection, ident: str) -> list[dict[str, Any]]:
    """The runs ``ident`` names — a uuid, a (reused) numeric run id, or a WES run id — newest
    first."""
    query = (
        select(runs)
        .where(or_(runs.c.run_uuid == ident, runs.c.run_id == ident, runs.c.wes_run_id == ident))
        .order_by(runs.c.last_event_time.desc())
    )
    return [_row(row) for row in connection.execute(query)]


def run_tasks(connection: Connection, run_uuid: str) -> list[dict[str, Any]]:
    query = (
        select(tasks)
        .where(tasks.c.run_uuid == run_uuid)
        .order_by(tasks.c.first_event_time, tasks.c.task_id)
    )
    return [_row(row) for row in connection.execute(query)]


def timeline(
    connection: Connection, run_uuid: str, *, with_tasks: bool = True
) -> list[StoredEvent]:
    """Every event about the run, in log order: its status events and the pipeline's facts
    about them (enrichment, callback attempts and outcomes, archiving), and — ``with_tasks`` —
    its tasks' status events and their facts."""
    found: dict[int, StoredEvent] = {}
    for row in connection.execute(select(events).where(events.c.resource_id == run_uuid)):
        event = stored_event(row)
        found[event.seq] = event
    if with_tasks:
        task_ids = [t["task_id"] for t in run_tasks(connection, run_uuid)]
        for start in range(0, len(task_ids), 500):
            rows = connection.execute(
                select(events).where(
                    events.c.detail_type == TASK_STATUS_CHANGE,
                    events.c.resource_id.in_(task_ids[start : start + 500]),
                )
            )
            for row in rows:
                event = stored_event(row)
                detail = event.payload.get("detail") if isinstance(event.payload, dict) else None
                owner = detail.get("runUuid") if isinstance(detail, dict) else None
                if owner in (None, run_uuid):
                    found[event.seq] = event
    causes = [event.event_id for event in found.values() if event.origin == "aws"]
    for start in range(0, len(causes), 500):
        rows = connection.execute(
            select(events).where(events.c.caused_by.in_(causes[start : start + 500]))
        )
        for row in rows:
            event = stored_event(row)
            if with_tasks or event.resource_id == run_uuid:
                found[event.seq] = event
    return [found[seq] for seq in sorted(found)]


def _detail(event: StoredEvent) -> dict[str, Any]:
    detail = event.payload.get("detail") if isinstance(event.payload, dict) else None
    return detail if isinstance(detail, dict) else {}


def summary(event: StoredEvent) -> str:
    """One line saying what an event of a run's timeline means."""
    detail = _detail(event)
    kind = event.detail_type
    if kind == TASK_STATUS_CHANGE:
        arn = str(detail.get("arn") or event.resource_arn or "")
        return f"task {arn.rsplit('/', 1)[-1] or event.resource_id} {detail.get('status', '')}"
    if kind in {"Run Status Change", "Run Status Reconciled"}:
        parts = [str(detail.get("status") or event.status or "")]
        if detail.get("failureReason"):
            parts.append(f"failure {detail['failureReason']}")
        if detail.get("reconciledFrom"):
            parts.append(f"(was {detail['reconciledFrom']}: no event came)")
        if isinstance(event.payload, dict) and event.payload.get("replay-name"):
            parts.append(f"replayed by {event.payload['replay-name']}")
        return " ".join(parts)
    if kind == "Run Enriched":
        parts = [f"for {detail.get('status', '?')}"]
        for key, label in (
            ("wesRunId", "WES"),
            ("durationSeconds", "duration s"),
            ("failureReason", "failure"),
        ):
            if detail.get(key) not in (None, ""):
                parts.append(f"{label} {detail[key]}")
        if isinstance(detail.get("outputMapping"), dict):
            parts.append(f"{len(detail['outputMapping'])} outputs")
        if not detail.get("fromApi"):
            parts.append("(without HealthOmics' answer)")
        return ", ".join(parts)
    if kind.startswith("Callback "):
        parts = [f"{detail.get('status', '')} -> {detail.get('url', '')}".strip()]
        if detail.get("httpStatus") is not None:
            parts.append(f"HTTP {detail['httpStatus']}")
        if detail.get("attempts") is not None:
            parts.append(f"attempt {detail['attempts']}")
        if detail.get("reason"):
            parts.append(str(detail["reason"])[:160])
        return ", ".join(parts)
    if kind == EVENT_ARCHIVED:
        return str(detail.get("raw") or "")
    if detail.get("reason"):
        return str(detail["reason"])[:160]
    return str(detail.get("status") or event.status or "")


def as_json(event: StoredEvent) -> dict[str, Any]:
    """A timeline entry for ``--json`` (times as UTC ISO-8601)."""
    return {
        "seq": event.seq,
        "event_id": event.event_id,
        "origin": event.origin,
        "detail_type": event.detail_type,
        "status": event.status,
        "event_time": canonical(event.event_time),
        "received_at": canonical(event.received_at),
        "caused_by": event.caused_by,
        "summary": summary(event),
        "detail": _detail(event),
    }
