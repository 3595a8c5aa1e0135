"""The archive: where events and the pipeline's facts are kept, in S3 or in a folder.

Keys are deterministic (docs/design.md §3), so a retried put overwrites the same object
instead of adding a copy, unlike the legacy Lambda's ``uuid4`` keys.  The archive pool
(:mod:`workers.archive`) writes, since 2026-12:

* ``{prefix}/batches/dt=YYYY-MM-DD/{first:012d}-{last:012d}.jsonl.gz`` — a *batch*: the log
  rows ``first..last`` (events as received and pipeline facts), one JSON object per line,
  gzip-compressed (:func:`batch_key`).  The range names the object, so a batch written again
  after a crash lands on the same key; ``dt=`` is the UTC day the batch's first row was
  appended to the log, a Hive-style partition Athena and Glue read as a column;
* ``{prefix}/event_{YYYYMMDD_HHMMSS}_{event_id}.json`` — the flattened record of a run event in
  the legacy key shape existing data-lake tables crawl (event time and id in place of
  ``now()`` and a random UUID), only with ``ARCHIVE_LEGACY_FLATTENED=true``.

Archives written before 2026-12 hold one object per event, which :mod:`producers.replay` still
reads:

* ``{prefix}/raw/YYYY/MM/DD/{event_id}.json`` — the event as received (:func:`raw_key`);
* ``{prefix}/facts/YYYY/MM/DD/{seq:012d}.{event_id}.json`` — a pipeline fact as its log row
  (:func:`fact_key`).

S3 objects are written with server-side encryption: AES256 by default, ``aws:kms`` with a key
id when configured.  ``file://`` archives are for the embedded default and for tests.

Ids come from outside (an EventBridge ``id`` is whatever the sender put there), so a key is
built only from ids that stay one segment of it.  The parser refuses unsafe ids at intake; the
key builders refuse them again (:class:`UnsafeKey`, a permanent error: the event's legacy
object is not written and a dead letter says why), because a log may hold rows appended before
that check, or by a replay of an old archive.  A batch key holds no id at all:

* an id must be one path segment: not empty, not ``.`` or ``..``, no ``/`` or ``\\``, no
  control character — ``a/b/../../c`` would land on event ``c``'s object, 256 slashes would
  collapse into another key, ``../../x`` would leave a folder archive's root;
* a whole key has no empty, ``.`` or ``..`` segment (a prefix ``a//b`` included).

A folder archive also resolves every path (symbolic links followed) and refuses one that is not
inside its root, and writes through a temporary file that it removes when the write fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from schemas.settings import ServerSideEncryption, Settings
from workers.errors import PermanentError

#: What may not appear in an id that becomes one segment of a key: separators and controls.
_NOT_IN_SEGMENT = re.compile(r"[/\\\x00-\x1f\x7f]")


class UnsafeKey(PermanentError):
    """An id or key that would collapse into another key or escape the archive's root."""


def raw_key(prefix: str, event_id: str, event_time: datetime) -> str:
    return _join(prefix, f"raw/{event_time:%Y/%m/%d}/{_segment(event_id)}.json")


def fact_key(prefix: str, seq: int, event_id: str, event_time: datetime) -> str:
    return _join(prefix, f"facts/{event_time:%Y/%m/%d}/{seq:012d}.{_segment(event_id)}.json")


#: The folder, under an archive prefix, of the batch objects.
BATCHES = "batches"
#: How a batch object's name ends.
BATCH_SUFFIX = ".jsonl.gz"
#: Content type of a batch object (gzip-compressed JSON lines).
BATCH_CONTENT_TYPE = "application/gzip"


def batch_key(prefix: str, first_seq: int, last_seq: int, day: datetime) -> str:
    """The key of the batch of log rows ``first_seq..last_seq``, partitioned by ``day``."""
    return _join(
        prefix, f"{BATCHES}/dt={day:%Y-%m-%d}/{first_seq:012d}-{last_seq:012d}{BATCH_SUFFIX}"
    )


def batch_range(key: str) -> tuple[int, int] | None:
    """``…/{first}-{last}.jsonl.gz`` → (first, last); None for a name of another shape."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(BATCH_SUFFIX):
        return None
    first, _, last = name[: -len(BATCH_SUFFIX)].partition("-")
    if not (first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last)


def flattened_key(prefix: str, event_id: str, event_time: datetime) -> str:
    return _join(prefix, f"event_{event_time:%Y%m%d_%H%M%S}_{_segment(event_id)}.json")


def _segment(event_id: str) -> str:
    """``event_id`` if it stays one segment of a key; else :class:`UnsafeKey`."""
    if event_id in {"", ".", ".."} or _NOT_IN_SEGMENT.search(event_id):
        raise UnsafeKey(
            f"event id {event_id[:200]!r} cannot be part of an archive key: it must be one "
            "path segment (no '/', '\\', control characters, '.' or '..')"
        )
    return event_id


def _join(prefix: str, key: str) -> str:
    prefix = prefix.strip("/")
    joined = f"{prefix}/{key}" if prefix else key
    return check_key(joined)


def check_key(key: str) -> str:
    """``key`` if none of its segments is empty, ``.`` or ``..``; else :class:`UnsafeKey`."""
    if any(segment in {"", ".", ".."} for segment in key.split("/")):
        raise UnsafeKey(f"archive key {key[:300]!r} has an empty, '.' or '..' segment")
    return key


class Archive(Protocol):
    """What the archive pool and the replayer need of an archive."""

    prefix: str

    def put(self, key: str, body: bytes, content_type: str = ...) -> None: ...

    def get(self, key: str) -> bytes: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def location(self, key: str) -> str: ...


@dataclass
class S3Archive:
    client: Any
    bucket: str
    prefix: str
    sse: ServerSideEncryption = ServerSideEncryption.AES256
    kms_key_id: str | None = None

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        check_key(key)
        extra: dict[str, str] = {"ServerSideEncryption": self.sse.value}
        if self.sse is ServerSideEncryption.KMS and self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **extra
        )

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass
class FolderArchive:
    root: Path
    prefix: str

    def path(self, key: str) -> Path:
        """Where ``key`` lives; :class:`UnsafeKey` if that is not inside the root."""
        root = self.root.resolve()
        path = (root / check_key(key)).resolve()  # symbolic links followed, '..' applied
        if not path.is_relative_to(root) or path == root:
            raise UnsafeKey(f"archive key {key[:300]!r} resolves outside the archive {root}")
        return path

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename: a reader never sees half an object, a retry replaces it whole
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(body)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)  # a full disk or a failed rename leaves no litter
            raise

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            archived = path.name.endswith((".json", BATCH_SUFFIX))
            if archived and path.is_file() and not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()

    def location(self, key: str) -> str:
        if not key:  # the archive itself (a folder archive's prefix is empty)
            return self.root.resolve().as_uri()
        return self.path(key).as_uri()


def open_archive(settings: Settings, s3_client: Any | None = None) -> Archive:
    """The archive ``ARCHIVE_URI`` names."""
    parts = urlsplit(settings.archive_uri)
    if parts.scheme == "file":
        root = Path(unquote(parts.netloc + parts.path))
        return FolderArchive(root=root, prefix="")
    if s3_client is None:
        raise ValueError("an S3 archive needs an S3 client")
    return S3Archive(
        client=s3_client,
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        sse=settings.archive_sse,
        kms_key_id=settings.archive_kms_key_id,
    )
