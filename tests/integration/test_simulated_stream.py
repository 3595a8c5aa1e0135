"""The simulator's event stream through SQS, the poller and the pools."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from eventlog.tables import events
from producers.poller import Poller, PollerOptions
from schemas.settings import Settings
from simulator import Simulator, SimulatorServer, SystemClock, realistic_mix
from tests.helpers.archive_batches import (
    archived_count,
    check_ranges,
    event_ids,
    object_keys,
    s3_batches,
)
from tests.helpers.common import unique, wait_for
from tests.helpers.queues import queue_depth
from workers import create_app, embedded_worker


@pytest.mark.slow
@pytest.mark.timeout(1500)  # its own deadlines add up to more than the default 300 s
def test_two_thousand_simulated_events_with_duplicates_and_reordering(
    pipeline_settings: Settings, aws_env: str, s3: Any, bucket: str
) -> None:
    # this test is about intake and archive: runs owe no enrichment here (no enrich worker
    # runs), so the sweeper has no unconsumed work to keep re-publishing
    settings = pipeline_settings.model_copy(
        update={"enrich_runs": False, "outbox_redeliver_after": 300.0}
    )
    app = create_app(settings)
    sqs = app.runtime.aws.sqs
    queue_url = sqs.create_queue(QueueName=unique("oe-sim-"))["QueueUrl"]
    outputs = unique("oe-outputs-")
    s3.create_bucket(Bucket=outputs)
    sim = Simulator(
        seed=11,
        speed=400.0,
        clock=SystemClock(),
        queue_url=queue_url,
        endpoint_url=aws_env,
        output_bucket=outputs,
        duplicate_rate=0.1,
        reorder_rate=0.1,
    )
    realistic_mix(sim, runs=66, tasks_per_run=(6, 10), import_jobs=4, stagger=30.0)
    poller = Poller(
        app, PollerOptions(queue_urls=[queue_url], receivers=3, wait_seconds=1, sweep_interval=5)
    )
    thread = threading.Thread(target=poller.run, daemon=True)
    with SimulatorServer(sim), embedded_worker(app, ["archive"], pool="threads", concurrency=4):
        thread.start()
        sim.start()
        try:
            # deadlines for liveness only: with the suite's other workers on the same cores this
            # test has taken 330 s, alone 80 s
            wait_for(lambda: sim.all_terminal() and sim.next_due() is None, 600, "simulation")
        finally:
            sim.stop()
        sim.drain()
        distinct = {event["id"] for event in sim.delivered_events}
        assert len(distinct) >= 2000, len(distinct)
        stats = sim.delivery_stats
        assert sum(stats.duplicated.values()) > 0 and sum(stats.reordered.values()) > 0

        wait_for(lambda: archived_count(app.runtime.engine) == len(distinct), 600, "archived")
        wait_for(lambda: queue_depth(sqs, queue_url) == (0, 0), 120, "queue drained")
        poller.stop()
        thread.join(30)
    with app.runtime.engine.connect() as connection:
        logged = {
            row.event_id
            for row in connection.execute(select(events.c.event_id).where(events.c.origin == "aws"))
        }
    assert logged == distinct  # every distinct event exactly once (event_id is unique)
    batches = s3_batches(s3, bucket, "omics-run-events")
    check_ranges(batches)
    assert object_keys(s3, bucket) == sorted(batches)  # batch objects only, no extras
    archived = event_ids(batches)
    assert len(archived) == len(set(archived)) and set(archived) == distinct  # once each
    assert poller.stats.snapshot()["duplicates"] >= sum(stats.duplicated.values())
