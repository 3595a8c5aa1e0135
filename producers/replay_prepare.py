"""Turning a batch of archived objects into log rows, away from the process that appends them.

Why: a replay is CPU work in Python — reading an object (≈ 15 µs), :func:`schemas.parse_event`
(≈ 50 µs: strict JSON, the envelope and detail models) and formatting the row (≈ 10 µs) — and
the appending process spends the same again waiting on PostgreSQL's ``COPY``.  In one
interpreter the two share one GIL, so a replay ran at ≈ 5,000 objects/s whatever the cores.
Here a batch is prepared in a worker process (:class:`Preparers`) and comes back as what the
log's bulk door takes: for PostgreSQL the ``COPY`` text of its rows
(:func:`eventlog.store.copy_line`), for SQLite the :class:`eventlog.store.LogEntry` values;
the replay's own process then only checks, copies and commits.

A small replay (one batch or less) is prepared in a thread instead: starting worker processes
costs more than it saves.  A replay *with side effects* is prepared in a thread too and keeps
the parsed events, because the stages they owe and the live folds need them.

What a worker does with a batch is what the intake does with one: parse every raw event, keep
the first of each event id, drop what is outside the window, and hand back the rejected ones
(reason and raw bytes) to be dead-lettered by the appending process — nothing is written here.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventlog.store import LogEntry, copy_line, utcnow
from schemas.parsing import ParsedEvent, ParseLimits, RawEvent, Rejected, parse_event

if TYPE_CHECKING:
    from producers.replay_sources import Item, Source, Window


@dataclass(frozen=True)
class Job:
    """One batch to prepare: the items to fetch from ``source`` (a folder or a file, readable
    from any process) or the raw events already fetched (S3: fetched by the replay's threads)."""

    limits: ParseLimits
    window: Window
    form: str  # "copy" (PostgreSQL), "entries" (SQLite) or "parsed" (with side effects)
    source: Source | None = None
    items: Sequence[Item] = ()
    raws: Sequence[RawEvent] = ()


@dataclass
class Prepared:
    """A batch ready to append, and what was counted on the way."""

    fetched: int  # objects read
    events: int  # events parsed from them
    outside: int  # of which outside the window
    repeated: int  # of which repeating an event id earlier in the batch
    event_ids: list[str] = field(default_factory=list)  # the rows, in order
    copy_text: bytes = b""  # form "copy": the rows as COPY text
    entries: list[LogEntry] = field(default_factory=list)  # form "entries"
    parsed: list[ParsedEvent] = field(default_factory=list)  # form "parsed"
    rejected: list[Rejected] = field(default_factory=list)


def prepare(job: Job) -> Prepared:
    """Fetch, parse and format one batch (in a worker process, or a thread for small ones)."""
    raws: list[RawEvent] = list(job.raws)
    if job.source is not None:
        for item in job.items:
            raws.extend(job.source.fetch(item))
    received_at = utcnow().isoformat()
    result = Prepared(fetched=len(job.items) or len(raws), events=len(raws), outside=0, repeated=0)
    lines: list[str] = []
    seen: set[str] = set()
    for raw in raws:
        parsed = parse_event(raw, job.limits)
        if isinstance(parsed, Rejected):
            result.rejected.append(parsed)
            continue
        if not job.window.contains(parsed.time):
            result.outside += 1
            continue
        if parsed.event_id in seen:
            result.repeated += 1
            continue
        seen.add(parsed.event_id)
        result.event_ids.append(parsed.event_id)
        if job.form == "parsed":
            result.parsed.append(parsed)
            continue
        entry = LogEntry.from_parsed(parsed)
        if job.form == "entries":
            result.entries.append(entry)
            continue
        # the bytes as received are the payload, unless they were an SNS envelope around it
        payload = (
            json.dumps(parsed.payload, ensure_ascii=False)
            if parsed.unwrapped
            else parsed.raw.decode("utf-8")
        )
        lines.append(copy_line(entry, payload, received_at))
    result.copy_text = "".join(lines).encode("utf-8")
    return result


def _worker_started() -> None:
    # Ctrl-C reaches the whole process group: the replay stops after the batch in hand, and
    # its workers must live until it has (a worker dying of SIGINT breaks the pool)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the imports are done and live as long as the process: keep them out of every collection
    # (a batch allocates tens of thousands of objects; each collection would walk them too)
    gc.freeze()


def default_processes() -> int:
    """One worker process per core: PostgreSQL and the appending process mostly wait."""
    return max(1, os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    """Worker processes forked from a fork server that has imported this module (and the main
    module, which every worker imports anyway).

    Why not fork: the replaying process holds database connections and threads.  Why not
    spawn: each spawned worker imports the main module and this one afresh — ≈ 1.5-2 s of CPU
    each (the CLI, pydantic, SQLAlchemy), ≈ 20 µs an object of a 100k replay on two cores.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


class Preparers:
    """Where batches are prepared: worker processes, or one thread for small or live replays.

    ``submit`` returns futures; the caller keeps a bounded number in flight, in order.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: Executor
        if processes > 0:
            self._executor = ProcessPoolExecutor(
                max_workers=processes, mp_context=_context(), initializer=_worker_started
            )
        else:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-parse")

    @property
    def in_flight(self) -> int:
        """Batches worth keeping in flight: one per worker, and one more being appended."""
        return max(1, self.processes) + 1

    def submit(self, job: Job) -> Future[Prepared]:
        return self._executor.submit(prepare, job)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
