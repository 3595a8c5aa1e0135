"""Events that must be rejected: ``MALFORMED``, a list of (case name, raw bytes).

Used by the schema tests and by every layer that must dead-letter bad input (pollers,
replayer, file sender).  Contract, checked by ``tests/unit/test_schemas.py``:

* every case in :data:`MALFORMED` is a :class:`schemas.Rejected` under the **default**
  :class:`schemas.ParseLimits` (so any consumer can feed them with no special set-up);
* the cases in :data:`MALFORMED_WITH_LIMITS` are (name, raw bytes, limits): they are rejected
  only under their own limits (a disallowed account needs an account allow-list), and are
  *valid* events under the defaults;
* the reasons of all cases together are pairwise distinct, and ``Rejected.raw`` is the input
  bytes, unchanged.

:data:`VALID_RUN_EVENT` is the valid event most cases are derived from.
"""

from __future__ import annotations

import json
from typing import Any

from schemas import ParseLimits

#: A valid Run Status Change (the reference's documented example); the cases mutate copies.
VALID_RUN_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "c0e540f4-df38-b986-86c1-3e3730f971fe",
    "detail-type": "Run Status Change",
    "source": "aws.omics",
    "account": "123456789012",
    "time": "2022-10-20T22:07:35Z",
    "region": "us-west-2",
    "resources": ["arn:aws:omics:us-west-2:123456789012:run/2101313"],
    "detail": {
        "omicsVersion": "1.0.0",
        "arn": "arn:aws:omics:us-west-2:123456789012:run/2101313",
        "status": "COMPLETED",
        "uuid": "153893cd-097a-40ec-aec7-838a97cd2b21",
        "runId": "1234567",
        "runName": "run name",
        "runOutputUri": "s3://amzn-s3-demo-bucket/run-output/2101313",
        "workflowId": "1234567",
        "workflowName": "workflow name",
    },
}

_TASK_DETAIL: dict[str, Any] = {
    "omicsVersion": "1.0.0",
    "arn": "arn:aws:omics:us-west-2:123456789012:task/8888888",
    "status": "COMPLETED",
    "runArn": "arn:aws:omics:us-west-2:123456789012:run/2101313",
    "runUuid": "153893cd-097a-40ec-aec7-838a97cd2b21",
    "runId": "1234567",
}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _event(
    top: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    drop_detail: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A copy of the valid run event: ``top``/``detail`` fields set, ``drop*`` fields removed."""
    event = json.loads(json.dumps(VALID_RUN_EVENT))
    event.update(top or {})
    if isinstance(event.get("detail"), dict):
        event["detail"].update(detail or {})
    for name in drop:
        event.pop(name)
    for name in drop_detail:
        event["detail"].pop(name)
    return event


def _other(detail_type: str, detail: dict[str, Any], source: str = "aws.omics") -> bytes:
    """The valid event's envelope around another detail-type and a whole new detail."""
    return _dump(_event({"detail-type": detail_type, "source": source, "detail": detail}))


def _sns(message: Any) -> bytes:
    return _dump(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:omics-events",
            "Message": message,
            "Timestamp": "2022-10-20T22:07:36.012Z",
            "SignatureVersion": "1",
        }
    )


# The older HealthOmics guide's EventBridge examples exactly as published (the HealthOmics
# user guide, l.2284-2366), PDF line wraps inside strings joined.  Each has an author's error.
SEED_READ_SET_MISSING_COMMA = b"""{
  "version": "0"
  "id": "64ca0eda-9751-dc55-c41a-1bd50b4fc9b7",
  "detail-type": "Read Set Status Change",
  "source": "aws.omics",
  "account": "123456789012",
  "time": "2023-04-04T17:53:06Z",
  "region": "us-west-2",
  "resources": ["arn:aws:omics:us-west-2:123456789012:sequenceStore/1234567890/readSet/3456789012"],
  "detail": {
    "omicsVersion": "1.0.0",
    "arn": "arn:aws:omics:us-west-2:123456789012:sequenceStore/1234567890/readSet/3456789012",
    "sequenceStoreId" : "1234567890",
    "id": "3456789012",
    "status": "PROCESSING_UPLOAD"
  }
}
"""

SEED_VARIANT_STORE_TRAILING_COMMA = b"""{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "Variant Store Status Change",
  "source": "aws.omics",
  "account": "123456789012",
  "time": "2015-12-22T18:43:48Z",
  "region": "us-east-1",
  "resources": ["arn:aws:omics:us-east-1:123456789012:bcvariantstore2"],
  "detail": {
    "omicsVersion": "1.0.0",
    "arn": "arn:aws:omics:us-east-1:123456789012:bcvariantstore2",
    "status": "CREATED",
    "storeId": "6710c5f02610",
    "storeName": "bcvariantstore2",
  }
}
"""

SEED_VARIANT_IMPORT_EXTRA_BRACE = b"""{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "Variant Import Job Status Change",
  "source": "aws.omics",
  "account": "123456789012",
  "time": "2015-12-22T18:43:48Z",
  "region": "us-east-1",
  "resources": ["@ARN@"],
  "detail": {
    "omicsVersion": "1.0.0",
    "arn": "@ARN@",
    "status": "COMPLETED",
    "jobId": "b64ea9a3-459f-4b68-92c3-3ddb83209fe9",
    "storeId": "a74869f91e20",
    "storeName": "vincent_load_test_variant_store"
  }
  }
}
""".replace(
    b"@ARN@",
    b"arn:aws:omics:us-east-1:123456789012:vincent_load_test_variant_store/"
    b"b64ea9a3-459f-4b68-92c3-3ddb83209fe9",
)

_VALID = _dump(VALID_RUN_EVENT)
_DEEP = 10_000

MALFORMED: list[tuple[str, bytes]] = [
    # --- not an event at all
    ("empty bytes", b""),
    ("only whitespace", b"  \r\n\t  "),
    ("not JSON", b"hello, world"),
    ("truncated JSON", _VALID[: len(_VALID) // 2]),
    ("invalid UTF-8 (binary)", b"\xff\xfe\x00\x01\x89PNG\r\n\x1a\n"),
    ("invalid UTF-8 inside a string", _VALID.replace(b"run name", b"run \xe2\x82 name")),
    ("UTF-8 byte order mark", b"\xef\xbb\xbf" + _VALID),
    ("JSON array", b'[{"version": "0"}]'),
    ("JSON string", b'"Run Status Change"'),
    ("JSON null", b"null"),
    ("JSON number", b"42"),
    ("JSON boolean", b"true"),
    ("NaN value", _VALID.replace(b'"runName":"run name"', b'"runName":NaN')),
    ("duplicate key", _VALID.replace(b'{"version":"0",', b'{"version":"0","version":"0",')),
    ("integer of 5000 digits", _VALID.replace(b'"runId":"1234567"', b'"runId":' + b"9" * 5000)),
    ("number out of float range", _VALID.replace(b'"runName":"run name"', b'"runName":1e400')),
    ("unpaired UTF-16 surrogate", _VALID.replace(b"run name", b"run \\ud800 name")),
    # --- the older guide's published examples, which are not valid JSON
    ("seed read set example: missing comma", SEED_READ_SET_MISSING_COMMA),
    ("seed variant store example: trailing comma", SEED_VARIANT_STORE_TRAILING_COMMA),
    ("seed variant import example: extra brace", SEED_VARIANT_IMPORT_EXTRA_BRACE),
    # --- limits
    ("over the size limit", _dump(_event(detail={"padding": "x" * 2_000_000}))),
    ("deeply nested array (10,000 levels)", b"[" * _DEEP + b"]" * _DEEP),
    (
        "deeply nested detail (10,000 levels)",
        _VALID.replace(
            b'"detail":{', b'"detail":{"x":' + b'{"a":' * _DEEP + b"1" + b"}" * _DEEP + b","
        ),
    ),
    # --- envelope
    ("wrong source", _dump(_event({"source": "aws.ec2"}))),
    ("missing id", _dump(_event(drop=("id",)))),
    ("empty id", _dump(_event({"id": ""}))),
    ("id longer than 256 characters", _dump(_event({"id": "e" * 300}))),
    ("missing detail-type", _dump(_event(drop=("detail-type",)))),
    ("missing time", _dump(_event(drop=("time",)))),
    ("missing detail", _dump(_event(drop=("detail",)))),
    ("missing version", _dump(_event(drop=("version",)))),
    ("version is a number", _dump(_event({"version": 0}))),
    ("detail is an array", _dump(_event({"detail": ["COMPLETED"]}))),
    ("detail is null", _dump(_event({"detail": None}))),
    ("time is not a date", _dump(_event({"time": "yesterday"}))),
    ("time without timezone", _dump(_event({"time": "2022-10-20T22:07:35"}))),
    ("time is a number", _dump(_event({"time": 1666303655}))),
    ("resources is a string", _dump(_event({"resources": VALID_RUN_EVENT["resources"][0]}))),
    ("resources holds a number", _dump(_event({"resources": [2101313]}))),
    ("replay-name is a number", _dump(_event({"replay-name": 7}))),
    # --- detail
    ("run status bogus", _dump(_event(detail={"status": "BOGUS"}))),
    ("run status is a number", _dump(_event(detail={"status": 3}))),
    ("run status empty", _dump(_event(detail={"status": " "}))),
    ("run missing status", _dump(_event(drop_detail=("status",)))),
    ("run missing uuid", _dump(_event(drop_detail=("uuid",)))),
    ("run missing runId and arn", _dump(_event(drop_detail=("runId", "arn")))),
    ("run uuid is a number", _dump(_event(detail={"uuid": 153893}))),
    (
        "task status bogus",
        _other("Task Status Change", {**_TASK_DETAIL, "status": "DONE"}),
    ),
    (
        "task missing arn",
        _other("Task Status Change", {k: v for k, v in _TASK_DETAIL.items() if k != "arn"}),
    ),
    (
        "read set status bogus",
        _other(
            "Read Set Status Change",
            {"id": "3456789012", "sequenceStoreId": "1234567890", "status": "GONE"},
        ),
    ),
    (
        "read set import job missing sequenceStoreId",
        _other(
            "Read Set Import Job Status Change",
            {"omicsVersion": "1.0.0", "id": "3660451514", "status": "COMPLETED"},
        ),
    ),
    (
        "S3 Object Created missing bucket",
        _other(
            "Object Created",
            {"version": "0", "object": {"key": "run42/S7_R1.fastq.gz", "size": 5}},
            source="aws.s3",
        ),
    ),
    # --- SNS wrapping
    ("SNS message is not JSON", _sns("this is not an event")),
    ("SNS message is not a string", _sns(VALID_RUN_EVENT)),
    ("SNS message is a JSON array", _sns("[1, 2, 3]")),
    ("SNS message from a wrong source", _sns(_dump(_event({"source": "aws.ec2"})).decode())),
    ("SNS message missing detail", _sns(_dump(_event(drop=("detail",))).decode())),
]

#: (case name, raw bytes, the limits under which it is rejected).
MALFORMED_WITH_LIMITS: list[tuple[str, bytes, ParseLimits]] = [
    (
        "disallowed account",
        _dump(_event({"account": "999999999999"})),
        ParseLimits(allowed_accounts=frozenset({"123456789012"})),
    ),
    (
        "source outside a narrowed allow-list",
        _other(
            "Object Created", {"bucket": {"name": "b"}, "object": {"key": "k"}}, source="aws.s3"
        ),
        ParseLimits(allowed_sources=frozenset({"aws.omics"})),
    ),
    (
        "over a 1024-byte size limit",
        _dump(_event(detail={"note": "n" * 1200})),
        ParseLimits(max_bytes=1024),
    ),
    (
        "deeper than a depth limit of 4",
        _dump(_event(detail={"extra": {"a": {"b": {"c": 1}}}})),
        ParseLimits(max_depth=4),
    ),
]
