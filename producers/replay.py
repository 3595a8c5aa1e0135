"""``omics-events replay SOURCE``: put archived events back into the log, then rebuild.

Why: the S3 archive holds every event HealthOmics sent (``{prefix}/raw/YYYY/MM/DD/{id}.json``,
written by the archive pool) and every fact the pipeline appended about them (``facts/``,
appended after the events by :mod:`producers.replay_facts`), so a lab that lost its database
— or a log with a gap — can be made whole from it (DESIGN.md §6).  A SOURCE is

* ``s3://bucket/prefix`` — an archive in S3 (the ``ARCHIVE_URI`` the archive pool writes);
* a folder — a ``file://`` archive, or any folder of JSON files;
* a file — EventBridge events as JSON lines, a JSON array or one event (what ``aws events``
  archive exports and EventBridge archive *replays* carry: re-sent events have ``replay-name``
  set and are the same events, so they deduplicate like any other).

How:

1. **List**, cheaply bounded by ``--since/--until``: in the archive layout the key's date path
   is the event's UTC day, so whole days outside the window are never listed, and an object
   whose name (``{event id}.json``) is already in the log is never fetched.
2. **Fetch in parallel** (a thread pool: S3 GETs are latency bound), a batch ahead of the
   appends.
3. **Append through the intake** (:class:`producers.intake.Intake`), the same parse → append
   path as every producer, so validation, dead letters and deduplication are the same; events
   outside the window (by event time) are skipped.  Replayed events owe **no** work: the archive
   need not be written again, and side effects — enrichment and callbacks, import retries —
   are off unless ``--with-side-effects``.  Metrics and alerts are not stages but log
   *followers* (:mod:`eventlog.cursors`), so the replay holds their leases while it runs and
   moves their cursors over what it appended: CloudWatch and SNS never hear of replayed events.
   A running follower holds its lease; the replay then refuses to start (stop the metrics pool,
   or pass ``--with-side-effects``).
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
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from celery import Celery
from sqlalchemy import Engine, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from eventlog import cursors
from eventlog.rebuild import Progress, RebuildResult, rebuild
from eventlog.tables import dead_letters, events
from producers.intake import Intake, RawEvent
from producers.replay_facts import FACTS, append_facts
from producers.sender import split_events
from schemas.parsing import ParsedEvent, Rejected
from schemas.settings import Settings
from workers.routing import stages_for
from workers.runtime import runtime_of

#: Objects listed, checked against the log, fetched and appended per batch: every batch costs
#: a few dozen round trips (the check, the append, the followers' cursors), each one a wait for
#: the GIL while the reading thread parses, so batches of 5,000 rather than 1,000 spare ≈ 10 %
#: of a replay's CPU.
BATCH = 5000
#: Event ids per IN list when checking what SQLite's log already has.
LOOKUP = 500
#: Parallel GETs against S3 (the client's pool holds 20 connections).
S3_FETCHERS = 16
#: Parallel reads of a folder: none — a local file of an event is read in ≈ 20 µs, less than
#: handing it to a thread and back costs when the GIL is busy with parsing and appending.
FOLDER_FETCHERS = 1


# --- the window ---------------------------------------------------------------------------------


def parse_bound(text: str) -> datetime:
    """``2026-01-22`` (midnight UTC) or an ISO-8601 time (UTC when it names no offset)."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"not a date or an ISO-8601 time: {text!r}") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Event times ``since <= time < until``; either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def has_day(self, day: date) -> bool:
        """Could an event of this UTC day be inside the window?"""
        if self.since is not None and day < self.since.date():
            return False
        if self.until is not None:
            return day <= (self.until - timedelta(microseconds=1)).date()
        return True

    def contains(self, when: datetime) -> bool:
        if self.since is not None and when < self.since:
            return False
        return not (self.until is not None and when >= self.until)

    def __str__(self) -> str:
        if self.since is None and self.until is None:
            return "all time"
        return f"{self.since or '…'} ≤ event time < {self.until or '…'}"


# --- sources --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One object (or, for a file source, one event) to replay."""

    key: str
    event_id: str | None = None  # known from an archive key ``{event_id}.json``
    day: date | None = None  # the key's date path (the event's UTC day)
    inline: RawEvent | None = None  # the event itself, when the source was read whole


class Reader(Protocol):
    """What listing and fetching need of a place that holds archived events."""

    fetchers: int

    def has(self, prefix: str) -> bool: ...

    def children(self, prefix: str) -> list[str]: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def get(self, key: str) -> bytes: ...


@dataclass
class S3Reader:
    client: Any
    bucket: str
    fetchers: int = S3_FETCHERS

    def has(self, prefix: str) -> bool:
        """Is anything stored under ``prefix/``? (One request, however big the folder.)"""
        base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=base, MaxKeys=1)
        return bool(answer.get("KeyCount") or answer.get("Contents"))

    def children(self, prefix: str) -> list[str]:
        base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(base) :].strip("/"))
        return sorted(names)

    def keys(self, prefix: str) -> Iterator[str]:
        base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                yield item["Key"]

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())


@dataclass
class FolderReader:
    root: Path
    fetchers: int = FOLDER_FETCHERS

    def has(self, prefix: str) -> bool:
        return (self.root / prefix).is_dir()

    def children(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(entry.name for entry in base.iterdir() if entry.is_dir())

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for folder, dirs, files in os.walk(base):  # scandir: no stat per file
            dirs.sort()
            relative = Path(folder).relative_to(self.root).as_posix()
            for name in sorted(files):
                if not name.startswith("."):  # hidden, or a write in progress (.tmp-…)
                    yield f"{relative}/{name}" if relative != "." else name

    def get(self, key: str) -> bytes:
        # a plain path string and an unbuffered read: Path's joining and read_bytes() cost
        # about as much as reading a small file
        with open(f"{self.root}{os.sep}{key}", "rb", buffering=0) as stream:
            return stream.read()


@dataclass
class Source:
    """A replay source: where to read, and from which prefix."""

    description: str
    reader: Reader | None
    prefix: str = ""
    file: Path | None = None

    def items(self, window: Window) -> list[Item]:
        if self.file is not None:
            return [
                Item(key=f"{self.file}#{index}", inline=raw)
                for index, raw in enumerate(split_events(self.file.read_bytes()))
            ]
        assert self.reader is not None
        return list(list_archive(self.reader, self.prefix, window))

    def fetch(self, item: Item) -> list[RawEvent]:
        if item.inline is not None:
            return [item.inline]
        assert self.reader is not None
        data = self.reader.get(item.key)
        if item.event_id is not None:
            return [data]  # an archived raw event: one event per object, exactly as stored
        return list(split_events(data))

    @property
    def fetchers(self) -> int:
        return self.reader.fetchers if self.reader is not None else 1


def open_source(text: str, *, s3_client: Callable[[], Any]) -> Source:
    """``s3://bucket/prefix``, a folder, or a file (``file://`` URIs too)."""
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"no bucket in {text!r}")
        return Source(text, S3Reader(s3_client(), parts.netloc), prefix=parts.path.strip("/"))
    path = Path(parts.path if parts.scheme == "file" else text).expanduser()
    if path.is_file():
        return Source(str(path), None, file=path)
    if not path.is_dir():
        raise ValueError(f"{text}: no such file or folder")
    resolved = path.resolve()
    if "raw" in resolved.parts:  # a folder inside an archive's raw/ tree: keep the layout
        index = len(resolved.parts) - 1 - resolved.parts[::-1].index("raw")
        root = Path(*resolved.parts[:index])
        return Source(str(path), FolderReader(root), prefix="/".join(resolved.parts[index:]))
    return Source(str(path), FolderReader(resolved))


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def list_archive(reader: Reader, prefix: str, window: Window) -> Iterator[Item]:
    """The objects to replay under ``prefix``, whole days outside ``window`` skipped.

    In the archive layout (``…/raw/YYYY/MM/DD/{event_id}.json``) days are walked through the
    listing's common prefixes; anything else is every file under ``prefix``.
    """
    segments = [s for s in prefix.strip("/").split("/") if s]
    if "raw" in segments:
        index = len(segments) - 1 - segments[::-1].index("raw")
        raw_root, fixed = _join(*segments[: index + 1]), segments[index + 1 :]
    elif reader.has(_join(prefix, "raw")):  # not children(): that would list every object
        raw_root, fixed = _join(prefix, "raw"), []
    else:
        for key in reader.keys(prefix):
            yield Item(key=key)
        return
    if len(fixed) > 3:  # a single day's folder and beyond: list it as it is
        for key in reader.keys(_join(raw_root, *fixed)):
            yield _archived(key, _day(*fixed[:3]))
        return
    yield from _walk_days(reader, raw_root, fixed, window)


def _day(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _archived(key: str, day: date | None) -> Item:
    name = key.rsplit("/", 1)[-1]
    event_id = name[: -len(".json")] if name.endswith(".json") else None
    return Item(key=key, event_id=event_id or None, day=day)


def _walk_days(reader: Reader, raw_root: str, fixed: list[str], window: Window) -> Iterator[Item]:
    years = fixed[:1] or [y for y in reader.children(raw_root) if y.isdigit() and len(y) == 4]
    for year in years:
        if not _may_hold(window, int(year), None):
            continue
        months = fixed[1:2] or [m for m in reader.children(_join(raw_root, year)) if m.isdigit()]
        for month in months:
            if not _may_hold(window, int(year), int(month)):
                continue
            days = fixed[2:3] or [
                d for d in reader.children(_join(raw_root, year, month)) if d.isdigit()
            ]
            for day_name in days:
                day = _day(year, month, day_name)
                if day is None or not window.has_day(day):
                    continue
                for key in reader.keys(_join(raw_root, year, month, day_name)):
                    if key.endswith(".json"):
                        yield _archived(key, day)


def _may_hold(window: Window, year: int, month: int | None) -> bool:
    """Could this year (or month) hold a day inside the window?"""
    if month is None:
        first, last = date(year, 1, 1), date(year, 12, 31)
    else:
        first = date(year, month, 1)
        last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    if window.since is not None and last < window.since.date():
        return False
    if window.until is not None:
        return first <= (window.until - timedelta(microseconds=1)).date()
    return True


# --- keeping the log followers quiet -----------------------------------------------------------


class FollowerBusy(RuntimeError):
    """A log follower (metrics, alerts) is running and would count the replayed events."""


class QuietFollowers:
    """Hold the leases of the log followers and move their cursors over replayed events.

    Why: metrics and alerts follow the log (:mod:`eventlog.cursors`), so appending old events
    would send them to CloudWatch and SNS as if they had just happened.  While the replay holds
    a follower's lease nobody else moves its cursor; after each batch the cursor is moved over
    the leading run of events (and dead letters) this replay appended.  If anything else was
    appended in between, the cursor stops before it — that event is news the follower must
    report — and the replayed events after it will be reported too (counted in ``exposed``).
    """

    def __init__(self, engine: Engine, names: Sequence[str], owner: str, ttl: timedelta) -> None:
        self.engine = engine
        self.names = tuple(names)
        self.owner = owner
        self.ttl = ttl
        self.exposed = 0
        self._held: list[str] = []

    def __enter__(self) -> QuietFollowers:
        for name in self.names:
            with self.engine.begin() as connection:
                cursor = cursors.lease(connection, name, self.owner, self.ttl)
                current = cursors.read(connection, name) if cursor is None else None
            if cursor is None:
                self.__exit__()  # the ones already held go back at once
                holder = current.owner if current is not None else "another process"
                raise FollowerBusy(
                    f"the {name!r} log follower is running ({holder}): it would report "
                    "replayed events as new; stop the metrics pool during the replay, "
                    "or pass --with-side-effects"
                )
            self._held.append(name)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self._held:
            with self.engine.begin() as connection:
                cursors.release(connection, name, self.owner)
        self._held.clear()

    @staticmethod
    def _over(connection: Any, last_seq: int, new_ids: set[str]) -> tuple[int, int]:
        """(the seq to move a cursor at ``last_seq`` to, how many events it moves over): the
        leading run of events after it that this replay appended."""
        if not new_ids:
            return last_seq, 0
        # the usual case in one row: as many events after the cursor as were appended — the
        # new ones all are (appended after it, under the append lock), so they are all there is
        following = (
            select(events.c.seq)
            .where(events.c.seq > last_seq)
            .order_by(events.c.seq)
            .limit(len(new_ids) + 1)  # bounded, however far behind the cursor is
            .subquery()
        )
        after, top = connection.execute(select(func.count(), func.max(following.c.seq))).one()
        if after == len(new_ids):
            return int(top), after
        rows = connection.execute(
            select(events.c.seq, events.c.event_id)
            .where(events.c.seq > last_seq)
            .order_by(events.c.seq)
            .limit(len(new_ids) + 1)
        ).all()
        moved = 0
        for seq, event_id in rows:
            if event_id not in new_ids:
                break
            last_seq, moved = seq, moved + 1
        return last_seq, moved

    def skip(self, new_ids: set[str], rejected: set[str]) -> None:
        """Move every cursor over this batch's appended events and dead letters (sha256 of the
        raw bytes of the rejected ones)."""
        with self.engine.begin() as connection:
            for name in self._held:
                cursor = cursors.lease(connection, name, self.owner, self.ttl)  # renew
                if cursor is None:
                    continue
                last_seq, moved = self._over(connection, cursor.last_seq, new_ids)
                last_letter = cursor.last_dead_letter_id
                if rejected:
                    letters = connection.execute(
                        select(dead_letters.c.id, dead_letters.c.kind, dead_letters.c.raw)
                        .where(dead_letters.c.id > last_letter)
                        .order_by(dead_letters.c.id)
                        .limit(len(rejected) + 1)
                    ).all()
                    for letter_id, kind, raw in letters:
                        if kind != "rejected" or hashlib.sha256(raw).hexdigest() not in rejected:
                            break
                        last_letter = letter_id
                if name == self._held[0]:
                    self.exposed += len(new_ids) - moved
                cursors.advance(
                    connection,
                    name,
                    self.owner,
                    last_seq=last_seq,
                    last_dead_letter_id=last_letter,
                )


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


def _missing(engine: Engine, batch: list[Item]) -> list[Item]:
    """The items whose event the log does not have (items without a known id included)."""
    known = [item.event_id for item in batch if item.event_id]
    if not known:
        return batch
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # one array parameter: an IN list of a thousand ids costs ≈ 10 µs an id to render
            # and bind, the array a fraction of that
            wanted = events.c.event_id == any_(bindparam("ids", known, type_=ARRAY(String)))
            present = set(connection.execute(select(events.c.event_id).where(wanted)).scalars())
        else:
            present = set()
            for start in range(0, len(known), LOOKUP):
                query = select(events.c.event_id).where(
                    events.c.event_id.in_(known[start : start + LOOKUP])
                )
                present.update(connection.execute(query).scalars())
    return [item for item in batch if item.event_id not in present]


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
) -> ReplayReport:
    """Replay ``source`` into the log of ``app``'s database (module docstring)."""
    from workers import alerts, metrics

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
    names = () if with_side_effects else tuple(followers or (metrics.CURSOR, alerts.CURSOR))
    with QuietFollowers(engine, names, f"replay:{metrics.follower_id()}", metrics.LEASE) as quiet:
        if progress is not None:
            progress.start("listing", None)
        items = source.items(window)
        report.listed = len(items)
        if progress is not None:
            progress.advance(len(items))
        _replay_items(
            intake,
            source,
            items,
            window,
            report,
            quiet,
            batch=batch,
            max_rate=max_rate,
            stop=stop,
            progress=progress,
            started=started,
        )
        if not stop.is_set():
            _replay_facts(engine, source, window, report)
    report.interrupted = stop.is_set() and report.done < report.listed
    report.exposed = quiet.exposed
    report.seconds = time.perf_counter() - started
    if rebuild_after and not report.interrupted:
        report.rebuilt = rebuild(engine, progress=progress)
    return report


def _replay_facts(engine: Engine, source: Source, window: Window, report: ReplayReport) -> None:
    """After the events, the pipeline's facts archived beside them (producers/replay_facts.py)."""
    reader = source.reader
    if reader is None or "raw" in source.prefix.strip("/").split("/"):
        return
    root = _join(source.prefix, FACTS)
    if not reader.has(root):
        return
    keys = [item.key for item in _walk_days(reader, root, [], window)]
    report.facts, report.facts_rejected = append_facts(
        engine, keys, reader.get, fetchers=reader.fetchers, since=window.since, until=window.until
    )


@dataclass
class _Batch:
    """One batch as the reading thread hands it over: parsed, bounded, ready to append."""

    in_log: int  # objects skipped: the log has their events
    fetched: int  # objects read
    events: int  # events parsed from them
    outside: int  # of which outside the window
    kept: list[ParsedEvent | Rejected]


def _read_batch(
    intake: Intake, source: Source, pool: ThreadPoolExecutor, chunk: list[Item], window: Window
) -> _Batch:
    """Skip what the log has, fetch the rest in parallel, parse, drop what is outside the
    window (runs in the reading thread, while the appending thread waits on the database)."""
    wanted = _missing(intake.runtime.engine, chunk)
    if source.fetchers > 1:  # latency-bound reads (S3): side by side
        raws = [raw for raws in pool.map(source.fetch, wanted) for raw in raws]
    else:
        raws = [raw for item in wanted for raw in source.fetch(item)]
    parsed = intake.parse(raws)
    kept: list[ParsedEvent | Rejected] = [
        item for item in parsed if not isinstance(item, ParsedEvent) or window.contains(item.time)
    ]
    return _Batch(len(chunk) - len(wanted), len(wanted), len(parsed), len(parsed) - len(kept), kept)


def _replay_items(
    intake: Intake,
    source: Source,
    items: list[Item],
    window: Window,
    report: ReplayReport,
    quiet: QuietFollowers,
    *,
    batch: int,
    max_rate: float | None,
    stop: threading.Event,
    progress: Progress | None,
    started: float,
) -> None:
    """Read (and parse) a batch ahead in a thread, append batch by batch in this one, until
    done or ``stop``: parsing is CPU work that overlaps the database's work on the appends."""
    ready: queue.Queue[_Batch | BaseException | None] = queue.Queue(2)
    halt = threading.Event()

    def produce() -> None:
        try:
            with ThreadPoolExecutor(max_workers=source.fetchers) as pool:
                for chunk in _batches(items, batch):
                    if halt.is_set():
                        return
                    ready.put(_read_batch(intake, source, pool, chunk, window))
        except BaseException as error:  # handed to the consumer, raised there
            ready.put(error)
        finally:
            ready.put(None)

    if progress is not None:
        progress.start("replaying", len(items))
    producer = threading.Thread(target=produce, name="replay-read", daemon=True)
    producer.start()
    try:
        while True:
            got = ready.get()
            if got is None:
                break
            if isinstance(got, BaseException):
                raise got
            report.in_log += got.in_log
            report.fetched += got.fetched
            report.events += got.events
            report.outside += got.outside
            _append(intake, got.kept, report, quiet)
            if progress is not None:
                progress.advance(got.in_log + got.fetched)
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


def _append(
    intake: Intake,
    kept: list[ParsedEvent | Rejected],
    report: ReplayReport,
    quiet: QuietFollowers,
) -> None:
    if not kept:
        return
    result = intake.submit_parsed(kept)
    report.appended += result.accepted
    report.duplicates += result.duplicates
    report.rejected += result.rejected
    for reason, count in result.rejection_reasons().items():
        report.rejection_reasons[reason] = report.rejection_reasons.get(reason, 0) + count
    if quiet.names:
        new_ids = {o.event_id for o in result.outcomes if o.verdict == "accepted" and o.event_id}
        rejected = {
            hashlib.sha256(item.raw).hexdigest() for item in kept if isinstance(item, Rejected)
        }
        if new_ids or rejected:
            quiet.skip(new_ids, rejected)
