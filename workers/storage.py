"""The archive: where raw and flattened events are kept, in S3 or in a folder.

Keys are deterministic (DESIGN.md §3, issue #2), so a retried archive task overwrites the same
objects instead of adding copies, unlike the legacy Lambda's ``uuid4`` keys:

* ``{prefix}/raw/YYYY/MM/DD/{event_id}.json`` — the event as received; replay reads these;
* ``{prefix}/facts/YYYY/MM/DD/{seq:012d}.{event_id}.json`` — a pipeline fact (enrichment,
  callback attempt, import step, reconciliation) as its log row, so that a replay restores what
  the pipeline did, not only what HealthOmics said; the log position in the name keeps a day's
  facts in the order they happened;
* ``{prefix}/event_{YYYYMMDD_HHMMSS}_{event_id}.json`` — the flattened record, in the legacy
  key shape existing data-lake tables already crawl (event time and id in place of
  ``now()`` and a random UUID).

S3 objects are written with server-side encryption: AES256 by default, ``aws:kms`` with a key
id when configured.  ``file://`` archives are for the embedded default and for tests.

Ids come from outside (an EventBridge ``id`` is whatever the sender put there), so a key is
built only from ids that stay one segment of it.  The parser refuses unsafe ids at intake; the
key builders refuse them again (:class:`UnsafeKey`, a permanent error: the archive stage
dead-letters the event with the reason and writes nothing), because a log may hold rows
appended before that check, or by a replay of an old archive:

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

    def put(self, key: str, body: bytes) -> None: ...

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

    def put(self, key: str, body: bytes) -> None:
        check_key(key)
        extra: dict[str, str] = {"ServerSideEncryption": self.sse.value}
        if self.sse is ServerSideEncryption.KMS and self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **extra
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

    def put(self, key: str, body: bytes) -> None:
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
        for path in sorted(base.rglob("*.json")):
            if not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()

    def location(self, key: str) -> str:
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
