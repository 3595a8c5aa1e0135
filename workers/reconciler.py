"""The reconciler: runs whose events never came, brought to the status HealthOmics reports.

HealthOmics events are best effort (reference §0.4, §5): in rare cases a transition is never
sent, and a run the log holds as RUNNING may have finished hours ago.  Each round, for runs the
``runs`` projection holds as not finished and that have had no news for ``RECONCILE_AFTER``
seconds (and were not checked within that time), the reconciler asks GetRun — through the same
account-wide rate limiter as the enrich pool — and when HealthOmics reports a later status it
appends a *Run Status Reconciled* fact:

* its id derives from the run ``uuid`` and the status, so two reconcilers, or one run twice,
  append it once;
* its payload is shaped like a *Run Status Change* (same ``detail`` fields), so the ``runs``
  fold, the enrich stage and the callback stage treat it exactly like a received event; it owes
  ``enrich``, which owes ``callback``;
* its time is the run's own (``stopTime`` for a finished run, ``startTime`` for RUNNING), so the
  callback reports when the change happened, not when we noticed.

``run_checks`` remembers when each run was last asked about, so a legitimately long run is asked
once per ``RECONCILE_AFTER``, not every round.  A throttled round stops early and leaves the rest
for the next one.

A run every event of which was lost is in no projection, so no GetRun would ever be asked about
it.  *Discovery* (``discover=True``; the poller does it every ``RECONCILE_DISCOVER_INTERVAL``)
lists every run (ListRuns, all pages), and for each one the log has never heard of — created
after the log's first event (older runs were never ours to report) and at least
``RECONCILE_AFTER`` ago (its events may still be on their way) — asks GetRun and appends the
same *Run Status Reconciled* fact, with no cause.  The fold creates the run; enrichment and the
callback follow as for any status event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import Connection, and_, func, or_, select

from eventlog import store
from eventlog.projections import RUN_STATUS_RECONCILED, TERMINAL_RANK, rank_of
from eventlog.store import PIPELINE_SOURCE, LogEntry, derived_id
from eventlog.tables import events, run_checks, runs
from workers.omics import OmicsApi, OmicsError
from workers.outbox import publish_owed
from workers.routing import RECONCILED_STAGES
from workers.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What one round did."""

    checked: int = 0
    reconciled: list[tuple[str, str, str]] = field(default_factory=list)  # run id, from, to
    unchanged: int = 0
    gone: int = 0
    throttled: bool = False
    errors: int = 0
    discovered: list[str] = field(default_factory=list)  # run ids the log had never heard of

    def summary(self) -> str:
        moved = ", ".join(f"{run} {old}→{new}" for run, old, new in self.reconciled) or "none"
        found = f", {len(self.discovered)} discovered" if self.discovered else ""
        return (
            f"checked {self.checked} runs: {len(self.reconciled)} reconciled ({moved}), "
            f"{self.unchanged} unchanged, {self.gone} gone, {self.errors} errors{found}"
            + (", stopped early (throttled)" if self.throttled else "")
        )


def reconciled_event_id(run_uuid: str, status: str) -> str:
    """One id per (run, status): reconciling twice appends once."""
    return derived_id(f"run:{run_uuid}", f"{RUN_STATUS_RECONCILED}:{status}")


def _due_runs(connection: Connection, cutoff: datetime, limit: int) -> list[Any]:
    checked = run_checks.c.checked_at
    return list(
        connection.execute(
            select(runs, checked.label("checked_at"))
            .select_from(runs.outerjoin(run_checks, run_checks.c.run_uuid == runs.c.run_uuid))
            .where(
                runs.c.status_rank < TERMINAL_RANK,
                runs.c.last_seen_at <= cutoff,
                runs.c.run_id.is_not(None),
                or_(checked.is_(None), checked <= cutoff),
            )
            .order_by(func.coalesce(checked, runs.c.last_seen_at), runs.c.run_uuid)
            .limit(limit)
        )
    )


def _mark_checked(
    connection: Connection, run_uuid: str, api_status: str | None, result: str
) -> None:
    values = {"checked_at": store.utcnow(), "api_status": api_status, "result": result[:64]}
    updated = connection.execute(
        run_checks.update().where(run_checks.c.run_uuid == run_uuid).values(**values)
    )
    if updated.rowcount == 0:
        connection.execute(run_checks.insert().values(run_uuid=run_uuid, **values))


def _event_time(run: dict[str, Any], status: str) -> datetime:
    field_name = {"RUNNING": "startTime", "PENDING": "creationTime", "STARTING": "creationTime"}
    candidate = run.get(field_name.get(status, "stopTime"))
    if rank_of(status) < TERMINAL_RANK and status not in field_name:
        candidate = None  # STOPPING has no time of its own in GetRun
    return candidate if isinstance(candidate, datetime) else store.utcnow()


def reconciled_entry(row: Any, run: dict[str, Any]) -> LogEntry:
    """The *Run Status Reconciled* fact for a run whose status moved without an event."""
    status = str(run["status"]).upper()
    when = store.as_utc(_event_time(run, status))
    event_id = reconciled_event_id(row.run_uuid, status)
    arn = str(run.get("arn") or row.arn or "")
    parts = arn.split(":")
    detail = {
        "omicsVersion": "1.0.0",
        "arn": arn,
        "status": status,
        "uuid": row.run_uuid,
        "runId": row.run_id,
        "runName": run.get("name") or row.run_name,
        "runOutputUri": run.get("runOutputUri") or row.run_output_uri,
        "workflowId": run.get("workflowId") or row.workflow_id,
        "workflowName": row.workflow_name,
        "failureReason": run.get("failureReason"),
        "statusMessage": run.get("statusMessage"),
        "reconciledFrom": row.status,
        "reconciledAt": store.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    payload = {
        "version": "0",
        "id": event_id,
        "detail-type": RUN_STATUS_RECONCILED,
        "source": PIPELINE_SOURCE,
        "account": parts[4] if len(parts) > 4 else "",
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": parts[3] if len(parts) > 3 else "",
        "resources": [arn] if arn else [],
        "caused-by": row.last_event_id,
        "detail": {key: value for key, value in detail.items() if value is not None},
    }
    return LogEntry(
        event_id=event_id,
        origin="pipeline",
        source=PIPELINE_SOURCE,
        detail_type=RUN_STATUS_RECONCILED,
        event_time=when,
        payload=payload,
        resource_arn=arn or None,
        resource_id=row.run_uuid,
        status=status,
        caused_by=row.last_event_id,
    )


@dataclass(frozen=True)
class _UnheardRun:
    """What :func:`reconciled_entry` needs of a run the log never held, from GetRun."""

    run_uuid: str
    run_id: str
    arn: str | None
    run_name: str | None
    run_output_uri: str | None
    workflow_id: str | None
    workflow_name: str | None
    status: None = None
    last_event_id: None = None


#: Runs created this long before the log's first event are still looked at (clock skew, a run
#: created just before the poller first ran).
DISCOVERY_MARGIN = timedelta(hours=1)


def _unheard(connection: Connection, listed: list[dict[str, Any]], newest: datetime) -> list[str]:
    """Run ids that HealthOmics lists, created in the log's time and before ``newest``, and that
    no projection holds."""
    first = connection.execute(select(func.min(events.c.event_time))).scalar_one_or_none()
    if first is None:
        return []
    oldest = store.as_utc(first) - DISCOVERY_MARGIN
    candidates = {
        str(run["id"]): run
        for run in listed
        if isinstance(run.get("creationTime"), datetime)
        and oldest <= store.as_utc(run["creationTime"]) <= newest
    }
    if not candidates:
        return []
    known = set(
        connection.execute(
            select(runs.c.run_id).where(runs.c.run_id.in_(list(candidates)))
        ).scalars()
    )
    return sorted(set(candidates) - known)


def _discover(runtime: Any, api: OmicsApi, cutoff: datetime, report: ReconcileReport) -> list[str]:
    listed = api.list_runs()
    with runtime.engine.connect() as connection:
        unheard = _unheard(connection, listed, cutoff)
    appended: list[str] = []
    for run_id in unheard:
        run = api.get_run(run_id)
        row = _UnheardRun(
            run_uuid=str(run["uuid"]),
            run_id=run_id,
            arn=run.get("arn"),
            run_name=run.get("name"),
            run_output_uri=run.get("runOutputUri"),
            workflow_id=run.get("workflowId"),
            workflow_name=run.get("workflowName"),
        )
        entry = reconciled_entry(row, run)
        with runtime.engine.begin() as connection:
            if store.append(connection, entry, RECONCILED_STAGES):
                appended.append(entry.event_id)
                report.discovered.append(run_id)
            _mark_checked(connection, row.run_uuid, str(run.get("status")), "discovered")
    if unheard:
        log.warning(
            "reconciler: %d run(s) no event ever told us of: %s", len(unheard), ", ".join(unheard)
        )
    return appended


def _check_run(
    runtime: Runtime, api: OmicsApi, row: Any, report: ReconcileReport, appended: list[str]
) -> bool:
    """Ask GetRun about one due run and record what it says; False when throttled."""
    try:
        run = api.get_run(row.run_id)
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            report.throttled = True
            return False
        with runtime.engine.begin() as connection:
            _mark_checked(connection, row.run_uuid, None, error.code)
        if error.kind == "gone":
            report.gone += 1
        else:
            report.errors += 1
        log.warning("reconcile: GetRun %s failed: %s", row.run_id, error)
        return True
    report.checked += 1
    api_status = str(run.get("status") or "").upper()
    with runtime.engine.begin() as connection:
        if str(run.get("uuid") or "") != row.run_uuid:
            # the id now names another run: ours was deleted, and no event said so
            _mark_checked(connection, row.run_uuid, api_status, "id-reused")
            report.gone += 1
            return True
        if rank_of(api_status) > row.status_rank:
            entry = reconciled_entry(row, run)
            if store.append(connection, entry, RECONCILED_STAGES):
                appended.append(entry.event_id)
            report.reconciled.append((row.run_id, row.status, api_status))
            result = "reconciled"
        else:
            report.unchanged += 1
            result = "unchanged"
        _mark_checked(connection, row.run_uuid, api_status, result)
    return True


def reconcile(
    app: Celery,
    *,
    older_than: float | None = None,
    limit: int | None = None,
    discover: bool = False,
) -> ReconcileReport:
    """One round: check the runs due, append what moved, publish its work; with ``discover``,
    first list every run to find the ones the log never heard of (module docstring)."""
    runtime = runtime_of(app)
    settings = runtime.settings
    age = settings.reconcile_after if older_than is None else older_than
    cutoff = store.utcnow() - timedelta(seconds=age)
    with runtime.engine.connect() as connection:
        due = _due_runs(connection, cutoff, limit or settings.reconcile_batch)
    report = ReconcileReport()
    appended: list[str] = []
    api = OmicsApi.of(runtime)
    if discover:
        try:
            appended += _discover(runtime, api, cutoff, report)
        except OmicsError as error:  # the next discovery will list them again
            report.throttled = report.throttled or error.kind in {"wait", "quota"}
            report.errors += error.kind not in {"wait", "quota"}
            log.warning("reconcile: discovery stopped: %s", error)
    for row in due:
        if not _check_run(runtime, api, row, report, appended):
            break  # throttled: the rest wait for the next round
    if appended:
        publish_owed(app, appended)
        log.info("reconciler: %s", report.summary())
    return report


def due_count(app: Celery, older_than: float) -> int:
    """How many runs a round would check now (for status displays)."""
    runtime = runtime_of(app)
    cutoff = store.utcnow() - timedelta(seconds=older_than)
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(runs.outerjoin(run_checks, run_checks.c.run_uuid == runs.c.run_uuid))
                .where(
                    and_(runs.c.status_rank < TERMINAL_RANK, runs.c.last_seen_at <= cutoff),
                    or_(run_checks.c.checked_at.is_(None), run_checks.c.checked_at <= cutoff),
                )
            ).scalar_one()
        )
