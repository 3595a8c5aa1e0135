"""The stage's task: one enriched status change, checked, put in its turn, and sent.

Why this order: what can be decided without the server is decided first and recorded (a
refused ``callback_url`` tag, a status the server does not take, a body it would refuse);
then, under the run's lock (:mod:`workers.callback.run_locks`), whether this status's turn has
come (:func:`_out_of_turn`: already delivered, superseded by a newer one delivered, or waiting
for an earlier one); only then the request (:func:`_send`), with the key re-read once after a
403 and the RUNNING reported first when the server never saw the run running.  ``redeliver``
sends one event again by hand, whatever was sent before.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, Row, select

from eventlog import store
from eventlog.store import StoredEvent
from eventlog.tables import events, outbox, runs
from schemas.ngs360 import skip_reason
from schemas.vocabulary import CALLBACK_SKIPPED, CALLBACK_SUPERSEDED, RUN_ENRICHED, rank_of
from workers.callback.allow_list import resolve_target
from workers.callback.delivery import (
    Call,
    accepted,
    fail_unsent,
    finish_quietly,
    post,
    record,
    record_answer,
    record_delivered,
    refuse_tag,
)
from workers.callback.gap_fill import gap_to_fill, report_running_first
from workers.callback.key_source import ApiKey, KeyUnavailable
from workers.callback.retries import failed
from workers.callback.run_locks import run_lock
from workers.callback.sequence import STAGE, earlier_in_flight, wait_if_behind
from workers.errors import PermanentError, RetryLater
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def _load(
    connection: Connection, event_id: str
) -> tuple[StoredEvent | None, bool, dict[str, Any] | None]:
    """(the event, whether its callback is done, its enrichment) in one round trip."""
    enriched = events.alias("enriched")
    enrichment = (
        select(enriched.c.payload)
        .where(enriched.c.caused_by == event_id, enriched.c.detail_type == RUN_ENRICHED)
        .scalar_subquery()
    )
    row = connection.execute(
        select(events, outbox.c.done_at.label("stage_done_at"), enrichment.label("enrichment"))
        .outerjoin(outbox, (outbox.c.event_id == events.c.event_id) & (outbox.c.stage == STAGE))
        .where(events.c.event_id == event_id)
    ).one_or_none()
    if row is None:
        return None, False, None
    return store.stored_event(row), row.stage_done_at is not None, _detail(row.enrichment)


def _detail(payload: Any) -> dict[str, Any] | None:
    if not isinstance(payload, dict):
        return None
    detail = payload.get("detail")
    return detail if isinstance(detail, dict) else None


def deliver_callback(
    runtime: Runtime, event_id: str, *, force: bool = False, recover: bool = False
) -> str:
    """The stage: post one enriched status change.

    ``force`` (``omics-events redeliver``): again, whatever was sent.  ``recover`` (the bulk
    redelivery of dead letters): again although the work is finished, but with the stage's
    own order rules — a status a newer delivered one superseded is not sent, and a status
    whose run still has an earlier one in the pipeline is left (``"waiting"``) untouched.
    """
    manual = force or recover
    with runtime.engine.connect() as connection:
        event, done, enrichment = _load(connection, event_id)
    if event is None:
        raise PermanentError(f"event {event_id} is not in the log")
    if not manual and done:
        return "already-done"
    if enrichment is None:
        raise PermanentError(f"event {event_id} has no Run Enriched fact to send")
    settings = runtime.settings
    target = resolve_target(settings, enrichment.get("callbackUrl"))
    call = Call(event, enrichment, target, manual=manual)
    if call.target.refused:
        refuse_tag(runtime, call)
    if _skipped(runtime, call):
        return "skipped"
    try:
        payload = call.payload(call.status, event.event_id, event.event_time)
    except ValueError as error:
        return fail_unsent(runtime, call, f"the callback body would be refused: {error}"[:2000])

    with run_lock(runtime, call.run_uuid, timeout=3 * settings.callback_timeout + 5):
        if not force:
            outcome = _out_of_turn(runtime, call, recover=recover)
            if outcome is not None:
                return outcome
        return _send(runtime, call, payload)


def _skipped(runtime: Runtime, call: Call) -> bool:
    """Record *Callback Skipped* (True) for a status the server does not take, a run without
    a ``WESRunId``, or callbacks not configured."""
    reason = skip_reason(call.status, call.enrichment.get("wesRunId"))
    if reason is None and call.target.url is None:
        reason = "callbacks are not configured (NGS360_API_URL is unset)"
    if reason is None:
        return False
    record(runtime, call, CALLBACK_SKIPPED, outcome="skipped", reason=reason)
    return True


def _last_delivery(runtime: Runtime, call: Call) -> Row[Any] | None:
    """The run's last delivered callback, and whether this work was finished meanwhile: one
    read (None for a run the log never folded)."""
    event_id = call.event.event_id
    with runtime.engine.connect() as connection:
        done_at = (
            select(outbox.c.done_at)
            .where(outbox.c.event_id == event_id, outbox.c.stage == STAGE)
            .scalar_subquery()
        )
        return connection.execute(
            select(
                runs.c.callback_event_id,
                runs.c.callback_rank,
                runs.c.callback_status,
                done_at.label("done_at"),
            )
            .select_from(runs)
            .where(runs.c.run_uuid == call.run_uuid)
        ).one_or_none()


def _out_of_turn(runtime: Runtime, call: Call, *, recover: bool) -> str | None:
    """Under the run's lock: the outcome when the callback is not to be sent now (already
    done or delivered, superseded by a newer status delivered, waiting for an earlier one),
    None when its turn has come.  ``recover``: look, but leave the outbox as it is."""
    event_id = call.event.event_id
    row = _last_delivery(runtime, call)
    if not recover and row is not None and row.done_at is not None:
        return "already-done"
    if row is None and not recover:
        with runtime.engine.connect() as connection:  # a run the log never folded
            if store.is_done(connection, event_id, STAGE):
                return "already-done"
    if row is not None and row.callback_event_id == event_id:
        if not recover:
            finish_quietly(runtime, call, "delivered")
        return "delivered"
    if row is not None and (row.callback_rank or 0) >= rank_of(call.status):
        record(
            runtime,
            call,
            CALLBACK_SUPERSEDED,
            outcome="superseded",
            reason=f"{row.callback_status} ({row.callback_event_id}) was already "
            f"delivered for this run",
        )
        return "superseded"
    if recover:  # hand-sent: look, but leave the outbox as it is
        with runtime.engine.connect() as connection:
            if earlier_in_flight(connection, call.event, call.run_uuid):
                return "waiting"
    else:
        with runtime.engine.begin() as connection:
            if wait_if_behind(connection, call.event, call.run_uuid):
                return "waiting"
    return None


def _send(runtime: Runtime, call: Call, payload: dict[str, Any]) -> str:
    """POST the callback and record the answer: delivered, retried later or dead-lettered."""
    assert call.target.url is not None
    key_source = ApiKey.of(runtime)
    try:
        key = key_source.get()
    except KeyUnavailable as error:
        return fail_unsent(runtime, call, str(error))
    except (BotoCoreError, ClientError) as error:  # Secrets Manager unreachable: transient
        raise RetryLater(f"Secrets Manager: {type(error).__name__}", 5.0) from None

    response, error, key = _post_rereading_key(runtime, call, payload, key_source, key)
    held = gap_to_fill(runtime, call, response)
    if held is not None:
        assert response is not None
        outcome = report_running_first(runtime, call, response, held, key)
        if outcome is not None:
            return outcome
        response, error = post(runtime, call.target.url, payload, key)

    if accepted(response):
        record_delivered(runtime, call, response, outcome="delivered")
        return "delivered"
    return failed(runtime, call, response, error)


def _post_rereading_key(
    runtime: Runtime, call: Call, payload: dict[str, Any], key_source: ApiKey, key: str
) -> tuple[httpx.Response | None, str | None, str]:
    """POST once; after a 403, read the secret again and, if the key changed (rotated), POST
    once more with it (the 403 recorded as its own fact).  (answer, error, key used last)."""
    assert call.target.url is not None
    response, error = post(runtime, call.target.url, payload, key)
    if response is not None and response.status_code == 403 and key_source.refreshable:
        try:
            fresh = key_source.refresh()
        except KeyUnavailable:
            fresh = key
        if fresh != key:
            log.info("callback refused with 403; retrying once with the secret read again")
            record_answer(
                runtime,
                call,
                response,
                "HTTP 403: sending again with the secret read again (the key was rotated)",
            )
            key = fresh
            response, error = post(runtime, call.target.url, payload, key)
    return response, error, key


def redeliver(runtime: Runtime, event_id: str) -> str:
    """Send one callback again now, whatever was sent before (``omics-events redeliver``)."""
    try:
        return deliver_callback(runtime, event_id, force=True)
    except RetryLater as wait:  # only a busy run lock or Secrets Manager away get here
        return f"not delivered ({wait.reason}); try again"


__all__ = ["deliver_callback", "redeliver"]
