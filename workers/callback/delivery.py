"""One callback: its body, its POST, and the fact that records each answer.

Why: every attempt is a fact in the log (*Callback Delivered / Failed / Skipped / Superseded*,
folded into ``deliveries``), each with the answer *it* got, so nothing about a callback is
silent; and none of them, nor a dead letter, ever carries the key.  :func:`record` appends that
fact and, when the attempt is the last word (``outcome``), finishes the outbox work and wakes
the run's next callback in the same transaction (:func:`workers.callback.sequence.wake_callbacks`).
:func:`post` sends one request and never follows a redirect, so a server cannot bounce the key
to another host.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

import httpx
from sqlalchemy import Connection, func, select

from eventlog import store
from eventlog.store import LogEntry, StoredEvent
from eventlog.tables import events
from schemas.ngs360 import API_KEY_HEADER, build_payload, utc_z
from schemas.vocabulary import CALLBACK_DELIVERED, CALLBACK_FAILED
from workers.callback.allow_list import Target
from workers.callback.sequence import STAGE, wake_callbacks
from workers.routing import FACT_STAGES
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: Response bodies kept in facts and dead letters.
MAX_BODY = 2000


@dataclass
class Call:
    """One callback being worked on: the event, its enrichment, where it goes."""

    event: StoredEvent
    enrichment: dict[str, Any]
    target: Target
    #: Sent by an operator (``redeliver``): one attempt, a failure is final.
    manual: bool = False

    @property
    def run_uuid(self) -> str:
        return str(self.enrichment.get("uuid") or self.event.resource_id or "")

    @property
    def status(self) -> str:
        return str(self.enrichment.get("status") or self.event.status or "").upper()

    def facts(self, **extra: Any) -> dict[str, Any]:
        """The detail of a callback fact: what was sent where, never the key."""
        detail = {
            "eventId": self.event.event_id,
            "eventTime": utc_z(self.event.event_time),
            "uuid": self.run_uuid,
            "runId": self.enrichment.get("runId"),
            "wesRunId": self.enrichment.get("wesRunId"),
            "status": self.status,
            "url": self.target.url,
        }
        detail.update({key: value for key, value in extra.items() if value is not None})
        return detail

    def payload(self, status: str, event_id: str, when: datetime) -> dict[str, Any]:
        """The body reporting ``status`` (the run's own one carries its details too)."""
        enrichment = self.enrichment
        own = status == self.status
        return build_payload(
            omics_run_id=str(enrichment.get("runId") or ""),
            status=status,
            wes_run_id=str(enrichment.get("wesRunId") or ""),
            event_time=when,
            event_id=event_id,
            status_message=enrichment.get("statusMessage") if own else None,
            failure_reason=enrichment.get("failureReason") if own else None,
            output_mapping=enrichment.get("outputMapping") if own else None,
            log_urls=enrichment.get("logUrls") if own else None,
        )


# --- the request ------------------------------------------------------------------------------


def _http(runtime: Runtime) -> httpx.Client:
    def build(rt: Runtime) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(rt.settings.callback_timeout),
            follow_redirects=False,  # a redirect must not carry the key to another host
            headers={"User-Agent": "omics-events-callback"},
        )

    return runtime.resource("ngs360-http", build)


def post(
    runtime: Runtime, url: str, payload: dict[str, Any], key: str
) -> tuple[httpx.Response | None, str | None]:
    """(the answer, None), or (None, why there was none: a timeout, a failed connection)."""
    try:
        return _http(runtime).post(url, json=payload, headers={API_KEY_HEADER: key}), None
    except httpx.TimeoutException as error:
        return None, f"timed out ({type(error).__name__})"
    except httpx.TransportError as error:
        return None, f"connection failed ({type(error).__name__}: {error})"


def response_body(response: httpx.Response) -> str:
    """The start of an answer's body (``MAX_BODY``), as text whatever its bytes."""
    try:
        return response.text[:MAX_BODY]
    except Exception:  # undecodable bytes
        return response.content[:MAX_BODY].decode("utf-8", "replace")


def accepted(response: httpx.Response | None) -> TypeGuard[httpx.Response]:
    """Did the server take it (a 2xx answer)?"""
    return response is not None and 200 <= response.status_code < 300


# --- the facts --------------------------------------------------------------------------------


def history(connection: Connection, event_id: str) -> tuple[int, datetime | None]:
    """(callback facts so far, time of the first failed attempt) for one event."""
    count, first_failure = connection.execute(
        select(
            func.count(),
            func.min(events.c.event_time).filter(events.c.detail_type == CALLBACK_FAILED),
        ).where(events.c.caused_by == event_id, events.c.detail_type.like("Callback %"))
    ).one()
    return int(count), store.as_utc(first_failure) if first_failure else None


def record(
    runtime: Runtime,
    call: Call,
    detail_type: str,
    *,
    outcome: str | None = None,
    dead_letter: str | None = None,
    **detail: Any,
) -> None:
    """Append one callback fact; with ``outcome``, finish the work and wake the run's next."""
    woken: list[str] = []
    with runtime.engine.begin() as connection:
        count, _ = history(connection, call.event.event_id)
        facts = call.facts(attempts=detail.pop("attempts", None) or count + 1, **detail)
        fact = LogEntry.pipeline(
            call.event,
            detail_type,
            facts,
            status=str(facts.get("status") or call.status),
            fact=f"{detail_type}#{count + 1}",
        )
        store.append(connection, fact, FACT_STAGES)
        if dead_letter is not None:
            store.dead_letter(
                connection,
                kind="stage",
                stage=STAGE,
                event_id=call.event.event_id,
                detail_type=call.event.detail_type,
                reason=dead_letter[:4000],
                raw=json.dumps(facts, sort_keys=True).encode(),
            )
        if outcome is not None:
            store.complete(connection, call.event.event_id, STAGE, outcome)
            woken = wake_callbacks(connection, call.run_uuid)
    runtime.publish([*([fact.event_id] if FACT_STAGES else []), *woken])


def record_delivered(
    runtime: Runtime,
    call: Call,
    response: httpx.Response,
    *,
    outcome: str | None = None,
    reason: str | None = None,
    **sent: Any,
) -> None:
    """A *Callback Delivered* fact with the server's answer (``sent``: what the attempt sent
    when it was not the event's own status; no ``outcome`` when the callback is not done)."""
    record(
        runtime,
        call,
        CALLBACK_DELIVERED,
        outcome=outcome,
        **sent,
        httpStatus=response.status_code,
        responseBody=response_body(response)[:500],
        reason=reason,
    )


def record_answer(runtime: Runtime, call: Call, response: httpx.Response, reason: str) -> None:
    """One refused attempt the stage follows up itself, with the answer it got."""
    record(
        runtime,
        call,
        CALLBACK_FAILED,
        httpStatus=response.status_code,
        responseBody=response_body(response),
        reason=reason,
    )


def fail_unsent(runtime: Runtime, call: Call, why: str) -> str:
    """A callback that cannot be sent at all (no key, a body the server would refuse): a final
    *Callback Failed* fact and a dead letter saying why."""
    record(
        runtime,
        call,
        CALLBACK_FAILED,
        outcome="dead-lettered",
        dead_letter=why,
        final=True,
        reason=why,
    )
    return "dead-lettered"


def finish_quietly(runtime: Runtime, call: Call, outcome: str) -> None:
    """Finish the work without a fact (the fact is already in the log) and wake the next."""
    with runtime.engine.begin() as connection:
        store.complete(connection, call.event.event_id, STAGE, outcome)
        woken = wake_callbacks(connection, call.run_uuid)
    runtime.publish(woken)


def refuse_tag(runtime: Runtime, call: Call) -> None:
    """The ``security`` dead letter of a refused ``callback_url`` tag (once per event)."""
    tag = call.target.tag or ""
    reason = (
        f"run {call.enrichment.get('runId')} ({call.run_uuid}) is tagged callback_url={tag[:300]!r}"
        f", refused: {call.target.refused}; the callback and its key went to the configured "
        f"NGS360 API instead ({call.target.url or 'none configured'})"
    )
    with runtime.engine.begin() as connection:
        fresh = store.dead_letter(
            connection,
            kind="security",
            stage=STAGE,
            event_id=call.event.event_id,
            detail_type=call.event.detail_type,
            reason=reason,
            raw=tag.encode("utf-8", "replace"),
        )
    if fresh:
        log.warning("%s", reason, extra={"event_id": call.event.event_id, "stage": STAGE})


__all__ = [
    "MAX_BODY",
    "Call",
    "accepted",
    "fail_unsent",
    "finish_quietly",
    "history",
    "post",
    "record",
    "record_answer",
    "record_delivered",
    "refuse_tag",
    "response_body",
]
