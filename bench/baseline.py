"""The Lambda-style baseline: one process that handles each event inline, in order.

What it is: the legacy per-event Lambda (``ngs360/omics-run-event-processor``), rewritten from
its documented behaviour so that the benchmarks can measure it on the same fakes as the
pipeline.  For every event, one at a time, as one warm Lambda invocation would:

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

Events reach it through SQS (``ReceiveMessage`` of up to 10, handled in order, then
``DeleteMessageBatch``), the same door the pipeline's poller uses, so both are measured from
the same emission.  boto3 clients are module-level (a warm Lambda keeps them).  It exits after
``--events`` messages and writes a JSON summary to ``--results``.  Started by
``bench/end_to_end.py``; by hand::

    API_SERVER=http://127.0.0.1:8000 NGS360_API_KEY=… AWS_ENDPOINT_URL=http://127.0.0.1:5000 \\
    AWS_ENDPOINT_URL_OMICS=http://127.0.0.1:8001 .venv/bin/python bench/baseline.py \\
        --queue-url URL --bucket B --events 1000 --results /tmp/baseline.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="omics-run-events")
    parser.add_argument("--events", type=int, required=True, help="exit after this many")
    parser.add_argument("--results", required=True, help="JSON summary written here")
    parser.add_argument("--idle-timeout", type=float, default=120.0)
    parser.add_argument("--ready-file", help="touched once the clients are built")
    args = parser.parse_args(argv)
    if args.ready_file:
        open(args.ready_file, "w").close()
    api_server, key = os.environ["API_SERVER"], os.environ["NGS360_API_KEY"]
    outcomes: dict[str, int] = {}
    handled = 0
    first = last = 0.0
    idle_since = time.monotonic()
    while handled < args.events:
        messages = sqs.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            if time.monotonic() - idle_since > args.idle_timeout:
                break
            continue
        idle_since = time.monotonic()
        first = first or time.time()
        for message in messages:
            try:
                outcome = handle(
                    json.loads(message["Body"]), args.bucket, args.prefix, api_server, key
                )
            except Exception as error:  # the Lambda fails the invocation; DLQ; next event
                outcome = f"error: {type(error).__name__}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            handled += 1
        sqs.delete_message_batch(
            QueueUrl=args.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        last = time.time()
    with open(args.results, "w") as stream:
        json.dump({"handled": handled, "outcomes": outcomes, "first": first, "last": last}, stream)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
