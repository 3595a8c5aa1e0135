"""Operational alerts: an SNS notification when dead letters appear, and when one sequence
store keeps failing imports.

Why here and not as CloudWatch alarms: an alarm says "a number crossed a line"; an operator
needing to act wants to know *what* failed, *where*, and *what to do*, which only the log knows
(the dead letters' reasons, the files of the failed sources).  The multimodal guidance asks to
"monitor and respond to … repeated import failures"; this is that, with the answer in the
message.

The :class:`AlertsFollower` runs in the metrics pool's loop (:mod:`workers.metrics_pool`) with its
own cursor (:mod:`eventlog.cursors`), every ``METRICS_FLUSH_INTERVAL`` seconds:

* **Dead letters.**  New rows of ``dead_letters`` (after the cursor) are summed up in one
  notification — how many of each kind, the first reasons, how to list and resend them — at most
  once per ``ALERT_DEAD_LETTER_INTERVAL``; letters arriving meanwhile go into the next one.  The
  cursor moves only once the notification is out, so an SNS outage delays an alert but never
  loses it.
* **Repeated import failures.**  When the sources that failed for one sequence store (every
  failed source of every *Import Job Checked*, plus sources a refused StartReadSetImportJob gave
  up) reach ``ALERT_IMPORT_FAILURES`` within the last ``ALERT_IMPORT_WINDOW`` seconds, one
  notification names the store, the count, the most common reasons and the files; the store is
  not alerted about again within the window.

Without ``ALERTS_TOPIC_ARN`` the same text is logged as a warning instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select

from eventlog import cursors
from eventlog import import_projections as imports
from eventlog.store import as_utc, utcnow
from eventlog.tables import dead_letters, events
from workers.follower_loop import LEASE, follower_id
from workers.runtime import Runtime

log = logging.getLogger(__name__)

CURSOR = "alerts"
#: Most dead letters one notification lists by reason (it counts all of them).
LISTED = 20


def dead_letter_message(rows: list[Any], total: int) -> tuple[str, str]:
    """(subject, text) about new dead letters: what, where, what to do."""
    kinds = Counter(str(row.kind) for row in rows)
    subject = f"omics-events: {total} new dead letter(s)"[:100]
    lines = [
        f"What: {total} new dead letter(s): "
        + ", ".join(f"{kind} ×{count}" for kind, count in kinds.most_common())
        + ".",
        "",
    ]
    for row in rows[:LISTED]:
        where = " ".join(
            part
            for part in (
                f"stage {row.stage}" if row.stage else "",
                f"event {row.event_id}" if row.event_id else "",
                f"({row.detail_type})" if row.detail_type else "",
            )
            if part
        )
        lines.append(f"  - [{row.kind}] {where}: {str(row.reason)[:300]}")
    if total > LISTED:
        lines.append(f"  … and {total - LISTED} more.")
    lines += [
        "",
        "Where: the `dead_letters` table of the event log; `omics-events dead-letters` lists "
        "them with their reasons and raw bytes.",
        "",
        "What to do: `rejected` — fix the producer or the allow-lists (ALLOWED_SOURCES, "
        "ALLOWED_ACCOUNTS) and resend with `omics-events send`; `stage` — read the reason "
        "(permissions, a missing resource, a bug), fix it, then resend the event; `import` — "
        "see `omics-events imports --failed`, fix the file or its access and upload it again; "
        "`security` — a run tag tried to redirect a callback: check who tagged the run.",
    ]
    return subject, "\n".join(lines)


def import_failure_message(
    store_id: str, failures: list[dict[str, Any]], window: float
) -> tuple[str, str]:
    """(subject, text) about repeated import failures in one sequence store."""
    reasons = Counter(str(f.get("reason") or "unknown") for f in failures)
    subject = f"omics-events: {len(failures)} import failures in store {store_id}"[:100]
    lines = [
        f"What: {len(failures)} read-set import source(s) failed in sequence store {store_id} "
        f"within the last {window / 60:.0f} minute(s).",
        "",
        "Most common reasons:",
        *(f"  - ×{count}: {reason[:300]}" for reason, count in reasons.most_common(5)),
        "",
        "Files:",
        *(f"  - {f.get('file')}" for f in failures[:LISTED]),
    ]
    if len(failures) > LISTED:
        lines.append(f"  … and {len(failures) - LISTED} more.")
    lines += [
        "",
        f"Where: sequence store {store_id}; `omics-events imports --failed` shows every failed "
        "source, its attempts and its reason.",
        "",
        "What to do: transient failures (throttling, internal errors, timeouts) are retried "
        "automatically — if they keep coming, check the HealthOmics service health and the "
        "account's import quotas.  Permanent ones (access denied, missing files, bad formats) "
        "need the files or the import role fixed, then the files uploaded again.",
    ]
    return subject, "\n".join(lines)


class AlertsFollower:
    """One pass per :meth:`run_once`; see the module docstring."""

    def __init__(self, runtime: Runtime, *, owner: str | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.owner = owner or follower_id()
        self.sent: list[tuple[str, str]] = []  # (subject, text) of every alert this process sent

    def run_once(self) -> int:
        """Send what is due; returns the number of notifications sent (or logged)."""
        now = utcnow()
        with self.runtime.engine.begin() as connection:
            cursor = cursors.lease(connection, CURSOR, self.owner, LEASE)
            if cursor is None:
                return 0
            state = dict(cursor.state)
            last_letter_alert = _time(state.get("dead_letters_at"))
            letters: list[Any] = []
            if last_letter_alert is None or (now - last_letter_alert).total_seconds() >= (
                self.settings.alert_dead_letter_interval
            ):
                letters = list(
                    connection.execute(
                        select(dead_letters)
                        .where(dead_letters.c.id > cursor.last_dead_letter_id)
                        .order_by(dead_letters.c.id)
                        .limit(5000)
                    ).all()
                )
            window = self.settings.alert_import_window
            facts = connection.execute(
                select(events.c.payload, events.c.received_at).where(
                    events.c.origin == "pipeline",
                    events.c.detail_type.in_([imports.JOB_CHECKED, imports.SOURCES_FAILED]),
                    # event_time is indexed; a pipeline fact's event time is when it was made
                    events.c.event_time >= now - timedelta(seconds=window),
                )
            ).all()
        sent = 0
        last_id = cursor.last_dead_letter_id
        if letters and self._notify(*dead_letter_message(letters, len(letters))):
            last_id = int(letters[-1].id)
            state["dead_letters_at"] = now.isoformat()
            sent += 1
        alerted: dict[str, str] = dict(state.get("stores") or {})
        for store_id, failures in sorted(_failures_by_store(facts).items()):
            if len(failures) < self.settings.alert_import_failures:
                continue
            previous = _time(alerted.get(store_id))
            if previous is not None and (now - previous).total_seconds() < window:
                continue
            if self._notify(*import_failure_message(store_id, failures, window)):
                alerted[store_id] = now.isoformat()
                sent += 1
        state["stores"] = alerted
        with self.runtime.engine.begin() as connection:
            cursors.advance(
                connection,
                CURSOR,
                self.owner,
                last_seq=cursor.last_seq,
                last_dead_letter_id=last_id,
                emitted=sent,
                state=state,
            )
        return sent

    def _notify(self, subject: str, text: str) -> bool:
        topic = self.settings.alerts_topic_arn
        if not topic:
            log.warning("ALERT (no ALERTS_TOPIC_ARN set): %s\n%s", subject, text)
            self.sent.append((subject, text))
            return True
        try:
            self.runtime.aws.get("sns").publish(TopicArn=topic, Subject=subject, Message=text)
        except (ClientError, BotoCoreError) as error:
            log.warning("could not publish the alert %r (%s); it is tried again", subject, error)
            return False
        self.sent.append((subject, text))
        return True

    def close(self) -> None:
        with self.runtime.engine.begin() as connection:
            cursors.release(connection, CURSOR, self.owner)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _failures_by_store(facts: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Failed sources per store from *Import Job Checked* and refusal *Import Sources Failed*."""
    found: dict[str, list[dict[str, Any]]] = {}
    for payload, _received in facts:
        detail = (payload or {}).get("detail") or {}
        store_id = str(detail.get("storeId") or "")
        if not store_id:
            continue
        detail_type = (payload or {}).get("detail-type")
        if detail_type == imports.JOB_CHECKED:
            for source in detail.get("sources") or []:
                if isinstance(source, dict) and source.get("status") != "FINISHED":
                    found.setdefault(store_id, []).append(
                        {
                            "file": (source.get("sourceFiles") or {}).get("source1"),
                            "reason": source.get("statusMessage") or source.get("status"),
                        }
                    )
        elif detail_type == imports.SOURCES_FAILED and not detail.get("jobId"):
            for item in detail.get("sources") or []:
                if isinstance(item, dict):
                    found.setdefault(store_id, []).append(
                        {"file": item.get("source1"), "reason": item.get("reason")}
                    )
    return found
