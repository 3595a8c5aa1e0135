"""The Lambda-style baseline: one process that handles each event inline, in order or N at once.

What it is: the legacy per-event Lambda (``ngs360/omics-run-event-processor``), rewritten from
its documented behaviour so that the benchmarks can measure it on the same fakes as the
pipeline.  For every event, as one warm Lambda invocation would:

1. **flatten** the nested event into a single-level dict (``detail.status`` → ``detail_status``);
2. **archive** it to ``s3://{bucket}/{prefix}/event_{YYYYMMDD_HHMMSS}_{uuid}.json`` with
   ``ServerSideEncryption=AES256``;
3. for a ``Run Status Change``: **GetRun** (its tags carry the ``WESRunId``); for COMPLETED,
   FAILED or CANCELLED also **ListRunTasks** (every page) for the task log URLs, and for
   COMPLETED the **output mapping** from ``{runOutputUri}/logs/outputs.json``;
4. **callback**: ``POST {API_SERVER}/internal/callbacks/omics-state-change`` with a 10-second
   timeout (a fresh ``requests.post`` per event, as the Lambda does), the body shaped as the
   NGS360 contract says.  An error is counted (the Lambda would go to its dead-letter topic)
   and the next event is handled.

Events reach it through SQS, the same door the pipeline's poller uses, so both are measured
from the same emission.  Two models:

* ``--concurrency 1`` (the default): one process, in order — ``ReceiveMessage`` of up to 10,
  each handled in turn, then ``DeleteMessageBatch``.  The best case for ordering, the worst for
  throughput when a fake is slow;
* ``--concurrency N``: Lambda's real model for an EventBridge target — one invocation per event,
  up to N at once, no ordering between them (a later status of a run can be delivered before an
  earlier one, as with the real Lambda).  A thread pool of N in one process: the receiving loop
  reads batches of up to 10 and keeps at most one batch waiting for a free invocation (as
  Lambda's SQS poller does), each invocation handles its one event and deletes its message.
  Threads rather than processes keep the CPU figure one process's and the memory small, and the
  handler mostly waits on I/O; but the GIL caps it at one core, so a run where the baseline
  process sits near 100 % CPU measures that cap, not Lambda (whose invocations each have their
  own CPU).

boto3 clients are module-level (a warm Lambda keeps them; they are thread-safe).  It exits
after ``--events`` messages and writes a JSON summary to ``--results``.  Started by
``bench/end_to_end.py`` (``--baseline-concurrency 1,10``); by hand::

    API_SERVER=http://127.0.0.1:8000 NGS360_API_KEY=… AWS_ENDPOINT_URL=http://127.0.0.1:5000 \\
    AWS_ENDPOINT_URL_OMICS=http://127.0.0.1:8001 .venv/bin/python bench/baseline.py \\
        --queue-url URL --bucket B --events 1000 --results /tmp/baseline.json [--concurrency 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import requests
from botocore.config import Config

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
CALLBACK_PATH = "/internal/callbacks/omics-state-change"

s3 = boto3.client("s3")
sqs = boto3.client("sqs")
omics = boto3.client("omics", config=Config(inject_host_prefix=False))


def flatten(value: Any, parent: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested dicts and lists into one level: ``{"a": {"b": [1]}}`` → ``{"a_b_0": 1}``."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{parent}_{key}" if parent else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(item, f"{parent}_{index}" if parent else str(index), out)
    else:
        out[parent] = value
    return out


def archive(flat: dict[str, Any], bucket: str, prefix: str) -> None:
    key = f"{prefix}/event_{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid.uuid4()}.json"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(flat).encode(),
        ServerSideEncryption="AES256",
        ContentType="application/json",
    )


def _locations(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class") == "File":
        return value.get("location")
    if isinstance(value, list):
        return [_locations(item) for item in value]
    return value


def output_mapping(run: dict[str, Any]) -> dict[str, Any] | None:
    base = run.get("runOutputUri") or f"{run.get('outputUri', '').rstrip('/')}/{run['id']}"
    bucket, _, key = f"{base.rstrip('/')}/logs/outputs.json".removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:
        return None  # the Lambda goes on without the mapping
    return {name: _locations(value) for name, value in json.loads(body).items()}


def log_urls(run: dict[str, Any], region: str) -> dict[str, Any]:
    run_id = run["id"]
    console = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
    group = "#logsV2:log-groups/log-group/$252Faws$252Fomics$252FWorkflowLog/log-events/"
    tasks: dict[str, str] = {}
    token: str | None = None
    while True:
        page = omics.list_run_tasks(id=run_id, **({"startingToken": token} if token else {}))
        for task in page.get("items", []):
            tasks[task["taskId"]] = (
                f"{console}{group}run$252F{run_id}$252Ftask$252F{task['taskId']}"
            )
        token = page.get("nextToken")
        if not token:
            break
    return {
        "run_log": f"{console}{group}run$252F{run_id}",
        "manifest_log": f"{console}{group}manifest$252Frun$252F{run_id}",
        "task_logs": tasks,
    }


def handle(event: dict[str, Any], bucket: str, prefix: str, api_server: str, key: str) -> str:
    """One invocation; returns what happened: archived, delivered, refused or error."""
    flat = flatten(event)
    archive(flat, bucket, prefix)
    if event.get("source") != "aws.omics" or event.get("detail-type") != "Run Status Change":
        return "archived"
    detail = event["detail"]
    run_id, status = str(detail["runId"]), str(detail["status"])
    run = omics.get_run(id=run_id)
    wes_run_id = (run.get("tags") or {}).get("WESRunId")
    if not wes_run_id:
        return "archived"
    body: dict[str, Any] = {
        "omics_run_id": run_id,
        "status": status,
        "wes_run_id": wes_run_id,
        "event_time": event["time"],
        "event_id": event["id"],
    }
    if detail.get("statusMessage") or run.get("statusMessage"):
        body["status_message"] = detail.get("statusMessage") or run.get("statusMessage")
    if run.get("failureReason"):
        body["failure_reason"] = run["failureReason"]
    if status in TERMINAL:
        body["log_urls"] = log_urls(run, event.get("region", "us-east-1"))
        if status == "COMPLETED":
            mapping = output_mapping(run)
            if mapping is not None:
                body["output_mapping"] = mapping
    answer = requests.post(
        f"{api_server.rstrip('/')}{CALLBACK_PATH}",
        json=body,
        headers={"X-Internal-API-Key": key},
        timeout=10,
    )
    return "delivered" if answer.ok else "refused"


@dataclass
class Tally:
    """What the invocations did: outcomes, how many, first message received, last one done."""

    outcomes: dict[str, int] = field(default_factory=dict)
    handled: int = 0
    first: float = 0.0
    last: float = 0.0

    def add(self, outcome: str, finished: float) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.handled += 1
        self.last = max(self.last, finished)


def invoke(body: str, args: argparse.Namespace, api_server: str, key: str) -> str:
    """One invocation, as the Lambda fails it: an exception is its outcome (DLQ; next event)."""
    try:
        return handle(json.loads(body), args.bucket, args.prefix, api_server, key)
    except Exception as error:
        return f"error: {type(error).__name__}"


def in_order(args: argparse.Namespace, api_server: str, key: str) -> Tally:
    """One process, one event at a time, in the order SQS hands them out."""
    tally = Tally()
    idle_since = time.monotonic()
    while tally.handled < args.events:
        messages = sqs.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            if time.monotonic() - idle_since > args.idle_timeout:
                break
            continue
        idle_since = time.monotonic()
        tally.first = tally.first or time.time()
        for message in messages:
            tally.add(invoke(message["Body"], args, api_server, key), time.time())
        sqs.delete_message_batch(
            QueueUrl=args.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return tally


def concurrent(args: argparse.Namespace, api_server: str, key: str) -> Tally:
    """Up to ``--concurrency`` invocations at once, one event each, in no particular order."""

    def one(message: dict[str, Any]) -> tuple[str, float]:
        outcome = invoke(message["Body"], args, api_server, key)
        sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return outcome, time.time()

    tally = Tally()
    running: set[Future[tuple[str, float]]] = set()  # invoking, or waiting for a free one
    idle_since = time.monotonic()
    with ThreadPoolExecutor(args.concurrency, thread_name_prefix="invocation") as pool:
        while tally.handled + len(running) < args.events or running:
            finished = {f for f in running if f.done()}
            for future in finished:
                tally.add(*future.result())
            running -= finished
            # as Lambda's SQS poller: batches of up to 10, at most one waiting for an invocation
            # (so receiving costs about what it does in order: one request per 10 events)
            wanted = min(10, args.events - tally.handled - len(running))
            if wanted <= 0 or len(running) >= args.concurrency + 10:
                if running:
                    wait(running, return_when=FIRST_COMPLETED)
                continue
            messages = sqs.receive_message(
                QueueUrl=args.queue_url, MaxNumberOfMessages=wanted, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                if not running and time.monotonic() - idle_since > args.idle_timeout:
                    break
                continue
            idle_since = time.monotonic()
            tally.first = tally.first or time.time()
            running |= {pool.submit(one, message) for message in messages}
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="omics-run-events")
    parser.add_argument("--events", type=int, required=True, help="exit after this many")
    parser.add_argument("--results", required=True, help="JSON summary written here")
    parser.add_argument("--idle-timeout", type=float, default=120.0)
    parser.add_argument("--ready-file", help="touched once the clients are built")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="invocations at once (1: one process, in order; N: Lambda's model, no ordering)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be >= 1")
    if args.ready_file:
        open(args.ready_file, "w").close()
    api_server, key = os.environ["API_SERVER"], os.environ["NGS360_API_KEY"]
    serve = in_order if args.concurrency == 1 else concurrent
    tally = serve(args, api_server, key)
    with open(args.results, "w") as stream:
        json.dump(
            {
                "handled": tally.handled,
                "outcomes": tally.outcomes,
                "first": tally.first,
                "last": tally.last,
                "concurrency": args.concurrency,
            },
            stream,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
