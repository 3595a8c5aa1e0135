"""The HealthOmics REST-JSON front of the simulator, as a Starlette ASGI app.

Why REST-JSON over real HTTP (and not a stub inside boto3): the workers must run *unchanged*,
with a real ``boto3.client("omics", endpoint_url=…)``.  So the paths, query parameters and
bodies are exactly those of botocore's ``omics`` model (2022-11-28), and errors follow the
rest-json convention botocore parses: the model's HTTP status, an ``x-amzn-ErrorType: <Code>``
header and a ``{"message": …}`` body, so ``ClientError.response["Error"]["Code"]`` is right and
botocore's retry logic sees a 429 as throttling.

Operations (method, path → operation):

* ``GET /run/{id}`` → GetRun
* ``GET /run`` → ListRuns (``name``, ``runGroupId``, ``status``, paging), for reconciliation
* ``GET /run/{id}/task`` → ListRunTasks (``status``, ``startingToken``, ``maxResults``)
* ``GET /run/{id}/task/{taskId}`` → GetRunTask
* ``GET /tags/{resourceArn}`` → ListTagsForResource (the ARN arrives percent-encoded)
* ``POST /sequencestore/{sequenceStoreId}/importjob`` → StartReadSetImportJob
* ``GET /sequencestore/{sequenceStoreId}/importjob/{id}`` → GetReadSetImportJob
* ``POST /sequencestore/{sequenceStoreId}/importjobs`` → ListReadSetImportJobs (``filter`` body,
  ``maxResults``/``nextToken`` query)

Every operation first waits ``Faults.api_latency`` seconds (an ``asyncio`` sleep, so concurrent
calls wait side by side, as they would on the network).

Plus ``GET /_simulator/health``, ``/_simulator/summary`` and ``/_simulator/ground-truth`` for
readiness checks and for processes that cannot reach the simulator object (docker compose).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator import operations as ops
from simulator.simulator import Simulator

_JSON = "application/json"


def _respond(status: int, body: dict[str, Any], code: str | None) -> Response:
    headers = {"x-amzn-RequestId": "omics-sim"}
    if code:
        headers["x-amzn-ErrorType"] = code
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=_JSON,
        headers=headers,
    )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ops.ApiError("ValidationException", f"Malformed JSON body: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ops.ApiError("ValidationException", "The request body must be a JSON object.")
    return data


class _Latency:
    """Delays every API request (not ``/_simulator/…``) by the simulator's ``api_latency``."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_simulator/"):
            latency = self.sim.faults.api_latency
            if latency > 0:
                await asyncio.sleep(latency)
        await self.app(scope, receive, send)


class _Operations:
    """One method per HealthOmics operation the simulator serves: each reads the request's path
    and query, and answers through :meth:`Simulator.call` (throttling, faults, request log)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world

    def answer(
        self, operation: str, params: dict[str, Any], fn: Callable[[], dict[str, Any]]
    ) -> Response:
        return _respond(*self.sim.call(operation, fn, params))

    def refuse(self, operation: str, params: dict[str, Any], err: ops.ApiError) -> Response:
        """A request the API refuses before the operation runs (a malformed body), answered
        through the same path so it is throttled and logged like any other call."""

        def fail() -> dict[str, Any]:
            raise err

        return self.answer(operation, params, fail)

    async def get_run(self, request: Request) -> Response:
        run_id = request.path_params["id"]
        return self.answer("GetRun", {"id": run_id}, lambda: ops.get_run(self.world, run_id))

    async def list_runs(self, request: Request) -> Response:
        q = request.query_params
        return self.answer(
            "ListRuns",
            {"status": q.get("status"), "startingToken": q.get("startingToken")},
            lambda: ops.list_runs(
                self.world,
                name=q.get("name"),
                run_group_id=q.get("runGroupId"),
                status=q.get("status"),
                starting_token=q.get("startingToken"),
                max_results=q.get("maxResults"),
            ),
        )

    async def list_run_tasks(self, request: Request) -> Response:
        run_id = request.path_params["id"]
        q = request.query_params
        return self.answer(
            "ListRunTasks",
            {"id": run_id, "startingToken": q.get("startingToken")},
            lambda: ops.list_run_tasks(
                self.world,
                run_id,
                status=q.get("status"),
                starting_token=q.get("startingToken"),
                max_results=q.get("maxResults"),
            ),
        )

    async def get_run_task(self, request: Request) -> Response:
        run_id, task_id = request.path_params["id"], request.path_params["taskId"]
        return self.answer(
            "GetRunTask",
            {"id": run_id, "taskId": task_id},
            lambda: ops.get_run_task(self.world, run_id, task_id),
        )

    async def list_tags(self, request: Request) -> Response:
        arn = request.path_params["arn"]
        return self.answer(
            "ListTagsForResource",
            {"resourceArn": arn},
            lambda: ops.list_tags_for_resource(self.world, arn),
        )

    async def start_import(self, request: Request) -> Response:
        store_id = request.path_params["sid"]
        try:
            body = await _json_body(request)
        except ops.ApiError as exc:
            return self.refuse("StartReadSetImportJob", {"sequenceStoreId": store_id}, exc)
        return self.answer(
            "StartReadSetImportJob",
            {"sequenceStoreId": store_id, "body": body},
            lambda: self.sim.start_read_set_import_job(store_id, body),
        )

    async def get_import(self, request: Request) -> Response:
        store_id, job_id = request.path_params["sid"], request.path_params["id"]
        return self.answer(
            "GetReadSetImportJob",
            {"sequenceStoreId": store_id, "id": job_id},
            lambda: ops.get_read_set_import_job(self.world, store_id, job_id),
        )

    async def list_imports(self, request: Request) -> Response:
        store_id = request.path_params["sid"]
        q = request.query_params
        try:
            body = await _json_body(request)
        except ops.ApiError as exc:
            return self.refuse("ListReadSetImportJobs", {"sequenceStoreId": store_id}, exc)
        return self.answer(
            "ListReadSetImportJobs",
            {"sequenceStoreId": store_id, "nextToken": q.get("nextToken")},
            lambda: ops.list_read_set_import_jobs(
                self.world,
                store_id,
                body,
                max_results=q.get("maxResults"),
                next_token=q.get("nextToken"),
            ),
        )

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"ok": True, "sequenceStoreId": self.sim.sequence_store_id})

    async def summary(self, _request: Request) -> Response:
        return JSONResponse(self.sim.summary())

    async def ground_truth(self, _request: Request) -> Response:
        return JSONResponse(self.sim.ground_truth())

    async def unknown(self, request: Request) -> Response:
        return _respond(
            404,
            {"message": f"No HealthOmics operation at {request.method} {request.url.path}"},
            "UnknownOperationException",
        )


def build_app(sim: Simulator) -> Starlette:
    """The ASGI app answering HealthOmics calls from ``sim``."""
    op = _Operations(sim)
    routes = [
        Route("/_simulator/health", op.health, methods=["GET"]),
        Route("/_simulator/summary", op.summary, methods=["GET"]),
        Route("/_simulator/ground-truth", op.ground_truth, methods=["GET"]),
        Route("/run", op.list_runs, methods=["GET"]),
        Route("/run/{id}", op.get_run, methods=["GET"]),
        Route("/run/{id}/task", op.list_run_tasks, methods=["GET"]),
        Route("/run/{id}/task/{taskId}", op.get_run_task, methods=["GET"]),
        Route("/tags/{arn:path}", op.list_tags, methods=["GET"]),
        Route("/sequencestore/{sid}/importjob", op.start_import, methods=["POST"]),
        Route("/sequencestore/{sid}/importjob/{id}", op.get_import, methods=["GET"]),
        Route("/sequencestore/{sid}/importjobs", op.list_imports, methods=["POST"]),
        Route("/{rest:path}", op.unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_Latency, sim=sim)
    return app
