"""The HealthOmics simulator, exercised the way the workers use it: real boto3 over HTTP.

Every test talks to a real moto server (SQS, S3) and a real uvicorn-served simulator, with a
``ManualClock`` so time moves only when the test says so.  Names are unique per test so the file
can run in parallel with itself and with other suites.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter, defaultdict

import boto3
import botocore.config
import httpx
import pytest
from botocore.exceptions import ClientError

from simulator import (
    DEFAULT_TPS_LIMITS,
    ManualClock,
    Simulator,
    SimulatorServer,
    is_transient_message,
    realistic_mix,
)
from simulator.cli import main as cli_main
from simulator.local_aws import start_local_aws

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROLE = "arn:aws:iam::123456789012:role/OmicsImportRole"
EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
RUN_ORDER = ["PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED"]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws():
    local = start_local_aws()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def sqs(aws):
    return boto3.client("sqs", endpoint_url=aws.endpoint_url, region_name=REGION, **CREDS)


@pytest.fixture
def s3(aws):
    return boto3.client("s3", endpoint_url=aws.endpoint_url, region_name=REGION, **CREDS)


@pytest.fixture
def queue_url(sqs):
    url = sqs.create_queue(QueueName=f"sim-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def bucket():
    return f"sim-out-{uuid.uuid4().hex[:12]}"


def omics_client(url: str, **config):
    return boto3.client(
        "omics",
        endpoint_url=url,
        region_name=REGION,
        config=botocore.config.Config(inject_host_prefix=False, **config),
        **CREDS,
    )


@pytest.fixture
def make_sim(aws, queue_url, bucket):
    """Build a simulator (ManualClock, SQS + S3 on moto) and serve it; stops everything after."""
    servers: list[SimulatorServer] = []
    sims: list[Simulator] = []

    def build(**kwargs):
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("clock", ManualClock())
        kwargs.setdefault("queue_url", queue_url)
        kwargs.setdefault("endpoint_url", aws.endpoint_url)
        kwargs.setdefault("output_bucket", bucket)
        sim = Simulator(**kwargs)
        server = SimulatorServer(sim)
        url = server.start()
        sims.append(sim)
        servers.append(server)
        return sim, omics_client(url), url

    yield build
    for sim in sims:
        sim.stop()
    for server in servers:
        server.stop()


def receive_all(sqs, queue_url: str) -> list[dict]:
    """Every message body now in the queue (deleted as read)."""
    bodies: list[dict] = []
    empty = 0
    while empty < 2:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            empty += 1
            continue
        empty = 0
        for message in messages:
            bodies.append(json.loads(message["Body"]))
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return bodies


def statuses_by_resource(events: list[dict], detail_type: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if event["detail-type"] == detail_type:
            out[event["resources"][0]].append(event["detail"]["status"])
    return out


def fastq(name: str, bucket: str = "lab-incoming") -> dict:
    return {
        "sourceFiles": {
            "source1": f"s3://{bucket}/{name}_R1.fastq.gz",
            "source2": f"s3://{bucket}/{name}_R2.fastq.gz",
        },
        "sourceFileType": "FASTQ",
        "subjectId": f"subj-{name}",
        "sampleId": name,
    }


# -- runs over boto3 --------------------------------------------------------------------------


def test_get_run_and_tags_over_boto3(make_sim):
    sim, omics, _url = make_sim()
    wes = str(uuid.uuid4())
    run_id = sim.add_run(
        delay=30, tasks=4, wes_run_id=wes, callback_url="https://ngs360.example/api"
    )

    with pytest.raises(ClientError) as missing:
        omics.get_run(id=run_id)  # not submitted yet
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    sim.advance(31)
    pending = omics.get_run(id=run_id)
    assert pending["status"] == "PENDING"
    assert "startTime" not in pending and "stopTime" not in pending

    sim.run_until_idle()
    run = omics.get_run(id=run_id)
    assert run["status"] == "COMPLETED"
    assert run["id"] == run_id and run_id.isdigit()
    assert run["arn"] == f"arn:aws:omics:us-east-1:123456789012:run/{run_id}"
    uuid.UUID(run["uuid"])
    assert run["runOutputUri"] == f"{run['outputUri']}/{run_id}"
    assert run["logLocation"]["runLogStream"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/omics/WorkflowLog:"
        f"log-stream:run/{run_id}"
    )
    assert run["tags"]["WESRunId"] == wes
    assert run["tags"]["callback_url"] == "https://ngs360.example/api"
    assert run["creationTime"] <= run["startTime"] <= run["stopTime"]
    assert run["creationTime"].tzinfo is not None
    assert "failureReason" not in run
    assert {"workflowId", "workflowUuid", "name", "roleArn"} <= set(run)

    listed = [i for p in omics.get_paginator("list_runs").paginate() for i in p["items"]]
    assert [i["id"] for i in listed] == [run_id] and listed[0]["status"] == "COMPLETED"
    assert omics.list_runs(status="RUNNING")["items"] == []

    tags = omics.list_tags_for_resource(resourceArn=run["arn"])["tags"]
    assert tags == run["tags"]
    with pytest.raises(ClientError) as bad:
        omics.get_run(id="not-a-number")
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_list_run_tasks_paginator_over_150_tasks(make_sim):
    sim, omics, _url = make_sim(queue_url=None)  # 600 task events: spare moto's SQS
    run_id = sim.add_run(tasks=150, outcome="COMPLETED")
    sim.run_until_idle()

    pages = list(
        omics.get_paginator("list_run_tasks").paginate(id=run_id, PaginationConfig={"PageSize": 40})
    )
    items = [item for page in pages for item in page["items"]]
    assert [len(p["items"]) for p in pages] == [40, 40, 40, 30]
    assert len({item["taskId"] for item in items}) == 150
    assert {item["status"] for item in items} == {"COMPLETED"}
    assert all(item["creationTime"] <= item["startTime"] <= item["stopTime"] for item in items)

    everything = omics.list_run_tasks(id=run_id)  # default page size is 100
    assert len(everything["items"]) == 100 and "nextToken" in everything

    task = omics.get_run_task(id=run_id, taskId=items[17]["taskId"])
    assert task["name"] == items[17]["name"]
    assert task["logStream"].endswith(f":log-stream:run/{run_id}/task/{task['taskId']}")
    assert task["cpus"] >= 1 and task["memory"] >= 1

    with pytest.raises(ClientError) as bad_token:
        omics.list_run_tasks(id=run_id, startingToken="garbage")
    assert bad_token.value.response["Error"]["Code"] == "ValidationException"


def test_failed_run_carries_reason_and_names_the_task(make_sim, sqs, queue_url):
    sim, omics, _url = make_sim()
    run_id = sim.add_run(tasks=6, outcome="FAILED", failure_reason="RUN_TASK_FAILED")
    sim.run_until_idle()

    run = omics.get_run(id=run_id)
    assert run["status"] == "FAILED"
    assert run["failureReason"] == "RUN_TASK_FAILED"
    match = re.match(
        r"Run failed due to task: (\S+), id: (\d+), failure\. Use the GetRunTask API .* "
        r"log stream: (\S+) to debug the failure\.",
        run["statusMessage"],
    )
    assert match, run["statusMessage"]
    task = omics.get_run_task(id=run_id, taskId=match.group(2))
    assert task["status"] == "FAILED" and task["name"] == match.group(1)
    assert task["logStream"] == match.group(3)
    tasks = omics.list_run_tasks(id=run_id)["items"]
    assert all(t["status"] in {"COMPLETED", "FAILED", "CANCELLED"} for t in tasks)

    events = receive_all(sqs, queue_url)
    run_events = [e for e in events if e["detail-type"] == "Run Status Change"]
    assert sorted(e["detail"]["status"] for e in run_events) == sorted(
        ["PENDING", "STARTING", "RUNNING", "FAILED"]
    )
    failed = next(e for e in run_events if e["detail"]["status"] == "FAILED")
    assert failed["detail"]["failureReason"] == "RUN_TASK_FAILED"
    assert failed["detail"]["statusMessage"] == run["statusMessage"]
    assert all("failureReason" not in e["detail"] for e in run_events if e is not failed)
    assert sim.outputs_written == {}  # failed runs export nothing


def test_events_in_sqs_have_the_eventbridge_shape(make_sim, sqs, queue_url):
    sim, _omics, _url = make_sim()
    plan = realistic_mix(
        sim, runs=6, tasks_per_run=(2, 4), fail_rate=0.2, cancel_rate=0.2, import_jobs=1, stagger=30
    )
    sim.run_until_idle()
    events = receive_all(sqs, queue_url)

    assert len(events) == len(sim.delivered_events) > 0
    assert sorted(e["id"] for e in events) == sorted(e["id"] for e in sim.delivered_events)
    assert len({e["id"] for e in events}) == len(events)  # no faults: every id once
    for event in events:
        assert set(event) == {
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
            "resources",
            "detail",
        }
        assert event["version"] == "0" and event["source"] == "aws.omics"
        assert uuid.UUID(event["id"]).version == 4
        assert EVENT_TIME.match(event["time"])
        assert event["account"] == "123456789012" and event["region"] == REGION
        assert len(event["resources"]) == 1
        detail = event["detail"]
        assert detail["omicsVersion"] == "1.0.0"
        assert all(isinstance(v, str) for v in detail.values())
        if event["detail-type"] == "Task Status Change":
            assert "taskId" not in detail and "name" not in detail
            assert detail["arn"] == event["resources"][0]
            assert re.match(r"arn:aws:omics:us-east-1:123456789012:task/\d+$", detail["arn"])
        if event["detail-type"] == "Read Set Import Job Status Change":
            assert set(detail) >= {"id", "sequenceStoreId", "status"} and "jobId" not in detail

    # statuses per run, in the order sent, follow the lifecycle and match the plan
    sent_runs = statuses_by_resource(sim.delivered_events, "Run Status Change")
    truth = sim.ground_truth()["runs"]
    for run_id, outcome in plan.outcomes.items():
        seq = sent_runs[f"arn:aws:omics:us-east-1:123456789012:run/{run_id}"]
        assert seq[-1] == outcome == truth[run_id]["status"]
        if outcome == "COMPLETED":
            assert seq == RUN_ORDER
        elif outcome == "FAILED":
            assert seq == ["PENDING", "STARTING", "RUNNING", "FAILED"]
        else:
            assert seq[:-1] == RUN_ORDER[: len(seq) - 1]
    for statuses in statuses_by_resource(sim.delivered_events, "Task Status Change").values():
        assert statuses[0] == "PENDING"
        assert statuses[-1] in {"COMPLETED", "FAILED", "CANCELLED"}
    jobs = statuses_by_resource(sim.delivered_events, "Read Set Import Job Status Change")
    assert [s[:2] for s in jobs.values()] == [["SUBMITTED", "IN_PROGRESS"]]
    assert sim.all_terminal() and sim.is_idle()


def test_outputs_json_written_to_s3_for_completed_runs(make_sim, s3, bucket):
    sim, omics, _url = make_sim()
    done = sim.add_run(tasks=3, outcome="COMPLETED")
    cancelled = sim.add_run(tasks=3, outcome="CANCELLED", cancel_phase="RUNNING")
    sim.run_until_idle()

    run = omics.get_run(id=done)
    key_uri = f"{run['runOutputUri']}/logs/outputs.json"
    assert set(sim.outputs_written) == {key_uri}
    key = key_uri.removeprefix(f"s3://{bucket}/")
    stored = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert stored == sim.outputs_written[key_uri]
    files = [v for v in stored.values() if isinstance(v, dict)]
    arrays = [v for v in stored.values() if isinstance(v, list)]
    scalars = [v for v in stored.values() if not isinstance(v, dict | list)]
    assert files and arrays and scalars
    for item in files + [f for a in arrays for f in a]:
        assert item["class"] == "File" and item["size"] > 0
        assert item["location"].startswith(f"{run['runOutputUri']}/out/")
        assert item["location"].endswith("/" + item["basename"])
    truth = sim.ground_truth()["runs"]
    assert truth[done]["outputs"] == stored and truth[cancelled]["outputs"] is None
    mapping = sim.expected_output_mapping(done)
    assert mapping["aligned_bam"] == stored["aligned_bam"]["location"]
    assert mapping["qc_reports"] == [f["location"] for f in stored["qc_reports"]]
    assert sim.expected_output_mapping(cancelled) is None
    assert omics.get_run(id=cancelled)["status"] == "CANCELLED"


def test_cancel_run_at_runtime(make_sim):
    sim, omics, _url = make_sim()
    run_id = sim.add_run(tasks=8)
    sim.tick()
    while (
        omics.get_run(id=run_id)["status"] != "RUNNING"
        or not omics.list_run_tasks(id=run_id)["items"]
    ):
        sim.advance(15)
    sim.cancel_run(run_id)
    sim.tick()
    run = omics.get_run(id=run_id)
    assert run["status"] == "CANCELLED" and "stopTime" in run
    assert {t["status"] for t in omics.list_run_tasks(id=run_id)["items"]} <= {
        "COMPLETED",
        "CANCELLED",
    }
    sim.run_until_idle()  # the old plan must not resurrect the run
    assert omics.get_run(id=run_id)["status"] == "CANCELLED"
    assert statuses_by_resource(sim.delivered_events, "Run Status Change")[run["arn"]][-1] == (
        "CANCELLED"
    )
    with pytest.raises(ValueError):
        sim.cancel_run(run_id)


# -- read-set imports -------------------------------------------------------------------------


def test_import_job_sources_fail_transiently_or_permanently(make_sim):
    sim, omics, _url = make_sim()
    store = sim.sequence_store_id
    ok, flaky, broken = fastq("ok"), fastq("flaky"), fastq("broken")
    sim.plan_source_outcomes(flaky["sourceFiles"]["source1"], "transient")
    sim.plan_source_outcomes(broken["sourceFiles"]["source1"], "permanent")

    job = omics.start_read_set_import_job(
        sequenceStoreId=store, roleArn=ROLE, sources=[ok, flaky, broken]
    )
    assert job["status"] == "SUBMITTED" and len(job["id"]) >= 10
    sim.run_until_idle()
    done = omics.get_read_set_import_job(sequenceStoreId=store, id=job["id"])
    assert done["status"] == "COMPLETED_WITH_FAILURES" and "completionTime" in done
    by_sample = {s["sampleId"]: s for s in done["sources"]}
    assert by_sample["ok"]["status"] == "FINISHED" and by_sample["ok"]["readSetId"]
    assert by_sample["flaky"]["status"] == "FAILED" and "readSetId" not in by_sample["flaky"]
    assert by_sample["broken"]["status"] == "FAILED" and "readSetId" not in by_sample["broken"]
    assert is_transient_message(by_sample["flaky"]["statusMessage"])
    assert not is_transient_message(by_sample["broken"]["statusMessage"])

    # retrying only the failed sources: the transient one succeeds, the permanent one does not
    retry = omics.start_read_set_import_job(
        sequenceStoreId=store, roleArn=ROLE, sources=[flaky, broken], clientToken="retry-1"
    )
    sim.run_until_idle()
    again = omics.get_read_set_import_job(sequenceStoreId=store, id=retry["id"])
    by_sample = {s["sampleId"]: s for s in again["sources"]}
    assert by_sample["flaky"]["status"] == "FINISHED"
    assert by_sample["broken"]["status"] == "FAILED"
    assert (
        by_sample["broken"]["statusMessage"]
        == {s["sampleId"]: s for s in done["sources"]}["broken"]["statusMessage"]
    )

    events = sim.delivered_events
    job_events = statuses_by_resource(events, "Read Set Import Job Status Change")
    assert sorted(job_events.values()) == [
        ["SUBMITTED", "IN_PROGRESS", "COMPLETED_WITH_FAILURES"],
        ["SUBMITTED", "IN_PROGRESS", "COMPLETED_WITH_FAILURES"],
    ]
    read_sets = statuses_by_resource(events, "Read Set Status Change")
    finished_id = {s["sampleId"]: s for s in done["sources"]}["ok"]["readSetId"]
    arn = f"arn:aws:omics:us-east-1:123456789012:sequenceStore/{store}/readSet/{finished_id}"
    assert read_sets[arn] == ["PROCESSING_UPLOAD", "ACTIVE"]
    rs_event = next(e for e in events if e["resources"] == [arn])
    assert rs_event["detail"]["creationJobId"] == job["id"]
    assert all(s[-1] in {"ACTIVE", "UPLOAD_FAILED"} for s in read_sets.values())
    truth = sim.ground_truth()["import_jobs"][job["id"]]
    assert [s["failure"] for s in truth["sources"]] == [None, "transient", "permanent"]


def test_start_import_validates_like_the_service(make_sim):
    sim, _omics, url = make_sim()
    store = sim.sequence_store_id
    raw = omics_client(url, parameter_validation=False, retries={"total_max_attempts": 1})
    bam = {
        **fastq("x"),
        "sourceFileType": "BAM",
        "sourceFiles": {"source1": "s3://lab-incoming/x.bam"},
    }
    cases = {
        "no sources": [],
        "101 sources": [fastq(f"s{i}") for i in range(101)],
        "bad type": [{**fastq("x"), "sourceFileType": "SAM"}],
        "BAM without reference": [bam],
        "not s3": [{**fastq("x"), "sourceFiles": {"source1": "https://example.com/x.fq"}}],
    }
    for label, sources in cases.items():
        with pytest.raises(ClientError) as err:
            raw.start_read_set_import_job(sequenceStoreId=store, roleArn=ROLE, sources=sources)
        assert err.value.response["Error"]["Code"] == "ValidationException", label
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ok = raw.start_read_set_import_job(
        sequenceStoreId=store,
        roleArn=ROLE,
        sources=[
            {
                **bam,
                "referenceArn": "arn:aws:omics:us-east-1:123456789012:referenceStore/1/reference/2",
            }
        ],
    )
    assert ok["status"] == "SUBMITTED"
    with pytest.raises(ClientError) as missing:
        raw.get_read_set_import_job(sequenceStoreId=store, id="1234567890")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    calls = sim.import_calls
    assert [c["error"] for c in calls] == ["ValidationException"] * 5 + [None]


def test_client_token_returns_the_same_job(make_sim):
    sim, omics, _url = make_sim()
    store = sim.sequence_store_id
    kwargs = {"sequenceStoreId": store, "roleArn": ROLE, "sources": [fastq("tok")]}
    first = omics.start_read_set_import_job(clientToken="same-token", **kwargs)
    sim.advance(60)
    second = omics.start_read_set_import_job(clientToken="same-token", **kwargs)
    third = omics.start_read_set_import_job(clientToken="other-token", **kwargs)
    assert second["id"] == first["id"] and second["creationTime"] == first["creationTime"]
    assert third["id"] != first["id"]
    listed = omics.list_read_set_import_jobs(sequenceStoreId=store)["importJobs"]
    assert sorted(j["id"] for j in listed) == sorted({first["id"], third["id"]})
    calls = sim.import_calls
    assert [(c["clientToken"], c["reused"]) for c in calls] == [
        ("same-token", False),
        ("same-token", True),
        ("other-token", False),
    ]


def test_import_quota_answers_402(make_sim):
    sim, _omics, url = make_sim()
    omics = omics_client(url, retries={"total_max_attempts": 1})
    store = sim.sequence_store_id
    ids = [
        omics.start_read_set_import_job(
            sequenceStoreId=store, roleArn=ROLE, sources=[fastq(f"q{i}")]
        )["id"]
        for i in range(5)
    ]
    with pytest.raises(ClientError) as err:
        omics.start_read_set_import_job(sequenceStoreId=store, roleArn=ROLE, sources=[fastq("q5")])
    assert err.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert sim.max_active_import_jobs == 5

    sim.run_until_idle()
    omics.start_read_set_import_job(sequenceStoreId=store, roleArn=ROLE, sources=[fastq("q6")])
    sim.set_faults(import_quota=1)
    with pytest.raises(ClientError):
        omics.start_read_set_import_job(sequenceStoreId=store, roleArn=ROLE, sources=[fastq("q7")])
    assert sim.max_active_import_jobs == 5
    assert len(ids) == 5
    assert sim.request_log.error_codes("StartReadSetImportJob") == Counter(
        {"ServiceQuotaExceededException": 2}
    )


def test_list_read_set_import_jobs_filters_and_pages(make_sim):
    sim, omics, _url = make_sim(import_quota=20)
    store = sim.sequence_store_id
    early = [
        omics.start_read_set_import_job(
            sequenceStoreId=store, roleArn=ROLE, sources=[fastq(f"e{i}")]
        )["id"]
        for i in range(4)
    ]
    sim.run_until_idle()
    late = [
        omics.start_read_set_import_job(
            sequenceStoreId=store, roleArn=ROLE, sources=[fastq(f"l{i}")]
        )["id"]
        for i in range(3)
    ]
    pages = list(
        omics.get_paginator("list_read_set_import_jobs").paginate(
            sequenceStoreId=store, PaginationConfig={"PageSize": 3}
        )
    )
    assert [len(p["importJobs"]) for p in pages] == [3, 3, 1]
    assert sorted(j["id"] for p in pages for j in p["importJobs"]) == sorted(early + late)
    completed = omics.list_read_set_import_jobs(
        sequenceStoreId=store, filter={"status": "COMPLETED"}
    )["importJobs"]
    assert sorted(j["id"] for j in completed) == sorted(early)
    first_late = omics.get_read_set_import_job(sequenceStoreId=store, id=late[0])
    recent = omics.list_read_set_import_jobs(
        sequenceStoreId=store, filter={"createdAfter": first_late["creationTime"]}
    )["importJobs"]
    assert sorted(j["id"] for j in recent) == sorted(late)


# -- faults, throttling, the request log ------------------------------------------------------


def test_throttling_per_operation(make_sim):
    sim, _omics, url = make_sim(throttle={"GetRun": 0.01})
    omics = omics_client(url, retries={"total_max_attempts": 1})
    run_id = sim.add_run(tasks=1)
    sim.tick()
    omics.get_run(id=run_id)
    with pytest.raises(ClientError) as err:
        omics.get_run(id=run_id)
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    omics.list_run_tasks(id=run_id)  # other operations have their own limit (none here)

    sim.set_faults(throttle=True)  # the documented defaults, at runtime
    assert sim.faults.tps_limits() == DEFAULT_TPS_LIMITS
    attempts = 40
    for _ in range(attempts):
        try:
            omics.list_tags_for_resource(
                resourceArn=f"arn:aws:omics:us-east-1:123456789012:run/{run_id}"
            )
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ThrottlingException"
    log = sim.request_log
    tags = log.records("ListTagsForResource")
    assert len(tags) == attempts
    assert log.max_calls_per_second("ListTagsForResource", accepted_only=True) <= 5
    assert {r.status for r in tags} <= {200, 429}
    assert all(r.error_code == "ThrottlingException" for r in tags if r.status == 429)
    # attempted faster than allowed <=> something was throttled
    attempted_peak = log.max_calls_per_second("ListTagsForResource")
    assert (attempted_peak > 5) == any(r.status == 429 for r in tags)
    assert log.counts()["GetRun"] == Counter({200: 1, 429: 1})


@pytest.mark.slow
def test_api_latency_holds_every_operation_but_not_the_health_check(make_sim):
    """A client that will not wait the latency gets no answer; the simulator's own paths and a
    patient client do (benches compare systems against a slow HealthOmics with this knob)."""
    sim, omics, url = make_sim(api_latency=5.0)
    run_id = sim.add_run(tasks=1)
    sim.tick()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{url}/run/{run_id}", timeout=0.5)
    assert httpx.get(f"{url}/_simulator/health", timeout=30).json()["ok"] is True
    sim.set_faults(api_latency=0.0)
    assert omics.get_run(id=run_id)["id"] == run_id
    with pytest.raises(ValueError):
        sim.set_faults(api_latency=-1.0)


def test_api_error_injection_and_wire_format(make_sim):
    sim, _omics, url = make_sim()
    raw = httpx.get(f"{url}/run/4242")
    assert raw.status_code == 404
    assert raw.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert "message" in raw.json()
    unknown = httpx.delete(f"{url}/workflow/1")
    assert unknown.status_code == 404
    assert unknown.headers["x-amzn-ErrorType"] == "UnknownOperationException"

    sim.set_faults(api_error_rate=1.0)
    omics = omics_client(url, retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as err:
        omics.get_run(id="4242")
    assert err.value.response["Error"]["Code"] == "InternalServerException"
    with pytest.raises(ValueError):
        sim.set_faults(drop_rate=1.5)
    with pytest.raises(TypeError):
        sim.set_faults(no_such_knob=1)


def test_delivery_faults_duplicate_reorder_drop():
    sim = Simulator(
        seed=11,
        clock=ManualClock(),
        duplicate_rate=0.2,
        reorder_rate=0.2,
        drop_rate=0.1,
    )
    realistic_mix(sim, runs=8, tasks_per_run=(3, 6), import_jobs=2, stagger=20)
    sim.run_until_idle()
    stats = sim.delivery_stats
    delivered = sim.delivered_events
    emitted = sum(stats.emitted.values())
    assert len(delivered) == emitted - sum(stats.dropped.values()) + sum(stats.duplicated.values())
    for kind in stats.emitted:
        assert stats.delivered[kind] == (
            stats.emitted[kind] - stats.dropped[kind] + stats.duplicated[kind]
        )
    ids = Counter(e["id"] for e in delivered)
    dropped = {d["id"] for d in sim.dropped_events}
    assert dropped and not dropped & set(ids)
    assert sum(1 for n in ids.values() if n == 2) == sum(stats.duplicated.values()) > 0
    # reordering really inverts a resource's statuses
    rank = {s: i for i, s in enumerate(RUN_ORDER)}
    inverted = 0
    for statuses in statuses_by_resource(delivered, "Run Status Change").values():
        ranks = [rank.get(s, len(RUN_ORDER)) for s in statuses]
        inverted += any(b < a for a, b in itertools.pairwise(ranks))
    assert inverted > 0 and sum(stats.reordered.values()) > 0
    assert sim.pipeline.held_count == 0  # nothing stays held once idle


RUN_NEXT = {
    "PENDING": {"STARTING", "CANCELLED"},
    "STARTING": {"RUNNING", "CANCELLED"},
    "RUNNING": {"STOPPING", "FAILED", "CANCELLED"},
    "STOPPING": {"COMPLETED", "CANCELLED"},
}
TASK_NEXT = {
    "PENDING": {"STARTING", "FAILED", "CANCELLED"},
    "STARTING": {"RUNNING", "FAILED", "CANCELLED"},
    "RUNNING": {"COMPLETED", "FAILED", "CANCELLED"},
}


@pytest.mark.parametrize("seed", range(12))
def test_lifecycles_hold_for_many_seeds(seed):
    """Invariants over whole simulations (in memory: no queue, no bucket)."""
    sim = Simulator(
        seed=seed,
        clock=ManualClock(),
        speed=(1, 10, 100)[seed % 3],
        transient_source_failure_rate=0.2,
        permanent_source_failure_rate=0.1,
        import_quota=2,
    )
    realistic_mix(sim, runs=10, tasks_per_run=(0, 8), fail_rate=0.3, cancel_rate=0.3, import_jobs=4)
    sim.run_until_idle()
    assert sim.is_idle() and sim.all_terminal()
    runs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    tasks: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for event in sim.delivered_events:
        d = event["detail"]
        if event["detail-type"] == "Run Status Change":
            runs[d["runId"]].append((event["time"], d["status"]))
        elif event["detail-type"] == "Task Status Change":
            tasks[(d["runId"], d["arn"])].append((event["time"], d["status"]))
    windows = {}
    for run_id, seq in runs.items():
        statuses = [s for _, s in seq]
        assert statuses[0] == "PENDING"
        assert all(b in RUN_NEXT[a] for a, b in itertools.pairwise(statuses)), statuses
        assert [t for t, _ in seq] == sorted(t for t, _ in seq)
        if "RUNNING" in statuses:
            windows[run_id] = (dict((s, t) for t, s in seq)["RUNNING"], seq[-1][0])
    for (run_id, _arn), seq in tasks.items():
        statuses = [s for _, s in seq]
        assert statuses[0] == "PENDING"
        assert all(b in TASK_NEXT[a] for a, b in itertools.pairwise(statuses)), statuses
        low, high = windows[run_id]  # tasks live inside the run's RUNNING phase
        assert low <= seq[0][0] and seq[-1][0] <= high
    truth = sim.ground_truth()
    assert truth["max_active_import_jobs"] <= 2  # internal submitters respect the quota
    for run in truth["runs"].values():
        assert (run["outputs"] is not None) == (run["status"] == "COMPLETED")
        if run["status"] == "FAILED":
            assert run["failureReason"] and run["statusMessage"]
        if run["failureReason"] in {"RUN_TASK_FAILED", "OUT_OF_MEMORY_ERROR"}:
            assert [t["status"] for t in run["tasks"].values()].count("FAILED") == 1
    for job in truth["import_jobs"].values():
        statuses = [src["status"] for src in job["sources"]]
        expected = (
            "COMPLETED"
            if set(statuses) == {"FINISHED"}
            else "FAILED"
            if set(statuses) == {"FAILED"}
            else "COMPLETED_WITH_FAILURES"
        )
        assert job["status"] == expected
        for src in job["sources"]:
            assert (src["readSetId"] is not None) == (src["status"] == "FINISHED")
            assert (src["failure"] is None) == (src["status"] == "FINISHED")


def test_same_seed_same_story():
    def story(deterministic_ids: bool) -> list[dict]:
        sim = Simulator(
            seed=5,
            clock=ManualClock(),
            deterministic_ids=deterministic_ids,
            duplicate_rate=0.1,
            reorder_rate=0.1,
        )
        realistic_mix(sim, runs=5, tasks_per_run=(2, 5), import_jobs=1)
        sim.run_until_idle()
        return sim.delivered_events

    first, second = story(True), story(True)
    assert first == second
    third = story(False)
    assert [(e["detail-type"], e["time"], e["detail"]["status"]) for e in third] == [
        (e["detail-type"], e["time"], e["detail"]["status"]) for e in first
    ]
    assert not {e["id"] for e in third} & {e["id"] for e in first}


# -- real time: the ticker thread and the command ---------------------------------------------


def test_ticker_thread_drives_a_real_clock(aws, sqs, queue_url, bucket):
    sim = Simulator(
        seed=3, speed=5000, queue_url=queue_url, endpoint_url=aws.endpoint_url, output_bucket=bucket
    )
    plan = realistic_mix(sim, runs=3, tasks_per_run=(2, 3), import_jobs=1, stagger=10)
    with SimulatorServer(sim) as server:
        omics = omics_client(server.url)
        results: list[str] = []

        def poll() -> None:  # a concurrent API client while the ticker mutates state
            for _ in range(20):
                results.append(omics.get_run(id=plan.run_ids[0])["status"])

        sim.start(interval=0.01)
        poller = threading.Thread(target=poll)
        poller.start()
        # a liveness guard only (the simulated work takes well under a second of wall time)
        deadline = time.monotonic() + 60
        while not (sim.all_terminal() and sim.next_due() is None) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.all_terminal(), sim.summary()
        poller.join()
        sim.stop()
        sim.drain()
        assert sim.tick_errors == 0
        assert set(results) <= {
            "PENDING",
            "STARTING",
            "RUNNING",
            "STOPPING",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
        }
    events = receive_all(sqs, queue_url)
    assert len(events) == len(sim.delivered_events)
    truth = sim.ground_truth()["runs"]
    assert {truth[r]["status"] for r in plan.run_ids} <= {"COMPLETED", "FAILED", "CANCELLED"}


def test_cli_simulate_until_done(aws, sqs, s3, queue_url, bucket, tmp_path, capsys):
    summary = tmp_path / "truth.json"
    status = cli_main(
        [
            "--queue-url",
            queue_url,
            "--endpoint-url",
            aws.endpoint_url,
            "--output-bucket",
            bucket,
            "--runs",
            "3",
            "--import-jobs",
            "1",
            "--speed",
            "5000",
            "--stagger",
            "5",
            "--seed",
            "2",
            "--linger",
            "0",
            "--duplicate-rate",
            "0.1",
            "--summary-json",
            str(summary),
        ]
    )
    assert status == 0
    truth = json.loads(summary.read_text())
    assert all(r["terminal"] for r in truth["runs"].values())
    events = receive_all(sqs, queue_url)
    assert len(events) == sum(truth["events"]["delivered"].values())
    for uri in truth["outputs_written"]:
        key = uri.removeprefix(f"s3://{bucket}/")
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    out = capsys.readouterr().out
    assert "Simulation summary" in out and "finished" in out
