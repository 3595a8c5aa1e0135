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


def build_app(sim: Simulator) -> Starlette:
    """The ASGI app answering HealthOmics calls from ``sim``."""
    world = sim.world

    def answer(
        operation: str, params: dict[str, Any], fn: Callable[[], dict[str, Any]]
    ) -> Response:
        return _respond(*sim.call(operation, fn, params))

    async def get_run(request: Request) -> Response:
        run_id = request.path_params["id"]
        return answer("GetRun", {"id": run_id}, lambda: ops.get_run(world, run_id))

    async def list_runs(request: Request) -> Response:
        q = request.query_params
        return answer(
            "ListRuns",
            {"status": q.get("status"), "startingToken": q.get("startingToken")},
            lambda: ops.list_runs(
                world,
                name=q.get("name"),
                run_group_id=q.get("runGroupId"),
                status=q.get("status"),
                starting_token=q.get("startingToken"),
                max_results=q.get("maxResults"),
            ),
        )

    async def list_run_tasks(request: Request) -> Response:
        run_id = request.path_params["id"]
        q = request.query_params
        return answer(
            "ListRunTasks",
            {"id": run_id, "startingToken": q.get("startingToken")},
            lambda: ops.list_run_tasks(
                world,
                run_id,
                status=q.get("status"),
                starting_token=q.get("startingToken"),
                max_results=q.get("maxResults"),
            ),
        )

    async def get_run_task(request: Request) -> Response:
        run_id, task_id = request.path_params["id"], request.path_params["taskId"]
        return answer(
            "GetRunTask",
            {"id": run_id, "taskId": task_id},
            lambda: ops.get_run_task(world, run_id, task_id),
        )

    async def list_tags(request: Request) -> Response:
        arn = request.path_params["arn"]
        return answer(
            "ListTagsForResource",
            {"resourceArn": arn},
            lambda: ops.list_tags_for_resource(world, arn),
        )

    async def start_import(request: Request) -> Response:
        store_id = request.path_params["sid"]
        try:
            body = await _json_body(request)
        except ops.ApiError as exc:
            err = exc

            def fail() -> dict[str, Any]:
                raise err

            return answer("StartReadSetImportJob", {"sequenceStoreId": store_id}, fail)
        return answer(
            "StartReadSetImportJob",
            {"sequenceStoreId": store_id, "body": body},
            lambda: sim.start_read_set_import_job(store_id, body),
        )

    async def get_import(request: Request) -> Response:
        store_id, job_id = request.path_params["sid"], request.path_params["id"]
        return answer(
            "GetReadSetImportJob",
            {"sequenceStoreId": store_id, "id": job_id},
            lambda: ops.get_read_set_import_job(world, store_id, job_id),
        )

    async def list_imports(request: Request) -> Response:
        store_id = request.path_params["sid"]
        q = request.query_params
        try:
            body = await _json_body(request)
        except ops.ApiError as exc:
            err = exc

            def fail() -> dict[str, Any]:
                raise err

            return answer("ListReadSetImportJobs", {"sequenceStoreId": store_id}, fail)
        return answer(
            "ListReadSetImportJobs",
            {"sequenceStoreId": store_id, "nextToken": q.get("nextToken")},
            lambda: ops.list_read_set_import_jobs(
                world,
                store_id,
                body,
                max_results=q.get("maxResults"),
                next_token=q.get("nextToken"),
            ),
        )

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True, "sequenceStoreId": sim.sequence_store_id})

    async def summary(_request: Request) -> Response:
        return JSONResponse(sim.summary())

    async def ground_truth(_request: Request) -> Response:
        return JSONResponse(sim.ground_truth())

    async def unknown(request: Request) -> Response:
        return _respond(
            404,
            {"message": f"No HealthOmics operation at {request.method} {request.url.path}"},
            "UnknownOperationException",
        )

    routes = [
        Route("/_simulator/health", health, methods=["GET"]),
        Route("/_simulator/summary", summary, methods=["GET"]),
        Route("/_simulator/ground-truth", ground_truth, methods=["GET"]),
        Route("/run", list_runs, methods=["GET"]),
        Route("/run/{id}", get_run, methods=["GET"]),
        Route("/run/{id}/task", list_run_tasks, methods=["GET"]),
        Route("/run/{id}/task/{taskId}", get_run_task, methods=["GET"]),
        Route("/tags/{arn:path}", list_tags, methods=["GET"]),
        Route("/sequencestore/{sid}/importjob", start_import, methods=["POST"]),
        Route("/sequencestore/{sid}/importjob/{id}", get_import, methods=["GET"]),
        Route("/sequencestore/{sid}/importjobs", list_imports, methods=["POST"]),
        Route("/{rest:path}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_Latency, sim=sim)
    return app
