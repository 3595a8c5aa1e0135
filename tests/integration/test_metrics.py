"""The metrics pool and the alerts, against moto CloudWatch and SNS over HTTP.

The expected values are counted from the event log here, in the test, independently of
``workers/metrics.py``: what CloudWatch holds must equal what the log says happened.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from eventlog import cursors, store
from eventlog import import_projections as imports
from eventlog.store import LogEntry
from eventlog.tables import dead_letters, events
from producers.intake import Intake
from schemas.settings import Settings
from simulator import realistic_mix
from tests.helpers.archive_batches import unarchived
from tests.helpers.common import REPO, unique, wait_for
from tests.helpers.factories import run_event
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.import_world import ImportWorld, lab_drop
from workers import create_app
from workers.metrics import CATALOGUE, CURSOR, MetricsEmitter, catalogue_table

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "DELETED"}


def cloudwatch(endpoint: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1")


def statistic(cw: Any, namespace: str, name: str, statistic: str, **dimensions: str) -> float:
    now = datetime.now(UTC)
    points = cw.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(hours=3),
        EndTime=now + timedelta(hours=1),
        Period=60,
        Statistics=[statistic],
    )["Datapoints"]
    return sum(point[statistic] for point in points)


def caught_up(engine: Any, name: str = CURSOR) -> bool:
    """The follower has dealt with every event and dead letter in the log."""
    with engine.connect() as connection:
        cursor = cursors.read(connection, name)
        newest = connection.execute(select(func.max(events.c.seq))).scalar_one()
        newest_letter = connection.execute(select(func.max(dead_letters.c.id))).scalar_one()
    return (
        cursor is not None
        and cursor.last_seq == (newest or 0)
        and (name != CURSOR or cursor.last_dead_letter_id == (newest_letter or 0))
    )


def owed(engine: Any, stage: str) -> int:
    from eventlog.tables import outbox

    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.stage == stage, outbox.c.done_at.is_(None))
            ).scalar_one()
        )


def expected_from_log(engine: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric, dimensions) -> the value the catalogue promises, counted from the log."""
    want: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    with engine.connect() as connection:
        logged = connection.execute(
            select(events.c.origin, events.c.detail_type, events.c.status, events.c.payload)
        ).all()
        kinds = connection.execute(select(dead_letters.c.kind)).scalars().all()
    for origin, detail_type, status, payload in logged:
        detail = payload.get("detail") or {}
        if origin == "aws":
            want[("EventsReceived", (("DetailType", detail_type),))] += 1
            if detail_type == "Run Status Change":
                want[("RunStatusChanges", (("Status", status),))] += 1
                if status in TERMINAL:
                    want[("RunDuration", (("Status", status),))] += 1
            elif detail_type == "Task Status Change":
                want[("TaskStatusChanges", (("Status", status),))] += 1
            elif detail_type == imports.IMPORT_JOB_STATUS_CHANGE:
                if status == "COMPLETED":
                    want[("ImportJobsSucceeded", ())] += 1
                elif status in {"FAILED", "COMPLETED_WITH_FAILURES"}:
                    want[("ImportJobsFailed", ())] += 1
        elif detail_type == "Event Archived":
            want[("PipelineLatency", (("Stage", "archive"),))] += 1
        elif detail_type == "Callback Delivered":
            want[("CallbacksDelivered", ())] += 1
            want[("PipelineLatency", (("Stage", "callback"),))] += 1
        elif detail_type == "Callback Failed":
            want[("CallbacksFailed", ())] += 1
        elif detail_type == imports.JOB_STARTED:
            want[("ImportJobsStarted", ())] += 1
            if detail.get("attempt", 1) > 1:
                want[("ImportRetries", ())] += len(detail["sourceKeys"])
        elif detail_type == imports.SOURCES_FAILED:
            for item in detail["sources"]:
                reason = "permanent" if item["classification"] == "permanent" else "exhausted"
                want[("ImportsExhausted", (("Reason", reason),))] += 1
        elif detail_type == imports.FILE_REJECTED:
            want[("ImportFilesRejected", ())] += 1
    for kind in kinds:
        want[("DeadLetters", (("Kind", kind),))] += 1
        if kind == "rejected":
            want[("EventsRejected", ())] += 1
    return dict(want)


@pytest.mark.slow
def test_metrics_in_cloudwatch_match_the_log_and_alerts_say_what_to_do(
    import_world,
    aws_env: str,
) -> None:
    world: ImportWorld = import_world(
        metrics=True,
        faults={"transient_source_failure_rate": 0.25},
        import_max_sources_per_job=10,
        alert_import_failures=3,
        alert_dead_letter_interval=0.0,
    )
    sim, engine = world.sim, world.engine
    realistic_mix(sim, runs=8, tasks_per_run=(2, 4), import_jobs=2, stagger=5.0)
    drop = lab_drop(world.incoming, pairs=10, bams=6, crams=4, ubams=2, junk=3, seed=23)
    for uri in sorted(drop.sources)[:3]:
        sim.plan_source_outcomes(uri, "permanent")
    sim.drop_files(drop.uris)
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody="{not json")
    foreign = run_event() | {"source": "aws.ec2"}
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(foreign))

    def quiet() -> bool:
        return (
            sim.all_terminal()
            and sim.next_due() is None
            and unarchived(engine) == 0
            and owed(engine, "imports") == 0
        )

    wait_for(quiet, 150, "the simulated workload to settle")
    # what the callback pool appends for delivered and failed callbacks
    with engine.begin() as connection:
        statuses = [
            store.get(connection, event_id)
            for event_id in connection.execute(
                select(events.c.event_id)
                .where(events.c.detail_type == "Run Status Change")
                .order_by(events.c.seq)
                .limit(5)
            ).scalars()
        ]
        for index, cause in enumerate(statuses):
            assert cause is not None
            outcome = "Callback Failed" if index % 2 else "Callback Delivered"
            store.append(connection, LogEntry.pipeline(cause, outcome, {"httpStatus": 200}))
    wait_for(lambda: caught_up(engine) and quiet(), 60, "the metrics pool to catch up")

    cw = cloudwatch(aws_env)
    namespace = world.settings.metrics_namespace
    listed = cw.get_paginator("list_metrics").paginate(Namespace=namespace)
    names = {metric["MetricName"] for page in listed for metric in page["Metrics"]}
    assert names == {spec.name for spec in CATALOGUE}  # every metric of the catalogue
    expected = expected_from_log(engine)
    assert {name for name, _ in expected} == names
    units = {spec.name: spec.unit for spec in CATALOGUE}
    for (name, dims), value in sorted(expected.items()):
        stat = "Sum" if units[name] == "Count" else "SampleCount"
        assert statistic(cw, namespace, name, stat, **dict(dims)) == value, (name, dims)
    durations = statistic(cw, namespace, "RunDuration", "Sum", Status="COMPLETED")
    assert durations > 0

    # the alerts: dead letters appeared, and the store kept failing imports
    def alerts() -> list[dict[str, Any]]:
        seen.extend(world.notices())
        return [n for n in seen if n.get("Subject", "").startswith("omics-events:")]

    seen: list[dict[str, Any]] = []
    store_id = sim.sequence_store_id
    wait_for(
        lambda: (
            any("dead letter" in a["Subject"] for a in alerts())
            and any(store_id in a["Subject"] for a in alerts())
        ),
        30,
        "both alerts",
    )
    for alert in alerts():
        text = alert["Message"]
        assert "What" in text and "Where" in text and "What to do" in text
    failing = next(a for a in alerts() if store_id in a["Subject"])
    assert "import failures" in failing["Subject"]
    with engine.connect() as connection:
        checked = connection.execute(
            select(events.c.payload).where(events.c.detail_type == imports.JOB_CHECKED)
        ).scalars()
        failed_files = {
            source["sourceFiles"]["source1"]
            for payload in checked
            for source in payload["detail"]["sources"]
            if source["status"] != "FINISHED"
        }
    assert any(uri in failing["Message"] for uri in failed_files)  # it names the files


@pytest.mark.slow
@pytest.mark.parametrize("outage", [10.0, 60.0], ids=["10s", "60s"])
def test_cloudwatch_outage_delays_nothing_else_and_metrics_resume(
    import_world,
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    outage: float,
) -> None:
    proxy = FaultProxy(aws_env).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", proxy.url)
    try:
        world: ImportWorld = import_world(metrics=True)
        engine, intake = world.engine, Intake(world.apps[0])
        first = [run_event(status="RUNNING", run_id=str(7000000 + n)) for n in range(20)]
        intake.submit(first)
        wait_for(lambda: caught_up(engine) and unarchived(engine) == 0, 60, "metrics on")

        proxy.cut()
        cut_at = time.monotonic()
        during = [run_event(status="COMPLETED", run_id=str(7100000 + n)) for n in range(30)]
        intake.submit(during)
        # the archive pool archives every event while CloudWatch is still unreachable
        wait_for(lambda: unarchived(engine) == 0, 60, "archive during the outage")
        assert not caught_up(engine)  # the metrics of these events wait for CloudWatch
        time.sleep(max(0.0, outage - (time.monotonic() - cut_at)))  # the rest of the outage
        proxy.restore()

        wait_for(lambda: caught_up(engine), 60, "metrics to resume")
        with engine.connect() as connection:
            cursor = cursors.read(connection, CURSOR)
        assert cursor is not None and cursor.dropped == 0
        cw = cloudwatch(aws_env)
        namespace = world.settings.metrics_namespace
        received = statistic(cw, namespace, "EventsReceived", "Sum", DetailType="Run Status Change")
        assert received == len(first) + len(during)  # nothing lost, nothing sent twice
        completed = statistic(cw, namespace, "RunStatusChanges", "Sum", Status="COMPLETED")
        assert completed == len(during)
    finally:
        proxy.stop()


def test_batch_dropped_with_a_count_after_retries_then_sending_goes_on(
    make_settings, pg_url: str, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = FaultProxy(aws_env).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", proxy.url)
    settings: Settings = make_settings(
        database_url=pg_url, metrics_namespace=unique("OmicsDrop"), metrics_drop_after=1.0
    )
    app = create_app(settings)
    emitter = MetricsEmitter(app.runtime)
    intake = Intake(app, publish=False)
    try:
        proxy.cut()
        intake.submit([run_event() for _ in range(4)])
        emitter.run_once()
        assert emitter.stats.failures == 1 and emitter.stats.dropped == 0  # kept, retried
        wait_for(lambda: emitter.run_once() == 0 and emitter.stats.dropped > 0, 30, "a drop")
        with app.runtime.engine.connect() as connection:
            cursor = cursors.read(connection, CURSOR)
            newest = connection.execute(select(func.max(events.c.seq))).scalar_one()
        assert cursor is not None and cursor.last_seq == newest
        # each COMPLETED run event stands for EventsReceived, RunStatusChanges and RunDuration
        assert cursor.dropped == emitter.stats.dropped == 4 * 3  # counted, durably

        proxy.restore()
        intake.submit([run_event() for _ in range(3)])
        assert emitter.run_once() == 3 * 3
        received = statistic(
            cloudwatch(aws_env),
            settings.metrics_namespace,
            "EventsReceived",
            "Sum",
            DetailType="Run Status Change",
        )
        assert received == 3
    finally:
        proxy.stop()


def test_docs_list_every_metric_of_the_catalogue() -> None:
    text = (REPO / "docs" / "metrics.md").read_text()
    assert catalogue_table() in text, "docs/metrics.md is out of date: paste catalogue_table()"
