"""Hostile events: ``HOSTILE``, a list of :class:`Case` (name, raw bytes, accepted or not).

The hostile-input corpus: what broke the pipeline (or could) when fed by someone who means
harm or by a broken producer.  Every case is either **rejected** (a dead letter with a reason,
raw bytes kept) or **accepted harmlessly** (``accepted=True``: stored as it is, nothing breaks).
Used by ``tests/faults/test_hostile.py`` through ``send`` and through the poller, on SQLite and
PostgreSQL, and by ``tests/unit/test_schemas.py`` against the parser alone.

File-level shapes (deep nesting first and last in a file, duplicate keys in JSON lines and in
arrays) are built from these by :func:`json_lines_file` and :func:`array_file`.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers.factories import run_event
from tests.helpers.malformed_corpus import VALID_RUN_EVENT

DEEP = 100_000


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    accepted: bool = False  # True: accepted harmlessly, False: a dead letter
    event_id: str | None = None  # the id an accepted case lands under


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _escaped(obj: Any) -> bytes:
    """JSON with ``\\uXXXX`` escapes for every non-ASCII and control character."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


_counter = iter(range(1_000_000))


def _event(
    top: dict[str, Any] | None = None, detail: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A valid run event with a fresh id, then ``top``/``detail`` fields set."""
    event = json.loads(json.dumps(VALID_RUN_EVENT))
    event["id"] = f"hostile-{next(_counter):04d}-c0e540f4-df38-b986-86c1"
    event.update(top or {})
    event["detail"].update(detail or {})
    return event


def _other(detail_type: str, detail: dict[str, Any], **top: Any) -> dict[str, Any]:
    event = _event(top)
    event["detail-type"] = detail_type
    event["detail"] = detail
    return event


def _sns(message: str) -> bytes:
    return _dump(
        {
            "Type": "Notification",
            "MessageId": f"22b80b92-fdea-4c2c-8f9d-{next(_counter):012d}",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:omics-events",
            "Message": message,
            "Timestamp": "2022-10-20T22:07:36.012Z",
        }
    )


_TASK = {
    "omicsVersion": "1.0.0",
    "arn": "arn:aws:omics:us-west-2:123456789012:task/8888888",
    "status": "COMPLETED",
    "runArn": "arn:aws:omics:us-west-2:123456789012:run/2101313",
    "runUuid": "153893cd-097a-40ec-aec7-838a97cd2b21",
    "runId": "1234567",
}
_JOB = {
    "omicsVersion": "1.0.0",
    "id": "3660451514",
    "sequenceStoreId": "3936421177",
    "status": "COMPLETED",
}
_READ_SET = {
    "omicsVersion": "1.0.0",
    "id": "1894433287",
    "sequenceStoreId": "3936421177",
    "status": "ACTIVE",
}
_STORE = {
    "omicsVersion": "1.0.0",
    "arn": "arn:aws:omics:us-east-1:123456789012:store",
    "status": "CREATED",
    "storeId": "6710c5f02610",
    "storeName": "store",
}


def _rejected(name: str, event: dict[str, Any] | bytes, *, escaped: bool = False) -> Case:
    raw = event if isinstance(event, bytes) else (_escaped if escaped else _dump)(event)
    return Case(name, raw)


def _accepted(name: str, event: dict[str, Any], *, escaped: bool = False) -> Case:
    return Case(name, (_escaped if escaped else _dump)(event), True, event["id"])


def _nul_byte_in(raw: bytes, where: bytes) -> bytes:
    assert where in raw
    return raw.replace(where, where[:2] + b"\x00" + where[2:], 1)


def _time(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _build() -> list[Case]:
    rng = random.Random(14)
    nul_escape = _escaped(_event(detail={"runName": "a\x00b"}))
    cases = [
        # --- NUL, as a byte and as the \u0000 escape, in keys and values, at any depth
        Case("NUL byte in a value", _nul_byte_in(_dump(_event()), b'"run name"')),
        Case("NUL byte in a key", _nul_byte_in(_dump(_event()), b'"runName"')),
        _rejected("NUL escape in a value", _event(detail={"runName": "a\x00b"}), escaped=True),
        _rejected("NUL escape in a detail key", _event(detail={"a\x00b": "x"}), escaped=True),
        _rejected("NUL escape in a top-level key", _event({"x\x00": "y"}), escaped=True),
        _rejected(
            "NUL escape 6 levels deep",
            _event(detail={"extra": {"a": {"b": [{"c": ["\x00"]}]}}}),
            escaped=True,
        ),
        _rejected("NUL escape in the id", _event({"id": "abc\x00def"}), escaped=True),
        _rejected("NUL escape in detail-type", _event({"detail-type": "Run\x00"}), escaped=True),
        Case("NUL escape inside an SNS message", _sns(nul_escape.decode())),
        # --- longer than its column
        _rejected("detail-type of 129 characters", _event({"detail-type": "D" * 129})),
        _rejected("detail-type of 10,000 characters", _event({"detail-type": "D" * 10_000})),
        _rejected("source of 200 characters", _event({"source": "aws." + "s" * 196})),
        _rejected("id of 257 characters", _event({"id": "e" * 257})),
        _rejected("run uuid of 65 characters", _event(detail={"uuid": "u" * 65})),
        _rejected("runId of 33 characters", _event(detail={"runId": "1" * 33})),
        _rejected("runName of 257 characters", _event(detail={"runName": "n" * 257})),
        _rejected("workflowId of 65 characters", _event(detail={"workflowId": "7" * 65})),
        _rejected("workflowName of 257 characters", _event(detail={"workflowName": "w" * 257})),
        _rejected("arn of 2049 characters", _event(detail={"arn": "arn:" + "a" * 2045})),
        _rejected(
            "task id of 65 characters",
            _other("Task Status Change", {**_TASK, "arn": _TASK["arn"] + "8" * 58}),
        ),
        _rejected(
            "task runUuid of 65 characters",
            _other("Task Status Change", {**_TASK, "runUuid": "u" * 65}),
        ),
        _rejected(
            "read set id of 65 characters",
            _other("Read Set Status Change", {**_READ_SET, "id": "1" * 65}),
        ),
        _rejected(
            "import job sequenceStoreId of 65 characters",
            _other("Read Set Import Job Status Change", {**_JOB, "sequenceStoreId": "3" * 65}),
        ),
        _rejected(
            "import job id of 65 characters",
            _other("Read Set Import Job Status Change", {**_JOB, "id": "3" * 65}),
        ),
        _rejected(
            "storeId of 257 characters",
            _other("Variant Store Status Change", {**_STORE, "storeId": "s" * 257}),
        ),
        _rejected(
            "storeName of 257 characters",
            _other("Variant Store Status Change", {**_STORE, "storeName": "s" * 257}),
        ),
        _rejected(
            "store status of 33 characters",
            _other("Variant Store Status Change", {**_STORE, "status": "S" * 33}),
        ),
        _rejected(
            "generic status of 65 characters",
            _other("Brand New Status Change", {"status": "S" * 65}),
        ),
        _rejected(
            "generic resource ARN of 2049 characters",
            _other("Brand New Status Change", {"status": "OK"}, resources=["r" * 2049]),
        ),
        _rejected(
            "store id of 300 characters at the end of its ARN",
            _other(
                "Sequence Store Status Change",
                {"arn": "arn:aws:omics:us-east-1:1:sequenceStore/" + "1" * 300, "status": "ACTIVE"},
            ),
        ),
        # --- ids that would be paths
        _rejected("id ../../x", _event({"id": "../../x"})),
        _rejected("id a/b/../../c", _event({"id": "a/b/../../c"})),
        _rejected("id of 256 slashes", _event({"id": "/" * 256})),
        _rejected("id with a slash", _event({"id": "a/b"})),
        _rejected("id with a backslash", _event({"id": "a\\b"})),
        _rejected("id with CRLF", _event({"id": "forged\r\nINFO ok"})),
        _rejected("id with a tab", _event({"id": "a\tb"})),
        _rejected("id with a right-to-left override", _event({"id": "abc\u202egpj.exe"})),
        _rejected("id ..", _event({"id": ".."})),
        _rejected("id with a leading dot", _event({"id": ".hidden"})),
        _rejected("id with a space", _event({"id": "a b"})),
        _rejected("run uuid ../../etc", _event(detail={"uuid": "../../etc"})),
        _rejected("runId 1/../../2", _event(detail={"runId": "1/../../2"})),
        _rejected(
            "task id ..",
            _other("Task Status Change", {**_TASK, "arn": "arn:aws:omics:us-west-2:1:task/.."}),
        ),
        _rejected(
            "store id .. at the end of its ARN",
            _other(
                "Sequence Store Status Change",
                {"arn": "arn:aws:omics:us-east-1:1:sequenceStore/..", "status": "ACTIVE"},
            ),
        ),
        _rejected(
            "import job id with a slash",
            _other("Read Set Import Job Status Change", {**_JOB, "id": "job/../../x"}),
        ),
        _rejected(
            "read set sequenceStoreId with CRLF",
            _other("Read Set Status Change", {**_READ_SET, "sequenceStoreId": "1\r\n2"}),
        ),
        # --- absurd times
        _rejected("time in year 1", _event({"time": "0001-01-01T00:00:00Z"})),
        _rejected("time in year 9999", _event({"time": "9999-12-31T23:59:59Z"})),
        _rejected("time before 2015", _event({"time": "2014-12-31T23:59:59Z"})),
        _rejected("time two days ahead", _event({"time": _time(timedelta(days=2))})),
        # --- huge fields
        _rejected("huge field over the size limit", _event(detail={"blob": "x" * 1_100_000})),
        _rejected("huge id", _event({"id": "i" * 200_000})),
        _accepted("huge free-text field (200 kB)", _event(detail={"statusMessage": "m" * 200_000})),
        # --- JSON and SQS body trouble
        _rejected("duplicate key", _dump(_event())[:-1] + b',"version":"0"}'),
        _rejected("not JSON", b"this is not an event, nor JSON"),
        _rejected("base64 junk", base64.b64encode(rng.randbytes(600))),
        _rejected("lone surrogate escape in a key", _dump(_event())[:-1] + b',"\\udc00":1}'),
        Case("SNS wrapper whose Message is not JSON", _sns("not json {")),
        Case("SNS wrapper whose Message is base64", _sns(base64.b64encode(b"{}").decode())),
        Case("SNS wrapper around a traversal id", _sns(_dump(_event({"id": "../x"})).decode())),
        _rejected("nesting 100,000 deep", b"[" * DEEP + b"]" * DEEP),
        # --- harmless: accepted as they are
        _accepted("backslash-u0000 as text", _event(detail={"runName": "back\\u0000slash"})),
        _accepted(
            "RTL override and CRLF in free text",
            _event(detail={"statusMessage": "abc\u202edef\r\nINFO forged"}),
        ),
        _accepted("time a minute ahead", _event({"time": _time(timedelta(minutes=1))})),
        _accepted("id with dots, colons and dashes", _event({"id": "a.b:c-d_e.f"})),
    ]
    return cases


HOSTILE: list[Case] = _build()


def good_events(count: int, tag: str) -> list[dict[str, Any]]:
    """Valid, distinct run events (a run each)."""
    return [
        run_event(f"good-{tag}-{n:04d}", run_uuid=f"0000{n:04d}-{tag}-run", run_id=str(5000 + n))
        for n in range(count)
    ]


def json_lines_file(good: list[dict[str, Any]], cases: list[Case]) -> bytes:
    """JSON lines: a line nesting 100,000 deep (never closed) first and last, the cases and the
    good events interleaved, a duplicate-key line."""
    deep = b"[" * DEEP
    lines = [deep]
    for n, event in enumerate(good):
        lines.append(_dump(event))
        if n < len(cases):
            lines.append(cases[n].raw)
    lines += [case.raw for case in cases[len(good) :]]
    lines.append(_dump(_event())[:-1] + b',"id":"dup-in-lines"}')
    lines.append(deep)
    return b"\n".join(lines) + b"\n"


def array_file(good: list[dict[str, Any]], cases: list[Case]) -> bytes:
    """A JSON array: balanced nesting 100,000 deep first and last, the cases and the good events
    interleaved, a duplicate-key element."""
    deep = b"[" * DEEP + b"]" * DEEP
    elements = [deep]
    for n, event in enumerate(good):
        elements.append(json.dumps(event, indent=1).encode())
        if n < len(cases):
            elements.append(cases[n].raw)
    elements += [case.raw for case in cases[len(good) :]]
    elements.append(_dump(_event())[:-1] + b',"id":"dup-in-array"}')
    elements.append(deep)
    return b"[\n" + b",\n".join(elements) + b"\n]\n"
