"""``omics-events replay SOURCE``: put archived events back into the log, then rebuild.

Why: the S3 archive holds every event HealthOmics sent and every fact the pipeline appended
about them, so a lab that lost its database — or a log with a gap — can be made whole from it
(docs/design.md §6).  Two archive layouts are read, alone or side by side
(:mod:`producers.replay_sources`): the batches the archive pool writes (since 2026-12)
(``{prefix}/batches/dt=YYYY-MM-DD/{first}-{last}.jsonl.gz``, events and facts as lines) and the
object per event written before (``{prefix}/raw/YYYY/MM/DD/{id}.json`` and ``facts/``).  The
facts are appended after the events (:mod:`producers.replay_facts`).  A SOURCE is

* ``s3://bucket/prefix`` — an archive in S3 (the ``ARCHIVE_URI`` the archive pool writes);
* a folder — a ``file://`` archive, or any folder of JSON files;
* a file — EventBridge events as JSON lines, a JSON array or one event (what ``aws events``
  archive exports and EventBridge archive *replays* carry: re-sent events have ``replay-name``
  set and are the same events, so they deduplicate like any other).

How:

1. **List**, cheaply bounded by ``--since/--until``: in the per-event layout the key's date
   path is the event's UTC day, so whole days outside the window are never listed, and an
   object whose name (``{event id}.json``) is already in the log is never fetched.  Batches
   are all listed (in log order): a batch holds events of any time, judged line by line.
2. **Prepare** each batch away from this process (:mod:`producers.replay_prepare`): worker
   processes, one per core, read the objects of a folder or file (S3 objects are fetched here
   by a thread pool, GETs being latency bound), parse each with :func:`schemas.parse_event` —
   the gate every producer uses, so validation and rejection reasons are the same — drop
   events outside the window (by event time) and repeats, and format the rows.  A few batches
   are in flight, ahead of the appends.
3. **Append** batch by batch in listing order, each in one transaction: the rows (idempotent,
   under the append lock; on PostgreSQL a ``COPY``, :func:`eventlog.store.append_copy`) and the
   rejected events as dead letters with their reason and bytes.  Replayed events owe **no**
   work: side effects — enrichment and callbacks, import retries — are off unless
   ``--with-side-effects`` (which appends through the intake, :class:`producers.intake.Intake`,
   owing the stages and folding as it goes).  Metrics, alerts and the archive are not stages
   but log *followers*: the replay holds their leases and moves their cursors over what it
   appended (:mod:`producers.replay_followers`), so CloudWatch and SNS never hear of replayed
   events and the archive is not written again; a running follower makes the replay refuse to
   start (stop the metrics and archive pools, or pass ``--with-side-effects``, with which the
   followers see the replayed events as new: counted, and archived again in new batches).
4. **Rebuild** the projections from the log (:func:`eventlog.rebuild.rebuild`) and print the
   checksum.  Without side effects the appends skip the live folds: the rebuild folds every
   event anyway, and folding twice would halve the replay's rate.  With side effects they fold
   as they land, because the stages they owe read the projections.

Stopping (SIGINT) finishes the batch in hand and stops; everything appended is durable, and
running the replay again resumes: appends are idempotent (``events.event_id`` is unique), the
objects already in the log are not even fetched again, and the rebuild at its end folds what
the interrupted run appended (until then the projections lag the log; ``omics-events rebuild``
also catches them up).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
from celery import Celery
from sqlalchemy import Engine, select, text

from eventlog import store
from eventlog.rebuild import Progress, RebuildResult, rebuild
from eventlog.tables import events
from producers.intake import Intake
from producers.replay_facts import FACTS, append_batch_facts, append_facts
from producers.replay_followers import FollowerBusy, QuietFollowers
from producers.replay_prepare import Job, Prepared, Preparers, default_processes
from producers.replay_sources import (
    BATCH_SUFFIX,
    FolderReader,
    Item,
    Source,
    Window,
    batch_facts,
    join_key,
    open_source,
    parse_bound,
    walk_days,
)
from schemas.parsing import ParsedEvent
from schemas.settings import Settings
from workers.follower_loop import LEASE, follower_id
from workers.routing import stages_for
from workers.runtime import runtime_of

__all__ = ["FollowerBusy", "ReplayReport", "Window", "open_source", "parse_bound", "replay"]

#: Objects listed, checked against the log, prepared and appended per batch: every batch costs
#: a few round trips (the check, the append, the followers' cursors) and a hand-over between
#: processes, so batches of 5,000 rather than 1,000.
BATCH = 5000
#: Event ids per IN list when checking what SQLite's log already has.
LOOKUP = 500


# --- the replay -----------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    source: str
    window: Window
    listed: int = 0
    in_log: int = 0  # not fetched: the archive key names an event the log already has
    fetched: int = 0  # objects (or, for a file, events) read
    events: int = 0  # events parsed from them
    appended: int = 0
    duplicates: int = 0
    rejected: int = 0
    outside: int = 0  # outside the window by event time
    facts: int = 0  # pipeline facts appended from the archive's facts/ (producers/replay_facts.py)
    facts_rejected: int = 0  # archived facts that were not valid: dead-lettered
    seconds: float = 0.0
    interrupted: bool = False
    exposed: int = 0  # replayed events a log follower will still report (see QuietFollowers)
    rebuilt: RebuildResult | None = None
    rejection_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.in_log + self.fetched

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def replay_stages(with_side_effects: bool) -> Callable[[ParsedEvent, Settings], tuple[str, ...]]:
    """What a replayed event owes: nothing, or its side effects (never the archive again)."""

    def stages(event: ParsedEvent, settings: Settings) -> tuple[str, ...]:
        if not with_side_effects:
            return ()
        return tuple(stage for stage in stages_for(event, settings) if stage != "archive")

    return stages


_PRESENT = text(
    "SELECT event_id FROM events"
    " WHERE event_id IN (SELECT jsonb_array_elements_text(CAST(:ids AS jsonb)))"
)


def _missing(engine: Engine, batch: list[Item]) -> list[Item]:
    """The items whose event the log does not have (items without a known id included)."""
    known = [item.event_id for item in batch if item.event_id]
    if not known:
        return batch
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # one JSON text parameter: an IN list of a thousand ids costs ≈ 10 µs an id to
            # render and bind, an array parameter ≈ 5 µs (psycopg dumps it in Python)
            ids = orjson.dumps(known).decode()
            present = set(connection.execute(_PRESENT, {"ids": ids}).scalars())
        else:
            present = set()
            for start in range(0, len(known), LOOKUP):
                query = select(events.c.event_id).where(
                    events.c.event_id.in_(known[start : start + LOOKUP])
                )
                present.update(connection.execute(query).scalars())
    return [item for item in batch if item.event_id not in present]


#: Events a batch object is counted as when items are grouped (``ARCHIVE_BATCH_EVENTS``'s
#: default): a batch of the replay holds ``batch`` events, whatever the objects hold.
EVENTS_PER_BATCH_OBJECT = 1000


def _weight(item: Item) -> int:
    return EVENTS_PER_BATCH_OBJECT if item.key.endswith(BATCH_SUFFIX) else 1


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive items holding about ``size`` events each (a batch object counts as many)."""
    chunk: list[Item] = []
    weight = 0
    for item in items:
        chunk.append(item)
        weight += _weight(item)
        if weight >= size:
            yield chunk
            chunk, weight = [], 0
    if chunk:
        yield chunk


def replay(
    app: Celery,
    source: Source,
    *,
    window: Window | None = None,
    with_side_effects: bool = False,
    batch: int = BATCH,
    max_rate: float | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    followers: Sequence[str] | None = None,
    rebuild_after: bool = True,
    processes: int | None = None,
) -> ReplayReport:
    """Replay ``source`` into the log of ``app``'s database (module docstring).

    ``processes``: worker processes preparing batches (default: one per core; a replay of one
    batch or less, or one with side effects, prepares in a thread).
    """
    runtime = runtime_of(app)
    engine = runtime.engine
    window = window or Window()
    stop = stop or threading.Event()
    report = ReplayReport(source.description, window)
    started = time.perf_counter()
    intake = Intake(
        app,
        publish=with_side_effects,
        stages=replay_stages(with_side_effects),
        fold=with_side_effects,  # a bulk append is folded once, by the rebuild that ends it
    )
    names = _quiet_followers(with_side_effects, followers)
    with QuietFollowers(engine, names, f"replay:{follower_id()}", LEASE) as quiet:
        items, preparers = _list_items(source, window, report, progress, batch, processes, intake)
        try:
            _replay_items(
                intake,
                source,
                items,
                window,
                report,
                quiet,
                preparers,
                batch=batch,
                max_rate=max_rate,
                stop=stop,
                progress=progress,
                started=started,
            )
        finally:
            preparers.close()
        if not stop.is_set():
            _replay_facts(engine, source, items, window, report)
    report.interrupted = stop.is_set() and report.done < report.listed
    report.exposed = quiet.exposed
    report.seconds = time.perf_counter() - started
    if rebuild_after and not report.interrupted:
        report.rebuilt = rebuild(engine, progress=progress)
    return report


def _quiet_followers(with_side_effects: bool, followers: Sequence[str] | None) -> tuple[str, ...]:
    """The log followers a replay keeps quiet: none with side effects (they see the replayed
    events as new), else ``followers`` or metrics, alerts and the archive."""
    from workers import alerts, archive, metrics

    if with_side_effects:
        return ()
    return tuple(followers or (metrics.CURSOR, alerts.CURSOR, archive.CURSOR))


def _list_items(
    source: Source,
    window: Window,
    report: ReplayReport,
    progress: Progress | None,
    batch: int,
    processes: int | None,
    intake: Intake,
) -> tuple[list[Item], Preparers]:
    """List ``source``'s items in ``window`` while the preparers start (their imports overlap
    the listing); a replay of one batch or less prepares in a thread, as do side effects."""
    if processes is None:
        processes = default_processes()
    preparers = Preparers(0 if intake.fold else processes)
    try:
        if progress is not None:
            progress.start("listing", None)
        items = source.items(window)
        report.listed = len(items)
        if progress is not None:
            progress.advance(len(items))
        small = sum(map(_weight, items)) <= batch
        if preparers.processes and small:  # not worth a process: a thread
            preparers.close(wait=False)
            preparers = Preparers(0)
    except BaseException:
        preparers.close(wait=False)
        raise
    return items, preparers


def _replay_facts(
    engine: Engine, source: Source, items: list[Item], window: Window, report: ReplayReport
) -> None:
    """After the events, the pipeline's facts archived beside them (producers/replay_facts.py):
    the per-event ``facts/`` objects of an old archive first, then the batches' fact lines."""
    reader = source.reader
    if reader is None or "raw" in source.prefix.strip("/").split("/"):
        return
    root = join_key(source.prefix, FACTS)
    if reader.has(root):
        keys = [item.key for item in walk_days(reader, root, [], window)]
        appended, rejected = append_facts(
            engine,
            keys,
            reader.get,
            fetchers=reader.fetchers,
            since=window.since,
            until=window.until,
        )
        report.facts += appended
        report.facts_rejected += rejected
    batches = [item.key for item in items if item.key.endswith(BATCH_SUFFIX)]
    if batches:
        appended, rejected = append_batch_facts(
            engine,
            batches,
            reader.get,
            batch_facts,
            fetchers=reader.fetchers,
            since=window.since,
            until=window.until,
        )
        report.facts += appended
        report.facts_rejected += rejected


@dataclass
class _Batch:
    """One batch as the reading thread hands it over: prepared, ready to append."""

    listed: int  # objects of the listing it covers
    in_log: int  # of which skipped: the log has their events
    prepared: Prepared


def _job(
    intake: Intake,
    source: Source,
    pool: ThreadPoolExecutor,
    wanted: list[Item],
    window: Window,
    form: str,
) -> Job:
    """What to prepare: items a worker reads itself (a folder or a file), or the raw events
    of latency-bound reads (S3) fetched here, side by side."""
    limits = intake.runtime.limits
    if source.file is not None or isinstance(source.reader, FolderReader):
        return Job(limits, window, form, source=source, items=list(map(tuple, wanted)))
    raws = [raw for raws in pool.map(source.fetch, wanted) for raw in raws]
    return Job(limits, window, form, raws=raws)


def _replay_items(
    intake: Intake,
    source: Source,
    items: list[Item],
    window: Window,
    report: ReplayReport,
    quiet: QuietFollowers,
    preparers: Preparers,
    *,
    batch: int,
    max_rate: float | None,
    stop: threading.Event,
    progress: Progress | None,
    started: float,
) -> None:
    """A reading thread checks each batch against the log and hands it to the preparers,
    keeping a few in flight; this thread appends them in listing order, until done or
    ``stop``."""
    engine = intake.runtime.engine
    # with side effects the stages and the live folds need the parsed events
    bulk = "copy" if engine.dialect.name == "postgresql" else "entries"
    form = "parsed" if intake.fold else bulk
    ready: queue.Queue[_Batch | BaseException | None] = queue.Queue(2)
    halt = threading.Event()

    if progress is not None:
        progress.start("replaying", len(items))
    producer = threading.Thread(
        target=_read_ahead,
        args=(intake, source, items, window, form, preparers, batch, ready, halt),
        name="replay-read",
        daemon=True,
    )
    producer.start()
    try:
        while True:
            got = ready.get()
            if got is None:
                break
            if isinstance(got, BaseException):
                raise got
            _tally(report, got)
            _append(intake, got.prepared, report, quiet)
            if progress is not None:
                progress.advance(got.listed)
            if max_rate:
                ahead = report.done / max_rate - (time.perf_counter() - started)
                if ahead > 0:
                    stop.wait(ahead)
            if stop.is_set():
                break
    finally:
        halt.set()
        while producer.is_alive():  # unblock its put() and let it finish
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                continue


def _read_ahead(
    intake: Intake,
    source: Source,
    items: list[Item],
    window: Window,
    form: str,
    preparers: Preparers,
    batch: int,
    ready: queue.Queue[_Batch | BaseException | None],
    halt: threading.Event,
) -> None:
    """The reading thread: each batch of ``items`` checked against the log and submitted to the
    preparers, a few in flight, handed to ``ready`` in listing order (an error too, raised by
    the appending thread), then None; stops early when ``halt`` is set."""
    engine = intake.runtime.engine
    in_flight: deque[tuple[int, int, Future[Prepared]]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=source.fetchers) as pool:
            for chunk in _batches(items, batch):
                if halt.is_set():
                    return
                wanted = _missing(engine, chunk)
                job = _job(intake, source, pool, wanted, window, form)
                in_flight.append((len(chunk), len(chunk) - len(wanted), preparers.submit(job)))
                while len(in_flight) >= preparers.in_flight:
                    listed, in_log, future = in_flight.popleft()
                    ready.put(_Batch(listed, in_log, future.result()))
            while in_flight and not halt.is_set():
                listed, in_log, future = in_flight.popleft()
                ready.put(_Batch(listed, in_log, future.result()))
    except BaseException as error:  # handed to the consumer, raised there
        ready.put(error)
    finally:
        for _, _, future in in_flight:
            future.cancel()
        ready.put(None)


def _tally(report: ReplayReport, got: _Batch) -> None:
    """Count what preparing a batch found: skipped, fetched, parsed, outside, repeated."""
    prepared = got.prepared
    report.in_log += got.in_log
    report.fetched += prepared.fetched
    report.events += prepared.events
    report.outside += prepared.outside
    report.duplicates += prepared.repeated


def _append(
    intake: Intake, prepared: Prepared, report: ReplayReport, quiet: QuietFollowers
) -> None:
    """Append one prepared batch and dead-letter its rejected events, in one transaction."""
    if intake.fold:  # with side effects: the intake's own door (stages, folds, publishing)
        result = intake.submit_parsed([*prepared.parsed, *prepared.rejected])
        new_ids = {o.event_id for o in result.outcomes if o.verdict == "accepted" and o.event_id}
    else:
        with intake.runtime.engine.begin() as connection:
            if prepared.copy_text:
                new_ids = store.append_copy(connection, prepared.copy_text, prepared.event_ids)
            else:
                new_ids = store.append_many(
                    connection, [(entry, ()) for entry in prepared.entries], fold=False
                )
            for item in prepared.rejected:
                store.reject(connection, item)
            if quiet.names:
                rejected = {hashlib.sha256(item.raw).hexdigest() for item in prepared.rejected}
                if new_ids or rejected:
                    quiet.skip(connection, new_ids, rejected)
    report.appended += len(new_ids)
    report.duplicates += len(prepared.event_ids) - len(new_ids)
    report.rejected += len(prepared.rejected)
    for item in prepared.rejected:
        report.rejection_reasons[item.reason] = report.rejection_reasons.get(item.reason, 0) + 1
