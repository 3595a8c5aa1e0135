"""A database lost after real work — enrichment, callbacks refused then accepted — comes back
from the archive with the same projections: the events *and* the pipeline's facts are replayed,
from the batched archive (S3 and a folder) and from the per-event layout written before 2026-12
(on PostgreSQL and SQLite)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from eventlog.db import create_db_engine, upgrade
from eventlog.rebuild import checksum_of
from eventlog.store import stored_event
from eventlog.tables import dead_letters, deliveries, events, outbox, runs
from producers.replay_facts import fact_id, parse_fact
from schemas.parsing import canonical_json
from tests.helpers.archive_batches import check_ranges, fact_ids, s3_batches, s3_keys
from tests.helpers.callback_rig import Rig, final_check
from tests.helpers.cli import printed_checksum
from tests.helpers.common import libpq as _libpq
from tests.helpers.common import wait_for
from workers.archive import archived_through, fact_record
from workers.storage import fact_key, raw_key

pytestmark = pytest.mark.slow


def _count(engine: Any, table: Any, *where: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        )


def test_replay_restores_enrichments_and_callback_history(
    make_rig: Callable[..., Rig],
    pg_base_url: str,
    omics_cli: Any,
    make_pg: Callable[[], str],
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    rig = make_rig(seed=21, queues=("archive", "enrich", "callback"), callback_retry_window=120)
    for n in range(8):
        rig.sim.add_run(tasks=2, outcome=("COMPLETED", "FAILED")[n % 2], delay=n * 3.0)
    delivered = rig.simulate()
    rig.receiver.fail(503)  # some deliveries need a second attempt
    rig.feed(delivered)
    refused = lambda: sum(r.status == 503 for r in rig.receiver.callbacks())  # noqa: E731
    wait_for(lambda: refused() >= 3, 60, "callbacks refused")
    rig.receiver.recover()
    rig.settle()
    final_check(rig)
    engine = rig.engine
    wait_for(lambda: _count(engine, outbox, outbox.c.done_at.is_(None)) == 0, 60, "all done")
    wait_for(lambda: _unarchived(engine) == 0, 60, "all archived")
    failed = _count(engine, deliveries, deliveries.c.outcome == "failed")
    assert failed > 0 and _count(engine, runs, runs.c.wes_run_id.is_not(None)) == 8
    facts = _count(engine, events, events.c.origin == "pipeline")
    batches = s3_batches(s3, bucket, "omics-run-events")
    check_ranges(batches)
    assert sorted(fact_ids(batches)) == sorted(_ids(engine, events.c.origin == "pipeline"))
    assert not [key for key in s3_keys(s3, bucket, "omics-run-events") if "/facts/" in key]
    new_layout = tmp_path / "batched"  # the same objects in a folder archive
    for key in batches:
        path = new_layout / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    old_layout = tmp_path / "per-event"
    _write_per_event_layout(engine, old_layout / "omics-run-events")
    before = checksum_of(engine)
    url = rig.settings.database_url
    rig.stack.close()  # workers stopped, engine disposed: then the database is lost
    name = make_url(url).database
    with psycopg.connect(_libpq(pg_base_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    omics_cli(url, "db", "upgrade")
    callbacks_before = len(rig.receiver.callbacks())

    replayed = omics_cli(url, "replay", f"s3://{bucket}/omics-run-events")

    assert printed_checksum(replayed) == before.digest
    restored = create_db_engine(url)
    assert _count(restored, events, events.c.origin == "pipeline") == facts
    assert _count(restored, deliveries, deliveries.c.outcome == "failed") == failed
    assert _count(restored, outbox) == 0  # nothing owed: no callback is made again
    assert len(rig.receiver.callbacks()) == callbacks_before
    assert _count(restored, dead_letters) == 0
    omics_cli(url, "rebuild", "--check")
    restored.dispose()

    for source, database in (
        (new_layout / "omics-run-events", sqlite(tmp_path / "from-batches.db")),
        (old_layout / "omics-run-events", sqlite(tmp_path / "from-per-event.db")),
        (old_layout / "omics-run-events", make_pg()),
    ):
        again = omics_cli(database, "replay", str(source))
        assert printed_checksum(again) == before.digest, source
        omics_cli(database, "rebuild", "--check")
        copy = create_db_engine(database)
        assert _count(copy, events, events.c.origin == "pipeline") == facts
        assert _count(copy, outbox) == _count(copy, dead_letters) == 0
        copy.dispose()
    assert len(rig.receiver.callbacks()) == callbacks_before


def sqlite(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _unarchived(engine: Any) -> int:
    with engine.connect() as connection:
        through = archived_through(connection)
    return _count(engine, events, events.c.seq > through)


def _ids(engine: Any, *where: Any) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(events.c.event_id).where(*where)).scalars())


def _write_per_event_layout(engine: Any, root: Path) -> None:
    """The log as the archive pool wrote it before batches: ``raw/`` objects for the events,
    ``facts/`` objects for the pipeline's facts (keys and bytes as written then)."""
    with engine.connect() as connection:
        rows = [stored_event(row) for row in connection.execute(select(events))]
    for event in rows:
        if event.origin == "pipeline":
            key = fact_key("", event.seq, event.event_id, event.event_time)
            body = fact_record(event)
        else:
            key = raw_key("", event.event_id, event.event_time)
            body = canonical_json(event.payload)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def test_a_record_that_is_not_a_fact_is_named_not_appended() -> None:
    assert parse_fact(b"{}").startswith("not an archived fact: ")  # type: ignore[union-attr]
    bad_origin = json.dumps(
        {
            "seq": 1,
            "event_id": "x",
            "origin": "aws",
            "source": "s",
            "detail_type": "d",
            "event_time": "2026-01-01T00:00:00+00:00",
            "payload": {},
        }
    ).encode()
    assert "origin" in parse_fact(bad_origin)  # type: ignore[operator]
    assert fact_id("p/facts/2026/01/01/000000000042.abc-1.json") == "abc-1"
    assert fact_id("p/facts/2026/01/01/abc.json") is None
