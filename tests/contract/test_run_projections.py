"""The run pipeline's pure parts: the ``runs``/``deliveries`` fold, the callback body, the links.

The fold is checked the way the log will exercise it: the same facts, duplicates included, in
many orders, on both backends, must give the same rows, and the rows must say what happened
(status never backwards, the first terminal status stands, enrichment without HealthOmics'
answer never overwrites one with it).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, select

from eventlog import projections
from eventlog.db import create_db_engine
from eventlog.store import StoredEvent
from eventlog.tables import deliveries, runs
from schemas.ngs360 import build_payload, skip_reason, truncate
from schemas.settings import Settings
from workers.callback import callback_endpoint, resolve_target, tag_problem
from workers.enrich import console_url, log_urls, output_mapping

T0 = datetime(2026, 1, 22, 22, 16, 9, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


class Facts:
    """Builds stored events the way the intake and the stages append them."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    def add(
        self,
        detail_type: str,
        detail: dict[str, Any],
        *,
        at: int,
        origin: str = "pipeline",
        caused_by: str | None = None,
        event_id: str | None = None,
    ) -> str:
        event_id = event_id or str(uuid.uuid4())
        source = "aws.omics" if origin == "aws" else "omics-events"
        self.events.append(
            StoredEvent(
                seq=len(self.events) + 1,
                event_id=event_id,
                origin=origin,
                source=source,
                detail_type=detail_type,
                resource_arn=None,
                resource_id=detail.get("uuid"),
                status=detail.get("status"),
                event_time=T0 + timedelta(seconds=at),
                received_at=RECEIVED + timedelta(seconds=len(self.events)),
                caused_by=caused_by,
                payload={"id": event_id, "detail-type": detail_type, "detail": detail},
            )
        )
        return event_id

    def status(self, run: str, status: str, at: int, **extra: Any) -> str:
        detail = {"uuid": run, "runId": run[:7], "status": status, **extra}
        return self.add("Run Status Change", detail, at=at, origin="aws")

    def enriched(self, cause: str, run: str, status: str, at: int, **extra: Any) -> str:
        detail = {
            "uuid": run,
            "runId": run[:7],
            "status": status,
            "causeEventId": cause,
            "eventTime": (T0 + timedelta(seconds=at)).isoformat(),
            **extra,
        }
        return self.add("Run Enriched", detail, at=at + 1, caused_by=cause)

    def callback(self, kind: str, cause: str, run: str, status: str, at: int, **extra: Any) -> str:
        detail = {
            "uuid": run,
            "runId": run[:7],
            "status": status,
            "eventId": cause,
            "eventTime": (T0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **extra,
        }
        return self.add(kind, detail, at=at + 2, caused_by=cause)


def story() -> tuple[Facts, dict[str, str]]:
    facts = Facts()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    # run a: a normal life, a late duplicate-looking RUNNING, callbacks in order + one superseded
    ids = {
        s: facts.status(a, s, at)
        for s, at in [
            ("PENDING", 0),
            ("STARTING", 10),
            ("RUNNING", 20),
            ("STOPPING", 90),
            ("COMPLETED", 99),
        ]
    }
    late_running = facts.status(a, "RUNNING", 25)
    facts.enriched(
        ids["RUNNING"],
        a,
        "RUNNING",
        20,
        fromApi=True,
        wesRunId="w" * 36,
        startTime="2026-01-22T22:16:29Z",
    )
    facts.enriched(
        ids["COMPLETED"],
        a,
        "COMPLETED",
        99,
        fromApi=True,
        wesRunId="w" * 36,
        outputMapping={"bam": "s3://b/x.bam"},
        logUrls={"run_log": "https://x"},
        durationSeconds=79.5,
    )
    facts.callback("Callback Delivered", ids["RUNNING"], a, "RUNNING", 20, httpStatus=200)
    facts.callback("Callback Failed", ids["COMPLETED"], a, "COMPLETED", 99, httpStatus=503)
    facts.callback("Callback Delivered", ids["COMPLETED"], a, "COMPLETED", 99, httpStatus=200)
    facts.callback("Callback Superseded", late_running, a, "RUNNING", 25, reason="older")
    # run b: events lost after RUNNING, reconciled FAILED, then deleted
    facts.status(b, "PENDING", 5)
    facts.status(b, "RUNNING", 30)
    failed = facts.add(
        "Run Status Reconciled", {"uuid": b, "runId": b[:7], "status": "FAILED"}, at=300
    )
    facts.enriched(
        failed, b, "FAILED", 300, fromApi=True, wesRunId="v" * 36, failureReason="RUN_TASK_FAILED"
    )
    deleted = facts.status(b, "DELETED", 900)
    facts.enriched(deleted, b, "DELETED", 900, fromApi=False, degraded="the run was deleted")
    facts.callback("Callback Skipped", deleted, b, "DELETED", 900, reason="not accepted")
    # run c: two different terminal statuses (never in real life): the first one stands
    facts.status(c, "CANCELLED", 50)
    facts.status(c, "COMPLETED", 60)
    facts.callback(
        "Callback Failed",
        facts.status(c, "RUNNING", 40),
        c,
        "RUNNING",
        40,
        final=True,
        httpStatus=404,
    )
    return facts, {"a": a, "b": b, "c": c}


def causal_shuffle(items: list[StoredEvent], rng: random.Random) -> list[StoredEvent]:
    """A random order in which every pipeline fact still follows the event that caused it —
    every order the log can hold: HealthOmics' events in any order, duplicates anywhere, each
    stage's fact after its cause."""
    pending, placed, order = list(items), set(), []
    while pending:
        ready = [e for e in pending if e.caused_by is None or e.caused_by in placed]
        pick = rng.choice(ready)
        pending.remove(pick)
        placed.add(pick.event_id)
        order.append(pick)
    return order


def snapshot(connection: Any) -> list[dict[str, Any]]:
    rows = [dict(r._mapping) for r in connection.execute(select(runs).order_by(runs.c.run_uuid))]
    sent = connection.execute(select(deliveries).order_by(deliveries.c.delivery_id))
    rows += [{k: v for k, v in r._mapping.items() if k != "id"} for r in sent]
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows
    ]


def fold(engine: Any, ordered: list[StoredEvent]) -> list[dict[str, Any]]:
    with engine.begin() as connection:
        connection.execute(delete(deliveries))
        connection.execute(delete(runs))
        for event in ordered:
            projections.apply(connection, event)
        return snapshot(connection)


def test_fold_is_the_same_in_any_order_with_duplicates(backend: str) -> None:
    engine = create_db_engine(backend)
    facts, run = story()
    in_order = fold(engine, facts.events)
    rng = random.Random(7)
    for _ in range(16):
        shuffled = causal_shuffle(list(facts.events) + rng.sample(facts.events, 6), rng)
        assert fold(engine, shuffled) == in_order

    with engine.connect() as connection:
        rows = {r.run_uuid: r for r in connection.execute(select(runs))}
        outcomes = sorted(r.outcome for r in connection.execute(select(deliveries)))
    a, b, c = rows[run["a"]], rows[run["b"]], rows[run["c"]]
    assert (a.status, a.callback_status, a.wes_run_id) == ("COMPLETED", "COMPLETED", "w" * 36)
    assert a.output_mapping == {"bam": "s3://b/x.bam"} and a.duration_seconds == 79.5
    assert b.status == "DELETED" and b.callback_status is None
    assert b.failure_reason == "RUN_TASK_FAILED"  # the deletion's enrichment had no API answer
    assert c.status == "CANCELLED"  # the first terminal status stands
    assert outcomes == [
        "dead-lettered",
        "delivered",
        "delivered",
        "failed",
        "skipped",
        "superseded",
    ]
    engine.dispose()


def test_batches_and_a_whole_log_reducer_fold_like_one_event_at_a_time(backend: str) -> None:
    """The live path folds a batch at a time, a rebuild the whole log in one reducer (over
    stored rows for what came late): the same rows as folding event by event, in any order the
    log can hold — strays, duplicates and look-alikes included."""
    engine = create_db_engine(backend)
    facts, run = story()
    stray = str(uuid.uuid4())
    facts.enriched(facts.status(run["a"], "RUNNING", 30), stray, "RUNNING", 1, fromApi=True)
    facts.status("u" * 70, "RUNNING", 5)  # too long for a run uuid
    facts.add("Run Status Change", {"uuid": stray, "status": "RUNNING"}, at=2)  # not aws.omics
    rng = random.Random(11)
    for _ in range(8):
        ordered = causal_shuffle(list(facts.events) + rng.sample(facts.events, 6), rng)
        one_by_one = fold(engine, ordered)
        with engine.begin() as connection:
            connection.execute(delete(deliveries))
            connection.execute(delete(runs))
            start = 0
            while start < len(ordered):
                size = rng.randint(1, 9)
                projections.apply_many(connection, ordered[start : start + size])
                start += size
            assert snapshot(connection) == one_by_one
        with engine.begin() as connection:
            connection.execute(delete(deliveries))
            connection.execute(delete(runs))
            middle = rng.randrange(len(ordered))
            reducer = projections.Reducer(connection)
            for start in range(0, middle, 4):
                reducer.add(ordered[start : min(start + 4, middle)])
            reducer.write(connection)
            late = projections.Reducer(connection)  # over the stored rows
            late.add(ordered[middle:])
            late.write(connection)
            assert snapshot(connection) == one_by_one
    engine.dispose()


def test_status_order_is_strict_and_total() -> None:
    later, earlier = T0 + timedelta(seconds=1), T0
    beats = projections.status_beats
    assert beats((3, earlier, "a"), (2, later, "a"))  # rank first
    assert beats((3, later, "a"), (3, earlier, "b"))  # non-terminal: the latest
    assert beats((5, earlier, "b"), (5, later, "a"))  # terminal: the first stands
    assert beats((6, later, "z"), (5, earlier, "a"))  # DELETED after a terminal
    assert not beats((3, earlier, "a"), (3, earlier, "a"))
    assert beats((3, earlier, "a"), (3, earlier, "b")) != beats(
        (3, earlier, "b"), (3, earlier, "a")
    )


def test_odd_status_events_fold_to_nothing(backend: str) -> None:
    engine = create_db_engine(backend)
    facts = Facts()
    facts.add("Run Status Change", {"status": "RUNNING"}, at=0, origin="aws")  # no uuid
    facts.add("Run Status Change", {"uuid": "u1", "status": "BOGUS"}, at=0, origin="aws")
    facts.add("Run Status Change", {"uuid": "u" * 300, "status": "RUNNING"}, at=0, origin="aws")
    facts.add("Run Enriched", {"uuid": "u2", "fromApi": True, "status": "RUNNING"}, at=0)
    assert fold(engine, facts.events) == []
    engine.dispose()


# --- the callback body ------------------------------------------------------------------------


def test_payload_is_cut_and_shaped_to_the_contract() -> None:
    body = build_payload(
        omics_run_id="8567247",
        status="FAILED",
        wes_run_id="0" * 36,
        event_time=datetime(2026, 1, 23, 21, 21, 48, 123456, tzinfo=timezone(timedelta(hours=2))),
        event_id="0b03b0b1-6cac-9be0-37cf-7e1afb3226f7",
        status_message="m" * 1500,
        failure_reason="f" * 2500,
        output_mapping={"x": "s3://b/x"},
        log_urls={"run_log": "https://console"},
    )
    assert body["event_time"] == "2026-01-23T19:21:48Z"  # converted to UTC, not just relabelled
    assert len(body["status_message"]) == 1000 and body["status_message"].endswith("…")
    assert len(body["failure_reason"]) == 2000
    assert "output_mapping" not in body  # only on COMPLETED
    assert body["log_urls"] == {"run_log": "https://console"}  # on any terminal status
    running = build_payload(
        omics_run_id="1",
        status="RUNNING",
        wes_run_id="0" * 36,
        event_time=T0,
        event_id="e",
        log_urls={"run_log": "x"},
    )
    assert "log_urls" not in running
    with pytest.raises(ValueError):
        build_payload(
            omics_run_id="1" * 51,
            status="RUNNING",
            wes_run_id="0" * 36,
            event_time=T0,
            event_id="e",
        )
    assert truncate("abc", 3) == "abc" and truncate("abcd", 3) == "ab…"


def test_what_cannot_be_sent_says_why() -> None:
    assert "DELETED is not accepted" in (skip_reason("DELETED", "0" * 36) or "")
    assert skip_reason("RUNNING", None) == "the run has no WESRunId tag"
    assert "36-character" in (skip_reason("RUNNING", "short") or "")
    assert skip_reason("COMPLETED", "0" * 36) is None


# --- enrichment pieces ------------------------------------------------------------------------


def test_outputs_of_every_documented_shape_map_to_uris_and_values() -> None:
    document = {
        "cwl_file": {"class": "File", "location": "s3://o/1/out/a.bam", "size": 3},
        "cwl_files": [
            {"class": "File", "location": "s3://o/1/out/0.vcf"},
            {"class": "File", "location": "s3://o/1/out/1.vcf"},
        ],
        "cwl_dir": {"class": "Directory", "path": "s3://o/1/out/dir"},
        "record": {"report": {"class": "File", "location": "s3://o/1/r.html"}, "n": 2},
        "Wf.merged_bam": "s3://o/1/out/merged.bam",
        "Wf.sorted_bams": ["s3://o/1/a.bam", "s3://o/1/b.bam"],
        "Wf.my_int": 1,
        "Wf.coverage": 31.5,
        "Wf.flag": True,
    }
    assert output_mapping(document) == {
        "cwl_file": "s3://o/1/out/a.bam",
        "cwl_files": ["s3://o/1/out/0.vcf", "s3://o/1/out/1.vcf"],
        "cwl_dir": "s3://o/1/out/dir",
        "record": {"report": "s3://o/1/r.html", "n": 2},
        "Wf.merged_bam": "s3://o/1/out/merged.bam",
        "Wf.sorted_bams": ["s3://o/1/a.bam", "s3://o/1/b.bam"],
        "Wf.my_int": 1,
        "Wf.coverage": 31.5,
        "Wf.flag": True,
    }
    assert output_mapping(["not", "a", "mapping"]) is None


def test_log_links_for_the_run_the_manifest_and_all_150_tasks() -> None:
    stream = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/omics/WorkflowLog:log-stream:"
    run = {
        "id": "8567247",
        "uuid": "aecdf624-3440-e174-33c0-7073b55966f6",
        "logLocation": {
            "runLogStream": stream + "run/8567247",
            "engineLogStream": stream + "run/8567247/engine",
        },
    }
    tasks = [{"taskId": str(1000 + n), "name": f"shard_{n}"} for n in range(150)]
    urls = log_urls(run, "us-east-1", tasks)
    assert len(urls["task_logs"]) == 150 and urls["task_names"]["1149"] == "shard_149"
    assert urls["run_log"] == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fomics$252FWorkflowLog"
        "/log-events/run$252F8567247"
    )
    assert urls["manifest_log"].endswith(
        "manifest$252Frun$252F8567247$252Faecdf624-3440-e174-33c0-7073b55966f6"
    )
    assert urls["task_logs"]["1000"].endswith("run$252F8567247$252Ftask$252F1000")
    assert "engine_log" in urls
    assert console_url("cn-north-1", "/g", "s", "aws-cn").startswith(
        "https://cn-north-1.console.amazonaws.cn/"
    )


# --- where callbacks may go -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("https://api.ngs360.example.com/anything", None),
        ("https://API.NGS360.example.com:443/x", None),
        ("https://API.NGS360.example.com:8443", "origin https://api.ngs360.example.com:8443 is "),
        ("https://api.ngs360.example.com:22/", "origin https://api.ngs360.example.com:22 is not"),
        ("https://partner.example.org", "origin https://partner.example.org:443 is not in CALL"),
        ("http://169.254.169.254/latest", "plain http is allowed on loopback only"),
        ("http://api.ngs360.example.com", "plain http is allowed on loopback only"),
        ("https://user:pw@api.ngs360.example.com", "it carries credentials"),
        ("ftp://api.ngs360.example.com", "it is not an http(s) URL with a host"),
        ("http://127.0.0.1:9/", "origin http://127.0.0.1:9 is not in CALLBACK_ALLOWED_HOSTS"),
        ("http://127.0.0.1:8000/", None),
        ("https://127.0.0.1:8000/", "origin https://127.0.0.1:8000 is not in"),
        ("http://[::1]:8000/", "origin http://[::1]:8000 is not in CALLBACK_ALLOWED_HOSTS"),
    ],
)
def test_callback_url_tags_are_checked(tag: str, problem: str | None) -> None:
    allowed = {"api.ngs360.example.com", "http://127.0.0.1:8000"}
    found = tag_problem(tag, allowed)
    assert (found is None) if problem is None else (found or "").startswith(problem), found


def test_default_allow_list_is_the_api_host_and_the_path_is_fixed() -> None:
    settings = Settings(ngs360_api_url="https://user:pw@wes.example.com:8443/ga4gh/wes/v1")
    assert callback_endpoint(settings.ngs360_api_url or "") == (
        "https://wes.example.com:8443/internal/callbacks/omics-state-change"
    )
    assert resolve_target(settings, None).url == callback_endpoint(settings.ngs360_api_url or "")
    ok = resolve_target(settings, "https://wes.example.com:8443/other/base")
    assert ok.refused is None and ok.url == (
        "https://wes.example.com:8443/internal/callbacks/omics-state-change"
    )
    assert resolve_target(settings, "https://wes.example.com/other/base").refused  # port 443
    refused = resolve_target(settings, "https://evil.example.net")
    assert refused.url == resolve_target(settings, None).url and refused.refused
    assert resolve_target(Settings(), None).url is None  # callbacks not configured
