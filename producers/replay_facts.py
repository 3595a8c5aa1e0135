"""The pipeline's own facts, put back into the log by a replay.

Why: the events HealthOmics sent say what happened to a run; the pipeline's facts say what we
did about it — the WES run id and outputs found by enrichment, every callback attempt and its
answer, every import step.  A lab that lost its database needs both, or its rebuilt ``runs``
and ``deliveries`` would claim no callback was ever made.  The archive pool writes each fact
as its log row (:func:`workers.archive.fact_record`): since 2026-12 as a ``"fact"`` line of
the batch objects, beside the events (:func:`append_batch_facts`); before, as one object under
``{prefix}/facts/YYYY/MM/DD/{seq}.{event_id}.json`` (:func:`append_facts`; *Event Archived*
facts were not archived).  This module validates them and appends them as they were — same
ids, times and payloads, owing no work (they were done).

Order: the replay appends the events first, then the facts in the order they were first
appended (the zero-padded log position leads each name and each batch, days are walked in
order, and the per-event facts of an old archive come before its batches), so a fact never
lands before the earlier facts it built on.  The folds are order-independent for the
events; within the facts the original order is kept for the callback history's attempt numbers.

A record that is not a valid fact is dead-lettered (``kind='replay'``) with its key and bytes,
like any malformed input; it stops nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, select

from eventlog import store
from eventlog.store import LogEntry
from eventlog.tables import events

#: The folder, under an archive prefix, that holds the facts.
FACTS = "facts"


class ArchivedFact(BaseModel):
    """A fact as archived: its log row but the reception time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=0)
    event_id: str = Field(min_length=1, max_length=128)
    origin: Literal["pipeline"]
    source: str = Field(min_length=1, max_length=256)
    detail_type: str = Field(min_length=1, max_length=128)
    event_time: AwareDatetime
    resource_arn: str | None = None
    resource_id: str | None = None
    status: str | None = None
    caused_by: str | None = None
    payload: dict[str, Any]

    def entry(self) -> LogEntry:
        return LogEntry(
            event_id=self.event_id,
            origin=self.origin,
            source=self.source,
            detail_type=self.detail_type,
            event_time=self.event_time,
            payload=self.payload,
            resource_arn=self.resource_arn,
            resource_id=self.resource_id,
            status=self.status,
            caused_by=self.caused_by,
        )


def fact_id(key: str) -> str | None:
    """``…/{seq}.{event_id}.json`` → the event id (None for a name of another shape)."""
    name = key.rsplit("/", 1)[-1]
    position, _, rest = name.partition(".")
    if not position.isdigit() or not rest.endswith(".json"):
        return None
    return rest[: -len(".json")] or None


def parse_fact(data: bytes) -> LogEntry | str:
    """The entry to append, or why the bytes are not an archived fact."""
    try:
        return ArchivedFact.model_validate_json(data).entry()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return f"not an archived fact: {where}: {first['msg']}"


def append_facts(
    engine: Engine,
    keys: list[str],
    get: Any,
    *,
    fetchers: int,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 1000,
) -> tuple[int, int]:
    """Fetch, validate and append the facts at ``keys`` (in order); (appended, dead-lettered).

    Facts the log already holds are not fetched; ``since``/``until`` bound by the fact's time.
    """
    appended = rejected = 0
    with ThreadPoolExecutor(max_workers=max(1, fetchers)) as pool:
        for chunk in _chunks(keys, batch):
            wanted = _not_in_log(engine, chunk)
            bodies = list(pool.map(get, wanted))
            added, refused = _append(engine, zip(wanted, bodies, strict=True), since, until)
            appended, rejected = appended + added, rejected + refused
    return appended, rejected


def append_batch_facts(
    engine: Engine,
    keys: list[str],
    get: Any,
    read: Any,
    *,
    fetchers: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[int, int]:
    """Append the fact lines of the batch objects at ``keys`` (in log order); ``read`` turns an
    object into its facts, (log position, bytes).  (appended, dead-lettered)."""
    appended = rejected = 0
    with ThreadPoolExecutor(max_workers=max(1, fetchers)) as pool:
        for chunk in _chunks(keys, 20):
            records: list[tuple[str, bytes]] = []
            for key, data in zip(chunk, pool.map(get, chunk), strict=True):
                records.extend((f"{key}#{seq}", fact) for seq, fact in read(data))
            added, refused = _append(engine, records, since, until)
            appended, rejected = appended + added, rejected + refused
    return appended, rejected


def _append(
    engine: Engine,
    records: Iterable[tuple[str, bytes]],
    since: datetime | None,
    until: datetime | None,
) -> tuple[int, int]:
    """Validate and append ``(where, bytes)`` facts in one transaction; (appended, rejected).
    Facts the log has are not appended again (``append_many`` skips known ids)."""
    rejected = 0
    entries: list[tuple[LogEntry, tuple[str, ...]]] = []
    with engine.begin() as connection:
        for where, data in records:
            parsed = parse_fact(data)
            if isinstance(parsed, str):
                rejected += store.dead_letter(
                    connection, kind="replay", reason=f"{where}: {parsed}", raw=data
                )
                continue
            if since is not None and parsed.event_time < since:
                continue
            if until is not None and parsed.event_time >= until:
                continue
            entries.append((parsed, ()))
        # folded by the rebuild that ends every replay, as the events are
        appended = len(store.append_many(connection, entries, fold=False))
    return appended, rejected


def _not_in_log(engine: Engine, keys: list[str]) -> list[str]:
    ids = {key: fact_id(key) for key in keys}
    known = [event_id for event_id in ids.values() if event_id]
    with engine.connect() as connection:
        query = select(events.c.event_id).where(events.c.event_id.in_(known))
        present = set(connection.execute(query).scalars()) if known else set()
    return [key for key, event_id in ids.items() if event_id not in present]


def _chunks(keys: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]
