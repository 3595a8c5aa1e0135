"""Reading the batched archive back in tests: what S3 or a folder holds, line by line.

The tests assert on the objects themselves (their keys, encryption and lines), and on the
archive cursor only to know when to look.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from eventlog.tables import events
from workers.archive import archived_through
from workers.storage import BATCH_SUFFIX, batch_range


def s3_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def lines_of(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(body).splitlines()]


def s3_batches(s3: Any, bucket: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every batch object under ``prefix`` → its lines."""
    return {
        key: lines_of(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for key in s3_keys(s3, bucket, prefix)
        if key.endswith(BATCH_SUFFIX)
    }


def folder_batches(root: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.relative_to(root).as_posix(): lines_of(path.read_bytes())
        for path in sorted(root.rglob(f"*{BATCH_SUFFIX}"))
    }


def event_ids(batches: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The ids of the events (not facts) in the batches, once per line they appear on."""
    return [line["event"]["id"] for lines in batches.values() for line in lines if "event" in line]


def fact_ids(batches: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        line["fact"]["event_id"] for lines in batches.values() for line in lines if "fact" in line
    ]


def check_ranges(batches: dict[str, list[dict[str, Any]]]) -> None:
    """Each object holds exactly the log rows its name says, and no two objects overlap."""
    seen: set[int] = set()
    for key, lines in batches.items():
        found = batch_range(key)
        assert found is not None, key
        seqs = [line["seq"] for line in lines]
        assert seqs == sorted(seqs) and seqs[0] == found[0] and seqs[-1] == found[1], key
        assert not seen & set(seqs), f"{key} overlaps another batch"
        seen.update(seqs)


def archived_count(engine: Any, event_id: str | None = None) -> int:
    """Events (not facts) at or before the archive cursor: inside a batch object."""
    with engine.connect() as connection:
        through = archived_through(connection)
        query = (
            select(func.count())
            .select_from(events)
            .where(events.c.seq <= through, events.c.origin != "pipeline")
        )
        if event_id:
            query = query.where(events.c.event_id == event_id)
        return int(connection.execute(query).scalar_one())


def unarchived(engine: Any) -> int:
    """Log rows (events and facts) after the archive cursor: not yet in a batch object."""
    with engine.connect() as connection:
        through = archived_through(connection)
        query = select(func.count()).select_from(events).where(events.c.seq > through)
        return int(connection.execute(query).scalar_one())


PREFIX = "omics-run-events"


def object_keys(s3: Any, bucket: str) -> list[str]:
    return s3_keys(s3, bucket, PREFIX)
