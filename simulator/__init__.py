"""A local AWS HealthOmics: its API over HTTP, its runs and imports, and their EventBridge events.

Why this exists: ``moto`` has no ``omics`` backend and the real service cannot be reached from
tests, yet the workers must be exercised with a real ``boto3`` omics client, real SQS messages
and real S3 objects.  So the simulator holds runs, tasks, read-set import jobs and read sets,
moves them through their documented lifecycles on an injectable clock, serves the REST-JSON
operations the workers call, writes ``outputs.json`` for completed runs, and sends every status
change to SQS as the EventBridge event HealthOmics would emit, with switchable delivery faults
(duplicates, reordering, drops), API throttling, the import quota and failing import sources.
It keeps the ground truth so tests can compare what the workers concluded with what happened.

Typical test use::

    sim = Simulator(seed=7, clock=ManualClock(), queue_url=queue_url, endpoint_url=moto_url)
    run_id = sim.add_run(tasks=5, outcome="FAILED", failure_reason="RUN_TASK_FAILED")
    with SimulatorServer(sim) as server:
        omics = boto3.client("omics", endpoint_url=server.url, region_name="us-east-1",
                             config=botocore.config.Config(inject_host_prefix=False))
        sim.run_until_idle()          # every transition, event and outputs.json, in order
        omics.get_run(id=run_id)["failureReason"]   # "RUN_TASK_FAILED"

Nothing here is imported by the workers, and importing this package performs no I/O.
"""

from __future__ import annotations

from simulator.api import build_app
from simulator.catalog import (
    DEFAULT_IMPORT_QUOTA,
    DEFAULT_TPS_LIMITS,
    RUN_FAILURES,
    is_transient_message,
)
from simulator.clock import ManualClock, SystemClock
from simulator.emitter import EventPipeline, MemorySink, SinkError, SqsSink
from simulator.faults import Faults
from simulator.operations import ApiError
from simulator.outputs import MemoryOutputStore, S3OutputStore
from simulator.requestlog import RequestLog, RequestRecord
from simulator.scenarios import ScenarioPlan, realistic_mix
from simulator.server import SimulatorServer
from simulator.simulator import Simulator

__all__ = [
    "DEFAULT_IMPORT_QUOTA",
    "DEFAULT_TPS_LIMITS",
    "RUN_FAILURES",
    "ApiError",
    "EventPipeline",
    "Faults",
    "ManualClock",
    "MemoryOutputStore",
    "MemorySink",
    "RequestLog",
    "RequestRecord",
    "S3OutputStore",
    "ScenarioPlan",
    "Simulator",
    "SimulatorServer",
    "SinkError",
    "SqsSink",
    "SystemClock",
    "build_app",
    "is_transient_message",
    "realistic_mix",
]
