"""The event log's contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from eventlog import store
from eventlog.db import create_db_engine, current_revision, head_revision
from eventlog.store import LogEntry
from eventlog.tables import dead_letters, events, outbox

T0 = datetime(2026, 1, 22, 22, 16, 9, tzinfo=UTC)


def entry(event_id: str, status: str = "RUNNING", **extra: object) -> LogEntry:
    payload = {"id": event_id, "detail-type": "Run Status Change", "detail": {"status": status}}
    return LogEntry(
        event_id=event_id,
        origin="aws",
        source="aws.omics",
        detail_type="Run Status Change",
        event_time=T0,
        payload=payload,
        resource_arn="arn:aws:omics:us-east-1:123456789012:run/8567247",
        resource_id="aecdf624-3440-e174-33c0-7073b55966f6",
        status=status,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def engine(backend: str):
    engine = create_db_engine(backend)
    yield engine
    engine.dispose()


def test_migrated_to_head(engine) -> None:
    assert current_revision(engine) == head_revision()


def test_append_is_idempotent_and_reports_new(engine) -> None:
    with engine.begin() as connection:
        assert store.append(connection, entry("e-1"), ["archive"]) is True
    with engine.begin() as connection:
        assert store.append(connection, entry("e-1"), ["archive"]) is False
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar_one() == 1
        assert connection.execute(select(func.count()).select_from(outbox)).scalar_one() == 1
        stored = store.get(connection, "e-1")
    assert stored is not None
    assert stored.event_time == T0
    assert stored.payload["detail"]["status"] == "RUNNING"
    assert stored.origin == "aws"


def test_batch_append_reports_only_new_ids(engine) -> None:
    with engine.begin() as connection:
        store.append(connection, entry("b-1"), ["archive"])
    batch = [(entry(f"b-{n}"), ["archive"]) for n in range(5)] + [(entry("b-2"), ["archive"])]
    with engine.begin() as connection:
        new = store.append_many(connection, batch)
    assert new == {"b-0", "b-2", "b-3", "b-4"}
    with engine.connect() as connection:
        seqs = [row.seq for row in connection.execute(select(events.c.seq).order_by("seq"))]
        owed = connection.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert len(seqs) == 5 and seqs == sorted(set(seqs))
    assert owed == 5


def test_read_returns_log_order(engine) -> None:
    with engine.begin() as connection:
        store.append_many(connection, [(entry(f"r-{n}"), []) for n in range(3)])
        store.append(connection, entry("r-9"))
    with engine.connect() as connection:
        read = store.read(connection)
    assert [e.seq for e in read] == sorted(e.seq for e in read)
    assert read[-1].event_id == "r-9"


def test_pipeline_entries_have_ids_derived_from_their_cause(engine) -> None:
    with engine.begin() as connection:
        store.append(connection, entry("cause-1"))
        cause = store.get(connection, "cause-1")
        assert cause is not None
        first = LogEntry.pipeline(cause, "Event Archived", {"raw": "s3://b/k"})
        again = LogEntry.pipeline(cause, "Event Archived", {"raw": "s3://b/k"})
        assert first.event_id == again.event_id
        assert store.append(connection, first) is True
        assert store.append(connection, again) is False
        stored = store.get(connection, first.event_id)
    assert stored is not None and stored.caused_by == "cause-1" and stored.origin == "pipeline"


def test_outbox_complete_once_and_claim_due(engine) -> None:
    with engine.begin() as connection:
        store.append(connection, entry("o-1"), ["archive"])
        store.append(connection, entry("o-2"), ["archive"])
    with engine.begin() as connection:
        # freshly appended, unpublished work belongs to its producer for a grace period
        assert store.claim_due(connection, redeliver_after=timedelta(hours=1)) == []
        items = store.pending_for(connection, ["o-1", "o-2"])
        store.mark_published(connection, [items[0].id])
    with engine.begin() as connection:
        assert store.complete(connection, "o-2", "archive", "archived") is True
        assert store.complete(connection, "o-2", "archive", "archived") is False
        due = store.claim_due(connection, redeliver_after=timedelta(seconds=0))
    assert [(item.event_id, item.publish_count) for item in due] == [("o-1", 1)]
    with engine.connect() as connection:
        assert store.unfinished_for(connection, ["o-1", "o-2"]) == 1


def test_delayed_work_is_not_due_before_its_time(engine) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    with engine.begin() as connection:
        store.append(connection, entry("d-1"))
        store.schedule(connection, "d-1", "callback", not_before=later)
        assert store.pending_for(connection, ["d-1"]) == []
        assert store.claim_due(connection, redeliver_after=timedelta(0)) == []


def test_dead_letters_keep_raw_bytes_and_deduplicate(engine) -> None:
    raw = b"\xff\xfe not json"
    with engine.begin() as connection:
        assert store.dead_letter(connection, kind="rejected", reason="not UTF-8", raw=raw)
        assert not store.dead_letter(connection, kind="rejected", reason="not UTF-8", raw=raw)
    with engine.connect() as connection:
        row = connection.execute(select(dead_letters)).one()
    assert bytes(row.raw) == raw and row.reason == "not UTF-8"


def test_postgresql_events_table_is_append_only(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    with engine.begin() as connection:
        store.append(connection, entry("a-1"))
    for statement in (
        "UPDATE events SET status = 'COMPLETED'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
    with engine.connect() as connection:
        assert store.get(connection, "a-1") is not None
    engine.dispose()


def test_a_big_batch_appends_like_a_small_one(engine) -> None:
    """A batch of ``BULK_FROM`` rows or more goes through COPY on PostgreSQL: the same answer
    (the new ids), the same rows, ``seq`` in batch order, duplicates (in the log and in the
    batch) skipped, work owed only for the new ones, in the caller's transaction."""
    size = store.BULK_FROM * 3
    tricky = {"s": "tab\tnewline\nback\\slash ü \u2028", "n": [1, 2.5, None, True], "e": {}}
    with engine.begin() as connection:
        assert store.append_many(connection, [(entry("e-0002"), ())]) == {"e-0002"}
    batch = [
        (entry(f"e-{i:04d}", caused_by=None), ["archive"] if i % 2 else [])
        for i in range(1, size + 1)
    ]
    batch.append((entry("e-0003"), ["archive"]))  # twice in the batch: the first one counts
    batch[4] = (LogEntry(**{**batch[4][0].__dict__, "payload": {"detail": tricky}}), batch[4][1])
    with engine.begin() as connection:
        new = store.append_many(connection, batch)
    assert new == {f"e-{i:04d}" for i in range(1, size + 1)} - {"e-0002"}
    with engine.connect() as connection:
        rows = connection.execute(select(events.c.event_id, events.c.seq).order_by(events.c.seq))
        order = [event_id for event_id, _ in rows]
        owed = connection.execute(select(func.count()).select_from(outbox)).scalar_one()
        fifth = store.get(connection, "e-0005")
    assert order == ["e-0002"] + [f"e-{i:04d}" for i in range(1, size + 1) if i != 2]
    assert owed == len([i for i in range(1, size + 1) if i % 2 and i != 2])
    assert fifth is not None and fifth.payload == {"detail": tricky} and fifth.event_time == T0
    with engine.begin() as connection:  # all of it again: nothing new, in one transaction twice
        assert store.append_many(connection, batch) == set()
        assert store.append_many(connection, batch[:size]) == set()


def test_payloads_read_back_exactly_whatever_their_numbers(engine) -> None:
    """PostgreSQL's JSONB is decoded with orjson where it gives json.loads's value and with
    json.loads where it would not (integers past 64 bits become floats in orjson)."""
    numbers = {
        "past_64_bits": 2**70,
        "below_int64": -(2**63) - 1,
        "uint64_max": 2**64 - 1,
        "nineteen_digits_in_text": "1234567890123456789",
        "float": 0.1,
        "unicode": "ü \u2028",
    }
    with engine.begin() as connection:
        store.append(connection, LogEntry(**{**entry("e-big").__dict__, "payload": numbers}))
        store.append(connection, LogEntry(**{**entry("e-small").__dict__, "payload": {"n": 7}}))
    with engine.connect() as connection:
        big, small = store.get(connection, "e-big"), store.get(connection, "e-small")
    assert big is not None and big.payload == numbers
    assert type(big.payload["past_64_bits"]) is int and type(big.payload["below_int64"]) is int
    assert small is not None and small.payload == {"n": 7}
