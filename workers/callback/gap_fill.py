"""Lost events, and only those: the RUNNING the server never saw, reported first.

Why: a terminal status refused with 400 ``Invalid state transition: A -> B`` where A is QUEUED
or INITIALIZING (:data:`GAP_FILLABLE`), for a run no status of which was ever delivered, means
the server never saw the run running (its RUNNING event was lost): the stage reports RUNNING
first, from GetRun's ``startTime`` with an event id derived from the run
(:func:`running_event_id`), then the terminal status again.  Any other refusal (WES holds
CANCELING because a user cancelled there, or PAUSED) is the server's word: a RUNNING would not
help, or would undo the user's pause, so the refusal is recorded as it came.  The refused
terminal status, the RUNNING reported first and the terminal status sent again are three facts,
each with its own answer.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

import httpx
from sqlalchemy import select

from eventlog.projections import parse_time
from eventlog.store import derived_id
from eventlog.tables import runs
from schemas.ngs360 import utc_z
from schemas.vocabulary import TERMINAL_STATUSES
from workers.callback.delivery import (
    Call,
    accepted,
    post,
    record_answer,
    record_delivered,
    response_body,
)
from workers.callback.retries import failed
from workers.callback.sequence import STAGE
from workers.omics import OmicsApi, OmicsError, as_retry_later
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: How the server words a refused transition; A is the state WES holds.
INVALID_TRANSITION = re.compile(r"Invalid state transition: ([A-Z_]+) -> ([A-Z_]+)")
#: WES states from which a RUNNING reported first lets a refused terminal status through: the
#: contract's transition table allows RUNNING from them and every terminal state from RUNNING.
#: (From INITIALIZING only COMPLETE is refused.  Not CANCELING: only CANCELED is allowed
#: there; not PAUSED: RUNNING would undo a user's pause; not UNKNOWN: WES lost the run.)
GAP_FILLABLE = frozenset({"QUEUED", "INITIALIZING"})


def running_event_id(run_uuid: str) -> str:
    """The id of "run ``run_uuid`` is RUNNING" when the pipeline has to say it itself."""
    return derived_id(f"run:{run_uuid}", "status:RUNNING")


def _refused_from(response: httpx.Response | None) -> str | None:
    """The WES state named by a 400 ``Invalid state transition: A -> B`` (A), else None."""
    if response is None or response.status_code != 400:
        return None
    found = INVALID_TRANSITION.search(response_body(response))
    return found.group(1) if found else None


def _status_delivered(runtime: Runtime, run_uuid: str) -> bool:
    """Was any status of the run delivered?  (Every non-terminal one is RUNNING to WES.)"""
    with runtime.engine.connect() as connection:
        rank = connection.execute(
            select(runs.c.callback_rank).where(runs.c.run_uuid == run_uuid)
        ).scalar_one_or_none()
    return bool(rank)


def gap_to_fill(runtime: Runtime, call: Call, response: httpx.Response | None) -> str | None:
    """The state WES holds when ``response`` refused the call's terminal status because the
    server never saw the run running (a RUNNING reported first would let it through)."""
    held = _refused_from(response) if call.status in TERMINAL_STATUSES else None
    if held in GAP_FILLABLE and not _status_delivered(runtime, call.run_uuid):
        return held
    return None


def report_running_first(
    runtime: Runtime, call: Call, response: httpx.Response, held: str, key: str
) -> str | None:
    """Record the refusal ``response`` (WES holds ``held``), then send the RUNNING the server
    never saw; None when it was accepted (send the terminal status again), else the outcome of
    the callback (its failure recorded with the RUNNING's own answer)."""
    record_answer(
        runtime,
        call,
        response,
        f"HTTP 400: WES holds {held} and no status of "
        "the run was ever delivered: reporting RUNNING first",
    )
    start = parse_time(call.enrichment.get("startTime"))
    if start is None:
        start = _start_time_from_api(runtime, call)
    start = start or parse_time(call.enrichment.get("creationTime")) or call.event.event_time
    running_id = running_event_id(call.run_uuid)
    payload = call.payload("RUNNING", running_id, start)
    sent = {"eventId": running_id, "eventTime": utc_z(start), "status": "RUNNING"}
    assert call.target.url is not None
    log.info(
        "NGS360 never saw run %s running; reporting RUNNING (%s) first",
        call.enrichment.get("runId"),
        running_id,
        extra={"event_id": call.event.event_id, "stage": STAGE},
    )
    answer, error = post(runtime, call.target.url, payload, key)
    if accepted(answer):
        record_delivered(
            runtime,
            call,
            answer,
            **sent,
            reason="reported RUNNING first: the server had never seen the run running",
        )
        return None
    return failed(runtime, call, answer, error, sent=sent)


def _start_time_from_api(runtime: Runtime, call: Call) -> datetime | None:
    try:
        run = OmicsApi.of(runtime).get_run(str(call.enrichment.get("runId")))
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            raise as_retry_later(error) from error
        return None
    if str(run.get("uuid") or "") != call.run_uuid:
        return None
    start = run.get("startTime")
    return start if isinstance(start, datetime) else None


__all__ = [
    "GAP_FILLABLE",
    "INVALID_TRANSITION",
    "gap_to_fill",
    "report_running_first",
    "running_event_id",
]
