"""The local NGS360 receiver against the callback contract's "How the server answers".

The contract: ``docs/reference/ngs360-callback.md``.

Why these tests matter more than their size: every callback test trusts the receiver to refuse
what production refuses.  So each row of the contract's table and each of its numbered steps is
a case here, asserting the HTTP status and the answer body a real client (httpx) gets, and
what the receiver then holds for the WES run.  The transition matrix is written out by hand
from the contract, not derived from the receiver's own table, so a wrong entry there fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from devtools.ngs360_receiver import CALLBACK_PATH, Ngs360Receiver

KEY = "contract-key"
ANSWER_KEYS = {
    "success",
    "wes_run_id",
    "previous_state",
    "new_state",
    "message",
    "already_processed",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Ngs360Receiver]:
    with Ngs360Receiver(KEY) as server:
        yield server


def body(wes: str, status: str = "RUNNING", event_id: str | None = None, **extra: Any) -> dict:
    return {
        "omics_run_id": "1234567",
        "status": status,
        "wes_run_id": wes,
        "event_time": "2026-01-22T22:16:09Z",
        "event_id": event_id or uuid.uuid4().hex,
        **extra,
    }


def post(receiver: Ngs360Receiver, payload: Any, key: str | None = KEY) -> httpx.Response:
    headers = {} if key is None else {"X-Internal-API-Key": key}
    if isinstance(payload, bytes):
        return httpx.post(
            receiver.url + CALLBACK_PATH,
            content=payload,
            headers=headers | {"Content-Type": "application/json"},
        )
    return httpx.post(receiver.url + CALLBACK_PATH, json=payload, headers=headers)


def new_run(receiver: Ngs360Receiver, state: str = "QUEUED") -> str:
    wes = str(uuid.uuid4())
    receiver.register([wes], state=state)
    return wes


@dataclass(frozen=True)
class Case:
    """One exchange: a run in ``state`` (or unknown), earlier callbacks, then the one asked."""

    state: str | None = "QUEUED"
    before: tuple[tuple[str, str], ...] = ()  # (status, event_id) sent first, each accepted
    status: str = "RUNNING"
    event_id: str = "e-asked"
    extra: dict[str, Any] = field(default_factory=dict)
    key: str | None = KEY
    raw: bytes | None = None
    disabled: bool = False
    code: int = 200
    answer: dict[str, Any] = field(default_factory=dict)  # expected subset of the JSON answer
    detail: str | None = None  # expected text in a 4xx/5xx ``detail``


def play(receiver: Ngs360Receiver, case: Case) -> httpx.Response:
    wes = new_run(receiver, case.state) if case.state else str(uuid.uuid4())
    for status, event_id in case.before:
        assert post(receiver, body(wes, status, event_id)).status_code == 200
    payload: Any = case.raw
    if payload is None:
        payload = body(wes, case.status, case.event_id) | case.extra
    if case.disabled:
        receiver.disable()
    try:
        return post(receiver, payload, case.key)
    finally:
        receiver.enable()


def check(response: httpx.Response, case: Case) -> None:
    assert response.status_code == case.code, response.text
    answer = response.json()
    if case.code == 200:
        assert set(answer) == ANSWER_KEYS and answer["success"] is True
    for name, value in case.answer.items():
        assert answer[name] == value, (name, answer)
    if case.detail is not None:
        assert case.detail in str(answer["detail"]), answer


# --- the contract's table, row by row ---------------------------------------------------------

TABLE = {
    "accepted, changed": Case(
        status="RUNNING",
        answer={"previous_state": "QUEUED", "new_state": "RUNNING", "already_processed": False},
    ),
    "accepted, unchanged": Case(
        state="RUNNING",
        status="STOPPING",
        answer={
            "previous_state": "RUNNING",
            "new_state": "RUNNING",
            "message": "No state change",
            "already_processed": False,
        },
    ),
    "accepted, ignored because terminal": Case(
        state="COMPLETE",
        status="FAILED",
        answer={"previous_state": "COMPLETE", "new_state": "COMPLETE", "already_processed": False},
    ),
    "same event_id as the last state-changing one": Case(
        before=(("RUNNING", "e-asked"),),
        status="RUNNING",
        answer={"new_state": "RUNNING", "already_processed": True},
    ),
    "COMPLETED while WES holds QUEUED": Case(
        status="COMPLETED", code=400, detail="Invalid state transition: QUEUED -> COMPLETE"
    ),
    "FAILED while WES holds QUEUED": Case(
        status="FAILED", code=400, detail="Invalid state transition: QUEUED -> EXECUTOR_ERROR"
    ),
    "RUNNING while WES holds CANCELING": Case(
        state="CANCELING",
        status="RUNNING",
        code=400,
        detail="Invalid state transition: CANCELING -> RUNNING",
    ),
    "COMPLETED while WES holds CANCELING": Case(
        state="CANCELING",
        status="COMPLETED",
        code=400,
        detail="Invalid state transition: CANCELING -> COMPLETE",
    ),
    "FAILED while WES holds CANCELING": Case(
        state="CANCELING",
        status="FAILED",
        code=400,
        detail="Invalid state transition: CANCELING -> EXECUTOR_ERROR",
    ),
    "CANCELLED while WES holds CANCELING is taken": Case(
        state="CANCELING",
        status="CANCELLED",
        answer={"previous_state": "CANCELING", "new_state": "CANCELED"},
    ),
    "COMPLETED while WES holds PAUSED": Case(
        state="PAUSED",
        status="COMPLETED",
        code=400,
        detail="Invalid state transition: PAUSED -> COMPLETE",
    ),
    "FAILED while WES holds PAUSED": Case(
        state="PAUSED",
        status="FAILED",
        code=400,
        detail="Invalid state transition: PAUSED -> EXECUTOR_ERROR",
    ),
    "body fails validation": Case(extra={"wes_run_id": "short"}, code=422),
    "wrong key": Case(key="not-the-key", code=403),
    "missing key": Case(key=None, code=403),
    "unknown wes_run_id": Case(state=None, code=404, detail="not found"),
    "callback endpoint disabled": Case(disabled=True, code=503),
}


@pytest.mark.parametrize("case", list(TABLE.values()), ids=list(TABLE))
def test_contract_table(receiver: Ngs360Receiver, case: Case) -> None:
    check(play(receiver, case), case)


# --- the contract's steps, in its order -------------------------------------------------------

STEPS = {
    "1: wrong key with a bad body is 403, not 422": Case(
        key="not-the-key", extra={"wes_run_id": "short", "event_id": ""}, code=403
    ),
    "1: missing key with a body that is not JSON is 403": Case(key=None, raw=b"{", code=403),
    "1: wrong key on a disabled endpoint is 403": Case(key="x", disabled=True, code=403),
    "1: disabled endpoint, bad body: 503 before 422": Case(
        disabled=True, extra={"wes_run_id": "short"}, code=503
    ),
    "2: not JSON": Case(raw=b"{", code=422),
    "2: omics_run_id empty": Case(extra={"omics_run_id": ""}, code=422, detail="omics_run_id"),
    "2: omics_run_id over 50": Case(
        extra={"omics_run_id": "1" * 51}, code=422, detail="omics_run_id"
    ),
    "2: event_id over 100": Case(event_id="x" * 101, code=422, detail="event_id"),
    "2: status_message over 1000": Case(
        extra={"status_message": "m" * 1001}, code=422, detail="status_message"
    ),
    "2: failure_reason over 2000": Case(
        extra={"failure_reason": "f" * 2001}, code=422, detail="failure_reason"
    ),
    "2: output_mapping not an object": Case(
        extra={"output_mapping": ["a"]}, code=422, detail="output_mapping"
    ),
    "2: status not a string": Case(extra={"status": 3}, code=422, detail="status"),
    "2: event_time not a time": Case(
        extra={"event_time": "yesterday"}, code=422, detail="event_time"
    ),
    "2: a +02:00 offset is accepted": Case(
        extra={"event_time": "2026-01-22T22:16:09+02:00"}, answer={"new_state": "RUNNING"}
    ),
    "2: unknown fields are ignored": Case(
        extra={"colour": "blue"}, answer={"new_state": "RUNNING"}
    ),
    "3: unknown wes_run_id after a valid body": Case(state=None, status="DELETED", code=404),
    "4: already processed comes before the unknown-status check": Case(
        before=(("RUNNING", "e-asked"),), status="DELETED", answer={"already_processed": True}
    ),
    "4: an earlier state-changing id is not remembered": Case(
        state="QUEUED",
        before=(("RUNNING", "e-asked"), ("COMPLETED", "e-2")),
        status="RUNNING",
        answer={"already_processed": False, "new_state": "COMPLETE"},
    ),
    "4: a No-state-change id is not remembered": Case(
        state="QUEUED",
        before=(("RUNNING", "e-1"), ("STARTING", "e-asked")),
        status="STARTING",
        answer={"already_processed": False, "message": "No state change"},
    ),
    "5: status outside the set": Case(status="DELETED", code=400, detail="DELETED"),
    "5: lower-case status": Case(status="running", code=400),
    "7: same mapped state": Case(
        state="RUNNING",
        status="PENDING",
        answer={"message": "No state change", "new_state": "RUNNING"},
    ),
    "7: terminal, same state again": Case(
        state="COMPLETE", status="COMPLETED", answer={"message": "No state change"}
    ),
    "8: terminal state ignores the rest": Case(
        state="EXECUTOR_ERROR",
        status="CANCELLED",
        answer={
            "message": "Run already in terminal state EXECUTOR_ERROR",
            "new_state": "EXECUTOR_ERROR",
        },
    ),
    "8: not allowed from a non-terminal state": Case(
        state="UNKNOWN",
        status="CANCELLED",
        code=400,
        detail="Invalid state transition: UNKNOWN -> CANCELED",
    ),
    "9: allowed": Case(
        state="PAUSED",
        status="RUNNING",
        answer={"previous_state": "PAUSED", "new_state": "RUNNING", "already_processed": False},
    ),
}


@pytest.mark.parametrize("case", list(STEPS.values()), ids=list(STEPS))
def test_contract_steps(receiver: Ngs360Receiver, case: Case) -> None:
    check(play(receiver, case), case)


# step 6: the mapping, seen from a RUNNING run (a non-terminal status changes nothing there)
MAPPING = {
    "COMPLETED": "COMPLETE",
    "FAILED": "EXECUTOR_ERROR",
    "CANCELLED": "CANCELED",
    "CANCELLED_RUNNING": "CANCELED",
    "CANCELLED_STARTING": "CANCELED",
    "QUEUED": "RUNNING",
    "PENDING": "RUNNING",
    "STARTING": "RUNNING",
    "RUNNING": "RUNNING",
    "STOPPING": "RUNNING",
    "TERMINATING": "RUNNING",
}


@pytest.mark.parametrize(("status", "state"), list(MAPPING.items()))
def test_step_6_status_to_wes_state(receiver: Ngs360Receiver, status: str, state: str) -> None:
    wes = new_run(receiver, "RUNNING")
    answer = post(receiver, body(wes, status)).json()
    assert answer["new_state"] == state
    assert answer["message"] == (
        "No state change" if state == "RUNNING" else f"State updated from RUNNING to {state}"
    )


# step 8: the transition table, by hand: what each state does with each mapped state.
# "=" no state change, "ok" changed, "400" refused, "T" ignored (already terminal)
# fmt: off
MATRIX = {
    #                 RUNNING  COMPLETE  EXECUTOR_ERROR  CANCELED
    "UNKNOWN":        ("ok",   "400",    "400",          "400"),
    "QUEUED":         ("ok",   "400",    "400",          "ok"),
    "INITIALIZING":   ("ok",   "400",    "ok",           "ok"),
    "RUNNING":        ("=",    "ok",     "ok",           "ok"),
    "PAUSED":         ("ok",   "400",    "400",          "ok"),
    "CANCELING":      ("400",  "400",    "400",          "ok"),
    "COMPLETE":       ("T",    "=",      "T",            "T"),
    "EXECUTOR_ERROR": ("T",    "T",      "=",            "T"),
    "SYSTEM_ERROR":   ("T",    "T",      "T",            "T"),
    "CANCELED":       ("T",    "T",      "T",            "="),
}
# fmt: on
SENT = (
    ("RUNNING", "RUNNING"),
    ("COMPLETED", "COMPLETE"),
    ("FAILED", "EXECUTOR_ERROR"),
    ("CANCELLED", "CANCELED"),
)


@pytest.mark.parametrize(
    ("state", "status", "mapped", "expected"),
    [
        (state, status, mapped, row[n])
        for state, row in MATRIX.items()
        for n, (status, mapped) in enumerate(SENT)
    ],
)
def test_step_8_transition_table(
    receiver: Ngs360Receiver, state: str, status: str, mapped: str, expected: str
) -> None:
    wes = new_run(receiver, state)
    response = post(receiver, body(wes, status, "e-1"))
    held = receiver.state(wes)
    assert held is not None
    if expected == "400":
        assert response.status_code == 400
        assert response.json() == {"detail": f"Invalid state transition: {state} -> {mapped}"}
        assert held.state == state and held.last_event_id is None
        return
    answer = response.json()
    assert response.status_code == 200 and answer["already_processed"] is False
    if expected == "ok":
        assert (answer["previous_state"], answer["new_state"]) == (state, mapped)
        assert held.state == mapped and held.last_event_id == "e-1"
    else:
        assert answer["new_state"] == state and held.state == state
        assert held.last_event_id is None
        message = "No state change" if expected == "=" else "already in terminal state"
        assert message in answer["message"]


# --- what is stored ----------------------------------------------------------------------------


def test_no_state_change_stores_nothing(receiver: Ngs360Receiver) -> None:
    wes = new_run(receiver)
    post(receiver, body(wes, "PENDING", "e-1", status_message="queued in HealthOmics"))
    answer = post(
        receiver,
        body(wes, "RUNNING", "e-2", status_message="running now", failure_reason="nothing"),
    ).json()
    assert answer["message"] == "No state change"
    held = receiver.state(wes)
    assert held is not None
    assert (held.last_event_id, held.status_message, held.failure_reason) == (
        "e-1",
        "queued in HealthOmics",
        None,
    )
    assert post(receiver, body(wes, "RUNNING", "e-1")).json()["already_processed"] is True


def test_running_sets_the_start_time_once_with_the_wall_time_kept(
    receiver: Ngs360Receiver,
) -> None:
    wes = new_run(receiver)
    post(receiver, body(wes, "RUNNING", "e-1", event_time="2026-01-22T22:16:09+02:00"))
    receiver.set_state(wes, "PAUSED")
    post(receiver, body(wes, "RUNNING", "e-2", event_time="2026-01-23T08:00:00Z"))
    held = receiver.state(wes)
    assert held is not None and held.state == "RUNNING"
    assert held.start_time == datetime(2026, 1, 22, 22, 16, 9)  # not 20:16:09: not converted
    assert held.end_time is None


@pytest.mark.parametrize(
    ("status", "outputs_kept"), [("COMPLETED", True), ("FAILED", False), ("CANCELLED", False)]
)
def test_terminal_sets_end_time_and_log_urls_complete_also_outputs(
    receiver: Ngs360Receiver, status: str, outputs_kept: bool
) -> None:
    wes = new_run(receiver, "RUNNING")
    logs = {"run_log": "https://console.example/run"}
    outputs = {"bam": "s3://bucket/out.bam"}
    answer = post(
        receiver,
        body(
            wes,
            status,
            "e-end",
            event_time="2026-01-22T23:00:00Z",
            log_urls=logs,
            output_mapping=outputs,
            failure_reason="boom" if status == "FAILED" else None,
        ),
    )
    assert answer.status_code == 200
    held = receiver.state(wes)
    assert held is not None
    assert held.end_time == datetime(2026, 1, 22, 23, 0, 0)
    assert held.log_urls == logs
    assert held.outputs == (outputs if outputs_kept else None)
    assert held.failure_reason == ("boom" if status == "FAILED" else None)


def test_register_refuses_a_state_wes_does_not_have(receiver: Ngs360Receiver) -> None:
    with pytest.raises(ValueError, match="not a WES state"):
        receiver.register([str(uuid.uuid4())], state="STOPPING")
