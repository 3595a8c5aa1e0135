"""What every end-to-end bench shares: the fakes, the workload, the emitter, the measurements.

Not a bench itself (see ``bench/end_to_end.py``, ``bench/per_pool.py``, ``bench/burst.py``).
The pieces:

* :class:`Bench` — an ``ExitStack`` that owns everything a bench starts and tears it all down on
  exit, Ctrl-C and SIGTERM included: moto as its own process (``bench/moto_server.py``, so its
  CPU is not the bench's GIL), the HealthOmics simulator's REST API, the local NGS360 receiver,
  a fresh PostgreSQL database per pipeline run (dropped), a Redis key prefix per run (deleted),
  the ``ProcessStack`` of real ``python -m omics_events`` processes;
* :func:`generate` — a realistic stream from the simulator: runs (with tasks, some failing, some
  cancelled, every run tagged with a ``WESRunId``) and read-set import jobs, driven to the end on
  a manual clock; their ``outputs.json`` are in S3 and the simulator's API answers GetRun /
  ListRunTasks for them, so the same events can be fed to the pipeline and to the baseline;
* :class:`Emitter` — sends those events into SQS through the simulator's own ``SqsSink``, as fast
  as possible or at a fixed rate, and records the wall time each event was emitted (EventBridge's
  ``time`` has one-second resolution, so latency is measured from this emission time);
* :func:`latencies` — emission to callback accepted by the receiver, per event id;
* :class:`Calls` — the requests each fake saw during one measured run (S3 by method from moto's
  own count, HealthOmics by operation and throttled ones from the simulator's request log,
  NGS360 from the receiver), so every system is charged for the same thing the same way;
* :func:`machine` and :func:`append_section` — the machine, versions and load average, and the
  ``--write`` section appended to ``docs/benchmarks.md``.

The fakes' knobs (:func:`add_fake_arguments`; every one 0/off by default, applied to every
system a bench runs, so pipeline and baselines face the same services):

* ``--s3-latency S`` — every S3 request waits S seconds in moto's server thread
  (``bench/moto_server.py``; server-side, so no client can skip or shorten it);
* ``--omics-latency S`` — every HealthOmics API call waits S seconds in the simulator
  (``Faults.api_latency``);
* ``--ngs360-latency S`` — every request to the NGS360 receiver waits S seconds
  (``Ngs360Receiver.slow``);
* ``--throttle`` — the simulator enforces the documented HealthOmics TPS quotas
  (``DEFAULT_TPS_LIMITS``: GetRun, ListRunTasks 10/s, StartReadSetImportJob 5/s, …) and answers
  ``ThrottlingException`` (429) past them; the pipeline's shared limiter then runs at its
  default (documented) quotas instead of the lifted ones, the baseline has only botocore's
  retries.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import psutil
import psycopg
import redis as redis_lib
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from celeryconfig import QUEUES  # noqa: E402
from devtools.ngs360_receiver import Ngs360Receiver  # noqa: E402
from devtools.stack import ProcessStack, ProcessUsage  # noqa: E402
from eventlog.db import create_db_engine, upgrade  # noqa: E402
from eventlog.tables import events, outbox  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from simulator import (  # noqa: E402
    ManualClock,
    MemorySink,
    S3OutputStore,
    Simulator,
    SimulatorServer,
    SqsSink,
    realistic_mix,
)
from simulator.local_aws import free_port, local_aws_environment  # noqa: E402
from workers.archive import archived_through  # noqa: E402

console = Console(width=160)
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
API_KEY = "bench-" + "k" * 26
ROLE = "arn:aws:iam::123456789012:role/OmicsImportRole"
#: Without ``--throttle`` the HealthOmics TPS quotas are lifted for both the pipeline and the
#: baseline: the simulator does not throttle, and the pipeline's shared limiter is set this high
#: (docs/design.md §4).  With it, the limiter keeps its documented defaults.
RATE_LIMITS = ["GetRun=1000", "ListRunTasks=1000", "ListTagsForResource=1000"]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "DELETED"}
MOTO_STATS_PATH = "/_bench/requests"  # bench/moto_server.py


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- the fakes -------------------------------------------------------------------------------


@dataclass
class Fakes:
    """moto (S3, SQS, CloudWatch, SNS), the simulator's API and the NGS360 receiver."""

    aws_url: str
    moto: subprocess.Popen[bytes]
    sim: Simulator
    omics_url: str
    receiver: Ngs360Receiver
    output_bucket: str
    archive_bucket: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.aws_url, region_name="us-east-1")

    def queue(self, name: str) -> str:
        return str(
            self.client("sqs").create_queue(
                QueueName=f"{name}-{uuid.uuid4().hex[:8]}",
                Attributes={"VisibilityTimeout": "120"},
            )["QueueUrl"]
        )

    def requests(self) -> dict[str, dict[str, int]]:
        """Requests moto has answered so far: ``{service: {HTTP method: count}}``."""
        with urllib.request.urlopen(f"{self.aws_url}{MOTO_STATS_PATH}", timeout=10) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def _start_moto(logs: Path, s3_latency: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(logs / "moto.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "bench" / "moto_server.py"),
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
                "--s3-latency",
                str(s3_latency),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return process, f"http://127.0.0.1:{port}"
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"moto server did not start (see {logs / 'moto.log'})")


class Bench:
    """Owns every resource of one bench command; ``with Bench(...) as bench:``."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        seed: int = 42,
        *,
        s3_latency: float = 0.0,
        omics_latency: float = 0.0,
        ngs360_latency: float = 0.0,
        throttle: bool = False,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.seed = seed
        self.s3_latency = s3_latency
        self.omics_latency = omics_latency
        self.ngs360_latency = ngs360_latency
        self.throttle = throttle
        self.stack = ExitStack()
        self.databases: list[str] = []
        self.prefixes: list[str] = []
        self.logs = Path(f"/tmp/oe-bench-{uuid.uuid4().hex[:8]}")
        self.logs.mkdir(parents=True)
        self.fakes: Fakes | None = None
        self.load_start = os.getloadavg()

    def __enter__(self) -> Bench:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _interrupt)
            self.stack.callback(signal.signal, signal.SIGTERM, previous)
        saved = dict(os.environ)
        self.stack.callback(_restore_environment, saved)
        self.stack.callback(self._cleanup)
        try:
            self.fakes = self._start_fakes()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _start_fakes(self) -> Fakes:
        moto, aws_url = _start_moto(self.logs, self.s3_latency)
        self.stack.callback(_end_process, moto)
        os.environ.update(local_aws_environment(aws_url))
        s3 = boto3.client("s3", endpoint_url=aws_url, region_name="us-east-1")
        output_bucket, archive_bucket = f"oe-out-{self.seed}", "oe-bench-archive"
        for name in (output_bucket, archive_bucket):
            s3.create_bucket(Bucket=name)
        sim = Simulator(
            seed=self.seed,
            clock=ManualClock(),
            sink=MemorySink(),
            output_store=S3OutputStore(endpoint_url=aws_url),
            output_bucket=output_bucket,
            api_latency=self.omics_latency,
            throttle=self.throttle,
        )
        server = SimulatorServer(sim)
        omics_url = server.start()
        self.stack.callback(server.stop)
        os.environ["AWS_ENDPOINT_URL_OMICS"] = omics_url
        receiver = Ngs360Receiver(API_KEY, auto_register=True)
        receiver.start()
        self.stack.callback(receiver.stop)
        return Fakes(aws_url, moto, sim, omics_url, receiver, output_bucket, archive_bucket)

    # -- per pipeline run: a database, a Redis prefix, settings ------------------------------

    def settings(self, **overrides: Any) -> Settings:
        """Fresh database and Redis prefix; the production settings of a benchmarked stack."""
        assert self.fakes is not None
        name = f"oe_bench_{uuid.uuid4().hex[:10]}"
        with _admin(self.database_url) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        url = make_url(self.database_url).set(database=name).render_as_string(hide_password=False)
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        prefix = f"oe-bench-{uuid.uuid4().hex[:10]}:"
        self.prefixes.append(prefix)
        values: dict[str, Any] = {
            "database_url": url,
            "redis_url": self.redis_url,
            "redis_key_prefix": prefix,
            "archive_uri": f"s3://{self.fakes.archive_bucket}/{name}",
            "ngs360_api_url": self.fakes.receiver.url,  # a run passes its own receiver
            "ngs360_api_key": SecretStr(API_KEY),
            "omics_rate_limits": [] if self.throttle else RATE_LIMITS,
            "reconcile_interval": 0.0,
            "import_sequence_store_id": self.fakes.sim.sequence_store_id,
            "import_role_arn": ROLE,
            "metrics_namespace": f"OmicsBench{uuid.uuid4().hex[:6]}",
            "metrics_flush_interval": 1.0,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(**values)

    def receiver(self, latency: float | None = None) -> Ngs360Receiver:
        """A fresh NGS360 receiver (one per measured run: its records are that run's), taking
        ``latency`` seconds per request (a remote API's round trip; default: the bench's
        ``--ngs360-latency``)."""
        receiver = Ngs360Receiver(API_KEY, auto_register=True)
        receiver.start()
        receiver.slow(self.ngs360_latency if latency is None else latency)
        self.stack.callback(receiver.stop)
        return receiver

    def process_stack(self, settings: Settings, name: str) -> ProcessStack:
        stack = ProcessStack(settings, self.logs / name)
        self.stack.callback(stack.close)
        return stack

    def _cleanup(self) -> None:
        with contextlib.suppress(Exception), _admin(self.database_url) as admin:
            for name in self.databases:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            client = redis_lib.Redis.from_url(self.redis_url)
            for prefix in self.prefixes:
                keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
                for start in range(0, len(keys), 1000):
                    client.delete(*keys[start : start + 1000])


def _restore_environment(saved: dict[str, str]) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


def _admin(base_url: str) -> psycopg.Connection:
    libpq = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=True)


def _end_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# --- the workload ----------------------------------------------------------------------------


def generate(sim: Simulator, count: int, tasks: tuple[int, int] = (1, 4)) -> list[dict[str, Any]]:
    """At least ``count`` events from the simulator, cut to ``count``: rounds of 10 runs (15 %
    failing, 10 % cancelled) and one import job, each round driven to its end."""
    sink = sim.sink
    assert isinstance(sink, MemorySink)
    produced: list[dict[str, Any]] = []
    while len(produced) < count:
        realistic_mix(sim, runs=10, tasks_per_run=tasks, import_jobs=1, wes_tag_rate=1.0)
        sim.run_until_idle()
        produced.extend(sink.events)
        sink.events.clear()
    return produced[:count]


def is_run_event(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.omics" and event.get("detail-type") == "Run Status Change"


# --- emitting ----------------------------------------------------------------------------------


@dataclass
class Emitter:
    """Sends events into SQS queues (all of them get every event); records emission times."""

    queue_urls: Sequence[str]
    endpoint_url: str
    emitted_at: dict[str, float] = field(default_factory=dict)
    threads: int = 4

    def send(self, stream: Sequence[dict[str, Any]], rate: float | None = None) -> float:
        """As fast as possible (``rate=None``, batches of 10 from a few threads) or ``rate``
        events per second (paced, each event sent when due); returns seconds it took."""
        started = time.monotonic()
        if rate is None:
            batches = [list(stream[i : i + 10]) for i in range(0, len(stream), 10)]
            lanes = [batches[i :: self.threads] for i in range(self.threads)]
            workers = [
                threading.Thread(target=self._lane, args=(lane,), daemon=True) for lane in lanes
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        else:
            sinks = self._sinks()
            for index, event in enumerate(stream):
                due = started + index / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._send(sinks, [event])
        return time.monotonic() - started

    def _sinks(self) -> list[SqsSink]:
        return [SqsSink(url, endpoint_url=self.endpoint_url) for url in self.queue_urls]

    def _lane(self, batches: list[list[dict[str, Any]]]) -> None:
        sinks = self._sinks()
        for batch in batches:
            self._send(sinks, batch)

    def _send(self, sinks: list[SqsSink], batch: list[dict[str, Any]]) -> None:
        now = time.time()
        for event in batch:
            self.emitted_at[event["id"]] = now
        for sink in sinks:
            sink.send(batch)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Calls:
    """Requests the fakes answered during one measured run."""

    s3: dict[str, int] = field(default_factory=dict)  # HTTP method -> count
    omics: Counter[str] = field(default_factory=Counter)  # operation -> calls (throttled too)
    throttled: Counter[str] = field(default_factory=Counter)  # operation -> 429s
    ngs360: int = 0

    @property
    def s3_total(self) -> int:
        return sum(self.s3.values())

    @property
    def omics_total(self) -> int:
        return sum(self.omics.values())

    @property
    def throttled_total(self) -> int:
        return sum(self.throttled.values())


@dataclass
class CallsMark:
    """Where the fakes' counters stood when a run started (see :func:`calls_since`)."""

    moto: dict[str, dict[str, int]]
    omics: int


def calls_mark(fakes: Fakes) -> CallsMark:
    return CallsMark(fakes.requests(), len(fakes.sim.request_log))


def calls_since(fakes: Fakes, mark: CallsMark, receiver: Ngs360Receiver | None = None) -> Calls:
    """What the fakes answered since ``mark``: S3 from moto's count, HealthOmics from the
    simulator's request log (append-only), NGS360 from this run's own receiver."""
    now = fakes.requests().get("s3", {})
    before = mark.moto.get("s3", {})
    s3 = {m: n - before.get(m, 0) for m, n in now.items() if n - before.get(m, 0)}
    records = fakes.sim.request_log.records()[mark.omics :]
    return Calls(
        s3=s3,
        omics=Counter(r.operation for r in records),
        throttled=Counter(r.operation for r in records if r.error_code == "ThrottlingException"),
        ngs360=len(receiver.requests) if receiver is not None else 0,
    )


def callback_times(receiver: Ngs360Receiver) -> dict[str, float]:
    """Wall time of the first callback the receiver accepted, per event id."""
    first: dict[str, float] = {}
    for request in receiver.callbacks():
        body = request.json()
        if 200 <= request.status < 300 and isinstance(body, dict):
            first.setdefault(str(body.get("event_id")), request.wall)
    return first


def latencies(receiver: Ngs360Receiver, emitted_at: dict[str, float]) -> list[float]:
    """Seconds from emission to the first callback the receiver accepted, per emitted event."""
    return sorted(
        at - emitted_at[e] for e, at in callback_times(receiver).items() if e in emitted_at
    )


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Progress:
    logged: int
    owed: int
    last_done: datetime | None


def pipeline_progress(engine: Engine) -> Progress:
    with engine.connect() as connection:
        logged = connection.execute(
            select(func.count()).select_from(events).where(events.c.origin == "aws")
        ).scalar_one()
        owed = connection.execute(
            select(func.count()).select_from(outbox).where(outbox.c.done_at.is_(None))
        ).scalar_one()
        # the archive owes no outbox work: what it owes is every row after its cursor
        owed += connection.execute(
            select(func.count())
            .select_from(events)
            .where(events.c.seq > archived_through(connection))
        ).scalar_one()
        last = connection.execute(select(func.max(outbox.c.done_at))).scalar_one()
    return Progress(int(logged), int(owed), last)


def wait_drained(
    engine: Engine,
    expected: int,
    timeout: float,
    sample: Callable[[], None] | None = None,
    label: str = "pipeline",
) -> Progress:
    """Until every expected event is in the log, the outbox owes nothing and the archive has
    every log row (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    shown = 0.0
    while True:
        progress = pipeline_progress(engine)
        if sample is not None:
            sample()
        if progress.logged >= expected and progress.owed == 0:
            return progress
        if time.monotonic() > deadline:
            console.print(f"[red]{label}: timed out: {progress}[/red]")
            return progress
        if time.monotonic() - shown > 5:
            shown = time.monotonic()
            console.print(
                f"  {label}: {progress.logged:,}/{expected:,} logged, {progress.owed:,} owed",
                highlight=False,
            )
        time.sleep(0.25)


def slow_work(engine: Engine, seconds: float = 30.0) -> list[dict[str, Any]]:
    """Outbox work that took longer than ``seconds`` from creation to done (for diagnosis)."""
    took = outbox.c.done_at - outbox.c.created_at
    with engine.connect() as connection:
        rows = connection.execute(
            select(outbox, events.c.status, events.c.resource_id)
            .join(events, events.c.event_id == outbox.c.event_id)
            .where(outbox.c.done_at.is_not(None))
            .order_by(took.desc())
            .limit(10)
        ).mappings()
        return [
            dict(row)
            for row in rows
            if (row["done_at"] - row["created_at"]).total_seconds() > seconds
        ]


def redis_depth(client: redis_lib.Redis, prefix: str, queues: Iterable[str] = QUEUES) -> int:
    """Messages waiting in the Celery queues (kombu's priority lists included)."""
    keys = [
        f"{prefix}{q}{suffix}"
        for q in queues
        for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169")
    ]
    pipe = client.pipeline()
    for key in keys:
        pipe.llen(key)
    return int(sum(pipe.execute()))


def wait_ready(stack: ProcessStack, names: Sequence[str], timeout: float = 120.0) -> None:
    """Until every worker answers a Celery ping (the poller and sweeper need no warm-up)."""
    from workers import create_app

    app = create_app(stack.settings)
    wanted = {name.split(":", 1)[1] for name in names if name.startswith("worker:")}
    deadline = time.monotonic() + timeout
    try:
        while wanted:
            for name in names:
                if not stack.running(name):
                    raise RuntimeError(f"{name} exited:\n{stack.log(name)[-3000:]}")
            for reply in app.control.ping(timeout=1.0) or []:
                for hostname in reply:
                    wanted.discard(hostname.split("@", 1)[0])
            if wanted and time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready: {sorted(wanted)}")
    finally:
        app.runtime.close()  # type: ignore[attr-defined]


def usage_snapshot(stack: ProcessStack) -> dict[str, ProcessUsage]:
    """A copy of the stack's usage now (its own objects keep changing)."""
    return {name: replace(usage) for name, usage in stack.usage().items()}


def usage_delta(
    before: dict[str, ProcessUsage], after: dict[str, ProcessUsage]
) -> dict[str, tuple[float, float]]:
    """``{name: (CPU seconds between the snapshots, peak RSS MB)}``."""
    out: dict[str, tuple[float, float]] = {}
    for name, usage in after.items():
        start = before.get(name)
        cpu = usage.cpu_seconds - (start.cpu_seconds if start else 0.0)
        out[name] = (cpu, usage.peak_rss_mb)
    return out


def hops(engine: Engine, emitted_at: dict[str, float], callbacks: dict[str, float]) -> Table:
    """Where an event's time goes in the pipeline: p50/p95/p99 of each hop, in ms."""
    with engine.connect() as connection:
        received = {
            event_id: at.timestamp()
            for event_id, at in connection.execute(
                select(events.c.event_id, events.c.received_at).where(events.c.origin == "aws")
            )
        }
        done: dict[str, dict[str, float]] = {}
        for event_id, stage, finished in connection.execute(
            select(outbox.c.event_id, outbox.c.stage, outbox.c.done_at).where(
                outbox.c.done_at.is_not(None)
            )
        ):
            done.setdefault(stage, {})[event_id] = finished.timestamp()
    spans: dict[str, list[float]] = {
        "emitted → in the log (SQS, poller, commit)": [
            received[e] - emitted_at[e] for e in received if e in emitted_at
        ],
    }
    for stage in ("enrich", "imports"):  # the archive is batched: no per-event hop
        spans[f"in the log → {stage} done"] = [
            at - received[e] for e, at in done.get(stage, {}).items() if e in received
        ]
    spans["enrich done → callback done"] = [
        at - done["enrich"][e]
        for e, at in done.get("callback", {}).items()
        if e in done.get("enrich", {})
    ]
    spans["emitted → callback accepted"] = [
        at - emitted_at[e] for e, at in callbacks.items() if e in emitted_at
    ]
    table = Table(title="pipeline hops (ms)")
    for column in ("hop", "count", "p50", "p95", "p99"):
        table.add_column(column, justify="left" if column == "hop" else "right")
    for name, values in spans.items():
        table.add_row(
            name,
            f"{len(values):,}",
            *(f"{1000 * percentile(values, q):,.0f}" for q in (0.5, 0.95, 0.99)),
        )
    return table


class PeakSampler:
    """CPU seconds and peak RSS of one plain subprocess (the baseline), sampled in a thread."""

    def __init__(self, process: subprocess.Popen[bytes], interval: float = 0.25) -> None:
        self.process = psutil.Process(process.pid)
        self.cpu = 0.0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        self._thread.start()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.sample()

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            times = self.process.cpu_times()
            self.cpu = max(self.cpu, times.user + times.system)
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


# --- reporting ---------------------------------------------------------------------------------


def machine(
    database_url: str, redis_url: str, load_start: tuple[float, float, float]
) -> dict[str, str]:
    with _admin(database_url) as admin:
        server = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    redis_version = str(redis_lib.Redis.from_url(redis_url).info("server")["redis_version"])
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load_end = os.getloadavg()
    return {
        "load average (1/5 min) at start": f"{load_start[0]:.2f}/{load_start[1]:.2f}",
        "at end": f"{load_end[0]:.2f}/{load_end[1]:.2f}",
        "cores": str(os.cpu_count()),
        "memory": f"{memory:.0f} GiB",
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "postgresql": server.split()[0],
        "redis": redis_version,
        "celery": version("celery"),
        "boto3": version("boto3"),
        "moto": version("moto"),
    }


def add_fake_arguments(parser: argparse.ArgumentParser) -> None:
    """The fakes' latency and quota knobs (module docstring); the same for every system."""
    for name, what in (
        ("s3", "every S3 request (moto)"),
        ("omics", "every HealthOmics API call (simulator)"),
        ("ngs360", "every NGS360 request (receiver)"),
    ):
        parser.add_argument(
            f"--{name}-latency",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help=f"seconds {what} waits, for every system (default 0)",
        )
    parser.add_argument(
        "--throttle",
        action="store_true",
        help="the simulator enforces the documented HealthOmics TPS quotas (429 past them); "
        "the pipeline's limiter keeps its documented defaults",
    )


def bench_from(args: argparse.Namespace) -> Bench:
    """A :class:`Bench` with the servers, seed and fake knobs from the command line."""
    return Bench(
        args.database_url,
        args.redis_url,
        seed=args.seed,
        s3_latency=args.s3_latency,
        omics_latency=args.omics_latency,
        ngs360_latency=args.ngs360_latency,
        throttle=args.throttle,
    )


def fakes_line(args: argparse.Namespace) -> str:
    """The fakes' knobs, for the printed and written report."""
    return (
        f"fakes: S3 +{1000 * args.s3_latency:g} ms, HealthOmics +{1000 * args.omics_latency:g} ms, "
        f"NGS360 +{1000 * args.ngs360_latency:g} ms per request; HealthOmics quotas "
        + ("enforced (429 past them)" if args.throttle else "lifted")
    )


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """What every process-level bench takes: the seed, the servers, ``--write``."""
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL")
        if (os.environ.get("DATABASE_URL") or "").startswith("postgres")
        else DEFAULT_DATABASE_URL,
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--write", action="store_true", help="append to docs/benchmarks.md")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    args = list(argv if argv is not None else sys.argv[1:])
    return f"python bench/{script} " + shlex.join(a for a in args if "://" not in a)


def markdown_table(table: Table) -> list[str]:
    """A rich table as GitHub markdown (header, alignment, rows)."""
    headers = [str(column.header) for column in table.columns]
    cells = [[str(c) for c in column.cells] for column in table.columns]
    align = ["---:" if column.justify == "right" else ":---" for column in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for row in zip(*cells, strict=True):
        lines.append("| " + " | ".join(row) + " |")
    return lines


def append_section(
    title: str, command: str, info: dict[str, str], tables: Sequence[Table], notes: Sequence[str]
) -> Path:
    """Append one section to ``docs/benchmarks.md``: title, command, machine, tables, notes."""
    lines = [
        f"## {title} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
    ]
    for table in tables:
        if table.title:
            lines += [f"**{table.title}**", ""]
        lines += [*markdown_table(table), ""]
        if table.caption:
            lines += [str(table.caption), ""]
    lines += [*notes, ""] if notes else []
    target = REPO / "docs" / "benchmarks.md"
    with target.open("a") as stream:
        stream.write("\n" + "\n".join(lines))
    return target


def usage_table(title: str, usage: dict[str, tuple[float, float]], seconds: float) -> Table:
    table = Table(title=title)
    for column in ("process", "CPU s", "CPU %", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "process" else "right")
    for name, (cpu, rss) in usage.items():
        table.add_row(name, f"{cpu:.1f}", f"{100 * cpu / max(seconds, 1e-9):.0f}", f"{rss:.0f}")
    return table


def sweeper_republished(log: Path) -> int:
    """Tasks the sweeper re-published as lost, from its ``sweeper: … re-published N`` lines."""
    if not log.exists():
        return 0
    found = re.findall(r"re-published (\d+) lost", log.read_text(errors="replace"))
    return sum(int(count) for count in found)
