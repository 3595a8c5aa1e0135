"""Read-set imports from S3 drops, retries of failed sources, quotas as global limits.

Everything runs for real: moto S3/SQS/SNS over HTTP, the HealthOmics simulator over HTTP (its
ground truth says which read sets exist and which jobs ran), the SQS poller with its sweeper,
PostgreSQL, Redis, and the imports pool: in this process, or as two real worker processes with
their own apps and limiters, so the account-wide limits are shared through Redis exactly as in
production.
No assertion is about time: every wait is a deadline on a condition.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from eventlog import import_projections
from eventlog.tables import dead_letters, events, import_jobs, import_sources, read_sets
from simulator.requestlog import _max_in_window
from tests.helpers.common import wait_for
from tests.helpers.import_world import (
    REFERENCE,
    ImportWorld,
    LabDrop,
    lab_drop,
)
from workers.concurrency import ConcurrencyLimiter

IMPORT_OPS = ("StartReadSetImportJob", "GetReadSetImportJob")


# --- the world --------------------------------------------------------------------------------


def _done(world: ImportWorld, drop: LabDrop) -> bool:
    """The simulator holds every read set, and the pool has seen every job end (its events
    can arrive after the read sets became ACTIVE) and owes nothing more."""
    imported = world.imported()
    if not all(uri in imported for uri in drop.sources):
        return False
    with world.engine.connect() as connection:
        ours = set(
            connection.execute(
                select(import_sources.c.source_key).where(import_sources.c.outcome == "imported")
            ).scalars()
        )
    return ours >= set(drop.sources) and world.imports_owed() == 0


def quiescent(world: ImportWorld) -> bool:
    """Nothing more will happen: the simulator is idle, every event it sent is in the log, and
    the imports pool has handled (and folded) all of them."""
    if not world.sim.is_idle():
        return False
    sent = {event["id"] for event in world.sim.delivered_events}
    with world.engine.connect() as connection:
        logged = set(
            connection.execute(select(events.c.event_id).where(events.c.origin == "aws")).scalars()
        )
    return sent <= logged and world.imports_owed() == 0


# --- the acceptance ---------------------------------------------------------------------------


@pytest.mark.slow
def test_three_hundred_files_each_valid_read_set_active_exactly_once(import_world) -> None:
    world = import_world()
    drop = lab_drop(world.incoming, pairs=100, bams=30, crams=25, ubams=15, singles=10, junk=20)
    assert len(drop.uris) == 300
    world.sim.drop_files(drop.uris)
    wait_for(lambda: _done(world, drop), 150, "every valid read set ACTIVE")

    imported = world.imported()
    assert set(imported) == set(drop.sources)  # nothing else, junk included, was imported
    for source1, source2 in drop.sources.items():
        (read_set,) = imported[source1]  # exactly one ACTIVE read set per source
        assert read_set["source2"] == source2  # FASTQ mates paired, singles alone
    assert set(world.finished_sources().values()) == {1}
    truth = world.sim.ground_truth()
    assert max(len(job["sources"]) for job in truth["import_jobs"].values()) <= 100
    assert truth["max_active_import_jobs"] <= 5

    with world.engine.connect() as connection:
        letters = (
            connection.execute(select(dead_letters.c.reason).where(dead_letters.c.kind == "import"))
            .scalars()
            .all()
        )
        outcomes = Counter(connection.execute(select(import_sources.c.outcome)).scalars().all())
        tokens = connection.execute(select(import_jobs.c.client_token)).scalars().all()
    assert len(letters) == len(drop.junk)
    for uri in drop.junk:  # every junk file reported by name
        assert any(reason.startswith(f"{uri}: ") for reason in letters), uri
    assert outcomes == {"imported": len(drop.sources), "rejected": len(drop.junk)}
    # every job was started with a clientToken (botocore does not fill one in)
    calls = world.sim.import_calls
    assert calls and all(call["clientToken"] for call in calls)
    assert len(tokens) == len(set(tokens)) == len(truth["import_jobs"])


@pytest.mark.slow
def test_transient_failures_retried_permanent_notified_within_quotas(import_world) -> None:
    world = import_world(
        processes=2,
        faults={"transient_source_failure_rate": 0.2, "throttle": True, "import_quota": 5},
        import_max_sources_per_job=8,
        # quotas are counted on arrival; with four test workers on two cores a call has arrived
        # more than the default 0.1 s after its slot was granted (6 in a second, once)
        omics_rate_margin=0.5,
    )
    drop = lab_drop(world.incoming, pairs=40, bams=20, crams=10, ubams=10, seed=11)
    broken = sorted(drop.sources)[::16][:5]  # these fail every attempt, for good
    for uri in broken:
        world.sim.plan_source_outcomes(uri, "permanent")
    # a job someone else started: its failed sources are retried by the pool too
    external = {
        "sourceFiles": {"source1": f"s3://{world.incoming}/elsewhere/ext_1.fq.gz"},
        "sourceFileType": "FASTQ",
        "subjectId": "SUBJ-EXT",
        "sampleId": "EXT-1",
    }
    world.sim.plan_source_outcomes(external["sourceFiles"]["source1"], "transient", "ok")
    world.sim.add_import_job(sources=[external])
    world.sim.drop_files(drop.uris)

    expected = set(drop.sources) - set(broken) | {external["sourceFiles"]["source1"]}

    def settled() -> bool:
        imported = world.imported()
        with world.engine.connect() as connection:
            dead = set(
                connection.execute(
                    select(import_sources.c.source_key).where(import_sources.c.outcome == "dead")
                ).scalars()
            )
        return expected <= set(imported) and dead == set(broken) and world.imports_owed() == 0

    wait_for(settled, 150, "transient sources imported, permanent ones given up")

    truth = world.sim.ground_truth()
    failures: dict[str, set[str]] = {}
    for job in truth["import_jobs"].values():
        for source in job["sources"]:
            if source["failure"]:
                failures.setdefault(source["failure"], set()).add(source["source1"])
    assert failures["transient"], "the fault rate should have failed some sources"
    assert failures["transient"] <= expected  # every transient failure ended imported …
    imported = world.imported()
    assert all(len(imported[uri]) == 1 for uri in expected)  # … once
    assert set(world.finished_sources().values()) == {1}  # no source imported twice
    assert not set(broken) & set(imported)

    # quotas: never more than 5 jobs at once, never more than 5 import calls in any second
    assert truth["max_active_import_jobs"] <= 5
    log = world.sim.request_log
    for operation in IMPORT_OPS:
        assert log.max_calls_per_second(operation, accepted_only=True) <= 5
    both = sorted(r.at for op in IMPORT_OPS for r in log.records(op) if r.ok)
    assert _max_in_window(both, 1.0) <= 5  # one budget for both operations
    # the external job is outside our 5 slots, so HealthOmics may answer 402 now and then:
    # such a plan waits and starts later with the same clientToken, it never fails
    calls = world.sim.import_calls
    started = {call["clientToken"] for call in calls if call["error"] is None}
    for call in calls:
        if call["error"] in {"ServiceQuotaExceededException", "ThrottlingException"}:
            assert call["clientToken"] in started, call
    assert len(truth["import_jobs"]) > 5  # the limits were exercised, not idle

    with world.engine.connect() as connection:
        letters = (
            connection.execute(select(dead_letters.c.reason).where(dead_letters.c.kind == "import"))
            .scalars()
            .all()
        )
        retried = connection.execute(
            select(func.count()).select_from(import_jobs).where(import_jobs.c.attempt > 1)
        ).scalar_one()
    assert retried >= 1
    assert len(letters) == len(broken)
    for uri in broken:
        assert any(uri in reason and "permanent" in reason for reason in letters), uri

    def notified() -> set[str]:
        text = "\n".join(n.get("Message", "") for n in seen)
        return {uri for uri in broken if uri in text}

    seen: list[dict[str, Any]] = []
    wait_for(lambda: seen.extend(world.notices()) or notified() == set(broken), 30, "SNS")
    assert all("What to do" in n["Message"] for n in seen)

    # the projections are folds: emptied and folded again from the log, they are the same
    wait_for(lambda: quiescent(world), 60, "every event the simulator sent is folded")
    with world.engine.begin() as connection:
        live = import_projections.snapshot(connection)
        folded = import_projections.rebuild(connection)
        rebuilt = import_projections.snapshot(connection)
    assert folded > len(drop.uris)
    assert rebuilt == live
    sources = {row[0]: row for row in live["import_sources"]}
    assert set(sources) >= expected | set(broken)


@pytest.mark.slow
def test_jobs_whose_end_events_are_lost_are_found_ended_by_the_watchdog(import_world) -> None:
    """EventBridge is best effort: with every import-job event dropped, the imports pool asks
    GetReadSetImportJob after ``IMPORT_JOB_WATCH_INTERVAL`` and finishes each job as its end
    event would have: failed sources retried, every read set imported once, nothing owed."""
    job_event = "Read Set Import Job Status Change"
    world = import_world(
        faults={
            "drop_rate": 1.0,
            "drop_types": frozenset({job_event}),
            "transient_source_failure_rate": 0.3,
        },
        import_job_watch_interval=1.0,
    )
    drop = lab_drop(world.incoming, pairs=8, bams=6, crams=4, ubams=0, seed=23)
    world.sim.drop_files(drop.uris)
    wait_for(lambda: _done(world, drop), 120, "every read set imported without a job event")

    truth = world.sim.ground_truth()
    assert truth["events"]["dropped"].get(job_event, 0) >= len(truth["import_jobs"])
    assert set(world.finished_sources().values()) == {1}  # retried, never imported twice
    with world.engine.connect() as connection:
        logged_job_events = connection.execute(
            select(func.count()).select_from(events).where(events.c.detail_type == job_event)
        ).scalar_one()
        checked = connection.execute(
            select(func.count())
            .select_from(events)
            .where(events.c.detail_type == import_projections.JOB_CHECKED)
        ).scalar_one()
        statuses = set(connection.execute(select(import_jobs.c.status)).scalars())
        attempts = connection.execute(select(func.max(import_jobs.c.attempt))).scalar_one()
    assert logged_job_events == 0
    assert attempts > 1  # transient failures were found by the watchdog, and retried
    assert checked == len(truth["import_jobs"])
    assert statuses <= {"COMPLETED", "COMPLETED_WITH_FAILURES"}


# --- pairing, sidecars, projections -----------------------------------------------------------


@pytest.mark.slow
def test_late_mate_is_reported_then_still_paired(import_world) -> None:
    world = import_world(import_mate_wait=1.0)
    r1 = f"s3://{world.incoming}/runs/SUBJ-9/LATE/LATE_R1.fastq.gz"
    r2 = f"s3://{world.incoming}/runs/SUBJ-9/LATE/LATE_R2.fastq.gz"
    world.sim.drop_files([r1])

    def outcome() -> str | None:
        with world.engine.connect() as connection:
            return connection.execute(
                select(import_sources.c.outcome).where(import_sources.c.source_key == r1)
            ).scalar_one_or_none()

    wait_for(lambda: outcome() == "orphaned" and world.imports_owed() == 0, 60, "mate missing")
    with world.engine.connect() as connection:
        (reason,) = connection.execute(
            select(dead_letters.c.reason).where(dead_letters.c.kind == "import")
        ).scalars()
    assert r2 in reason and "did not arrive" in reason
    assert world.imported() == {}

    world.sim.drop_files([r2])
    wait_for(lambda: r1 in world.imported() and world.imports_owed() == 0, 60, "late pair")
    ((read_set,),) = world.imported().values()
    assert read_set["source2"] == r2 and read_set["sampleId"] == "LATE"


@pytest.mark.slow
def test_sidecar_manifests_name_the_ids(import_world, s3) -> None:
    world = import_world(import_ids_from="sidecar", import_mate_wait=20.0)
    base = f"s3://{world.incoming}/runs/flat"
    early = f"{base}/tumour.cram"
    late = f"{base}/normal.bam"
    invalid = f"{base}/broken.bam"
    manifest = {
        "subjectId": "PT-7",
        "sampleId": "TUMOUR-7",
        "referenceArn": REFERENCE,
        "description": "tumour biopsy",
    }
    world.sim.drop_files([(f"{early}.json", json.dumps(manifest).encode()), early])
    world.sim.drop_files([late, (f"{invalid}.json", b'{"subjectId": ""}'), invalid])
    wait_for(lambda: early in world.imported(), 60, "sidecar import")
    # the late file waits for its manifest; when it lands, the file goes at once
    world.sim.drop_files(
        [(f"{late}.json", json.dumps({"subjectId": "PT-7", "sampleId": "NORMAL-7"}).encode())]
    )
    wait_for(lambda: late in world.imported() and world.imports_owed() == 0, 60, "late sidecar")
    imported = world.imported()
    assert imported[early][0]["sampleId"] == "TUMOUR-7"
    assert imported[late][0]["sampleId"] == "NORMAL-7"
    assert invalid not in imported

    def samples() -> dict[str | None, str | None]:
        with world.engine.connect() as connection:
            query = select(read_sets.c.source_key, read_sets.c.sample_id)
            return dict(connection.execute(query).all())

    # a read set's own events can be folded before the import job's end event names its
    # source, so wait for both read sets to be tied to their sources
    wait_for(lambda: set(samples()) == {early, late}, 60, "read sets tied to their sources")
    with world.engine.connect() as connection:
        (reason,) = connection.execute(
            select(dead_letters.c.reason).where(dead_letters.c.kind == "import")
        ).scalars()
    assert reason.startswith(f"{invalid}: sidecar manifest") and "not valid" in reason
    assert samples() == {early: "TUMOUR-7", late: "NORMAL-7"}
    jobs = world.sim.ground_truth()["import_jobs"].values()
    (tumour,) = [s for job in jobs for s in job["sources"] if s["source1"] == early]
    assert tumour["sampleId"] == "TUMOUR-7"


# --- the pieces -------------------------------------------------------------------------------


def test_concurrency_limit_is_shared_through_redis(make_settings, redis_url, redis_prefix):
    settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
    one = ConcurrencyLimiter.from_settings(settings, "jobs", limit=2, ttl=30)
    two = ConcurrencyLimiter.from_settings(settings, "jobs", limit=2, ttl=30)
    assert one.acquire("a") and two.acquire("b")
    assert not one.acquire("c") and not two.acquire("c")
    assert two.acquire("a")  # renewing one's own slot never takes a second one
    one.release("a")
    assert two.acquire("c")
    assert sorted(one.holders()) == ["b", "c"]
    short = ConcurrencyLimiter.from_settings(settings, "short", limit=1, ttl=0.05)
    assert short.acquire("lost-event")
    wait_for(lambda: short.acquire("next"), 5, "an expired lease frees its slot")
