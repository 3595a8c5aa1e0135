"""A local NGS360 callback endpoint that answers like the real server, for tests and the demo.

Why our own: the callback worker's promises ("exactly the final status", "never an event id
twice", "in order", "the key never goes elsewhere") can only be checked on the receiving side,
and only if the receiving side refuses what production refuses.  :class:`Ngs360Receiver` serves
``POST /internal/callbacks/omics-state-change`` with uvicorn from a thread and answers exactly
as "How the server answers" in ``docs/reference/ngs360-callback.md`` says, in its order, with its
own body model (not the worker's, so a worker bug cannot hide behind a shared one):

1. 403 for a wrong or missing ``X-Internal-API-Key``, before the body is looked at; 503 when
   the endpoint is disabled (:meth:`disable`);
2. 422 when the body breaks the model (FastAPI-style ``detail`` entries naming the field); an
   ``event_time`` with an offset (``+02:00``) is accepted and its wall time kept;
3. 404 for a ``wes_run_id`` it does not know (:meth:`register` the WES runs first, or start it
   with ``auto_register=True``);
4. 200 ``already_processed`` for the run's *last state-changing* ``event_id`` only;
5. 400 for a status outside the contract's set;
6. the status mapped to a WES state (every non-terminal status is RUNNING);
7. 200 "No state change" when the state is the same (nothing stored);
8. the WES transition table: 200 "already in terminal state" from a terminal state, else 400
   ``Invalid state transition: A -> B``;
9. 200, state updated: RUNNING sets the start time (if none), a terminal state the end time
   and ``log_urls``, COMPLETE also ``output_mapping``.

A test can put a WES run in any state (``register(ids, state="PAUSED")``, :meth:`set_state`
for a user's cancel in WES) to see each rule.  Faults are switchable at any time, in front of
all that (a proxy or an outage, not the server): answer a status for a period or for good
(:meth:`fail`), stall every request (:meth:`slow`).  Every request is recorded (time, path,
headers — key included, that is the point — body and answer), and so is what each WES run
went through, so a test can compare them with the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.http_thread import ThreadedHttpServer

CALLBACK_PATH = "/internal/callbacks/omics-state-change"
KEY_HEADER = "x-internal-api-key"

#: HealthOmics status -> WES state, as the WES server maps them (contract step 6).
OMICS_TO_WES = {
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
TERMINAL_WES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "CANCELED", "SYSTEM_ERROR"})
#: The WES server's allowed transitions from each non-terminal state (contract step 8);
#: a terminal state allows none.
TRANSITIONS: dict[str, frozenset[str]] = {
    "UNKNOWN": frozenset({"QUEUED", "INITIALIZING", "RUNNING", "SYSTEM_ERROR"}),
    "QUEUED": frozenset({"INITIALIZING", "RUNNING", "CANCELED", "SYSTEM_ERROR"}),
    "INITIALIZING": frozenset({"RUNNING", "CANCELED", "EXECUTOR_ERROR", "SYSTEM_ERROR"}),
    "RUNNING": frozenset({"COMPLETE", "EXECUTOR_ERROR", "CANCELED", "SYSTEM_ERROR", "PAUSED"}),
    "PAUSED": frozenset({"RUNNING", "CANCELED", "SYSTEM_ERROR"}),
    "CANCELING": frozenset({"CANCELED", "SYSTEM_ERROR"}),
}
WES_STATES = frozenset(TRANSITIONS) | TERMINAL_WES


class CallbackBody(BaseModel):
    """The body as the server's model takes it: limits checked, ``status`` only a string (an
    unknown status is a 400 later, not a 422), unknown fields ignored, any ISO-8601 time."""

    model_config = ConfigDict(extra="ignore")

    omics_run_id: str = Field(min_length=1, max_length=50)
    status: str
    wes_run_id: str = Field(min_length=36, max_length=36)
    event_time: datetime
    event_id: str = Field(min_length=1, max_length=100)
    status_message: str | None = Field(default=None, max_length=1000)
    failure_reason: str | None = Field(default=None, max_length=2000)
    output_mapping: dict[str, Any] | None = None
    log_urls: dict[str, Any] | None = None

    @property
    def wall_time(self) -> datetime:
        """The time as written, offset dropped: what the server stores (it does not convert)."""
        return self.event_time.replace(tzinfo=None)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived, and what it was answered."""

    at: float  # time.monotonic()
    wall: float  # time.time()
    method: str
    path: str
    host: str
    headers: dict[str, str]
    body: bytes
    status: int
    answer: dict[str, Any]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class WesRun:
    """What the receiver holds for one WES run."""

    wes_run_id: str
    state: str = "QUEUED"
    #: The server's idempotency key: the event id of the last callback that changed the state.
    last_event_id: str | None = None
    #: (event_id, omics status, WES state) of every callback that changed the state.
    applied: list[tuple[str, str, str]] = field(default_factory=list)
    #: (event_id, omics status, WES state) of every callback taken as news: changed the state
    #: or confirmed it ("No state change").  Test bookkeeping, not something the server keeps.
    accepted: list[tuple[str, str, str]] = field(default_factory=list)
    #: The HealthOmics status of the last callback in ``accepted`` (test bookkeeping too).
    omics_status: str | None = None
    outputs: dict[str, Any] | None = None
    log_urls: dict[str, Any] | None = None
    status_message: str | None = None
    failure_reason: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


class Ngs360Receiver:
    """``with Ngs360Receiver(api_key="…") as receiver:`` → ``receiver.url`` is the API base URL."""

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_register: bool = False,
    ) -> None:
        self.api_key = api_key
        self.auto_register = auto_register
        self._lock = threading.Lock()
        self._runs: dict[str, WesRun] = {}
        self._requests: list[ReceivedRequest] = []
        self._enabled = True
        self._fail_status: int | None = None
        self._fail_until: float | None = None
        self._delay = 0.0
        self._http = ThreadedHttpServer(
            self._app(),
            host=host,
            port=port,
            name="ngs360-receiver",
            health_path="/_receiver/health",
            backlog=256,
        )

    # -- setup ------------------------------------------------------------------------------

    def register(self, wes_run_ids: Iterable[str], state: str = "QUEUED") -> None:
        """Make WES runs known (the server knows the runs it submitted), in ``state``."""
        if state not in WES_STATES:
            raise ValueError(f"{state!r} is not a WES state ({', '.join(sorted(WES_STATES))})")
        with self._lock:
            for wes_run_id in wes_run_ids:
                self._runs.setdefault(wes_run_id, WesRun(wes_run_id, state=state))

    def set_state(self, wes_run_id: str, state: str) -> None:
        """Move a known run as WES itself would (a user's cancel: CANCELING; a pause: PAUSED)."""
        if state not in WES_STATES:
            raise ValueError(f"{state!r} is not a WES state ({', '.join(sorted(WES_STATES))})")
        with self._lock:
            self._runs[wes_run_id].state = state

    def disable(self) -> None:
        """Turn the callback endpoint off, as the server's configuration can: 503 (after 403)."""
        with self._lock:
            self._enabled = False

    def enable(self) -> None:
        with self._lock:
            self._enabled = True

    def fail(self, status: int = 503, seconds: float | None = None) -> None:
        """Answer every callback with ``status`` for ``seconds`` (None: until :meth:`recover`),
        before anything else is looked at: an outage in front of the server."""
        with self._lock:
            self._fail_status = status
            self._fail_until = None if seconds is None else time.monotonic() + seconds

    def recover(self) -> None:
        with self._lock:
            self._fail_status = None
            self._fail_until = None

    def slow(self, seconds: float) -> None:
        """Stall every request ``seconds`` before answering (0 turns it off)."""
        with self._lock:
            self._delay = max(0.0, seconds)

    # -- what happened ----------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def callbacks(self) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.path == CALLBACK_PATH]

    def runs(self) -> dict[str, WesRun]:
        with self._lock:
            return {
                key: dataclasses.replace(
                    run, applied=list(run.applied), accepted=list(run.accepted)
                )
                for key, run in self._runs.items()
            }

    def state(self, wes_run_id: str) -> WesRun | None:
        return self.runs().get(wes_run_id)

    def accepted_event_ids(self) -> list[str]:
        """The ``event_id`` of every callback answered 2xx, in arrival order (duplicates kept)."""
        out: list[str] = []
        for request in self.callbacks():
            body = request.json()
            if 200 <= request.status < 300 and isinstance(body, dict):
                out.append(str(body.get("event_id")))
        return out

    # -- the endpoint -----------------------------------------------------------------------

    @staticmethod
    def _validate(raw: bytes) -> CallbackBody | list[dict[str, Any]]:
        """The body, or FastAPI's 422 ``detail`` entries."""
        try:
            return CallbackBody.model_validate_json(raw or b"null")
        except ValidationError as error:
            return [
                {
                    "loc": ["body", *error_entry["loc"]],
                    "msg": error_entry["msg"],
                    "type": error_entry["type"],
                }
                for error_entry in error.errors(include_url=False)
            ]

    def _apply(self, body: CallbackBody) -> tuple[int, dict[str, Any]]:
        """Steps 3 to 9 of the contract, in its order (the caller holds the lock)."""
        run = self._runs.get(body.wes_run_id)
        if run is None and self.auto_register:
            run = self._runs[body.wes_run_id] = WesRun(body.wes_run_id)
        if run is None:
            return 404, {"detail": f"Workflow run {body.wes_run_id} not found"}
        previous = run.state

        def answer(new_state: str, message: str, *, processed: bool = False) -> dict[str, Any]:
            return {
                "success": True,
                "wes_run_id": body.wes_run_id,
                "previous_state": previous,
                "new_state": new_state,
                "message": message,
                "already_processed": processed,
            }

        if run.last_event_id is not None and run.last_event_id == body.event_id:
            return 200, answer(previous, f"Event {body.event_id} already processed", processed=True)
        new = OMICS_TO_WES.get(body.status)
        if new is None:
            return 400, {"detail": f"Invalid status: {body.status}"}
        if new == previous:
            run.accepted.append((body.event_id, body.status, new))
            run.omics_status = body.status
            return 200, answer(previous, "No state change")
        if new not in TRANSITIONS.get(previous, frozenset()):
            if previous in TERMINAL_WES:
                return 200, answer(previous, f"Run already in terminal state {previous}")
            return 400, {"detail": f"Invalid state transition: {previous} -> {new}"}
        run.state = new
        run.last_event_id = body.event_id
        run.applied.append((body.event_id, body.status, new))
        run.accepted.append((body.event_id, body.status, new))
        run.omics_status = body.status
        if body.status_message is not None:
            run.status_message = body.status_message
        if body.failure_reason is not None:
            run.failure_reason = body.failure_reason
        if new == "RUNNING" and run.start_time is None:
            run.start_time = body.wall_time
        if new in TERMINAL_WES:
            run.end_time = body.wall_time
            run.log_urls = body.log_urls
            if new == "COMPLETE":
                run.outputs = body.output_mapping
        return 200, answer(new, f"State updated from {previous} to {new}")

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            delay = self._delay
        if delay:
            await asyncio.sleep(delay)
        status, answer = self._answer(request, raw)
        record = ReceivedRequest(
            at=time.monotonic(),
            wall=time.time(),
            method=request.method,
            path=request.url.path,
            host=request.headers.get("host", ""),
            headers=dict(request.headers),
            body=raw,
            status=status,
            answer=answer,
        )
        with self._lock:
            self._requests.append(record)
        return JSONResponse(answer, status_code=status)

    def _answer(self, request: Request, raw: bytes) -> tuple[int, dict[str, Any]]:
        if request.url.path != CALLBACK_PATH or request.method != "POST":
            return 404, {"detail": "Not Found"}
        with self._lock:
            if self._fail_status is not None and (
                self._fail_until is None or time.monotonic() < self._fail_until
            ):
                return self._fail_status, {"detail": "callback endpoint unavailable"}
            enabled = self._enabled
        if request.headers.get(KEY_HEADER) != self.api_key:
            return 403, {"detail": "Invalid internal API key"}
        if not enabled:
            return 503, {"detail": "Callback endpoint is disabled"}
        body = self._validate(raw)
        if isinstance(body, list):
            return 422, {"detail": body}
        with self._lock:
            return self._apply(body)

    def _app(self) -> Starlette:
        async def health(_: Request) -> Response:
            return JSONResponse({"ok": True})

        return Starlette(
            routes=[
                Route("/_receiver/health", health, methods=["GET"]),
                Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH"]),
            ]
        )

    # -- serving ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._http.host

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    def start(self, timeout: float = 10.0) -> str:
        """Serve from a daemon thread; returns the base URL once it answers."""
        return self._http.start(timeout)

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Ngs360Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
