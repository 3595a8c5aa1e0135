"""Events built the way HealthOmics sends them (the seed user guide's Run Status Change)."""

from __future__ import annotations

import json
import uuid
from typing import Any


def run_event(
    event_id: str | None = None,
    *,
    status: str = "COMPLETED",
    run_id: str = "2101313",
    run_uuid: str = "153893cd-097a-40ec-aec7-838a97cd2b21",
    time: str = "2022-10-20T22:07:35Z",
) -> dict[str, Any]:
    arn = f"arn:aws:omics:us-west-2:123456789012:run/{run_id}"
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Run Status Change",
        "source": "aws.omics",
        "account": "123456789012",
        "time": time,
        "region": "us-west-2",
        "resources": [arn],
        "detail": {
            "omicsVersion": "1.0.0",
            "arn": arn,
            "status": status,
            "uuid": run_uuid,
            "runId": run_id,
            "runName": "run name",
            "runOutputUri": f"s3://amzn-s3-demo-bucket/run-output/{run_id}",
            "workflowId": "1234567",
            "workflowName": "workflow name",
        },
    }


def as_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
