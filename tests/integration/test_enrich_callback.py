"""Enrichment and NGS360 callbacks, end to end on real servers.

HealthOmics is the project's simulator (uvicorn, a real boto3 ``omics`` client), AWS is moto
(S3 for ``outputs.json``, SQS for the poller path, Secrets Manager for the key), NGS360 is the
local receiver (``devtools/ngs360_receiver.py``), the log is PostgreSQL, the broker and the
global rate limits are Redis, and the enrich and callback pools are embedded Celery workers.
Every check compares what the receiver holds with the simulator's ground truth; waits are
deadlines on conditions, never timed assertions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from devtools.ngs360_receiver import Ngs360Receiver
from eventlog.rebuild import rebuild
from eventlog.tables import dead_letters, deliveries, events, outbox, runs
from producers.poller import Poller, PollerOptions
from schemas.vocabulary import RUN_ENRICHED, RUN_ENRICHMENT_FAILED, RUN_STATUS_RECONCILED
from simulator.scenarios import realistic_mix
from tests.helpers.callback_rig import API_KEY, RANK, RUN_STATUS, Rig, final_check
from tests.helpers.common import REPO, unique, wait_for
from workers.callback import deliver_callback, running_event_id
from workers.enrich import enrich_run
from workers.reconciler import reconcile
from workers.redelivery import Filters, dead_callbacks, redeliver_dead

# --- the rig ----------------------------------------------------------------------------------


# --- the acceptance ---------------------------------------------------------------------------


@pytest.mark.slow
def test_two_hundred_runs_end_with_their_final_status(make_rig: Callable[..., Rig]) -> None:
    """200 runs (+ one of 150 tasks) with duplicates, reordering and 5 % dropped events."""
    rig = make_rig(seed=4, faults={"duplicate_rate": 0.1, "reorder_rate": 0.1, "drop_rate": 0.05})
    realistic_mix(rig.sim, runs=200, tasks_per_run=(1, 3), import_jobs=0, stagger=20.0)
    big = rig.sim.add_run(tasks=150, outcome="COMPLETED", delay=30.0)
    delivered = rig.simulate()
    truth = rig.sim.ground_truth()
    assert len(truth["runs"][big]["tasks"]) == 150
    stats = truth["events"]
    assert (
        stats["dropped"].get(RUN_STATUS, 0) >= 20 and stats["duplicated"].get(RUN_STATUS, 0) >= 40
    )
    seen_runs = {e["detail"]["uuid"] for e in delivered}
    lost = [rid for rid, run in truth["runs"].items() if run["uuid"] not in seen_runs]
    assert not lost, f"seed {rig.sim.seed} drops every event of {lost}: no pipeline can know them"

    started = time.monotonic()
    rig.feed(delivered)
    reconciled = rig.settle_with_reconciler(timeout=150)
    elapsed = time.monotonic() - started

    final_check(rig)
    with_wes = rig.wes_ids()
    assert len(with_wes) >= 170 and big in with_wes
    assert reconciled > 0  # some runs lost their terminal event: only the reconciler saw it
    skipped = rig.rows(deliveries, deliveries.c.outcome == "skipped")
    assert {row.run_id for row in skipped} == set(truth["runs"]) - set(with_wes)
    assert not rig.dead_letters()
    print(
        f"\n200+1 runs, {len(delivered)} run events fed, {reconciled} runs reconciled, "
        f"{len(rig.receiver.callbacks())} callbacks received, settled in {elapsed:.1f} s"
    )


def _receiver_down_then_up(make_rig: Callable[..., Rig], outage: float) -> None:
    rig = make_rig(seed=8, callback_retry_window=outage + 120)
    for n in range(12):
        rig.sim.add_run(
            tasks=2,
            outcome=("COMPLETED", "FAILED", "CANCELLED")[n % 3],
            cancel_phase="RUNNING",
            delay=n * 5.0,
        )
    delivered = rig.simulate()
    # the outage lasts ``outage`` seconds from the first callback it refuses: timed from the
    # feed instead, a busy machine could enrich slower than an 8 s outage lasts
    rig.receiver.fail(503)
    rig.feed(delivered)
    wait_for(
        lambda: any(r.status == 503 for r in rig.receiver.callbacks()), 120, "a callback refused"
    )
    time.sleep(outage)
    rig.receiver.recover()
    rig.settle(timeout=90)
    final_check(rig)
    refused = [r for r in rig.receiver.callbacks() if r.status == 503]
    accepted = [r for r in rig.receiver.callbacks() if 200 <= r.status < 300]
    assert refused and min(r.at for r in accepted) > max(r.at for r in refused)
    truth = rig.sim.ground_truth()["runs"]
    per_run: dict[str, list[str]] = defaultdict(list)
    for event in delivered:
        per_run[event["detail"]["runId"]].append(event["detail"]["status"])
    for run_id, wes in rig.wes_ids().items():
        # every status the run went through, each once, in order: nothing superseded
        taken = [s for _, s, _ in rig.receiver.state(wes).accepted]
        assert taken == per_run[run_id], truth[run_id]
    failed = rig.rows(deliveries, deliveries.c.outcome == "failed")
    assert failed and all(row.http_status == 503 for row in failed)
    assert not rig.dead_letters()


@pytest.mark.slow
def test_receiver_503_for_a_while_then_everything_delivered_in_order(make_rig) -> None:
    _receiver_down_then_up(make_rig, outage=8.0)


@pytest.mark.slow
def test_receiver_503_for_a_minute_then_everything_delivered_in_order(make_rig) -> None:
    _receiver_down_then_up(make_rig, outage=60.0)


@pytest.mark.slow
def test_throttled_healthomics_two_enrich_workers_stay_under_the_global_rate(
    make_rig: Callable[..., Rig], tmp_path: Any
) -> None:
    """Two enrich worker *processes*, each with its own limiter, sharing one Redis budget."""
    rate, margin = 5, "0.5"  # margin: what grant-to-arrival delay may reach on a busy box
    rig = make_rig(
        seed=15,
        faults={"throttle": {"GetRun": 10, "ListRunTasks": 1}},
        queues=("callback",),
        omics_rate_limits=f"GetRun={rate},ListRunTasks=10",
    )
    env = os.environ | {
        "DATABASE_URL": rig.settings.database_url,
        "REDIS_URL": rig.settings.redis_url or "",
        "REDIS_KEY_PREFIX": rig.settings.redis_key_prefix,
        "OMICS_RATE_LIMITS": f"GetRun={rate},ListRunTasks=10",
        "OMICS_RATE_MARGIN": margin,
        "TASK_RETRY_BACKOFF_MAX": "2",
        "PYTHONUNBUFFERED": "1",
    }
    names = [f"enrich{n}-{uuid.uuid4().hex[:6]}@test" for n in range(2)]
    processes = []
    for name in names:
        with open(tmp_path / f"{name}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "workers.celery",
                        "worker",
                        "-Q",
                        "enrich",
                        "-n",
                        name,
                        "-P",
                        "threads",
                        "-c",
                        "3",
                        "--without-mingle",
                        "--without-gossip",
                        "-l",
                        "WARNING",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def stop() -> None:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in processes:
            process.wait(30)

    rig.stack.callback(stop)
    inspect = rig.app.control.inspect(destination=names, timeout=1.0)
    wait_for(lambda: len(inspect.ping() or {}) == 2, 60, "two enrich worker processes")
    for n in range(10):
        rig.sim.add_run(tasks=3, outcome="COMPLETED" if n % 4 else "FAILED", delay=n * 2.0)
    delivered = rig.simulate()
    rig.feed(delivered)
    rig.settle(timeout=120)

    final_check(rig)
    done = {
        name: stats["total"].get("omics_events.enrich", 0)
        for name, stats in (inspect.stats() or {}).items()
    }
    log = rig.sim.request_log
    attempts = log.max_calls_per_second("GetRun")  # throttled attempts count too
    print(
        f"\nGetRun: {log.count('GetRun')} calls, at most {attempts} in any second "
        f"(limit {rate}); ListRunTasks throttled {log.error_codes('ListRunTasks')}; "
        f"enrich tasks per worker {done}"
    )
    assert attempts <= rate
    assert log.error_codes("ListRunTasks")["ThrottlingException"] > 0  # throttling did happen
    assert len(done) == 2 and all(done.values()), done  # both workers took work
    assert not rig.dead_letters()


def test_callback_url_tag_to_an_unlisted_host_gets_nothing_and_the_key_stays_home(
    make_rig: Callable[..., Rig], capfd: pytest.CaptureFixture[str]
) -> None:
    sentinel = Ngs360Receiver(API_KEY, host="127.0.0.2", auto_register=True)  # unlisted host
    other = Ngs360Receiver(API_KEY)  # same host as the API, another port, listed
    stranger = Ngs360Receiver(API_KEY, auto_register=True)  # same host, another port, unlisted
    for server in (sentinel, other, stranger):
        server.start()
    rig = make_rig(seed=16, callback_allowed_hosts=f"http://127.0.0.1:{other.port}")
    for server in (sentinel, other, stranger):
        rig.stack.callback(server.stop)
    hosts: Counter[str] = Counter()
    rig.app.runtime.resource(
        "ngs360-http",
        lambda rt: httpx.Client(
            timeout=rt.settings.callback_timeout,
            follow_redirects=False,
            event_hooks={"request": [lambda request: hosts.update([request.url.host])]},
        ),
    )
    metadata = rig.sim.add_run(tasks=2, callback_url="http://169.254.169.254/latest")
    unlisted = rig.sim.add_run(tasks=2, callback_url=f"{sentinel.url}/")
    allowed = rig.sim.add_run(tasks=2, callback_url=other.url)
    other_port = rig.sim.add_run(tasks=2, callback_url=f"{stranger.url}/")
    delivered = rig.simulate()
    other.register([rig.wes_ids()[allowed]])
    rig.feed(delivered)
    rig.settle()

    assert "169.254.169.254" not in hosts and "127.0.0.2" not in hosts
    assert sentinel.requests == [] and stranger.requests == []
    wes = rig.wes_ids()
    assert rig.receiver.state(wes[other_port]).omics_status == "COMPLETED"
    assert rig.receiver.state(wes[metadata]).omics_status == "COMPLETED"
    assert rig.receiver.state(wes[unlisted]).omics_status == "COMPLETED"
    assert other.state(wes[allowed]).omics_status == "COMPLETED"
    assert rig.receiver.state(wes[allowed]) is not None  # registered, but never called
    assert rig.receiver.state(wes[allowed]).applied == []
    letters = rig.dead_letters("security")
    reasons = " ".join(row.reason for row in letters)
    assert "169.254.169.254" in reasons and "plain http is allowed on loopback only" in reasons
    assert "127.0.0.2" in reasons and "not in CALLBACK_ALLOWED_HOSTS" in reasons
    assert f"origin http://127.0.0.1:{stranger.port} is not in" in reasons
    assert {row.event_id for row in letters} == {
        e["id"] for e in delivered if e["detail"]["runId"] in {metadata, unlisted, other_port}
    }
    # the key is in no event, fact, dead letter, delivery row or log line
    with rig.engine.connect() as connection:
        logged = [json.dumps(p) for p in connection.execute(select(events.c.payload)).scalars()]
        kept = [bytes(r.raw).decode() + r.reason for r in connection.execute(select(dead_letters))]
        rows = [str(tuple(r)) for r in connection.execute(select(deliveries))]
    out, err = capfd.readouterr()
    for text in [*logged, *kept, *rows, out, err]:
        assert API_KEY not in text


def test_lost_running_still_ends_complete(make_rig: Callable[..., Rig], aws_env: str) -> None:
    """Through the real path: SQS → poller → log → enrich → callback."""
    rig = make_rig(seed=23)
    only_running_lost = rig.sim.add_run(tasks=2, outcome="COMPLETED")
    only_terminal_left = rig.sim.add_run(tasks=2, outcome="COMPLETED")
    failed_alone = rig.sim.add_run(tasks=2, outcome="FAILED")
    delivered = [
        e
        for e in rig.simulate()
        if not (e["detail"]["runId"] == only_running_lost and e["detail"]["status"] == "RUNNING")
        and not (
            e["detail"]["runId"] in {only_terminal_left, failed_alone}
            and e["detail"]["status"] not in {"COMPLETED", "FAILED"}
        )
    ]
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique("oe-runs-"))["QueueUrl"]
    for start in range(0, len(delivered), 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps(e)}
                for n, e in enumerate(delivered[start : start + 10])
            ],
        )
    poller = Poller(
        rig.app, PollerOptions(queue_urls=[queue_url], wait_seconds=1, sweep_interval=1.0)
    )
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: _logged(rig) == len({e["id"] for e in delivered}), 60, "poller")
        rig.settle()
    finally:
        poller.stop()
        thread.join(30)
    final_check(rig)
    truth = rig.sim.ground_truth()["runs"]
    wes = rig.wes_ids()
    assert rig.receiver.state(wes[only_running_lost]).state == "COMPLETE"
    for run_id in (only_terminal_left, failed_alone):
        state = rig.receiver.state(wes[run_id])
        assert [s for _, s, _ in state.applied] == ["RUNNING", truth[run_id]["status"]]
        assert state.applied[0][0] == running_event_id(truth[run_id]["uuid"])
        refused = [
            r
            for r in rig.receiver.callbacks()
            if r.status == 400 and r.json()["wes_run_id"] == wes[run_id]
        ]
        assert len(refused) == 1 and "Invalid state transition" in refused[0].answer["detail"]
    assert not rig.dead_letters()


def _logged(rig: Rig) -> int:
    with rig.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(events).where(events.c.origin == "aws")
            ).scalar_one()
        )


def test_events_lost_after_running_are_recovered_by_the_reconciler_in_the_poller(
    make_rig: Callable[..., Rig], aws_env: str
) -> None:
    rig = make_rig(seed=42, reconcile_after=1.0)
    outcomes = {"COMPLETED": None, "FAILED": None, "CANCELLED": None}
    for outcome in outcomes:
        outcomes[outcome] = rig.sim.add_run(tasks=3, outcome=outcome, cancel_phase="STOPPING")
    delivered = [e for e in rig.simulate() if RANK.get(e["detail"]["status"], 9) <= RANK["RUNNING"]]
    rig.feed(delivered)
    rig.settle()
    wes = rig.wes_ids()
    assert {rig.receiver.state(w).omics_status for w in wes.values()} == {"RUNNING"}

    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique("oe-quiet-"))["QueueUrl"]
    poller = Poller(
        rig.app,
        PollerOptions(
            queue_urls=[queue_url], wait_seconds=1, sweep_interval=1.0, reconcile_interval=1.0
        ),
    )
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: all(rig.receiver.state(w).state != "RUNNING" for w in wes.values()),
            60,
            "the poller's reconciler",
        )
        rig.settle()
    finally:
        poller.stop()
        thread.join(30)
    truth = final_check(rig)
    reconciled = rig.rows(events, events.c.detail_type == RUN_STATUS_RECONCILED)
    assert sorted(r.status for r in reconciled) == ["CANCELLED", "COMPLETED", "FAILED"]
    failed = rig.receiver.state(wes[outcomes["FAILED"]])
    assert failed.failure_reason == truth[outcomes["FAILED"]]["failureReason"]
    assert reconcile(rig.app, older_than=0).reconciled == []  # nothing left, nothing twice
    assert len(rig.rows(events, events.c.detail_type == RUN_STATUS_RECONCILED)) == 3


def test_a_run_no_event_ever_named_is_discovered_by_listing_runs(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(seed=44)
    rig.sim.add_run(tasks=2, outcome="COMPLETED")
    unheard = rig.sim.add_run(tasks=2, outcome="FAILED", delay=5.0)
    delivered = [e for e in rig.simulate() if e["detail"]["runId"] != unheard]
    wes = rig.wes_ids()
    assert unheard in wes
    rig.feed(delivered)
    rig.settle()
    assert reconcile(rig.app, older_than=0).discovered == []  # without discovery, unseen
    assert rig.receiver.state(wes[unheard]).omics_status is None

    report = reconcile(rig.app, older_than=0, discover=True)
    assert report.discovered == [unheard]
    rig.settle()
    final_check(rig)  # the unheard run too ends FAILED on the receiver
    assert reconcile(rig.app, older_than=0, discover=True).discovered == []  # once only
    assert rig.sim.request_log.count("ListRuns") >= 2


def test_reconciler_asks_about_a_quiet_run_once_per_period(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(seed=43, start_workers=False)
    run_id = rig.sim.add_run(tasks=2, outcome="COMPLETED")
    rig.sim.run_until_idle(max_seconds=200)  # it is still RUNNING at HealthOmics
    assert rig.sim.ground_truth()["runs"][run_id]["status"] == "RUNNING"
    rig.feed([e for e in rig.sink.events if e["detail-type"] == RUN_STATUS])
    (row,) = rig.rows(runs)
    assert row.status == "RUNNING"  # the fold moved with the intake's own transaction

    def asked() -> int:
        return rig.sim.request_log.count("GetRun")

    assert reconcile(rig.app, older_than=3600).checked == 0  # news is recent: not due
    report = reconcile(rig.app, older_than=0)
    assert (report.checked, report.unchanged, asked()) == (1, 1, 1)
    assert reconcile(rig.app, older_than=30).checked == 0  # checked within the period
    assert asked() == 1


# --- enrichment details -----------------------------------------------------------------------


@pytest.mark.slow
def test_outputs_json_written_late_is_waited_for(make_rig: Callable[..., Rig], s3: Any) -> None:
    rig = make_rig(seed=5, enrich_outputs_wait=60.0)
    run_id = rig.sim.add_run(tasks=2, outcome="COMPLETED")
    delivered = rig.simulate()
    ((uri, mapping),) = rig.sim.outputs_stored.items()
    bucket, key = uri[5:].split("/", 1)
    s3.delete_object(Bucket=bucket, Key=key)
    rig.feed(delivered)
    wait_for(
        lambda: rig.sim.request_log.count("GetRun") >= len(delivered) + 2,
        60,
        "enrichment to come back for the outputs",
    )
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(mapping).encode())
    rig.settle()
    final_check(rig)
    (enriched,) = [
        r.payload["detail"]
        for r in rig.rows(events, events.c.detail_type == RUN_ENRICHED)
        if r.payload["detail"]["status"] == "COMPLETED"
    ]
    assert enriched["outputsUri"] == uri and "outputsNote" not in enriched
    assert rig.receiver.state(rig.wes_ids()[run_id]).outputs == rig.sim.expected_output_mapping(
        run_id
    )


def test_outputs_json_never_written_goes_on_without_it(make_rig, s3: Any) -> None:
    rig = make_rig(seed=6, enrich_outputs_wait=2.0)
    run_id = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    for uri in rig.sim.outputs_stored:
        bucket, key = uri[5:].split("/", 1)
        s3.delete_object(Bucket=bucket, Key=key)
    rig.feed(delivered)
    rig.settle()
    state = rig.receiver.state(rig.wes_ids()[run_id])
    assert state.omics_status == "COMPLETED" and state.outputs is None
    (enriched,) = [
        r.payload["detail"]
        for r in rig.rows(events, events.c.detail_type == RUN_ENRICHED)
        if r.payload["detail"]["status"] == "COMPLETED"
    ]
    assert enriched["outputsNote"] == "no outputs.json found within 2 s"


def test_missing_run_is_recorded_once_not_retried(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(seed=9)
    real = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    ghost = json.loads(json.dumps(delivered[0]))
    ghost.update(id=str(uuid.uuid4()))
    ghost["detail"].update(runId="9999999", uuid=str(uuid.uuid4()))
    reused = json.loads(json.dumps(delivered[-1]))  # the real run's id, another run's uuid
    reused.update(id=str(uuid.uuid4()))
    reused["detail"]["uuid"] = str(uuid.uuid4())
    rig.feed([*delivered, ghost, reused])
    rig.settle()
    final_check(rig)
    failures = {
        r.caused_by: r.payload["detail"]
        for r in rig.rows(events, events.c.detail_type == RUN_ENRICHMENT_FAILED)
    }
    assert set(failures) == {ghost["id"], reused["id"]}
    assert failures[ghost["id"]]["errorCode"] == "ResourceNotFoundException"
    assert (
        f"now belongs to run {rig.sim.ground_truth()['runs'][real]['uuid']}"
        in (failures[reused["id"]]["reason"])
    )
    letters = rig.dead_letters("stage")
    assert {row.event_id for row in letters} == {ghost["id"], reused["id"]}
    asked = [r for r in rig.sim.request_log.records("GetRun") if r.params.get("id") == "9999999"]
    assert len(asked) == 1  # recorded, not retried


# --- the callback's answers -------------------------------------------------------------------


def test_wrong_key_is_permanent_with_the_answer_kept(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(seed=10, ngs360_api_key="not-the-key")
    rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    rig.feed(delivered[:1])
    rig.settle()
    (letter,) = rig.dead_letters("stage")
    assert "HTTP 403" in letter.reason and "Invalid internal API key" in letter.reason
    assert [r.status for r in rig.receiver.callbacks()] == [403]  # once: not retried
    (row,) = rig.rows(deliveries)
    assert row.outcome == "dead-lettered" and row.http_status == 403


def test_unknown_wes_run_is_permanent(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(seed=11)
    rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    rig.receiver._runs.clear()  # the server does not know the WES run
    rig.feed(delivered[:1])
    rig.settle()
    (row,) = rig.rows(deliveries)
    assert row.outcome == "dead-lettered" and row.http_status == 404
    assert "not found" in row.response_body
    (letter,) = rig.dead_letters("stage")
    assert "HTTP 404" in letter.reason


def test_api_key_from_secrets_manager_is_read_again_after_a_403(
    make_rig: Callable[..., Rig], aws_env: str
) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")
    name = unique("oe-ngs360-")
    secrets.create_secret(Name=name, SecretString=json.dumps({"AUTH_TOKEN": "old-key"}))
    rig = make_rig(seed=12, ngs360_api_key=None, ngs360_api_key_secret=name)
    rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    rig.receiver.api_key = "old-key"
    rig.feed(delivered[:1])
    rig.settle()
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"AUTH_TOKEN": API_KEY}))
    rig.receiver.api_key = API_KEY  # rotated on both sides; the worker still caches the old one
    rig.feed(delivered[1:])
    rig.settle()
    final_check(rig)
    answers = [r.status for r in rig.receiver.callbacks()]
    assert answers.count(403) == 1 and not rig.dead_letters()
    (refused,) = rig.rows(deliveries, deliveries.c.http_status == 403)  # its own attempt row
    assert refused.outcome == "failed" and "Invalid internal API key" in refused.response_body


@pytest.mark.slow
def test_deliveries_and_redeliver_commands(make_rig: Callable[..., Rig], pg_url: str) -> None:
    rig = make_rig(seed=13)
    rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    rig.receiver.fail(500)
    rig.feed(delivered[:1])
    wait_for(lambda: len(rig.receiver.callbacks()) >= 2, 30, "failed attempts")
    rig.receiver.recover()
    rig.settle()
    env = os.environ | {
        "DATABASE_URL": pg_url,
        "NGS360_API_URL": rig.receiver.url,
        "NGS360_API_KEY": API_KEY,
        "REDIS_URL": rig.settings.redis_url or "",
        "REDIS_KEY_PREFIX": rig.settings.redis_key_prefix,
        "COLUMNS": "250",
    }

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "omics_events", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listing = command("deliveries", "--failed")
    assert listing.returncode == 0, listing.stderr
    assert delivered[0]["id"] in listing.stdout and "500" in listing.stdout
    assert "delivered" not in listing.stdout
    before = len(rig.receiver.callbacks())
    again = command("redeliver", delivered[0]["id"])
    assert again.returncode == 0, again.stderr
    assert f"{delivered[0]['id']}: delivered" in again.stdout
    assert len(rig.receiver.callbacks()) == before + 1
    assert rig.receiver.callbacks()[-1].answer["already_processed"] is True
    assert API_KEY not in listing.stdout + listing.stderr + again.stdout + again.stderr


# --- the RUNNING gap-fill, against the receiver's transition table ----------------------------


def _terminal_only(rig: Rig, wes_state: str, outcome: str = "COMPLETED") -> tuple[dict, str]:
    """One run whose terminal event alone reaches the pipeline, its WES run in ``wes_state``;
    enriched, not yet called back.  Returns (the terminal event, the WES run id)."""
    run_id = rig.sim.add_run(tasks=1, outcome=outcome)
    rig.sim.run_until_idle()
    wes = rig.wes_ids()[run_id]
    rig.receiver.register([wes], state=wes_state)
    (terminal,) = [
        e
        for e in rig.sink.events
        if e["detail-type"] == RUN_STATUS and e["detail"]["status"] == outcome
    ]
    rig.feed([terminal])
    assert enrich_run(rig.app.runtime, terminal["id"]) == "enriched"
    return terminal, wes


def _deliveries_of(rig: Rig, event_id: str) -> list[Any]:
    with rig.engine.connect() as connection:
        return list(
            connection.execute(
                select(deliveries)
                .where(deliveries.c.caused_by == event_id)
                .order_by(deliveries.c.id)
            )
        )


@pytest.mark.parametrize("wes_state", ["QUEUED", "INITIALIZING"])
def test_gap_fill_reports_running_first_and_records_each_attempt_with_its_answer(
    make_rig: Callable[..., Rig], wes_state: str
) -> None:
    rig = make_rig(seed=31, start_workers=False)
    terminal, wes = _terminal_only(rig, wes_state)
    assert deliver_callback(rig.app.runtime, terminal["id"]) == "delivered"

    running_id = running_event_id(terminal["detail"]["uuid"])
    sent = [(r.json()["status"], r.json()["event_id"], r.status) for r in rig.receiver.callbacks()]
    assert sent == [
        ("COMPLETED", terminal["id"], 400),
        ("RUNNING", running_id, 200),
        ("COMPLETED", terminal["id"], 200),
    ]
    rows = _deliveries_of(rig, terminal["id"])
    assert [(r.status, r.event_id, r.outcome, r.http_status) for r in rows] == [
        ("COMPLETED", terminal["id"], "failed", 400),
        ("RUNNING", running_id, "delivered", 200),
        ("COMPLETED", terminal["id"], "delivered", 200),
    ]
    assert f"Invalid state transition: {wes_state} -> COMPLETE" in rows[0].response_body
    assert '"new_state":"RUNNING"' in rows[1].response_body
    assert '"new_state":"COMPLETE"' in rows[2].response_body
    held = rig.receiver.state(wes)
    assert held.state == "COMPLETE" and [s for _, s, _ in held.applied] == ["RUNNING", "COMPLETED"]
    assert not rig.dead_letters()
    before = [tuple(r)[1:] for r in _deliveries_of(rig, terminal["id"])]
    rebuild(rig.engine)  # the attempts are facts: a rebuild gives the same deliveries
    assert [tuple(r)[1:] for r in _deliveries_of(rig, terminal["id"])] == before


@pytest.mark.parametrize("wes_state", ["CANCELING", "PAUSED"])
def test_no_gap_fill_when_wes_holds_a_state_running_cannot_help(
    make_rig: Callable[..., Rig], wes_state: str
) -> None:
    rig = make_rig(seed=32, start_workers=False)
    terminal, wes = _terminal_only(rig, wes_state)
    assert deliver_callback(rig.app.runtime, terminal["id"]) == "dead-lettered"

    (request,) = rig.receiver.callbacks()  # no RUNNING was sent
    assert request.json()["status"] == "COMPLETED" and request.status == 400
    refusal = f"Invalid state transition: {wes_state} -> COMPLETE"
    (row,) = _deliveries_of(rig, terminal["id"])
    assert (row.status, row.outcome, row.http_status) == ("COMPLETED", "dead-lettered", 400)
    assert refusal in row.response_body
    (letter,) = rig.dead_letters("stage")
    assert letter.event_id == terminal["id"] and refusal in letter.reason
    assert rig.receiver.state(wes).state == wes_state


def test_no_gap_fill_once_a_status_of_the_run_was_delivered(
    make_rig: Callable[..., Rig],
) -> None:
    """WES went back to QUEUED after it took RUNNING (someone reset it): not a lost event."""
    rig = make_rig(seed=33, start_workers=False)
    run_id = rig.sim.add_run(tasks=1, outcome="FAILED")
    delivered = rig.simulate()
    (running,) = [e for e in delivered if e["detail"]["status"] == "RUNNING"]
    (terminal,) = [e for e in delivered if e["detail"]["status"] == "FAILED"]
    rig.feed([running, terminal])
    for event in (running, terminal):
        assert enrich_run(rig.app.runtime, event["id"]) == "enriched"
    assert deliver_callback(rig.app.runtime, running["id"]) == "delivered"
    rig.receiver.set_state(rig.wes_ids()[run_id], "QUEUED")
    assert deliver_callback(rig.app.runtime, terminal["id"]) == "dead-lettered"
    assert [r.json()["status"] for r in rig.receiver.callbacks()] == ["RUNNING", "FAILED"]
    (row,) = _deliveries_of(rig, terminal["id"])
    assert row.http_status == 400 and "QUEUED -> EXECUTOR_ERROR" in row.response_body


# --- bulk redelivery after a rotated key ------------------------------------------------------


def _cli(rig: Rig, pg_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "DATABASE_URL": pg_url,
        "NGS360_API_URL": rig.receiver.url,
        "NGS360_API_KEY": API_KEY,
        "REDIS_URL": rig.settings.redis_url or "",
        "REDIS_KEY_PREFIX": rig.settings.redis_key_prefix,
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "omics_events", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_bulk_redelivery_after_a_rotated_key_sends_in_order_and_skips_superseded(
    make_rig: Callable[..., Rig], pg_url: str
) -> None:
    rig = make_rig(seed=34)
    runs_sent_again = [
        rig.sim.add_run(tasks=1, outcome=outcome) for outcome in ("COMPLETED", "FAILED")
    ]
    overtaken = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    wes = rig.wes_ids()
    rig.receiver.api_key = "the-new-key"  # the server's key changed; the workers' did not
    (overtaken_end,) = [
        e
        for e in delivered
        if e["detail"]["runId"] == overtaken and e["detail"]["status"] == "COMPLETED"
    ]
    rig.feed([e for e in delivered if e["id"] != overtaken_end["id"]])
    rig.settle()
    dead = [e["id"] for e in delivered if e["id"] != overtaken_end["id"]]
    assert len(rig.receiver.callbacks()) == len(dead)
    assert {r.status for r in rig.receiver.callbacks()} == {403}
    assert {row.event_id for row in rig.dead_letters("stage")} == set(dead)

    rig.receiver.api_key = API_KEY  # fixed: both sides agree again
    rig.feed([overtaken_end])  # its run's last status goes through before the bulk redelivery
    rig.settle()
    assert rig.receiver.state(wes[overtaken]).omics_status == "COMPLETED"
    received_before = len(rig.receiver.callbacks())

    listing = _cli(rig, pg_url, "dead-letters", "--status-code", "403")
    assert listing.returncode == 0, listing.stderr
    assert all(event_id in listing.stdout for event_id in dead)
    assert f"{len(dead)} dead-lettered callbacks of 3 runs" in listing.stdout
    one_run = _cli(rig, pg_url, "dead-letters", "--status-code", "403", "--run", overtaken)
    assert "dead-lettered callbacks of 1 runs" in one_run.stdout
    assert (
        _cli(rig, pg_url, "dead-letters", "--until", "2020-01-01").stdout.count(
            "0 dead-lettered callbacks"
        )
        == 1
    )
    dry = _cli(rig, pg_url, "redeliver", "--status-code", "403", "--dry-run")
    assert dry.returncode == 0 and len(rig.receiver.callbacks()) == received_before
    assert _cli(rig, pg_url, "redeliver").returncode != 0  # no id, no filter: refused

    bulk = _cli(rig, pg_url, "redeliver", "--status-code", "403")
    assert bulk.returncode == 0, bulk.stdout + bulk.stderr
    assert API_KEY not in bulk.stdout + bulk.stderr
    again = rig.receiver.callbacks()[received_before:]
    per_run: dict[str, list[str]] = defaultdict(list)
    for event in delivered:
        per_run[event["detail"]["runId"]].append(event["detail"]["status"])
    for run_id in runs_sent_again:
        sent = [r.json()["status"] for r in again if r.json()["wes_run_id"] == wes[run_id]]
        assert sent == per_run[run_id]  # every status once, in order
        assert rig.receiver.state(wes[run_id]).omics_status == per_run[run_id][-1]
    assert not [r for r in again if r.json()["wes_run_id"] == wes[overtaken]]
    assert all(200 <= r.status < 300 for r in again)
    with rig.engine.connect() as connection:
        outcomes = dict(
            connection.execute(
                select(deliveries.c.caused_by, deliveries.c.outcome)
                .where(deliveries.c.caused_by.in_(dead))
                .order_by(deliveries.c.id)
            ).all()
        )  # the last row of each event wins
    overtaken_ids = {
        e["id"]
        for e in delivered
        if e["detail"]["runId"] == overtaken and e["id"] != overtaken_end["id"]
    }
    assert {outcomes[e] for e in overtaken_ids} == {"superseded"}
    assert {outcomes[e] for e in set(dead) - overtaken_ids} == {"delivered"}
    assert "delivered" in bulk.stdout and "superseded" in bulk.stdout
    assert (
        _cli(rig, pg_url, "dead-letters", "--status-code", "403").stdout.count(
            "0 dead-lettered callbacks"
        )
        == 1
    )
    nothing = _cli(rig, pg_url, "redeliver", "--status-code", "403")
    assert nothing.returncode == 0 and len(rig.receiver.callbacks()) == received_before + len(again)


def test_bulk_redelivery_holds_back_a_runs_later_callbacks_when_one_is_refused(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(seed=35, start_workers=False)
    run_id = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    statuses = ("RUNNING", "COMPLETED")
    delivered = [e for e in rig.simulate() if e["detail"]["status"] in statuses]
    rig.receiver.api_key = "rotated"
    rig.feed(delivered)
    runtime = rig.app.runtime
    for event in delivered:
        assert enrich_run(runtime, event["id"]) == "enriched"
        assert deliver_callback(runtime, event["id"]) == "dead-lettered"
    with rig.engine.connect() as connection:
        items = dead_callbacks(connection, Filters(status_code=403))
    assert [(i.event_id, i.status) for i in items] == [
        (e["id"], e["detail"]["status"]) for e in delivered
    ]
    rig.receiver.api_key = API_KEY
    rig.receiver._runs.clear()  # the key is right now, but NGS360 lost the WES run: 404
    results = redeliver_dead(runtime, items)
    assert [outcome for _, outcome in results] == ["dead-lettered", "held back"]
    assert [r.status for r in rig.receiver.callbacks()][-1:] == [404]
    assert len(rig.receiver.callbacks()) == 3  # two 403s, then the RUNNING's 404 only
    with rig.engine.connect() as connection:
        left = dead_callbacks(connection)
        assert [(i.status, i.http_status) for i in left] == [("RUNNING", 404), ("COMPLETED", 403)]
        assert dead_callbacks(connection, Filters(run=rig.wes_ids()[run_id])) == left
        assert dead_callbacks(connection, Filters(run="9999999")) == []


def test_a_runs_statuses_arriving_at_once_publish_each_callback_once_in_order(
    make_rig: Callable[..., Rig],
) -> None:
    """Five statuses of one run land together: each callback waits for the one before it and
    is published once, when its turn comes (not re-published every few seconds to look)."""
    rig = make_rig(seed=11)
    run_id = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    statuses = [e for e in rig.simulate() if e["detail"]["runId"] == run_id]
    assert len({e["detail"]["status"] for e in statuses}) == 5, statuses
    rig.feed(statuses)  # one batch: every enrichment and callback of the run is in flight at once
    rig.settle()

    rows = rig.rows(outbox, outbox.c.stage == "callback")
    assert len(rows) == 5
    assert {row.event_id: row.publish_count for row in rows} == {row.event_id: 1 for row in rows}
    status_of = {e["id"]: e["detail"]["status"] for e in statuses}
    received = [status_of[event_id] for event_id in rig.receiver.accepted_event_ids()]
    assert received == ["PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED"], received
    final_check(rig)


def test_a_callback_task_costs_a_known_number_of_sql_statements(
    make_rig: Callable[..., Rig],
) -> None:
    """SQL round trips per unit of work are the stages' main cost: the statements of
    one enrichment and one callback of a run's first status, counted at the driver."""
    rig = make_rig(seed=11, start_workers=False)
    run_id = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    first = next(e for e in rig.simulate() if e["detail"]["runId"] == run_id)
    rig.feed([first])
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa_event.listen(rig.engine, "before_cursor_execute", count)
    try:
        assert enrich_run(rig.app.runtime, first["id"]) == "enriched"
        enrich_statements = len(seen)
        assert deliver_callback(rig.app.runtime, first["id"]) == "delivered"
    finally:
        sa_event.remove(rig.engine, "before_cursor_execute", count)
    callback_statements = len(seen) - enrich_statements
    # enrich: read, GetRun's projection, append (lock, insert, folds), complete,
    # the callback owed and the run's waiting callbacks (lock, read), publish (read, mark)
    assert enrich_statements == 11, seen[:enrich_statements]
    # callback: read (event, done, enrichment), the run's last delivery, the wait check (lock,
    # read), history, append (lock, insert, folds), complete, wake (lock, read); nothing to
    # publish (the fact owes no stage and no later status waits)
    assert callback_statements == 13, seen[enrich_statements:]
