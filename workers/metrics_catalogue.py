"""The metrics catalogue: every metric, what produces it and how its datapoints are read.

Why one table: ``docs/metrics.md`` is generated from it (:func:`catalogue_table`), and the
datapoints are computed from it (:func:`datums_for_event`, :func:`datums_for_dead_letter`), so
the documented "emitted when" and the emitted data cannot drift apart.  Each
:class:`MetricSpec` names the facts that produce it (:class:`Trigger`: the log's origin, source,
detail-types and statuses, or a dead letter) and a *reader* that turns one matching
:class:`Fact` into zero or more ``(value, dimensions)`` observations.  Adding a metric is adding
one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventlog.store import StoredEvent, as_utc
from schemas.vocabulary import (
    CALLBACK_DELIVERED,
    CALLBACK_FAILED,
    EVENT_ARCHIVED,
    FILE_REJECTED,
    IMPORT_JOB_STATUS_CHANGE,
    JOB_STARTED,
    SOURCES_FAILED,
    TERMINAL_STATUSES,
)

#: The origins a trigger names: an event from AWS, a fact the pipeline appended, a dead letter.
AWS, PIPELINE, DEAD_LETTER = "aws", "pipeline", "dead letter"


@dataclass(frozen=True)
class Fact:
    """One thing the log holds, as the readers see it (an event, or a dead letter)."""

    origin: str
    when: datetime
    source: str = ""
    detail_type: str = ""
    status: str = ""
    event_time: datetime | None = None
    detail: dict[str, Any] | None = None
    #: the event time of what a pipeline fact was caused by (for latency)
    cause_time: datetime | None = None
    #: the time of the run's first status event (for its duration)
    run_started: datetime | None = None
    #: a dead letter's kind
    kind: str = ""


@dataclass(frozen=True)
class Trigger:
    """Which facts produce a metric: ``None`` matches any source, detail-type or status."""

    origin: str
    detail_types: frozenset[str] | None = None
    source: str | None = None
    statuses: frozenset[str] | None = None
    #: what the reader needs looked up in the log for a matching fact (``cause_time``,
    #: ``run_started``), so :func:`~workers.metrics.read_batch` asks only for that
    needs: str | None = None

    def matches(self, fact: Fact) -> bool:
        return (
            fact.origin == self.origin
            and (self.source is None or fact.source == self.source)
            and (self.detail_types is None or fact.detail_type in self.detail_types)
            and (self.statuses is None or fact.status in self.statuses)
        )


Observation = tuple[float, dict[str, str]]
Reader = Callable[[Fact], list[Observation]]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name, unit, dimension names, when it is emitted, and from what."""

    name: str
    unit: str
    dimensions: tuple[str, ...]
    when: str
    trigger: Trigger
    read: Reader


def _types(*detail_types: str) -> frozenset[str]:
    return frozenset(detail_types)


def _once(fact: Fact) -> list[Observation]:
    return [(1, {})]


def _by_status(fact: Fact) -> list[Observation]:
    return [(1, {"Status": fact.status})] if fact.status else []


def _run_duration(fact: Fact) -> list[Observation]:
    if fact.run_started is None or fact.event_time is None:
        return []
    seconds = (as_utc(fact.event_time) - as_utc(fact.run_started)).total_seconds()
    return [(max(0.0, seconds), {"Status": fact.status})]


def _retried_sources(fact: Fact) -> list[Observation]:
    detail = fact.detail or {}
    if int(detail.get("attempt") or 1) <= 1:
        return []
    sources = len(detail.get("sourceKeys") or [])
    return [(sources, {})] if sources else []


def _exhausted_by_reason(fact: Fact) -> list[Observation]:
    reasons: dict[str, int] = {}
    for item in (fact.detail or {}).get("sources") or []:
        if isinstance(item, dict):
            reason = "permanent" if item.get("classification") == "permanent" else "exhausted"
            reasons[reason] = reasons.get(reason, 0) + 1
    return [(count, {"Reason": reason}) for reason, count in sorted(reasons.items())]


def _latency(fact: Fact) -> list[Observation]:
    if fact.cause_time is None:
        return []
    stage = "archive" if fact.detail_type == EVENT_ARCHIVED else "callback"
    latency = (as_utc(fact.when) - as_utc(fact.cause_time)).total_seconds()
    return [(max(0.0, latency), {"Stage": stage})]


_OMICS = "aws.omics"
_RUN, _TASK = "Run Status Change", "Task Status Change"

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "EventsReceived",
        "Count",
        ("DetailType",),
        "an event from HealthOmics or S3 is appended to the log (a duplicate delivery is not)",
        Trigger(AWS),
        lambda fact: [(1, {"DetailType": fact.detail_type})],
    ),
    MetricSpec(
        "EventsRejected",
        "Count",
        (),
        "an event is refused at intake (malformed, source or account not allowed): a dead "
        "letter of kind `rejected`",
        Trigger(DEAD_LETTER),
        lambda fact: [(1, {})] if fact.kind == "rejected" else [],
    ),
    MetricSpec(
        "RunStatusChanges",
        "Count",
        ("Status",),
        "a `Run Status Change` is appended",
        Trigger(AWS, _types(_RUN), _OMICS),
        _by_status,
    ),
    MetricSpec(
        "RunDuration",
        "Seconds",
        ("Status",),
        "a `Run Status Change` to COMPLETED, FAILED, CANCELLED or DELETED is appended: its time "
        "minus the time of the run's first status event in the log",
        Trigger(AWS, _types(_RUN), _OMICS, frozenset(TERMINAL_STATUSES), needs="run_started"),
        _run_duration,
    ),
    MetricSpec(
        "TaskStatusChanges",
        "Count",
        ("Status",),
        "a `Task Status Change` is appended",
        Trigger(AWS, _types(_TASK), _OMICS),
        _by_status,
    ),
    MetricSpec(
        "ImportJobsSucceeded",
        "Count",
        (),
        "a `Read Set Import Job Status Change` to COMPLETED is appended (any job, ours or not)",
        Trigger(AWS, _types(IMPORT_JOB_STATUS_CHANGE), _OMICS, frozenset({"COMPLETED"})),
        _once,
    ),
    MetricSpec(
        "ImportJobsFailed",
        "Count",
        (),
        "a `Read Set Import Job Status Change` to FAILED or COMPLETED_WITH_FAILURES is appended",
        Trigger(
            AWS,
            _types(IMPORT_JOB_STATUS_CHANGE),
            _OMICS,
            frozenset({"FAILED", "COMPLETED_WITH_FAILURES"}),
        ),
        _once,
    ),
    MetricSpec(
        "ImportJobsStarted",
        "Count",
        (),
        "the imports pool started an import job (`Import Job Started`), first attempts and "
        "retries alike",
        Trigger(PIPELINE, _types(JOB_STARTED)),
        _once,
    ),
    MetricSpec(
        "ImportRetries",
        "Count",
        (),
        "the imports pool started a retry job: one datapoint per source it re-submits "
        "(`Import Job Started` with attempt > 1)",
        Trigger(PIPELINE, _types(JOB_STARTED)),
        _retried_sources,
    ),
    MetricSpec(
        "ImportsExhausted",
        "Count",
        ("Reason",),
        "sources are given up (`Import Sources Failed`), one per source; Reason `permanent` "
        "(access, missing file, format, validation) or `exhausted` (attempts used up)",
        Trigger(PIPELINE, _types(SOURCES_FAILED)),
        _exhausted_by_reason,
    ),
    MetricSpec(
        "ImportFilesRejected",
        "Count",
        (),
        "a file under a watched prefix will not be imported (`Import File Rejected`: junk "
        "name, no ids, no reference for an aligned file)",
        Trigger(PIPELINE, _types(FILE_REJECTED)),
        _once,
    ),
    MetricSpec(
        "CallbacksDelivered",
        "Count",
        (),
        "a callback was accepted by NGS360 (`Callback Delivered`)",
        Trigger(PIPELINE, _types(CALLBACK_DELIVERED)),
        _once,
    ),
    MetricSpec(
        "CallbacksFailed",
        "Count",
        (),
        "a callback attempt failed (`Callback Failed`, retried or final)",
        Trigger(PIPELINE, _types(CALLBACK_FAILED)),
        _once,
    ),
    MetricSpec(
        "DeadLetters",
        "Count",
        ("Kind",),
        "a dead letter is written; Kind `rejected`, `stage`, `import`, `security`, …",
        Trigger(DEAD_LETTER),
        lambda fact: [(1, {"Kind": fact.kind})],
    ),
    MetricSpec(
        "PipelineLatency",
        "Seconds",
        ("Stage",),
        "an event's callback is delivered (Stage `callback`): the time the `Callback Delivered` "
        "fact was logged minus the event's own time (Stage `archive`: only for the `Event "
        "Archived` facts of a log from before batched archiving)",
        Trigger(PIPELINE, _types(EVENT_ARCHIVED, CALLBACK_DELIVERED), needs="cause_time"),
        _latency,
    ),
)
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}


def needed_for(fact: Fact, need: str) -> bool:
    """Whether a metric produced by ``fact`` reads ``need`` (``cause_time``, ``run_started``)."""
    return any(s.trigger.needs == need and s.trigger.matches(fact) for s in CATALOGUE)


@dataclass(frozen=True)
class Datum:
    """One observation of one metric."""

    name: str
    value: float
    timestamp: datetime
    dimensions: tuple[tuple[str, str], ...] = ()

    @property
    def unit(self) -> str:
        return METRICS[self.name].unit


def _datums(fact: Fact) -> list[Datum]:
    out: list[Datum] = []
    when = as_utc(fact.when)
    for spec in CATALOGUE:
        if spec.trigger.matches(fact):
            for value, dimensions in spec.read(fact):
                dims = tuple((key, str(dimensions[key])[:255]) for key in spec.dimensions)
                out.append(Datum(spec.name, float(value), when, dims))
    return out


def event_fact(
    event: StoredEvent,
    *,
    cause_time: datetime | None = None,
    run_started: datetime | None = None,
) -> Fact:
    """A logged event as a :class:`Fact` (its detail is read for the pipeline's facts only)."""
    aws = event.origin == "aws"
    return Fact(
        origin=AWS if aws else PIPELINE,
        when=event.received_at,
        source=event.source,
        detail_type=event.detail_type,
        status=(event.status or "").upper(),
        event_time=event.event_time,
        detail=None if aws else _detail(event),
        cause_time=cause_time,
        run_started=run_started,
    )


def _detail(event: StoredEvent) -> dict[str, Any]:
    detail = event.payload.get("detail") if isinstance(event.payload, dict) else None
    return detail if isinstance(detail, dict) else {}


def datums_for_event(
    event: StoredEvent,
    *,
    cause_time: datetime | None = None,
    run_started: datetime | None = None,
) -> list[Datum]:
    """The datapoints one logged event stands for (the catalogue's "when" column).

    ``cause_time`` is the event time of what a pipeline fact was caused by (for latency);
    ``run_started`` the time of a run's first status event (for its duration).
    """
    return _datums(event_fact(event, cause_time=cause_time, run_started=run_started))


def datums_for_dead_letter(kind: str, created_at: datetime) -> list[Datum]:
    """The datapoints one dead letter stands for."""
    return _datums(Fact(DEAD_LETTER, created_at, kind=kind))


def catalogue_table() -> str:
    """The Markdown table of ``docs/metrics.md``, generated from :data:`CATALOGUE`."""
    rows = ["| metric | unit | dimensions | emitted when |", "|---|---|---|---|"]
    for spec in CATALOGUE:
        dims = ", ".join(f"`{d}`" for d in spec.dimensions) or "(none)"
        rows.append(f"| `{spec.name}` | {spec.unit} | {dims} | {spec.when} |")
    return "\n".join(rows)
