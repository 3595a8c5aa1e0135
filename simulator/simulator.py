"""The simulator facade: one object that owns the model, the clock, the faults and the outputs.

Why one facade: a test wants to say, in a few lines, "these runs exist, these faults are on,
move time, now tell me what happened".  :class:`Simulator` composes the pieces:

* :class:`~.state.World`, the model and its step heap (under one lock);
* an :class:`~.emitter.EventPipeline` that applies delivery faults and sends events to SQS;
* an output store that writes ``outputs.json`` to S3;
* the API front (:meth:`Simulator.call`): throttling, injected 500s, the request log, then the
  operation from :mod:`.operations`.

Time moves only in :meth:`tick` (apply what is due, then perform the side effects in order,
outside the model lock so API calls are never blocked by S3 or SQS).  Drive it explicitly with a
:class:`~.clock.ManualClock` (:meth:`advance`, :meth:`run_until_idle`) for deterministic tests, or
with :meth:`start` (a background ticker thread) over the wall clock.

Randomness is split into independent streams derived from ``seed``: the plans (outcomes, timing,
outputs), the delivery faults, the injected API errors, and the identifiers.  So changing a
fault knob never changes what the runs do, and identifiers are unique across simulators unless
``deterministic_ids=True`` (then one seed reproduces the event stream byte for byte): tests that
share a database must not collide on run UUIDs or event ids.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from simulator import events as ev
from simulator import operations as ops
from simulator.clock import Clock, ManualClock, SystemClock
from simulator.emitter import DeliveryStats, EventPipeline, EventSink, SqsSink
from simulator.faults import Faults, FaultSettings, RateLimiter
from simulator.outputs import (
    MemoryOutputStore,
    OutputStore,
    S3OutputStore,
    output_locations,
)
from simulator.requestlog import RequestLog, RequestRecord
from simulator.state import (
    Action,
    World,
)
from simulator.truth import world_counts, world_truth

log = logging.getLogger(__name__)

START_IMPORT = "StartReadSetImportJob"


class Simulator:
    """A simulated HealthOmics account that emits EventBridge events.

    Fault knobs (see :mod:`.faults`) may be given as ``faults=Faults(...)`` and/or as keywords
    (``Simulator(duplicate_rate=0.1, throttle=True)``), and changed later with
    :meth:`set_faults`.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        speed: float = 1.0,
        clock: Clock | None = None,
        account: str = "123456789012",
        region: str = "us-east-1",
        queue_url: str | None = None,
        endpoint_url: str | None = None,
        sink: EventSink | None = None,
        output_store: OutputStore | None = None,
        output_bucket: str = "omics-sim-outputs",
        output_prefix: str = "runs",
        input_bucket: str = "omics-sim-inputs",
        sequence_store_id: str | None = None,
        faults: Faults | None = None,
        deterministic_ids: bool = False,
        **knobs: Any,
    ) -> None:
        self.seed = seed
        self.clock: Clock = clock or SystemClock()
        self.region = region
        self.account = account
        base = faults or Faults()
        self._faults = FaultSettings(base)
        if knobs:
            self._faults.update(**knobs)
        if sink is None and queue_url:
            sink = SqsSink(queue_url, endpoint_url=endpoint_url, region=region)
        self.sink = sink
        self._endpoint_url = endpoint_url
        self._drop_store: S3OutputStore | None = None
        if output_store is None:
            output_store = (
                S3OutputStore(endpoint_url=endpoint_url, region=region)
                if (queue_url or endpoint_url)
                else MemoryOutputStore()
            )
        self.output_store = output_store
        id_rng = random.Random(f"{seed}/ids") if deterministic_ids else random.Random()
        self.world = World(
            clock=self.clock,
            speed=speed,
            rng=random.Random(seed),
            id_rng=id_rng,
            faults=self._faults,
            account=account,
            region=region,
            output_bucket=output_bucket,
            output_prefix=output_prefix,
            input_bucket=input_bucket,
            sequence_store_id=sequence_store_id,
        )
        self.pipeline = EventPipeline(sink, self._faults, random.Random(f"{seed}/delivery"))
        self.request_log = RequestLog()
        self._limiter = RateLimiter()
        self._api_rng = random.Random(f"{seed}/api")
        self._api_rng_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[Action] = []
        #: ``outputs.json`` objects actually stored: ``{s3 uri: mapping}``.
        self.outputs_stored: dict[str, dict[str, Any]] = {}
        self.output_errors = 0
        self.tick_errors = 0
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- configuration --------------------------------------------------------------------

    @property
    def speed(self) -> float:
        return self.world.speed

    @property
    def sequence_store_id(self) -> str:
        return self.world.sequence_store_id

    @property
    def faults(self) -> Faults:
        return self._faults.get()

    def set_faults(self, **changes: Any) -> Faults:
        """Change fault knobs at runtime (thread-safe); returns the new settings."""
        return self._faults.update(**changes)

    # -- building the world ---------------------------------------------------------------

    def add_run(
        self,
        *,
        delay: float = 0.0,
        tasks: int | None = None,
        outcome: str = "COMPLETED",
        failure_reason: str | None = None,
        cancel_phase: str | None = None,
        name: str | None = None,
        workflow: str | None = None,
        wes_run_id: str | bool = True,
        callback_url: str | None = None,
        tags: dict[str, str] | None = None,
        run_group: bool | None = None,
        cache: bool | None = None,
    ) -> str:
        """Plan a run submitted after ``delay`` simulated seconds; returns its run id.

        ``outcome`` is COMPLETED, FAILED (``failure_reason`` from the User Guide table, random
        by default) or CANCELLED (in ``cancel_phase``: PENDING/STARTING/RUNNING/STOPPING,
        random by default).  ``tasks`` defaults to 3..12.  ``wes_run_id=True`` tags the run
        with a fresh ``WESRunId``; a string uses that value; ``False`` leaves the tag out.
        """
        with self.world.lock:
            run = self.world.add_run(
                delay=delay,
                tasks=tasks,
                outcome=outcome,
                failure_reason=failure_reason,
                cancel_phase=cancel_phase,
                name=name,
                workflow=workflow,
                wes_run_id=wes_run_id,
                callback_url=callback_url,
                tags=tags,
                run_group=run_group,
                cache=cache,
            )
            return run.run_id

    def add_import_job(
        self,
        *,
        delay: float = 0.0,
        sources: int | list[dict[str, Any]] | None = None,
        store_id: str | None = None,
        role_arn: str | None = None,
    ) -> str:
        """Plan an import job submitted (by "someone else") after ``delay`` simulated seconds.

        ``sources`` is a count of random realistic sources (default 1..8) or a list of
        StartReadSetImportJob source dicts.  Internal jobs wait for room under the import quota
        rather than fail.  Returns the job id (visible once submitted).
        """
        with self.world.lock:
            world = self.world
            if isinstance(sources, list):
                parsed = ops.parse_sources({"sources": sources})
            else:
                count = world.rng.randint(1, 8) if sources is None else int(sources)
                parsed = world.random_sources(count)
            job = world.new_job(
                store_id=store_id or world.sequence_store_id,
                role_arn=role_arn or f"arn:aws:iam::{self.account}:role/OmicsImportRole",
                sources=parsed,
                client_token=None,
                origin="scenario",
            )
            world.schedule_job(job, delay)
            return job.job_id

    def drop_files(self, files: list[str] | list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        """Put objects into S3 now and send their ``Object Created`` events (``aws.s3``), as a
        bucket with EventBridge notifications does when a lab uploads read files.

        ``files`` are ``s3://bucket/key`` URIs (a small placeholder body is written) or
        ``(uri, body)`` pairs.  The events go through the same delivery faults as HealthOmics'
        own.  Returns the events.
        """
        if self._drop_store is None:
            self._drop_store = S3OutputStore(endpoint_url=self._endpoint_url, region=self.region)
        sent: list[dict[str, Any]] = []
        for item in files:
            uri, body = (item, b"@read\nACGT\n+\n!!!!\n") if isinstance(item, str) else item
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            etag = self._drop_store.put_bytes(uri, body)
            with self.world.lock:
                event_id = self.world.new_uuid()
                sequencer = f"{int(self.clock.now() * 1e6):016X}{len(sent):04X}"
            sent.append(
                ev.envelope(
                    event_id=event_id,
                    detail_type=ev.OBJECT_CREATED,
                    account=self.account,
                    region=self.region,
                    when=self.clock.now(),
                    resource=f"arn:aws:s3:::{bucket}",
                    detail=ev.s3_object_created_detail(
                        bucket=bucket,
                        key=key,
                        size=len(body),
                        etag=etag,
                        sequencer=sequencer,
                        requester=self.account,
                    ),
                    source=ev.S3_SOURCE,
                )
            )
        with self._flush_lock:
            self.pipeline.deliver(sent)
        return sent

    def cancel_run(self, run_id: str) -> None:
        """Cancel a submitted, non-terminal run now (its events go out on the next tick)."""
        with self.world.lock:
            self.world.cancel_run(run_id)

    def plan_source_outcomes(self, source1: str, *outcomes: str) -> None:
        """Script the next imports of ``source1``: each of ``ok``, ``transient``, ``permanent``
        is used by one import attempt, in order (then the random rates apply)."""
        with self.world.lock:
            self.world.plan_source_outcomes(source1, list(outcomes))

    # -- time -----------------------------------------------------------------------------

    def tick(self) -> int:
        """Apply every due step, then send its events and outputs; returns messages sent."""
        with self._flush_lock:
            with self.world.lock:
                self.world.process_due(self.clock.now())
                actions = self.world.take_outbox()
            return self._perform(actions)

    def flush(self) -> int:
        """Perform queued side effects without moving time (e.g. after an API-started job)."""
        with self._flush_lock:
            with self.world.lock:
                actions = self.world.take_outbox()
            return self._perform(actions)

    def drain(self) -> int:
        """Flush, then release every held (reordered/duplicate) event."""
        sent = self.flush()
        with self._flush_lock:
            return sent + self.pipeline.release_held()

    def advance(self, seconds: float) -> int:
        """Move a :class:`ManualClock` ``seconds`` (clock seconds) ahead and tick."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock; use start() with a real clock")
        self.clock.advance(seconds)
        return self.tick()

    def next_due(self) -> float | None:
        with self.world.lock:
            return self.world.next_due()

    def is_idle(self) -> bool:
        """Nothing scheduled, nothing queued, nothing held back."""
        with self.world.lock:
            idle = self.world.is_idle()
        return idle and not self._pending and self.pipeline.backlog == 0

    def all_terminal(self) -> bool:
        with self.world.lock:
            return self.world.all_terminal()

    def run_until_idle(self, *, max_seconds: float | None = None, step: float | None = None) -> int:
        """Run until every scheduled step has happened and every event is out.

        With a :class:`ManualClock` the clock jumps ahead: straight to the last scheduled step
        (``step=None``: one flush, events batched ten per SQS call), or ``step`` clock seconds
        past each next due step (smaller flushes, closer to a live feed).  ``max_seconds``
        bounds the clock movement.  With a real clock this ticks and sleeps, ``max_seconds``
        being a wall-clock timeout.  Returns messages sent.
        """
        manual = isinstance(self.clock, ManualClock)
        start = self.clock.now() if manual else time.monotonic()
        sent = 0
        while True:
            sent += self.tick()
            with self.world.lock:
                idle = self.world.is_idle()
                nxt = self.world.next_due()
                last = self.world.last_due()
            if idle or nxt is None or last is None:
                break
            if manual:
                assert isinstance(self.clock, ManualClock)
                if max_seconds is not None and nxt > start + max_seconds:
                    self.clock.set(start + max_seconds)
                    sent += self.tick()
                    break
                target = last if step is None else nxt + step
                if max_seconds is not None:
                    target = min(target, start + max_seconds)
                self.clock.set(target)
            else:
                if max_seconds is not None and time.monotonic() - start > max_seconds:
                    break
                time.sleep(min(0.05, max(0.0, nxt - self.clock.now())))
        return sent + self.drain()

    # -- background ticker ----------------------------------------------------------------

    def start(self, interval: float = 0.05) -> None:
        """Tick every ``interval`` wall seconds in a daemon thread (real-time use)."""
        if self._ticker is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    self.tick_errors += 1
                    log.exception("simulator tick failed")
                self._stop.wait(interval)

        self._ticker = threading.Thread(target=loop, name="omics-sim-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        """Stop the ticker thread (idempotent)."""
        if self._ticker is None:
            return
        self._stop.set()
        self._ticker.join(timeout=10)
        self._ticker = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- side effects ---------------------------------------------------------------------

    def _perform(self, actions: list[Action]) -> int:
        """Events and outputs in order; an outputs put that fails holds back what follows it."""
        actions = self._pending + actions
        self._pending = []
        sent = 0
        batch: list[dict[str, Any]] = []
        for index, action in enumerate(actions):
            if action.kind == "event" and action.event is not None:
                batch.append(action.event)
                continue
            sent += self.pipeline.deliver(batch)
            batch = []
            assert action.uri is not None and action.mapping is not None
            try:
                self.output_store.put(action.uri, action.mapping)
            except Exception:
                self.output_errors += 1
                log.exception("writing %s failed; will retry", action.uri)
                self._pending = actions[index:]
                return sent
            self.outputs_stored[action.uri] = action.mapping
        return sent + self.pipeline.deliver(batch)

    # -- the API front --------------------------------------------------------------------

    def call(
        self, operation: str, fn: Callable[[], dict[str, Any]], params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], str | None]:
        """Answer one API call: throttle, maybe fail, run ``fn``; log it.

        Returns (HTTP status, JSON body, error code or None).
        """
        arrived = time.monotonic()
        faults = self._faults.get()
        code: str | None = None
        try:
            limit = faults.tps_limits().get(operation)
            if not self._limiter.allow(operation, limit, arrived):
                raise ops.ApiError("ThrottlingException", "Rate exceeded")
            with self._api_rng_lock:
                unlucky = self._api_rng.random() < faults.api_error_rate
            if unlucky:
                raise ops.ApiError(
                    "InternalServerException", "An internal error occurred. Try again."
                )
            status, body = 200, fn()
        except ops.ApiError as exc:
            status, body, code = exc.status, {"message": exc.message}, exc.code
            if operation == START_IMPORT:
                self._record_import_call(params, arrived, code)
        except Exception as exc:
            log.exception("simulator operation %s failed", operation)
            status, code = 500, "InternalServerException"
            body = {"message": f"Simulator error: {exc}"}
        summary = {k: v for k, v in params.items() if k != "body"}
        self.request_log.record(RequestRecord(operation, arrived, status, code, summary))
        return status, body, code

    def _record_import_call(self, params: dict[str, Any], arrived: float, code: str) -> None:
        body = params.get("body") or {}
        raw_sources = body.get("sources") if isinstance(body, dict) else None
        sources = [
            {"source1": (s.get("sourceFiles") or {}).get("source1")}
            for s in (raw_sources if isinstance(raw_sources, list) else [])
            if isinstance(s, dict)
        ]
        with self.world.lock:
            self.world.import_calls.append(
                {
                    "at": arrived,
                    "time": self.clock.now(),
                    "sequenceStoreId": params.get("sequenceStoreId"),
                    "clientToken": body.get("clientToken") if isinstance(body, dict) else None,
                    "sources": sources,
                    "jobId": None,
                    "reused": False,
                    "error": code,
                }
            )

    def start_read_set_import_job(self, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
        arrived = time.monotonic()
        response, record = ops.start_read_set_import_job(self.world, store_id, body)
        record.update(at=arrived, time=self.clock.now(), error=None)
        with self.world.lock:
            self.world.import_calls.append(record)
        return response

    # -- what happened --------------------------------------------------------------------

    @property
    def delivered_events(self) -> list[dict[str, Any]]:
        """Every message handed to the queue, in order (duplicates included)."""
        return self.pipeline.snapshot()[0]

    @property
    def dropped_events(self) -> list[dict[str, Any]]:
        """``{id, detail-type, resource, status}`` of every event never delivered."""
        return self.pipeline.snapshot()[1]

    @property
    def delivery_stats(self) -> DeliveryStats:
        """Counters per detail-type: emitted, delivered, duplicated, dropped, reordered."""
        return self.pipeline.snapshot()[2]

    @property
    def import_calls(self) -> list[dict[str, Any]]:
        """Every StartReadSetImportJob call: sources, clientToken, job id or error code."""
        with self.world.lock:
            return [dict(c) for c in self.world.import_calls]

    @property
    def max_active_import_jobs(self) -> int:
        with self.world.lock:
            return self.world.max_active_import_jobs

    @property
    def outputs_written(self) -> dict[str, dict[str, Any]]:
        """``outputs.json`` mappings of COMPLETED runs: ``{s3 uri: mapping}``."""
        with self.world.lock:
            return dict(self.world.outputs_written)

    def expected_output_mapping(self, run_id: str) -> dict[str, Any] | None:
        """The outputs of a COMPLETED run as ``{name: uri | [uri, …] | value}`` (File objects
        reduced to their ``location``), for comparing with what a callback delivered."""
        with self.world.lock:
            run = self.world.runs[run_id]
            if not run.outputs_written_to or run.outputs is None:
                return None
            return output_locations(run.outputs)

    def run_ids(self) -> list[str]:
        with self.world.lock:
            return list(self.world.runs)

    def job_ids(self) -> list[str]:
        with self.world.lock:
            return list(self.world.jobs)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """GetRun's view (raises :class:`~.operations.ApiError` if not submitted yet)."""
        return ops.get_run(self.world, run_id)

    def ground_truth(self) -> dict[str, Any]:
        """What really happened (JSON-serialisable): every run, task, job, source, read set,
        the outputs written, delivery counters and dropped events."""
        with self.world.lock:
            truth = world_truth(self.world)
        _delivered, dropped, stats = self.pipeline.snapshot()
        truth["events"] = stats.as_dict()
        truth["dropped_events"] = dropped
        truth["outputs_stored"] = sorted(self.outputs_stored)
        return truth

    def summary(self) -> dict[str, Any]:
        """Counts for progress displays: runs and jobs by status, messages sent."""
        with self.world.lock:
            counts = world_counts(self.world)
        stats = self.pipeline.snapshot()[2]
        return {
            **counts,
            "events_emitted": sum(stats.emitted.values()),
            "messages_sent": sum(stats.delivered.values()),
            "duplicated": sum(stats.duplicated.values()),
            "dropped": sum(stats.dropped.values()),
            "reordered": sum(stats.reordered.values()),
            "api_calls": len(self.request_log),
        }
