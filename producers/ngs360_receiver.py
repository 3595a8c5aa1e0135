"""A local NGS360 callback endpoint that answers like the real server, for tests and the demo.

Why our own: the callback worker's promises ("exactly the final status", "never an event id
twice", "in order", "the key never goes elsewhere") can only be checked on the receiving side.
:class:`Ngs360Receiver` serves ``POST /internal/callbacks/omics-state-change`` with uvicorn from
a thread and answers as ``contracts/ngs360-callback.md`` says, with its own validation (not the
worker's model, so a worker bug cannot hide behind a shared one):

* 422 when the ``X-Internal-API-Key`` header is missing or any field breaks the contract (types,
  lengths, the status pattern, a 36-character ``wes_run_id``, ``event_time`` in UTC with ``Z``,
  unknown JSON), with FastAPI-style ``detail`` entries naming the field;
* 403 for a wrong key, 404 for a ``wes_run_id`` it does not know (:meth:`register` the WES runs
  first, or start it with ``auto_register=True``);
* 200 ``already_processed`` for the same ``event_id`` as the last one applied to the run;
* 200, ignored, for any status after a terminal one;
* 400 "Invalid state transition" for a terminal status while the run is still QUEUED or
  INITIALIZING (the server never saw it running).

States follow the WES server's mapping (``callback_service.py``): every non-terminal HealthOmics
status is RUNNING, COMPLETED is COMPLETE, FAILED is EXECUTOR_ERROR, CANCELLED is CANCELED; a new
run starts QUEUED.  Faults are switchable at any time: answer a status (503) for a period or for
good, stall every request, refuse every key.  Every request is recorded (time, path, headers —
key included, that is the point — body and answer) and so is the state of every WES run, so a
test can compare them with the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from producers.http_thread import ThreadedHttpServer

CALLBACK_PATH = "/internal/callbacks/omics-state-change"
KEY_HEADER = "x-internal-api-key"

STATUS_PATTERN = re.compile(
    r"^(COMPLETED|FAILED|CANCELLED|CANCELLED_RUNNING|CANCELLED_STARTING"
    r"|RUNNING|STARTING|PENDING|QUEUED|STOPPING|TERMINATING)$"
)
ISO_UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")

#: HealthOmics status -> WES state, as the WES server maps them.
OMICS_TO_WES = {
    "COMPLETED": "COMPLETE",
    "FAILED": "EXECUTOR_ERROR",
    "CANCELLED": "CANCELED",
    "CANCELLED_RUNNING": "CANCELED",
    "CANCELLED_STARTING": "CANCELED",
    "STARTING": "RUNNING",
    "RUNNING": "RUNNING",
    "PENDING": "RUNNING",
    "QUEUED": "RUNNING",
    "STOPPING": "RUNNING",
    "TERMINATING": "RUNNING",
}
TERMINAL_WES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "CANCELED", "SYSTEM_ERROR"})
NOT_STARTED_WES = frozenset({"QUEUED", "INITIALIZING"})


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
    omics_status: str | None = None
    last_event_id: str | None = None
    #: (event_id, omics status, WES state) of every callback that changed or confirmed the run.
    applied: list[tuple[str, str, str]] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    log_urls: dict[str, Any] | None = None
    status_message: str | None = None
    failure_reason: str | None = None


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
        """Make WES runs known (the server knows the runs it submitted)."""
        with self._lock:
            for wes_run_id in wes_run_ids:
                self._runs.setdefault(wes_run_id, WesRun(wes_run_id, state=state))

    def fail(self, status: int = 503, seconds: float | None = None) -> None:
        """Answer every callback with ``status`` for ``seconds`` (None: until :meth:`recover`)."""
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
                key: WesRun(**{**run.__dict__, "applied": list(run.applied)})
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

    def _validate(self, request: Request, body: Any) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []

        def error(loc: list[str], msg: str, kind: str) -> None:
            errors.append({"loc": loc, "msg": msg, "type": kind})

        if KEY_HEADER not in request.headers:
            error(["header", "X-Internal-API-Key"], "Field required", "missing")
        if not isinstance(body, dict):
            error(["body"], "Input should be a valid dictionary", "dict_type")
            return errors
        for name in ("omics_run_id", "status", "wes_run_id", "event_time", "event_id"):
            if name not in body:
                error(["body", name], "Field required", "missing")
            elif not isinstance(body[name], str):
                error(["body", name], "Input should be a valid string", "string_type")
        limits = {"omics_run_id": (1, 50), "wes_run_id": (36, 36), "event_id": (1, 100)}
        for name, (low, high) in limits.items():
            value = body.get(name)
            if isinstance(value, str) and not low <= len(value) <= high:
                error(["body", name], f"String should have {low}..{high} characters", "length")
        status = body.get("status")
        if isinstance(status, str) and not STATUS_PATTERN.match(status):
            error(["body", "status"], "String should match pattern", "string_pattern_mismatch")
        when = body.get("event_time")
        if isinstance(when, str):
            if not ISO_UTC_Z.match(when):
                error(["body", "event_time"], "must be ISO-8601 UTC with a Z suffix", "datetime")
            else:
                try:
                    datetime.fromisoformat(when.replace("Z", "+00:00"))
                except ValueError:
                    error(["body", "event_time"], "Input should be a valid datetime", "datetime")
        for name, limit in (("status_message", 1000), ("failure_reason", 2000)):
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                error(["body", name], "Input should be a valid string", "string_type")
            elif isinstance(value, str) and len(value) > limit:
                error(["body", name], f"String should have at most {limit} characters", "length")
        for name in ("output_mapping", "log_urls"):
            value = body.get(name)
            if value is not None and not isinstance(value, dict):
                error(["body", name], "Input should be a valid dictionary", "dict_type")
        return errors

    def _apply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wes_run_id = body["wes_run_id"]
        run = self._runs.get(wes_run_id)
        if run is None and self.auto_register:
            run = self._runs[wes_run_id] = WesRun(wes_run_id)
        if run is None:
            return 404, {"detail": f"Workflow run {wes_run_id} not found"}
        previous = run.state
        answer = {"success": True, "wes_run_id": wes_run_id, "previous_state": previous}
        if run.last_event_id == body["event_id"]:
            return 200, answer | {
                "new_state": previous,
                "message": f"Event {body['event_id']} already processed",
                "already_processed": True,
            }
        new = OMICS_TO_WES[body["status"]]
        if previous in TERMINAL_WES:
            return 200, answer | {
                "new_state": previous,
                "message": f"Run already in terminal state {previous}",
                "already_processed": False,
            }
        if new in TERMINAL_WES and previous in NOT_STARTED_WES:
            return 400, {"detail": f"Invalid state transition: {previous} -> {new}"}
        run.state = new
        run.omics_status = body["status"]
        run.last_event_id = body["event_id"]
        run.applied.append((body["event_id"], body["status"], new))
        run.status_message = body.get("status_message") or run.status_message
        run.failure_reason = body.get("failure_reason") or run.failure_reason
        if new in TERMINAL_WES:
            run.log_urls = body.get("log_urls")
            if new == "COMPLETE":
                run.outputs = body.get("output_mapping")
        return 200, answer | {
            "new_state": new,
            "message": f"Successfully updated state from {previous} to {new}",
            "already_processed": False,
        }

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
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 422, {"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json"}]}
        errors = self._validate(request, body)
        if errors:
            return 422, {"detail": errors}
        if request.headers[KEY_HEADER] != self.api_key:
            return 403, {"detail": "Invalid internal API key"}
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
