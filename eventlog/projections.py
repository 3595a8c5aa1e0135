"""Read models folded from the log: ``runs`` and ``deliveries``.

Why folds: the log is the truth and every piece of derived state must be rebuildable from it
(DESIGN.md §3 step 6).  :func:`apply` takes one stored event and updates the projections it
concerns; :func:`eventlog.store.append_many` calls it for every *new* event inside the appending
transaction, so a projection is never behind or ahead of the log, and a later ``rebuild`` drops
the tables and calls :func:`apply` again for every event in log order.

Why the result does not depend on arrival order: EventBridge delivers out of order and twice,
and the pipeline appends its own facts (*Run Enriched*, *Callback Delivered*) in whatever order
the workers finish.  So every field is chosen by a *strict total order* over the facts that
could set it, never by "last write wins":

* a run's status is the best of its status events by :func:`status_beats`: higher rank wins
  (``PENDING < STARTING < RUNNING < STOPPING < COMPLETED|FAILED|CANCELLED < DELETED``); within a
  terminal rank the *earliest* event stands (a terminal status is never replaced, except by
  DELETED, a later fact); within a non-terminal rank the latest; the event id breaks ties;
* the enrichment fields (``WESRunId``, times, log URLs, outputs, messages) come whole from the
  best *API-backed* enrichment by the same order on the status it enriched; enrichments made
  without HealthOmics' answer (a deleted run) never overwrite them;
* the last delivered callback is the best *Callback Delivered* by the same order;
* ``deliveries`` gets one row per callback fact, keyed by the fact's own id.

A maximum under a total order is commutative and idempotent, so any order of the same events,
duplicates included, folds to the same rows — any order the log can hold, that is: HealthOmics'
events in any order, and each pipeline fact after the event it is about (a fact about a run the
projection has not seen is ignored, as it cannot be in the log before its cause).

:func:`apply` never raises for odd content (a status event without a run ``uuid`` is simply not
a run fact): it runs inside the intake's transaction, and a projection must not be able to
refuse an event the log accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from eventlog.tables import deliveries, runs
from eventlog.tables import dialect_insert as _insert

# --- the vocabulary -------------------------------------------------------------------------

RUN_STATUS_CHANGE = "Run Status Change"
#: A status the reconciler learnt from GetRun because the event never came (payload shaped
#: like a Run Status Change, so enrichment and callback treat it the same).
RUN_STATUS_RECONCILED = "Run Status Reconciled"
RUN_ENRICHED = "Run Enriched"
RUN_ENRICHMENT_FAILED = "Run Enrichment Failed"
CALLBACK_DELIVERED = "Callback Delivered"
CALLBACK_FAILED = "Callback Failed"
CALLBACK_SKIPPED = "Callback Skipped"
CALLBACK_SUPERSEDED = "Callback Superseded"

#: Detail-types that carry a run's status.
STATUS_EVENTS = frozenset({RUN_STATUS_CHANGE, RUN_STATUS_RECONCILED})
#: Detail-type -> the ``deliveries.outcome`` it records (Callback Failed: see :func:`_outcome`).
CALLBACK_OUTCOMES = {
    CALLBACK_DELIVERED: "delivered",
    CALLBACK_FAILED: "failed",
    CALLBACK_SKIPPED: "skipped",
    CALLBACK_SUPERSEDED: "superseded",
}

#: Run status -> rank; statuses of one rank are alternatives, a higher rank comes later.
STATUS_RANK: dict[str, int] = {
    "PENDING": 1,
    "STARTING": 2,
    "RUNNING": 3,
    "STOPPING": 4,
    "COMPLETED": 5,
    "FAILED": 5,
    "CANCELLED": 5,
    "DELETED": 6,
}
TERMINAL_RANK = 5
#: Longest run ``uuid`` a run row is kept for (a real one has 36 characters).
MAX_UUID = 64
TERMINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank >= TERMINAL_RANK)


def rank_of(status: str | None) -> int:
    """0 for a status that is not a run status."""
    return STATUS_RANK.get((status or "").upper(), 0)


def status_beats(new: tuple[int, datetime, str], old: tuple[int, datetime, str]) -> bool:
    """True if the fact ``new`` = (rank, event time, event id) supersedes ``old``.

    A strict total order (see the module docstring): ``status_beats(a, a)`` is False, and for
    two different facts exactly one beats the other.
    """
    new_rank, new_time, new_id = new
    old_rank, old_time, old_id = old
    if new_rank != old_rank:
        return new_rank > old_rank
    if new_time != old_time:
        if new_rank >= TERMINAL_RANK:
            return new_time < old_time  # the first terminal status stands
        return new_time > old_time
    return new_id < old_id


# --- helpers ----------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 text (``Z`` or an offset) as an aware UTC datetime; None if unreadable."""
    if isinstance(value, datetime):
        return _utc(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:limit] if limit else value


def _detail(payload: dict[str, Any]) -> dict[str, Any]:
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return detail if isinstance(detail, dict) else {}



def _run_row(connection: Connection, run_uuid: str) -> Any:
    return connection.execute(select(runs).where(runs.c.run_uuid == run_uuid)).one_or_none()


# --- the folds --------------------------------------------------------------------------------


def _fold_status(connection: Connection, event: Any) -> None:
    detail = _detail(event.payload)
    run_uuid = _text(detail.get("uuid")) or event.resource_id
    status = (_text(detail.get("status")) or event.status or "").upper()
    rank = rank_of(status)
    if not run_uuid or len(run_uuid) > MAX_UUID or not rank:
        return
    when = _utc(event.event_time)
    seen = _utc(event.received_at)
    facts = {
        "run_id": _text(detail.get("runId"), 32),
        "arn": _text(detail.get("arn"), 2048) or event.resource_arn,
        "run_name": _text(detail.get("runName"), 256),
        "workflow_id": _text(detail.get("workflowId"), 64),
        "workflow_name": _text(detail.get("workflowName"), 256),
        "run_output_uri": _text(detail.get("runOutputUri")),
    }
    row = _run_row(connection, run_uuid)
    if row is None:
        connection.execute(
            _insert(connection, runs).values(
                run_uuid=run_uuid,
                status=status,
                status_rank=rank,
                status_time=when,
                status_event_id=event.event_id,
                first_seen_at=seen,
                last_seen_at=seen,
                last_event_time=when,
                last_event_id=event.event_id,
                **facts,
            )
        )
        return
    changes: dict[str, Any] = {}
    current = (row.status_rank, _utc(row.status_time), row.status_event_id)
    if status_beats((rank, when, event.event_id), current):
        changes.update(
            status=status, status_rank=rank, status_time=when, status_event_id=event.event_id
        )
    for name, value in facts.items():
        if value is not None and getattr(row, name) is None:
            changes[name] = value
    if seen < _utc(row.first_seen_at):
        changes["first_seen_at"] = seen
    if seen > _utc(row.last_seen_at):
        changes["last_seen_at"] = seen
    if (when, event.event_id) > (_utc(row.last_event_time), row.last_event_id):
        changes.update(last_event_time=when, last_event_id=event.event_id)
    if changes:
        connection.execute(update(runs).where(runs.c.run_uuid == run_uuid).values(**changes))


def _fold_enriched(connection: Connection, event: Any) -> None:
    detail = _detail(event.payload)
    run_uuid = _text(detail.get("uuid")) or event.resource_id
    if not run_uuid or len(run_uuid) > MAX_UUID or not detail.get("fromApi"):
        return  # no HealthOmics answer behind it: it must not overwrite one that had
    row = _run_row(connection, run_uuid)
    if row is None:
        return  # the status event always lands first; a stray enrichment is not a run
    status = (_text(detail.get("status")) or "").upper()
    cause_time = parse_time(detail.get("eventTime")) or _utc(event.event_time)
    cause_id = _text(detail.get("causeEventId")) or event.caused_by or event.event_id
    key = (rank_of(status), cause_time, cause_id)
    if row.enriched_rank is not None and not status_beats(
        key, (row.enriched_rank, _utc(row.enriched_time), row.enriched_event_id or "")
    ):
        return
    tags = detail.get("tags") if isinstance(detail.get("tags"), dict) else None
    connection.execute(
        update(runs)
        .where(runs.c.run_uuid == run_uuid)
        .values(
            enriched_event_id=cause_id,
            enriched_rank=key[0],
            enriched_time=cause_time,
            wes_run_id=_text(detail.get("wesRunId"), 256),
            tags=tags,
            run_name=_text(detail.get("runName"), 256) or row.run_name,
            workflow_id=_text(detail.get("workflowId"), 64) or row.workflow_id,
            workflow_name=_text(detail.get("workflowName"), 256) or row.workflow_name,
            run_group_id=_text(detail.get("runGroupId"), 64),
            run_output_uri=_text(detail.get("runOutputUri")) or row.run_output_uri,
            creation_time=parse_time(detail.get("creationTime")),
            start_time=parse_time(detail.get("startTime")),
            stop_time=parse_time(detail.get("stopTime")),
            duration_seconds=detail.get("durationSeconds")
            if isinstance(detail.get("durationSeconds"), int | float)
            else None,
            status_message=_text(detail.get("statusMessage")),
            failure_reason=_text(detail.get("failureReason"), 256),
            output_mapping=detail.get("outputMapping"),
            log_urls=detail.get("logUrls"),
        )
    )


def _outcome(detail_type: str, detail: dict[str, Any]) -> str:
    if detail_type == CALLBACK_FAILED and detail.get("final"):
        return "dead-lettered"
    return CALLBACK_OUTCOMES[detail_type]


def _fold_callback(connection: Connection, event: Any) -> None:
    detail = _detail(event.payload)
    sent_id = _text(detail.get("eventId"), 256) or event.caused_by or event.event_id
    run_uuid = _text(detail.get("uuid"), 64) or event.resource_id
    status = (_text(detail.get("status")) or "").upper() or None
    http_status = detail.get("httpStatus")
    attempts = detail.get("attempts")
    connection.execute(
        _insert(connection, deliveries)
        .values(
            delivery_id=event.event_id,
            event_id=sent_id,
            caused_by=event.caused_by,
            run_uuid=run_uuid,
            run_id=_text(detail.get("runId"), 32),
            wes_run_id=_text(detail.get("wesRunId"), 256),
            status=status,
            outcome=_outcome(event.detail_type, detail),
            http_status=http_status if isinstance(http_status, int) else None,
            response_body=_text(detail.get("responseBody"), 2000),
            attempts=attempts if isinstance(attempts, int) else 1,
            url=_text(detail.get("url"), 2048),
            reason=_text(detail.get("reason"), 4000),
            created_at=_utc(event.event_time),
        )
        .on_conflict_do_nothing(index_elements=["delivery_id"])
    )
    if event.detail_type != CALLBACK_DELIVERED or not run_uuid or not rank_of(status):
        return
    row = _run_row(connection, run_uuid)
    if row is None:
        return
    sent_time = parse_time(detail.get("eventTime")) or _utc(event.event_time)
    key = (rank_of(status), sent_time, sent_id)
    if row.callback_rank is not None and not status_beats(
        key, (row.callback_rank, _utc(row.callback_event_time), row.callback_event_id or "")
    ):
        return
    connection.execute(
        update(runs)
        .where(runs.c.run_uuid == run_uuid)
        .values(
            callback_status=status,
            callback_rank=key[0],
            callback_event_id=sent_id,
            callback_event_time=sent_time,
            callback_delivered_at=_utc(event.event_time),
        )
    )


#: detail-type -> its fold.  Other pools add theirs here; an unlisted detail-type folds to
#: nothing (every event is still in the log).
FOLDS: dict[str, Callable[[Connection, Any], None]] = {
    RUN_STATUS_CHANGE: _fold_status,
    RUN_STATUS_RECONCILED: _fold_status,
    RUN_ENRICHED: _fold_enriched,
    CALLBACK_DELIVERED: _fold_callback,
    CALLBACK_FAILED: _fold_callback,
    CALLBACK_SKIPPED: _fold_callback,
    CALLBACK_SUPERSEDED: _fold_callback,
}

#: Projection tables in the order a rebuild empties them.
TABLES = (deliveries, runs)


def apply(connection: Connection, event: Any) -> None:
    """Fold one stored event (:class:`eventlog.store.StoredEvent`) into the projections.

    Only HealthOmics' own run events (source ``aws.omics``) and the pipeline's facts are folded:
    a look-alike from another source is not a run fact.
    """
    fold = FOLDS.get(event.detail_type)
    if fold is None:
        return
    if event.detail_type == RUN_STATUS_CHANGE and event.source != "aws.omics":
        return
    if event.detail_type != RUN_STATUS_CHANGE and event.origin != "pipeline":
        return
    fold(connection, event)
