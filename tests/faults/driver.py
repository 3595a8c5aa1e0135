"""One drill for every fault scenario: a steady stream, a fault mid-run, settle, check.

Why one driver: the scenarios differ only in *what* goes wrong; the stream, the processes, the
settling and the invariants are the same, so a fault is a small function and every scenario is
held to exactly the same standard (``tests/faults/invariants.py``).

The system runs as in production, as separate processes (``devtools.stack.ProcessStack``):
the SQS poller, the sweeper and one ``omics-events worker`` per pool, configured through
environment variables.  Around them, on loopback:

* moto (the session's server) for S3, SQS, SNS and CloudWatch; CloudWatch is reached through a
  :class:`~tests.helpers.fault_proxy.FaultProxy`
  (``AWS_ENDPOINT_URL_CLOUDWATCH``) so it can be cut, and
  so is S3 by the archive pool (``AWS_ENDPOINT_URL_S3``, that pool only);
* PostgreSQL is the shared server, reached by the stack through a ``FaultProxy`` so an outage
  can be simulated without stopping a server other tests are using (the checks read it
  directly);
* Redis is a private ``redis-server`` of the drill, so it can be killed and come back empty;
  the stack reaches it through a ``FaultProxy`` too, so its connections can be cut (a network
  blip: every connection closed, new ones refused) while the server and its data stay;
* the HealthOmics simulator emits into the drill's own SQS queue and answers the workers' API
  calls; the NGS360 receiver takes the callbacks.

Waits are deadlines on conditions; no assertion is about time.  Times are *measured* (time to
recover) and reported, never asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from devtools.ngs360_receiver import Ngs360Receiver
from devtools.stack import ProcessStack, RedisServer
from eventlog.db import create_db_engine
from eventlog.tables import events, outbox
from schemas.settings import Settings
from simulator import Simulator, SimulatorServer, SystemClock, realistic_mix
from simulator.local_aws import free_port, local_aws_environment
from tests.helpers.common import unique, wait_for
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.import_world import REFERENCE, ROLE
from workers.archive import archived_through

ARCHIVE_PREFIX = "omics-run-events"
POOLS = ("archive", "enrich", "callback", "imports", "metrics")
#: ``FAULTS_SOAK=1``: a stream ten times longer (on demand, never in CI).
SOAK = os.environ.get("FAULTS_SOAK", "") not in ("", "0", "false")


@dataclass(frozen=True)
class Stream:
    """The steady load of one scenario (a *round*: scenarios share one running system).

    Sized for CI: 8 runs with their tasks plus read-set imports make one to two hundred events
    over ~6 s of wall time; the soak variant makes each round ten times longer.
    """

    runs: int = 8
    speed: float = 250.0  # simulated seconds per wall second
    stagger: float = 80.0  # mean simulated gap between two run submissions
    import_jobs: int = 1  # jobs "someone else" starts (their failed sources are ours to retry)
    pairs: int = 3
    singles: int = 3
    junk: int = 1
    drop_every: float = 0.7  # wall seconds between two drops of lab files

    @classmethod
    def default(cls) -> Stream:
        if SOAK:
            return cls(runs=100, import_jobs=5, pairs=30, singles=30, junk=5)
        return cls()


@dataclass
class Drill:
    """Everything a fault and a check may touch."""

    settings: Settings
    stack: ProcessStack
    sim: Simulator
    receiver: Ngs360Receiver
    redis: RedisServer
    redis_proxy: FaultProxy
    pg_proxy: FaultProxy
    cloudwatch_proxy: FaultProxy
    s3_proxy: FaultProxy  # the archive pool's way to S3
    sqs: Any
    s3: Any
    queue_url: str
    archive_bucket: str
    incoming: str
    engine: Engine
    log_dir: Path
    secrets: dict[str, str]
    stream: Stream
    #: source1 -> source2 of the valid lab files dropped (must each be imported once)
    sources: dict[str, str | None] = field(default_factory=dict)
    #: junk files and planned permanent failures: must be dead-lettered with a reason
    undeliverable: set[str] = field(default_factory=set)
    #: Object Created event id -> the file's URI
    drop_events: dict[str, str] = field(default_factory=dict)
    #: raw bodies of malformed messages put on the queue
    malformed: list[bytes] = field(default_factory=list)
    #: what the scenario says about itself (figures for the report)
    notes: dict[str, Any] = field(default_factory=dict)
    samples: int = 0  # lab samples named so far (names stay unique across rounds)
    stream_done: threading.Event = field(default_factory=threading.Event)
    stream_error: list[BaseException] = field(default_factory=list)

    # --- reading the system -------------------------------------------------------------------

    def scalar(self, query: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def delivered_ids(self) -> set[str]:
        """Distinct ids of every event the simulator put on the queue (dropped ones never)."""
        return {event["id"] for event in self.sim.delivered_events}

    def logged_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            query = select(events.c.event_id).where(events.c.origin == "aws")
            return list(connection.execute(query).scalars())

    def archived_ids(self) -> list[str]:
        """The events at or before the archive cursor: those inside a batch object (the
        objects themselves are checked by ``invariants.log_and_archive``)."""
        with self.engine.connect() as connection:
            query = select(events.c.event_id).where(
                events.c.origin == "aws", events.c.seq <= archived_through(connection)
            )
            return list(connection.execute(query).scalars())

    def unfinished_work(self, upto: int | None = None) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
        if upto is not None:
            query = query.where(outbox.c.id <= upto)
        return int(self.scalar(query))

    def last_outbox_id(self) -> int:
        return int(self.scalar(select(func.max(outbox.c.id))) or 0)

    def queue_depth(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def wes_ids(self) -> dict[str, str]:
        """run id -> WESRunId of every run tagged with one."""
        runs = self.sim.ground_truth()["runs"]
        return {
            rid: run["tags"]["WESRunId"] for rid, run in runs.items() if "WESRunId" in run["tags"]
        }

    def send_raw(self, bodies: list[bytes]) -> list[bytes]:
        """Put raw bodies on the queue as another producer would; returns those SQS took (it
        refuses bodies that are not valid XML characters, which no producer can send)."""
        taken = []
        for body in bodies:
            try:
                text = body.decode("utf-8")
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)
            except (UnicodeDecodeError, self.sqs.exceptions.ClientError):
                continue
            except Exception as error:  # botocore's own checks (size, characters)
                if "InvalidMessageContents" in str(error) or "MessageTooLong" in str(error):
                    continue
                raise
            taken.append(body)
        return taken


# --- the stream ---------------------------------------------------------------------------------


JUNK_NAMES = ("notes.docx", "SampleSheet.csv", "reads.fastq.zip", "run.log", ".DS_Store")


def _lab_groups(drill: Drill, seed: int) -> list[list[str]]:
    """This round's lab files in upload groups (a FASTQ pair lands together, as a sequencer's
    copy job uploads it), in random order, under ``runs/{subject}/{sample}/`` with names unique
    across rounds.  Some sources are planned to fail: transiently (retried, then imported) or
    for good (given up with the reason)."""
    stream, rng = drill.stream, random.Random(seed)
    base = f"s3://{drill.incoming}/runs"
    groups: list[list[str]] = []
    sources: dict[str, str | None] = {}
    junk: list[str] = []

    def folder() -> tuple[str, str]:
        drill.samples += 1
        sample = f"NA{20000 + drill.samples}"
        return f"{base}/SUBJ-{drill.samples % 7:03d}/{sample}", sample

    for _ in range(stream.pairs):
        path, sample = folder()
        r1, r2 = (
            f"{path}/{sample}_S1_L001_R1_001.fastq.gz",
            f"{path}/{sample}_S1_L001_R2_001.fastq.gz",
        )
        sources[r1] = r2
        groups.append([r1, r2])
    for index in range(stream.singles):
        path, sample = folder()
        uri = f"{path}/{sample}." + ("bam", "cram", "fq.gz")[index % 3]
        sources[uri] = None
        groups.append([uri])
    for index in range(stream.junk):
        path, _sample = folder()
        junk.append(f"{path}/{JUNK_NAMES[index % len(JUNK_NAMES)]}")
        groups.append([junk[-1]])
    rng.shuffle(groups)
    ordered = sorted(sources)
    for uri in ordered[1::3]:
        drill.sim.plan_source_outcomes(uri, "transient", "ok")
    permanent = ordered[0]
    drill.sim.plan_source_outcomes(permanent, "permanent")
    drill.sources.update({k: v for k, v in sources.items() if k != permanent})
    drill.undeliverable.update({permanent, *junk})
    return groups


def drop_singles(drill: Drill, count: int) -> list[str]:
    """Drop ``count`` single read files now (outside the round's plan), to be imported once."""
    uris = []
    for _ in range(count):
        drill.samples += 1
        sample = f"NA{20000 + drill.samples}"
        uris.append(
            f"s3://{drill.incoming}/runs/SUBJ-{drill.samples % 7:03d}/{sample}/{sample}.bam"
        )
    drill.sources.update(dict.fromkeys(uris))
    for event in drill.sim.drop_files(uris):
        detail = event["detail"]
        drill.drop_events[event["id"]] = (
            f"s3://{detail['bucket']['name']}/{detail['object']['key']}"
        )
    return uris


def run_round(drill: Drill, seed: int) -> None:
    """One round of the stream: submit the runs, drop the lab files at a steady pace, wait
    until every run and job of the round has ended, then release what the simulator still
    holds back (reordered events).  The simulator keeps ticking afterwards: import jobs the
    pool starts later must still move."""
    sim = drill.sim
    try:
        stream = drill.stream
        groups = _lab_groups(drill, seed)
        realistic_mix(
            sim,
            runs=stream.runs,
            tasks_per_run=(1, 3),
            import_jobs=stream.import_jobs,
            sources_per_job=(1, 3),
            stagger=stream.stagger,
        )
        per_drop = max(1, -(-len(groups) * 2 // max(1, stream.runs)))
        for start in range(0, len(groups), per_drop):
            files = [uri for group in groups[start : start + per_drop] for uri in group]
            for event in sim.drop_files(files):
                detail = event["detail"]
                uri = f"s3://{detail['bucket']['name']}/{detail['object']['key']}"
                drill.drop_events[event["id"]] = uri
            time.sleep(stream.drop_every)
        deadline = time.monotonic() + 600
        while not (sim.all_terminal() and sim.next_due() is None):
            if time.monotonic() > deadline:
                raise AssertionError("the simulation did not end within 600 s")
            time.sleep(0.2)
        sim.drain()
    except BaseException as error:  # surfaced by the test thread
        drill.stream_error.append(error)
    finally:
        drill.stream_done.set()


def recovery_seconds(drill: Drill, timeout: float) -> float | None:
    """Seconds from now (the fault's end) until the work the fault found owed is done.

    "Owed": every event the simulator had delivered by now archived, and every outbox row that
    existed now finished.  None if that did not happen within ``timeout`` (the invariants then
    say what is missing).
    """
    started = time.monotonic()
    owed_events = drill.delivered_ids()
    upto = drill.last_outbox_id()

    def caught_up() -> bool:
        return owed_events <= set(drill.archived_ids()) and drill.unfinished_work(upto) == 0

    try:
        wait_for(caught_up, timeout, "the backlog left by the fault")
    except AssertionError:
        return None
    return round(time.monotonic() - started, 1)


# --- building the drill -------------------------------------------------------------------------


def drill_settings(**values: Any) -> Settings:
    """Production settings with every delay shortened so a drill settles in seconds: redelivery
    and sweeps, retry backoffs, the reconciler (runs whose events were dropped), import waits."""
    defaults: dict[str, Any] = {
        # what a killed worker held, or a lost Redis, is owed again this long after: recovery
        # from every kill waits for it (production: 300 s)
        "outbox_redeliver_after": 5.0,
        "sweep_interval": 1.0,
        "task_retry_backoff_max": 2,
        "broker_visibility_timeout": 30,
        "worker_pool": "threads",
        "worker_concurrency": 2,
        "poller_wait_seconds": 1,
        "poller_report_interval": 5.0,
        "reconcile_after": 8.0,
        "reconcile_interval": 2.0,
        "enrich_outputs_wait": 20.0,
        "callback_retry_window": 900.0,
        "callback_backoff_max": 2.0,
        "import_batch_window": 0.5,
        "import_mate_wait": 20.0,
        "import_retry_delay": 0.5,
        "import_retry_delay_max": 2.0,
        "import_quota_wait": 1.0,
        "import_max_attempts": 8,
        "import_job_watch_interval": 5.0,  # jobs whose end event was dropped
        "metrics_enabled": True,
        "metrics_flush_interval": 1.0,
        "metrics_drop_after": 300.0,
        "alert_dead_letter_interval": 5.0,
        "log_level": "INFO",
    }
    return Settings(**(defaults | values))


@contextmanager
def private_database(base_url: str, template: str) -> Iterator[str]:
    """A fresh database cloned from the migrated template (as the ``pg_url`` fixture does, for
    a system that outlives one test); dropped afterwards."""
    import psycopg

    admin_url = make_url(base_url).set(drivername="postgresql")
    libpq = admin_url.render_as_string(hide_password=False)
    name = unique("oe_faults_")
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def build_drill(
    *,
    pg_url: str,
    aws_endpoint: str,
    log_dir: Path,
    seed: int,
    stream: Stream | None = None,
    faults: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Iterator[Drill]:
    """Start everything (processes last, so they find their servers up); stop everything on
    the way out, whatever happened."""
    with ExitStack() as stack:
        region = "us-east-1"
        # this process's own clients (the simulator's SQS and S3, the checks) need credentials
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for key, value in local_aws_environment(aws_endpoint, region).items():
            patch.setenv(key, value)
        s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name=region)
        sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name=region)
        sns = boto3.client("sns", endpoint_url=aws_endpoint, region_name=region)
        archive, incoming, outputs = unique("oe-arch-"), unique("lab-in-"), unique("oe-out-")
        for name in (archive, incoming, outputs):
            s3.create_bucket(Bucket=name)
        queue_url = sqs.create_queue(
            QueueName=unique("oe-faults-"), Attributes={"VisibilityTimeout": "10"}
        )["QueueUrl"]
        topic = sns.create_topic(Name=unique("oe-alerts-"))["TopicArn"]

        redis = RedisServer(free_port(), log_dir / "redis.log").start()
        stack.callback(redis.stop)
        redis_proxy = FaultProxy(f"tcp://127.0.0.1:{redis.port}").start()
        stack.callback(redis_proxy.stop)
        pg = make_url(pg_url)
        pg_proxy = FaultProxy(f"tcp://{pg.host or '127.0.0.1'}:{pg.port or 5432}").start()
        stack.callback(pg_proxy.stop)
        cloudwatch_proxy = FaultProxy(aws_endpoint).start()
        stack.callback(cloudwatch_proxy.stop)
        s3_proxy = FaultProxy(aws_endpoint).start()
        stack.callback(s3_proxy.stop)

        sim = Simulator(
            seed=seed,
            speed=(stream or Stream.default()).speed,
            clock=SystemClock(),
            queue_url=queue_url,
            endpoint_url=aws_endpoint,
            output_bucket=outputs,
            **(faults or {}),
        )
        stack.callback(sim.stop)
        server = SimulatorServer(sim)
        omics_url = server.start()
        stack.callback(server.stop)
        api_key = "ngs360-key-" + uuid.uuid4().hex
        receiver = Ngs360Receiver(api_key, auto_register=True)
        receiver.start()
        stack.callback(receiver.stop)

        values: dict[str, Any] = {
            "database_url": pg.set(port=pg_proxy.port, host="127.0.0.1").render_as_string(
                hide_password=False
            ),
            "redis_url": f"redis://127.0.0.1:{redis_proxy.port}/0",
            "redis_key_prefix": unique("oe-faults-") + ":",
            "archive_uri": f"s3://{archive}/{ARCHIVE_PREFIX}",
            "ngs360_api_url": receiver.url,
            "ngs360_api_key": api_key,
            "import_sources": [f"s3://{incoming}/runs"],
            "import_sequence_store_id": sim.sequence_store_id,
            "import_role_arn": ROLE,
            "import_reference_arn": REFERENCE,
            "import_notify_topic_arn": topic,
            "alerts_topic_arn": topic,
            "metrics_namespace": unique("OmicsFaults"),
        }
        config = drill_settings(**(values | (settings or {})))
        aws_secret = "aws-secret-" + uuid.uuid4().hex
        processes = ProcessStack(
            config,
            log_dir,
            supervise=True,  # as the containers' restart policy (docker-compose.yml)
            # CPU and peak memory are figures only (a sample walks every process on the machine)
            sample_interval=2.0,
            extra_env={
                "AWS_ENDPOINT_URL": aws_endpoint,
                "AWS_ENDPOINT_URL_OMICS": omics_url,
                "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch_proxy.url,
                "AWS_SECRET_ACCESS_KEY": aws_secret,
            },
        )
        stack.callback(processes.close)
        engine = create_db_engine(pg_url)
        stack.callback(engine.dispose)
        drill = Drill(
            settings=config,
            stack=processes,
            sim=sim,
            receiver=receiver,
            redis=redis,
            redis_proxy=redis_proxy,
            pg_proxy=pg_proxy,
            cloudwatch_proxy=cloudwatch_proxy,
            s3_proxy=s3_proxy,
            sqs=sqs,
            s3=s3,
            queue_url=queue_url,
            archive_bucket=archive,
            incoming=incoming,
            engine=engine,
            log_dir=log_dir,
            secrets={"NGS360_API_KEY": api_key, "AWS_SECRET_ACCESS_KEY": aws_secret},
            stream=stream or Stream.default(),
        )
        sim.start(interval=0.05)
        for pool in POOLS:
            # the archive pool reaches S3 through a proxy, so that S3 can be cut for it alone
            env = {"AWS_ENDPOINT_URL_S3": s3_proxy.url} if pool == "archive" else None
            processes.start_pool(pool, concurrency=3, env=env)
        processes.start_sweeper(every=config.sweep_interval)
        processes.start_poller([queue_url])
        yield drill


@contextmanager
def streaming(drill: Drill, seed: int) -> Iterator[threading.Thread]:
    """Run one round of the stream in a thread for the block."""
    drill.stream_done.clear()
    drill.stream_error.clear()
    thread = threading.Thread(target=run_round, args=(drill, seed), name="stream", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(60)


def dump_figures(path: Path, row: dict[str, Any]) -> None:
    """Append one scenario's figures to the results file (JSON lines; parallel-safe appends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as stream, contextlib.suppress(OSError):
        stream.write(json.dumps(row, sort_keys=True) + "\n")
