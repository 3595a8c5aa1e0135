"""Where a replay reads archived events from: the window, the sources, the archive listing.

Why apart from :mod:`producers.replay`: everything here is plain data and reading — no
database, no Celery — so a replay's worker processes (:mod:`producers.replay_prepare`) can be
handed a :class:`Source` and the :class:`Item` values to fetch, and import only this.

A SOURCE is ``s3://bucket/prefix`` (:class:`S3Reader`), a folder (:class:`FolderReader`; a
folder inside an archive's ``raw/`` tree keeps the layout) or a file of EventBridge events
(read whole: JSON lines, a JSON array or one event).  An archive holds either layout, or both
(one written before 2026-12 and continued since):

* batches (``…/batches/dt=YYYY-MM-DD/{first}-{last}.jsonl.gz``, :mod:`workers.archive`): every
  batch object is listed, in log order (by the range in its name), since a batch holds events
  of any time; an event line (``"event"``) is replayed like an archived raw event, outside the
  window or not judged by its own time; the fact lines (``"fact"``) are read by
  :func:`batch_facts` for :mod:`producers.replay_facts`;
* one object per event (``…/raw/YYYY/MM/DD/{event_id}.json``): days are walked through the
  listing's common prefixes, so whole days outside the window are never listed, and each item
  knows its event id, so an object whose event the log already has is never fetched.

Any other file under a folder or prefix is read as EventBridge events, except a name ending
``.jsonl.gz``, which is read as a batch.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import orjson

from producers.sender import split_events
from schemas.parsing import RawEvent

#: Parallel GETs against S3 (the client's pool holds 20 connections).
S3_FETCHERS = 16
#: Parallel reads of a folder: none — a local file of an event is read in ≈ 20 µs, less than
#: handing it to a thread and back costs.
FOLDER_FETCHERS = 1
#: The folder of the batch objects under an archive prefix, and how their names end (as
#: :mod:`workers.storage` writes them; not imported from there: replay workers stay light).
BATCHES = "batches"
BATCH_SUFFIX = ".jsonl.gz"


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


class Item(NamedTuple):
    """One object (or, for a file source, one event) to replay.  A tuple: a big archive lists
    a million of them before the first is read, and a frozen dataclass costs ten times more to
    make."""

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


#: Bytes per read of an archived file: most objects are read whole by the first.
_READ_SIZE = 65536


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
        # a plain path string and reads until the end straight from the descriptor: Path's
        # joining and read_bytes() cost about as much as reading a small file, and a file
        # object adds an fstat and an lseek (≈ 4 µs of an object's ≈ 10)
        descriptor = os.open(f"{self.root}{os.sep}{key}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(descriptor, _READ_SIZE):
                chunks.append(chunk)
        finally:
            os.close(descriptor)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
        if item.key.endswith(BATCH_SUFFIX):
            return batch_events(data)
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


def batch_lines(data: bytes) -> list[dict[str, Any]]:
    """The lines of a batch object (gzip JSON lines)."""
    return [orjson.loads(line) for line in gzip.decompress(data).splitlines() if line.strip()]


def batch_events(data: bytes) -> list[RawEvent]:
    """The events of a batch object, each as the bytes of the event (its ``"event"`` value)."""
    return [orjson.dumps(line["event"]) for line in batch_lines(data) if "event" in line]


def batch_facts(data: bytes) -> list[tuple[int, bytes]]:
    """The facts of a batch object: (log position, the fact's archived row as JSON)."""
    return [
        (int(line.get("seq", 0)), orjson.dumps(line["fact"]))
        for line in batch_lines(data)
        if "fact" in line
    ]


def batch_order(key: str) -> tuple[int, int, str]:
    """Sort key of a batch object: the log range in its name (then the key)."""
    name = key.rsplit("/", 1)[-1][: -len(BATCH_SUFFIX)]
    first, _, last = name.partition("-")
    if first.isdigit() and last.isdigit():
        return int(first), int(last), key
    return -1, -1, key


def join_key(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def list_archive(reader: Reader, prefix: str, window: Window) -> Iterator[Item]:
    """The objects to replay under ``prefix``, whole days outside ``window`` skipped.

    In the archive layout (``…/raw/YYYY/MM/DD/{event_id}.json``) days are walked through the
    listing's common prefixes; anything else is every file under ``prefix``.
    """
    segments = [s for s in prefix.strip("/").split("/") if s]
    if "raw" in segments:
        index = len(segments) - 1 - segments[::-1].index("raw")
        raw_root, fixed = join_key(*segments[: index + 1]), segments[index + 1 :]
    else:
        batches = join_key(prefix, BATCHES)
        has_batches = reader.has(batches)
        if has_batches:  # events before facts, batches in log order
            keys = [key for key in reader.keys(batches) if key.endswith(BATCH_SUFFIX)]
            yield from (Item(key=key) for key in sorted(keys, key=batch_order))
        if reader.has(join_key(prefix, "raw")):  # not children(): that lists every object
            yield from walk_days(reader, join_key(prefix, "raw"), [], window)
        elif not has_batches:
            for key in reader.keys(prefix):
                yield Item(key=key)
        return
    if len(fixed) > 3:  # a single day's folder and beyond: list it as it is
        for key in reader.keys(join_key(raw_root, *fixed)):
            yield _archived(key, _day(*fixed[:3]))
        return
    yield from walk_days(reader, raw_root, fixed, window)


def _day(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _archived(key: str, day: date | None) -> Item:
    name = key.rsplit("/", 1)[-1]
    event_id = name[: -len(".json")] if name.endswith(".json") else None
    return Item(key=key, event_id=event_id or None, day=day)


def walk_days(reader: Reader, raw_root: str, fixed: list[str], window: Window) -> Iterator[Item]:
    years = fixed[:1] or [y for y in reader.children(raw_root) if y.isdigit() and len(y) == 4]
    for year in years:
        if not _may_hold(window, int(year), None):
            continue
        months = fixed[1:2] or [m for m in reader.children(join_key(raw_root, year)) if m.isdigit()]
        for month in months:
            if not _may_hold(window, int(year), int(month)):
                continue
            days = fixed[2:3] or [
                d for d in reader.children(join_key(raw_root, year, month)) if d.isdigit()
            ]
            for day_name in days:
                day = _day(year, month, day_name)
                if day is None or not window.has_day(day):
                    continue
                for key in reader.keys(join_key(raw_root, year, month, day_name)):
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
