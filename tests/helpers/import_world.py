"""The read-set imports world: lab drops in moto S3, the simulator over HTTP, the SQS poller,
PostgreSQL, Redis, and the imports pool embedded or as real worker processes.

``import_world(processes=…, faults=…, **settings)`` (a fixture, registered in
tests/conftest.py) builds one; :func:`lab_drop` writes the files a lab drops.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from devtools.stack import settings_environment
from eventlog.tables import outbox
from producers.poller import Poller, PollerOptions
from schemas.settings import Settings
from simulator import Simulator, SimulatorServer, SystemClock
from tests.helpers.common import REPO, unique
from workers import create_app, embedded_worker

ROLE = "arn:aws:iam::123456789012:role/OmicsImportRole"


REFERENCE = "arn:aws:omics:us-east-1:123456789012:referenceStore/1234567890/reference/9876543210"


@dataclass
class LabDrop:
    """Files a lab drops, and what should become of them."""

    uris: list[str] = field(default_factory=list)
    #: source1 -> source2 (None for single files) of every source that must be imported
    sources: dict[str, str | None] = field(default_factory=dict)
    junk: list[str] = field(default_factory=list)


def lab_drop(
    bucket: str,
    *,
    pairs: int,
    bams: int,
    crams: int,
    ubams: int,
    singles: int = 0,
    junk: int = 0,
    seed: int = 5,
    prefix: str = "runs",
) -> LabDrop:
    """Realistic names under ``{prefix}/{subject}/{sample}/``; shuffled, so an R2 often lands
    before its R1 and mates are far apart."""
    drop = LabDrop()
    base = f"s3://{bucket}/{prefix}"
    n = 0

    def folder() -> tuple[str, str]:
        nonlocal n
        n += 1
        sample = f"NA{12000 + n}"
        return f"{base}/SUBJ-{n % 17:03d}/{sample}", sample

    for _ in range(pairs):
        path, sample = folder()
        r1 = f"{path}/{sample}_S1_L001_R1_001.fastq.gz"
        r2 = f"{path}/{sample}_S1_L001_R2_001.fastq.gz"
        drop.uris += [r1, r2]
        drop.sources[r1] = r2
    for count, suffix in ((bams, "bam"), (crams, "cram"), (ubams, "unaligned.bam")):
        for _ in range(count):
            path, sample = folder()
            uri = f"{path}/{sample}.{suffix}"
            drop.uris.append(uri)
            drop.sources[uri] = None
    for _ in range(singles):
        path, sample = folder()
        uri = f"{path}/{sample}_single.fq.gz"
        drop.uris.append(uri)
        drop.sources[uri] = None
    junk_names = ("notes.docx", ".DS_Store", "SampleSheet.csv", "reads.fastq.zip", "run.log")
    for index in range(junk):
        path, _sample = folder()
        uri = f"{path}/{junk_names[index % len(junk_names)]}"
        drop.uris.append(uri)
        drop.junk.append(uri)
    random.Random(seed).shuffle(drop.uris)
    return drop


@dataclass
class ImportWorld:
    sim: Simulator
    settings: Settings
    apps: list[Any]
    incoming: str
    sqs: Any
    notices_url: str
    poller: Poller
    queue_url: str = ""

    @property
    def engine(self) -> Any:
        return self.apps[0].runtime.engine

    def notices(self) -> list[dict[str, Any]]:
        """SNS notifications delivered to the test's subscribed queue so far (read once)."""
        found = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.notices_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.notices_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def imports_owed(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.stage == "imports", outbox.c.done_at.is_(None))
                ).scalar_one()
            )

    def imported(self) -> dict[str, list[dict[str, Any]]]:
        """source1 -> the ACTIVE read sets the simulator holds for it."""
        found: dict[str, list[dict[str, Any]]] = {}
        for read_set_id, read_set in self.sim.ground_truth()["read_sets"].items():
            if read_set["status"] == "ACTIVE":
                found.setdefault(read_set["source1"], []).append({"id": read_set_id, **read_set})
        return found

    def finished_sources(self) -> Counter[str]:
        """How often each source1 ended FINISHED in any job the simulator ran."""
        counts: Counter[str] = Counter()
        for job in self.sim.ground_truth()["import_jobs"].values():
            for source in job["sources"]:
                if source["status"] == "FINISHED":
                    counts[source["source1"]] += 1
        return counts


@contextmanager
def worker_processes(
    settings: Settings, pool: str, count: int, log_dir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` real ``omics-events worker --pool POOL`` processes (threads, 2 each)."""
    env = os.environ | settings_environment(settings) | {"PYTHONUNBUFFERED": "1"}
    processes = []
    for index in range(count):
        with open(log_dir / f"{pool}-{index}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "omics_events",
                        "worker",
                        "--pool",
                        pool,
                        "--pool-type",
                        "threads",
                        "--concurrency",
                        "2",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def import_world(
    make_settings: Callable[..., Settings],
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Callable[..., ImportWorld]]:
    """Build the world: ``import_world(processes=2, faults={...}, **settings)``.

    ``processes=0``: the imports pool runs in this process, in the one embedded worker (with
    the archive pool).  ``processes=N``: N real ``omics-events worker --pool imports``
    processes, each with its own app, limiter and Redis connections, and the embedded worker
    archives only.  (One embedded worker per process: Celery workers share kombu's event loop.)
    """
    stack = ExitStack()

    def build(
        *,
        processes: int = 0,
        faults: dict[str, Any] | None = None,
        metrics: bool = False,
        **overrides: Any,
    ) -> ImportWorld:
        s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
        sqs = boto3.client("sqs", endpoint_url=aws_env, region_name="us-east-1")
        sns = boto3.client("sns", endpoint_url=aws_env, region_name="us-east-1")
        incoming, archive, outputs = unique("lab-in-"), unique("oe-arch-"), unique("oe-out-")
        for name in (incoming, archive, outputs):
            s3.create_bucket(Bucket=name)
        queue_url = sqs.create_queue(
            QueueName=unique("oe-imports-"), Attributes={"VisibilityTimeout": "10"}
        )["QueueUrl"]
        topic = sns.create_topic(Name=unique("oe-notices-"))["TopicArn"]
        notices_url = sqs.create_queue(QueueName=unique("oe-notices-"))["QueueUrl"]
        notices_arn = sqs.get_queue_attributes(QueueUrl=notices_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=notices_arn)

        sim = Simulator(
            seed=17,
            speed=1000.0,
            clock=SystemClock(),
            queue_url=queue_url,
            endpoint_url=aws_env,
            output_bucket=outputs,
            **(faults or {}),
        )
        server = SimulatorServer(sim)
        monkeypatch.setenv("AWS_ENDPOINT_URL_OMICS", server.start())
        stack.callback(server.stop)
        values: dict[str, Any] = {
            "database_url": pg_url,
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
            "archive_uri": f"s3://{archive}/omics-run-events",
            # long enough that a backlog is not re-published while it waits in Redis; deferred
            # work (mate waits, retries, quota waits) does not depend on it
            "outbox_redeliver_after": 60.0,
            "task_retry_backoff_max": 2,
            "import_sources": [f"s3://{incoming}/runs"],
            "import_sequence_store_id": sim.sequence_store_id,
            "import_role_arn": ROLE,
            "import_reference_arn": REFERENCE,
            "import_batch_window": 1.0,
            "import_mate_wait": 60.0,
            "import_retry_delay": 0.5,
            "import_retry_delay_max": 2.0,
            "import_quota_wait": 1.0,
            "import_max_attempts": 8,
            "import_notify_topic_arn": topic,
            "metrics_enabled": metrics,
            "metrics_namespace": unique("OmicsTest"),
            "metrics_flush_interval": 0.5,
            "alerts_topic_arn": topic,
        }
        values.update(overrides)
        settings = make_settings(**values)
        app = create_app(settings)
        queues = ["archive"] if processes else ["archive", "imports"]
        if metrics:
            queues.append("metrics")  # the metrics pool (and the alerts) follow the log
        stack.enter_context(
            embedded_worker(app, queues, pool="threads", concurrency=4, hostname="embedded@test")
        )
        if processes:
            stack.enter_context(worker_processes(settings, "imports", processes, tmp_path))
        poller = Poller(
            app,
            PollerOptions(queue_urls=[queue_url], receivers=2, wait_seconds=1, sweep_interval=0.5),
            report=lambda _snapshot: None,
        )
        thread = threading.Thread(target=poller.run, name="poller", daemon=True)
        thread.start()
        stack.callback(thread.join, 30)
        stack.callback(poller.stop)
        sim.start(interval=0.02)
        stack.callback(sim.stop)
        return ImportWorld(sim, settings, [app], incoming, sqs, notices_url, poller, queue_url)

    yield build
    stack.close()
