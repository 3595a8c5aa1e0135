"""Poison input: one bad event never blocks, crashes or loses anything.

The hostile corpus (tests/helpers/hostile_corpus.py) mixed with good events goes through
``send`` (the real command, in a process of its own) and through the poller (a real moto SQS
queue), on SQLite and PostgreSQL: every case is a dead letter with its reason and raw bytes,
or accepted harmlessly; no traceback; every good event of the same file or SQS batch is in the log.

And the last line of defence, on PostgreSQL: an event the parser lets through but the database
refuses (the parser's limits are bypassed here, as if they had a gap) is dead-lettered alone,
with the database's error as its reason, and the rest of its batch commits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import select

from eventlog import store
from eventlog.tables import dead_letters, events
from producers import intake as intake_module
from producers.intake import Intake
from producers.poller import Poller, PollerOptions
from producers.sender import top_level_values
from schemas.parsing import ParsedEvent, RawEvent, Rejected, parse_event
from schemas.settings import Settings
from tests.helpers.common import REPO, unique, wait_for
from tests.helpers.hostile_corpus import HOSTILE, Case, array_file, good_events, json_lines_file
from tests.helpers.processes import RunningPoller
from workers import create_app

#: moto's (and SQS's classic) largest message.
SQS_MAX_BYTES = 262_144


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def hostile_settings(
    make_settings: Callable[..., Settings], backend: str, tmp_path: Path, aws_env: str
) -> Settings:
    return make_settings(
        database_url=backend,
        archive_uri=f"file://{tmp_path}/archive",
        enrich_runs=False,
        metrics_enabled=False,
    )


@pytest.fixture
def app(hostile_settings: Settings) -> Iterator[Any]:
    app = create_app(hostile_settings)
    yield app
    app.runtime.close()


@pytest.fixture
def sqs(aws_env: str) -> Any:
    return boto3.client("sqs", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(
        sqs.create_queue(QueueName=unique("oe-hostile-"), Attributes={"VisibilityTimeout": "30"})[
            "QueueUrl"
        ]
    )


def logged_ids(engine: Any) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(events.c.event_id)).scalars())


def dead_lettered(engine: Any) -> dict[bytes, str]:
    """Raw bytes -> reason, of every dead letter."""
    with engine.connect() as connection:
        rows = connection.execute(select(dead_letters.c.raw, dead_letters.c.reason)).all()
    return {bytes(raw): reason for raw, reason in rows}


def assert_fed_and_accounted(engine: Any, good: list[str], cases: list[Case]) -> None:
    """Every good event and harmless case in the log; every other case a dead letter."""
    in_log = logged_ids(engine)
    letters = dead_lettered(engine)
    missing = [event_id for event_id in good if event_id not in in_log]
    assert not missing, f"{len(missing)} good events missing, e.g. {missing[:3]}"
    for case in cases:
        if case.accepted:
            assert case.event_id in in_log, case.name
        else:
            assert case.raw in letters, f"{case.name}: not a dead letter"
            assert letters[case.raw], case.name
            assert letters[case.raw].isprintable(), case.name


def sqs_safe(case: Case) -> bool:
    """Whether SQS can carry the case at all: text of XML characters, within its size."""
    try:
        text = case.raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(case.raw) < SQS_MAX_BYTES - 1024 and all(
        ch in "\t\n\r" or 0x20 <= ord(ch) <= 0xD7FF or 0xE000 <= ord(ch) <= 0xFFFD for ch in text
    )


def queue_count(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def poller_options(queue_url: str) -> PollerOptions:
    return PollerOptions(
        queue_urls=[queue_url],
        receivers=1,
        wait_seconds=1,
        report_interval=60.0,
        sweep_interval=60.0,
    )


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text
    assert "database failing" not in caplog.text, "a commit failed and was retried"


# --- through send ------------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_corpus_through_send(hostile_settings: Settings, app: Any, tmp_path: Path) -> None:
    lines_good = good_events(30, "lines")
    array_good = good_events(30, "array")
    lines = tmp_path / "hostile.jsonl"
    lines.write_bytes(json_lines_file(lines_good, HOSTILE))
    # an array holds whole JSON values: the cases that are not one (bare text) are in the lines
    in_array = [case for case in HOSTILE if top_level_values(case.raw) == ([case.raw], True)]
    assert len(in_array) >= 40
    array = tmp_path / "hostile.json"
    array.write_bytes(array_file(array_good, in_array))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {
            "DATABASE_URL": hostile_settings.database_url,
            "ARCHIVE_URI": hostile_settings.archive_uri,
            "ENRICH_RUNS": "false",
            "METRICS_ENABLED": "false",
            "COLUMNS": "200",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "omics_events", "send", "--no-wait", str(lines), str(array)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=300,
    )
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    assert "Traceback" not in output, output[-3000:]
    assert "RecursionError" not in output
    assert done.returncode == 1, output[-3000:]  # some were rejected
    engine = app.runtime.engine
    assert_fed_and_accounted(engine, [e["id"] for e in lines_good + array_good], HOSTILE)
    letters = dead_lettered(engine)
    assert b"[" * 100_000 in letters  # the never-closed nesting, first and last line
    assert b"[" * 100_000 + b"]" * 100_000 in letters  # the balanced one, in the array
    duplicates = [raw for raw in letters if b'"id":"dup-in-' in raw]
    assert len(duplicates) == 2
    assert all(letters[raw].startswith("not valid JSON: duplicate key") for raw in duplicates)
    assert "rejected ×" in output


# --- through the poller ------------------------------------------------------------------------


def test_hostile_corpus_through_the_poller(
    app: Any, sqs: Any, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cases = [case for case in HOSTILE if sqs_safe(case)]
    assert len(cases) >= 40
    good = good_events(len(cases), "sqs")
    # interleaved, so every batch the poller receives holds good and hostile messages
    for event, case in zip(good, cases, strict=True):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
        sqs.send_message(QueueUrl=queue_url, MessageBody=case.raw.decode("utf-8"))
    poller = Poller(app, poller_options(queue_url))
    good_ids = [event["id"] for event in good]
    with RunningPoller(poller):
        wait_for(lambda: set(good_ids) <= logged_ids(app.runtime.engine), 120, "good events")
        wait_for(lambda: queue_count(sqs, queue_url) == 0, 60, "queue drained")
    assert_fed_and_accounted(app.runtime.engine, good_ids, cases)
    stats = poller.stats.snapshot()
    assert stats["received"] == stats["accepted"] + stats["duplicates"] + stats["rejected"]
    assert stats["rejected"] >= sum(not case.accepted for case in cases)
    no_tracebacks(caplog)


# --- the last line of defence: the database refuses a row --------------------------------------

#: How an event the parser should have refused still reaches the database: the parser's result
#: with one field as the event had it, as if the parser had no limit for it.
POISONS: dict[str, Callable[[ParsedEvent], ParsedEvent]] = {
    "detail-type over its column": lambda e: dataclasses.replace(e, detail_type="D" * 200),
    "NUL in the payload": lambda e: dataclasses.replace(
        e, payload={**e.payload, "detail": {**e.payload["detail"], "runName": "a\x00b"}}
    ),
    "NUL in the event id": lambda e: dataclasses.replace(e, event_id="poison\x00id"),
}


def bypassing_the_parser(
    monkeypatch: pytest.MonkeyPatch, poisoned: dict[str, Callable[[ParsedEvent], ParsedEvent]]
) -> None:
    """Make the intake's parser let through the events whose id is a key of ``poisoned``."""
    real = parse_event

    def parse(raw: RawEvent, limits: Any = None) -> ParsedEvent | Rejected:
        result = real(raw, limits) if limits is not None else real(raw)
        if isinstance(result, ParsedEvent) and result.event_id in poisoned:
            return poisoned[result.event_id](result)
        return result

    monkeypatch.setattr(intake_module, "parse_event", parse)


@pytest.mark.parametrize("size", [10, 60], ids=["executemany", "copy"])
def test_a_refused_event_is_dead_lettered_alone_and_the_rest_commit(
    make_settings: Callable[..., Settings],
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    app = create_app(make_settings(database_url=pg_url, archive_uri=f"file://{tmp_path}/a"))
    good = good_events(size, f"b{size}")
    poison_ids = [f"poison-{n}" for n in range(len(POISONS))]
    bypassing_the_parser(monkeypatch, dict(zip(poison_ids, POISONS.values(), strict=True)))
    batch: list[RawEvent] = [json.dumps(event) for event in good]
    for n, event_id in enumerate(poison_ids):  # first, in the middle, last
        event = good_events(1, f"p{n}")[0] | {"id": event_id}
        batch.insert([0, len(batch) // 2, len(batch)][n], json.dumps(event))
    report = Intake(app, publish=False).submit(batch)
    assert (report.accepted, report.rejected) == (size, len(POISONS))
    assert set(logged_ids(app.runtime.engine)) == {event["id"] for event in good}
    reasons = sorted(dead_lettered(app.runtime.engine).values())
    assert len(reasons) == len(POISONS)
    assert all(reason.startswith("the database refused it (") for reason in reasons), reasons
    assert any("(22001)" in reason and "too long" in reason for reason in reasons), reasons
    app.runtime.close()


@pytest.mark.parametrize("poison", ["caught by the parser", "refused by the database"])
def test_one_poison_among_thirty_good_leaves_sqs_empty(
    make_settings: Callable[..., Settings],
    pg_url: str,
    tmp_path: Path,
    sqs: Any,
    queue_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    poison: str,
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(make_settings(database_url=pg_url, archive_uri=f"file://{tmp_path}/a"))
    good = good_events(30, "thirty")
    bad = good_events(1, "poison")[0] | {"id": "poison-among-thirty"}
    if poison == "caught by the parser":
        bad["detail"]["runName"] = "a\x00b"  # json.dumps writes it as \u0000
    else:
        bypassing_the_parser(monkeypatch, {"poison-among-thirty": POISONS["NUL in the payload"]})
    bodies = [json.dumps(event) for event in good]
    bodies.insert(13, json.dumps(bad))
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": body}
                for n, body in enumerate(bodies[start : start + 10])
            ],
        )
    poller = Poller(app, poller_options(queue_url))
    with RunningPoller(poller):
        wait_for(lambda: len(logged_ids(app.runtime.engine)) >= 30, 60, "the thirty")
        wait_for(lambda: queue_count(sqs, queue_url) == 0, 60, "SQS empty")
    assert logged_ids(app.runtime.engine) == {event["id"] for event in good}
    assert queue_count(sqs, queue_url) == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    (reason,) = dead_lettered(app.runtime.engine).values()
    assert "NUL" in reason or "the database refused it" in reason
    no_tracebacks(caplog)
    app.runtime.close()


# --- dead letters store any bytes --------------------------------------------------------------


def test_a_dead_letter_stores_any_bytes_and_any_reason(app: Any) -> None:
    raw = bytes(range(256)) * 4 + b"\x00\xff\xfe"
    reason = "bad\x00 \x1b[31mred\x1b[0m \r\nforged \u202eevil \ud800 " + "long " * 2000
    with app.runtime.engine.begin() as connection:
        assert store.reject(
            connection, Rejected(reason, raw, event_id="id\x00\r\n" * 100, detail_type="D\x00" * 99)
        )
    with app.runtime.engine.connect() as connection:
        row = connection.execute(select(dead_letters)).one()
    assert bytes(row.raw) == raw
    assert row.reason.startswith("bad\\x00 \\x1b[31mred\\x1b[0m \\x0d\\x0aforged \\u202eevil ? ")
    assert row.reason.isprintable() and len(row.reason) <= store.MAX_REASON_CHARS
    assert row.event_id.startswith("id\\x00\\x0d\\x0a") and len(row.event_id) <= 256
    assert row.detail_type.startswith("D\\x00") and len(row.detail_type) <= 128
