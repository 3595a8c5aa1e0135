"""The SQS poller against moto SQS, real PostgreSQL and Redis, and an in-process archive pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from eventlog.tables import dead_letters, events
from producers.poller import Poller, PollerOptions
from schemas.settings import Settings
from tests.helpers.archive_batches import archived_count
from tests.helpers.common import REPO, unique, wait_for
from tests.helpers.factories import run_event
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.malformed_corpus import MALFORMED
from tests.helpers.processes import RunningPoller
from tests.helpers.queues import queue_depth
from workers import create_app, embedded_worker


@pytest.fixture
def sqs(aws_env: str) -> Any:
    return boto3.client("sqs", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(
        sqs.create_queue(QueueName=unique("oe-events-"), Attributes={"VisibilityTimeout": "5"})[
            "QueueUrl"
        ]
    )


def send_bodies(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)],
        )


def malformed_bodies(sqs: Any, queue_url: str, wanted: int = 50) -> list[str]:
    """Malformed messages as SQS would carry them: the corpus, cycled up to ``wanted``.

    SQS refuses empty bodies, bodies over its size limit and some control characters, so
    those corpus entries cannot arrive through a queue at all; the rest are cycled with a
    varying tail so each message is distinct.
    """
    usable = []
    for _, raw in MALFORMED:
        try:
            text = raw.decode("utf-8")  # SQS carries text: invalid UTF-8 cannot arrive
        except UnicodeDecodeError:
            continue
        if (
            text.strip()
            and len(raw) < 200_000
            and all(ch in "\t\n\r" or ord(ch) >= 0x20 for ch in text)
        ):
            usable.append(text)
    return [f"{usable[n % len(usable)]}{' ' * (n // len(usable))}" for n in range(wanted)]


def aws_event_count(engine: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(events).where(events.c.origin == "aws")
            ).scalar_one()
        )


def options(queue_url: str, **extra: Any) -> PollerOptions:
    values: dict[str, Any] = {
        "receivers": 2,
        "wait_seconds": 1,
        "report_interval": 1.0,
        "sweep_interval": 2.0,
    }
    return PollerOptions(queue_urls=[queue_url], **(values | extra))


@pytest.fixture
def app(pipeline_settings: Settings) -> Iterator[Any]:
    app = create_app(pipeline_settings)
    yield app
    app.runtime.close()


def test_events_with_duplicates_and_malformed_end_once_and_queue_drains(
    app: Any, sqs: Any, queue_url: str, tmp_path: Path
) -> None:
    distinct = [run_event() for _ in range(60)]
    bodies = [json.dumps(e) for e in distinct]
    bodies += [json.dumps(e) for e in distinct[:20]]  # duplicate deliveries
    malformed = malformed_bodies(sqs, queue_url)
    liveness = tmp_path / "alive"
    reports: list[dict[str, Any]] = []
    poller = Poller(app, options(queue_url, liveness_file=liveness), report=reports.append)
    with embedded_worker(app, ["archive"]), RunningPoller(poller):
        send_bodies(sqs, queue_url, bodies)
        for body in malformed:
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        bodies += malformed
        wait_for(lambda: archived_count(app.runtime.engine) == 60, 120, "archive all")
        wait_for(lambda: queue_depth(sqs, queue_url) == (0, 0), 60, "queue drained")
    assert aws_event_count(app.runtime.engine) == 60
    with app.runtime.engine.connect() as connection:
        rejected = connection.execute(select(func.count()).select_from(dead_letters)).scalar_one()
    assert rejected == len(set(malformed))
    final = poller.stats.snapshot()
    # SQS is at least once: a batch held past the 5 s visibility timeout (a loaded machine) is
    # received again; what matters is that every receipt was classified and nothing was lost
    redelivered = final["received"] - len(bodies)
    assert redelivered >= 0
    assert final["received"] == final["accepted"] + final["duplicates"] + final["rejected"]
    assert final["accepted"] == 60
    assert 20 <= final["duplicates"] <= 20 + redelivered
    assert len(malformed) <= final["rejected"] <= len(malformed) + redelivered
    assert liveness.exists()
    assert reports and reports[-1]["received"] == final["received"]


def test_backpressure_stops_receiving_while_the_outbox_is_full(
    app: Any, sqs: Any, queue_url: str
) -> None:
    send_bodies(sqs, queue_url, [json.dumps(run_event()) for _ in range(30)])
    poller = Poller(app, options(queue_url, max_outbox=5, receivers=1))
    with RunningPoller(poller):  # no worker: nothing finishes
        wait_for(lambda: aws_event_count(app.runtime.engine) >= 6, 60, "first batches")
        time.sleep(3)  # give it the chance to over-receive; it must not take it
        held = aws_event_count(app.runtime.engine)
    assert 6 <= held <= 15  # one batch of 10 past the bound at most
    assert sum(queue_depth(sqs, queue_url)) == 30 - held


def _poller_env(settings: Settings, queue_url: str, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "ARCHIVE_URI": settings.archive_uri,
            "POLLER_QUEUE_URLS": queue_url,
            "POLLER_WAIT_SECONDS": "2",
            "POLLER_REPORT_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _start_poller(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "omics_events", "poll"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.slow
def test_poller_killed_and_restarted_loses_and_doubles_nothing(
    app: Any, pipeline_settings: Settings, sqs: Any, queue_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "poller.log"
    env = _poller_env(pipeline_settings, queue_url)
    batch = [run_event() for _ in range(300)]
    poller = _start_poller(env, log_path)
    try:
        with embedded_worker(app, ["archive"]):
            send_bodies(sqs, queue_url, [json.dumps(e) for e in batch[:150]])
            wait_for(lambda: aws_event_count(app.runtime.engine) > 20, 60, "poller started")
            send_bodies(sqs, queue_url, [json.dumps(e) for e in batch[150:]])
            os.killpg(poller.pid, signal.SIGKILL)
            poller.wait(10)
            poller = _start_poller(env, log_path)
            wait_for(lambda: archived_count(app.runtime.engine) == 300, 180, "all archived")
            wait_for(lambda: queue_depth(sqs, queue_url) == (0, 0), 60, "queue drained")
    finally:
        poller.send_signal(signal.SIGTERM)
        poller.wait(60)
    assert aws_event_count(app.runtime.engine) == 300
    assert poller.returncode == 0, log_path.read_text()[-3000:]


@pytest.mark.slow
def test_sigterm_exits_zero_and_deletes_nothing_uncommitted(
    app: Any, pipeline_settings: Settings, sqs: Any, queue_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "poller.log"
    poller = _start_poller(_poller_env(pipeline_settings, queue_url), log_path)
    sent = [run_event() for _ in range(200)]
    send_bodies(sqs, queue_url, [json.dumps(e) for e in sent])
    wait_for(lambda: aws_event_count(app.runtime.engine) > 10, 60, "poller started")
    stopped_at = time.monotonic()
    poller.send_signal(signal.SIGTERM)
    poller.wait(60)
    took = time.monotonic() - stopped_at
    assert poller.returncode == 0, log_path.read_text()[-3000:]
    assert took < 2 + 30  # one receive wait (2 s here) plus one batch, with room for CI
    # every message is either committed or still in SQS: nothing deleted without its event
    committed = aws_event_count(app.runtime.engine)
    wait_for(lambda: queue_depth(sqs, queue_url)[1] == 0, 30, "in-flight messages return")
    assert committed + queue_depth(sqs, queue_url)[0] == len(sent)


@pytest.mark.slow
def test_database_outage_poller_keeps_running_and_catches_up(
    pipeline_settings: Settings, pg_url: str, sqs: Any, queue_url: str, tmp_path: Path
) -> None:
    url = make_url(pg_url)
    proxy = FaultProxy(f"tcp://{url.host}:{url.port or 5432}").start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    log_path = tmp_path / "poller.log"
    env = _poller_env(pipeline_settings, queue_url, DATABASE_URL=through_proxy)
    checker = create_app(pipeline_settings)
    poller = _start_poller(env, log_path)
    try:
        send_bodies(sqs, queue_url, [json.dumps(run_event()) for _ in range(50)])
        wait_for(lambda: aws_event_count(checker.runtime.engine) == 50, 60, "before outage")
        proxy.cut()  # PostgreSQL unreachable for 30 s while events keep flowing
        send_bodies(sqs, queue_url, [json.dumps(run_event()) for _ in range(100)])
        time.sleep(30)
        assert poller.poll() is None, "the poller must survive the outage"
        proxy.restore()
        wait_for(lambda: aws_event_count(checker.runtime.engine) == 150, 120, "caught up")
        wait_for(lambda: queue_depth(sqs, queue_url) == (0, 0), 60, "queue drained")
    finally:
        poller.send_signal(signal.SIGTERM)
        poller.wait(60)
        proxy.stop()
    assert poller.returncode == 0
    text = log_path.read_text()
    assert text.count("database failing") <= 2, "errors are logged once per streak"
    assert "database recovered" in text
