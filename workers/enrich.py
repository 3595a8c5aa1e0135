"""The enrich stage: what HealthOmics knows about a run, added to its status change.

For every ``Run Status Change`` (and every ``Run Status Reconciled`` the reconciler appends) the
stage asks HealthOmics once — GetRun, whose answer carries the run's tags, so the ``WESRunId``
costs no extra call — and, for a finished run (COMPLETED, FAILED, CANCELLED), adds CloudWatch
console links for the run log, the engine log, the manifest stream and **every** task (all
pages of ListRunTasks; the Lambda read the first 10), and for a COMPLETED run the outputs
mapping read from ``outputs.json``.  The result is appended as a *Run Enriched* fact (id derived
from the event's), the ``runs`` projection folds it, and the callback stage is owed for the same
event — all in one transaction.

What the Lambda did not survive, and this stage does:

* **Quotas.**  Every HealthOmics HTTP attempt takes a slot from the account-wide limiter
  (:mod:`workers.omics`).  Throttling, an over-quota answer or no slot in time never fail the
  event: the stage asks to run again later (:class:`~workers.errors.RetryLater`).
* **Reused run ids.**  Runs are keyed by ``uuid``.  If GetRun answers with another run's uuid,
  the event's run was deleted and its id reused: that is recorded as "run gone", never mixed up.
* **Deleted runs** (``ResourceNotFound``, e.g. ``retentionMode=REMOVE`` runs vanish after they
  finish) and **access denied** are recorded — a *Run Enrichment Failed* fact and a dead letter
  with the reason — not retried forever.  When an earlier enrichment of the same run already
  knows its ``WESRunId``, the stage goes on with that (marked ``degraded``), so a finished run
  whose metadata was removed still reaches NGS360.
* **The outputs file** (found and read by :mod:`workers.enrich_outputs`) may be at
  ``{runOutputUri}/logs/outputs.json``, at ``{outputUri}/{runId}/{uuid}/logs/outputs.json``, or
  elsewhere under ``{outputUri}/{runId}/`` named ``output.json`` (reference §3).  All three are
  tried, files that belong to an earlier run with the same id are refused, and if none is there
  yet the stage retries with a growing delay for ``ENRICH_OUTPUTS_WAIT`` seconds, then goes on
  without the mapping (saying so).  Nextflow runs (GetRun ``engineVersion``) write no outputs
  file, so they are not waited for.
* CWL ``{location: …}`` File objects, arrays of them, nested records and plain values (WDL
  scalars) all map to S3 URIs or the values themselves; the Lambda stringified the latter.
* **A hostile or broken outputs file** cannot stop the run's callback.  The file is written by
  the workflow, so it is read with a bounded read (at most ``ENRICH_OUTPUTS_MAX_BYTES``, and
  not at all when S3 says it is bigger) and its nesting is counted without recursion before it
  is parsed (at most ``ENRICH_OUTPUTS_MAX_DEPTH``, as the event parser does for events): 900
  levels of ``[`` once made the JSON decoder recurse until the task died, and the COMPLETED
  callback was never sent.  Over a cap the run is enriched without the output mapping (noted in
  ``outputsNote``), its callback goes as usual, and a dead letter (kind ``outputs``) keeps the
  reason and the bytes read.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from eventlog import store
from eventlog.projections import parse_time
from eventlog.store import LogEntry, StoredEvent
from eventlog.tables import runs
from schemas.parsing import canonical_json
from schemas.vocabulary import RUN_ENRICHED, RUN_ENRICHMENT_FAILED, STATUS_EVENTS, TERMINAL_STATUSES
from workers.callback import owe_callback, wake_callbacks
from workers.enrich_outputs import (
    CLOCK_SKEW,
    OUTPUTS_NAME,
    OutputsLookup,
    RefusedOutputs,
    nesting_exceeds,
    output_mapping,
)
from workers.errors import PermanentError, RetryLater
from workers.omics import OmicsApi, OmicsError, as_retry_later
from workers.routing import FACT_STAGES
from workers.runtime import Runtime

__all__ = [  # the outputs file's names too (:mod:`workers.enrich_outputs`), at their old path
    "CLOCK_SKEW",
    "DEFAULT_LOG_GROUP",
    "OUTPUTS_NAME",
    "STAGE",
    "OutputsLookup",
    "RefusedOutputs",
    "console_url",
    "enrich_run",
    "iso",
    "log_urls",
    "nesting_exceeds",
    "output_mapping",
]

log = logging.getLogger(__name__)

STAGE = "enrich"
#: HealthOmics' workflow log group, when GetRun names none.
DEFAULT_LOG_GROUP = "/aws/omics/WorkflowLog"


# --- pure helpers -----------------------------------------------------------------------------


def iso(value: Any) -> str | None:
    """botocore datetimes (or ISO text) as ``…Z`` text with milliseconds; None passes through."""
    when = value if isinstance(value, datetime) else parse_time(value)
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def console_url(region: str, log_group: str, stream: str, partition: str = "aws") -> str:
    """A CloudWatch console deep link to one log stream (the console escapes ``%`` as ``$25``)."""
    domain = {
        "aws-cn": "console.amazonaws.cn",
        "aws-us-gov": "console.amazonaws-us-gov.com",
    }.get(partition, "console.aws.amazon.com")

    def escape(text: str) -> str:
        return quote(text, safe="").replace("%", "$25")

    return (
        f"https://{region}.{domain}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{escape(log_group)}/log-events/{escape(stream)}"
    )


def _log_group(stream_arn: str | None) -> str | None:
    """``arn:aws:logs:r:acct:log-group:G:log-stream:S`` -> ``G``."""
    if not stream_arn or ":log-group:" not in stream_arn:
        return None
    return stream_arn.split(":log-group:", 1)[1].split(":log-stream:", 1)[0] or None


def _stream(stream_arn: str | None) -> str | None:
    if not stream_arn or ":log-stream:" not in stream_arn:
        return None
    return stream_arn.split(":log-stream:", 1)[1] or None


def log_urls(
    run: dict[str, Any], region: str, tasks: list[dict[str, Any]], partition: str = "aws"
) -> dict[str, Any]:
    """Console links for the run, engine, manifest and every task log of a finished run."""
    run_id, run_uuid = str(run.get("id") or run.get("runId")), str(run.get("uuid"))
    location = run.get("logLocation") or {}
    group = _log_group(location.get("runLogStream")) or DEFAULT_LOG_GROUP
    urls: dict[str, Any] = {
        "run_log": console_url(
            region, group, _stream(location.get("runLogStream")) or f"run/{run_id}", partition
        ),
        "manifest_log": console_url(region, group, f"manifest/run/{run_id}/{run_uuid}", partition),
    }
    engine_stream = _stream(location.get("engineLogStream"))
    if engine_stream:
        urls["engine_log"] = console_url(
            region, _log_group(location.get("engineLogStream")) or group, engine_stream, partition
        )
    urls["task_logs"] = {
        str(task["taskId"]): console_url(
            region, group, f"run/{run_id}/task/{task['taskId']}", partition
        )
        for task in tasks
        if task.get("taskId")
    }
    urls["task_names"] = {
        str(task["taskId"]): str(task.get("name") or "") for task in tasks if task.get("taskId")
    }
    return urls


def _arn_parts(arn: str | None) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN, with safe defaults."""
    parts = (arn or "").split(":")
    if len(parts) >= 5 and parts[0] == "arn":
        return parts[1] or "aws", parts[3], parts[4]
    return "aws", "", ""


# --- the stage --------------------------------------------------------------------------------


def _known_run(runtime: Runtime, run_uuid: str) -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(runs.select().where(runs.c.run_uuid == run_uuid)).one_or_none()


def enrich_run(runtime: Runtime, event_id: str) -> str:
    with runtime.engine.connect() as connection:
        event, done = store.get_for_stage(connection, event_id, STAGE)
    if event is None:
        raise PermanentError(f"event {event_id} is not in the log")
    if done:
        return "already-enriched"
    if event.detail_type not in STATUS_EVENTS:
        raise PermanentError(f"{event.detail_type} is not a run status change")
    detail = event.payload.get("detail") or {}
    status = str(detail.get("status") or event.status or "").upper()
    run_uuid = str(detail.get("uuid") or event.resource_id or "")
    run_id = str(detail.get("runId") or "")
    if not run_uuid or not run_id:
        raise PermanentError("run status change without runId or uuid")

    base = _base_enrichment(event, detail, status, run_uuid, run_id)
    if status == "DELETED":
        # the run is gone by definition: nothing to ask, and NGS360 does not take DELETED
        return _finish(runtime, event, _from_projection(runtime, base, "the run was deleted"))

    api = OmicsApi.of(runtime)
    try:
        run = api.get_run(run_id)
    except OmicsError as error:
        return _api_failure(runtime, event, base, error)
    if str(run.get("uuid") or "") != run_uuid:
        error = OmicsError(
            "GetRun",
            "ResourceNotFoundException",
            f"run id {run_id} now belongs to run {run.get('uuid')}: this event's run "
            f"{run_uuid} was deleted and its id reused",
            "gone",
        )
        return _api_failure(runtime, event, base, error)

    enrichment = _from_run(base, run, detail, status)
    refused = _add_outputs(runtime, event, run, enrichment) if status == "COMPLETED" else None
    if status in TERMINAL_STATUSES:
        _add_log_links(runtime, api, event, run, enrichment)
    return _finish(runtime, event, enrichment, refused)


def _add_outputs(
    runtime: Runtime, event: StoredEvent, run: dict[str, Any], enrichment: dict[str, Any]
) -> RefusedOutputs | None:
    """The outputs file's mapping into ``enrichment`` (or why there is none); the refused file."""
    lookup = OutputsLookup(
        runtime.aws.s3,
        run,
        enrichment["uuid"],
        max_bytes=runtime.settings.enrich_outputs_max_bytes,
        max_depth=runtime.settings.enrich_outputs_max_depth,
    )
    found = lookup.find()
    refused = lookup.refused
    if found is not None:
        enrichment["outputsUri"], document = found
        enrichment["outputMapping"] = output_mapping(document)
    elif refused is not None:
        enrichment["outputsUri"] = refused.uri
        enrichment["outputsNote"] = refused.reason
        log.warning("%s", refused.reason, extra={"event_id": event.event_id, "stage": STAGE})
    else:
        enrichment["outputsNote"] = lookup.denied or _wait_for_outputs(runtime, event, run)
    return refused


def _add_log_links(
    runtime: Runtime,
    api: OmicsApi,
    event: StoredEvent,
    run: dict[str, Any],
    enrichment: dict[str, Any],
) -> None:
    """Console links of the run's logs and of every task (all pages of ListRunTasks)."""
    try:
        tasks = api.list_run_tasks(enrichment["runId"])
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            raise as_retry_later(error) from error
        if error.kind == "error":
            raise
        tasks = []
        enrichment["degraded"] = f"tasks not listed: {error}"
    partition, region, _ = _arn_parts(str(run.get("arn") or event.resource_arn))
    enrichment["logUrls"] = log_urls(run, region or runtime.settings.aws_region, tasks, partition)
    enrichment["taskCount"] = len(tasks)


def _wait_for_outputs(runtime: Runtime, event: StoredEvent, run: dict[str, Any]) -> str:
    """Raise :class:`RetryLater` while the outputs file may still come; else say why not."""
    if run.get("engineVersion") or str(run.get("engine") or "").upper() == "NEXTFLOW":
        return "Nextflow runs write no outputs.json"
    waited = (store.utcnow() - event.received_at).total_seconds()
    budget = runtime.settings.enrich_outputs_wait
    if waited < budget:
        delay = min(60.0, max(2.0, waited / 2), budget - waited + 0.5)
        raise RetryLater(f"outputs.json of run {run.get('id')} not there yet", delay)
    return f"no outputs.json found within {budget:.0f} s"


def _base_enrichment(
    event: StoredEvent, detail: dict[str, Any], status: str, run_uuid: str, run_id: str
) -> dict[str, Any]:
    return {
        "uuid": run_uuid,
        "runId": run_id,
        "arn": detail.get("arn") or event.resource_arn,
        "status": status,
        "eventTime": iso(event.event_time),
        "causeEventId": event.event_id,
        "causeDetailType": event.detail_type,
        "fromApi": False,
        "runName": detail.get("runName"),
        "workflowId": detail.get("workflowId"),
        "workflowName": detail.get("workflowName"),
        "runOutputUri": detail.get("runOutputUri"),
        "statusMessage": detail.get("statusMessage"),
        "failureReason": detail.get("failureReason"),
    }


def _from_run(
    base: dict[str, Any], run: dict[str, Any], detail: dict[str, Any], status: str
) -> dict[str, Any]:
    tags = {str(k): str(v) for k, v in (run.get("tags") or {}).items()}
    same_state = str(run.get("status") or "").upper() == status
    start, stop = run.get("startTime"), run.get("stopTime")
    terminal = status in TERMINAL_STATUSES
    duration = None
    if terminal and isinstance(start, datetime) and isinstance(stop, datetime):
        duration = round((stop - start).total_seconds(), 3)
    enrichment = dict(base)
    enrichment.update(
        fromApi=True,
        apiStatus=run.get("status"),
        wesRunId=tags.get("WESRunId"),
        callbackUrl=tags.get("callback_url"),
        tags=tags,
        runName=run.get("name") or base["runName"],
        workflowId=run.get("workflowId") or base["workflowId"],
        workflowName=base["workflowName"],
        workflowType=run.get("workflowType"),
        workflowVersionName=run.get("workflowVersionName"),
        runGroupId=run.get("runGroupId"),
        outputUri=run.get("outputUri"),
        runOutputUri=run.get("runOutputUri") or base["runOutputUri"],
        creationTime=iso(run.get("creationTime")),
        startTime=iso(start),
        stopTime=iso(stop) if terminal else None,
        durationSeconds=duration,
        # GetRun describes the run *now*; its message belongs to this event only if the run is
        # still in the event's status (a RUNNING event enriched after the run failed must not
        # carry the failure)
        statusMessage=detail.get("statusMessage")
        or (run.get("statusMessage") if same_state else None),
        failureReason=detail.get("failureReason")
        or (run.get("failureReason") if same_state else None),
    )
    return enrichment


def _from_projection(runtime: Runtime, base: dict[str, Any], why: str) -> dict[str, Any]:
    """What earlier enrichments of the run know, for when HealthOmics cannot be asked."""
    enrichment = dict(base, degraded=why)
    row = _known_run(runtime, base["uuid"])
    if row is not None:
        tags = row.tags if isinstance(row.tags, dict) else {}
        enrichment.update(
            wesRunId=row.wes_run_id,
            callbackUrl=tags.get("callback_url"),
            tags=tags,
            runName=base["runName"] or row.run_name,
            runGroupId=row.run_group_id,
            creationTime=iso(row.creation_time),
            startTime=iso(row.start_time),
            stopTime=iso(row.stop_time),
        )
        if base["status"] == row.status:
            enrichment.update(logUrls=row.log_urls, outputMapping=row.output_mapping)
    return enrichment


def _api_failure(
    runtime: Runtime, event: StoredEvent, base: dict[str, Any], error: OmicsError
) -> str:
    if error.kind in {"wait", "quota"}:
        raise as_retry_later(error) from error
    if error.kind == "error":
        raise error  # transient as far as we know: Celery retries, then dead-letters
    known = _known_run(runtime, base["uuid"])
    if error.kind == "gone" and known is not None and known.wes_run_id:
        log.warning(
            "run %s is gone (%s); enriching from what was known before",
            base["runId"],
            error.code,
            extra={"event_id": event.event_id, "stage": STAGE},
        )
        return _finish(runtime, event, _from_projection(runtime, base, str(error)))
    reason = f"GetRun of run {base['runId']} ({base['uuid']}): {error.code}: {error.message}"
    failure = dict(base, errorCode=error.code, reason=reason[:2000])
    with runtime.engine.begin() as connection:
        fact = LogEntry.pipeline(event, RUN_ENRICHMENT_FAILED, failure, status=base["status"])
        store.append(connection, fact, FACT_STAGES)
        store.dead_letter(
            connection,
            kind="stage",
            stage=STAGE,
            event_id=event.event_id,
            detail_type=event.detail_type,
            reason=reason[:2000],
            raw=canonical_json(event.payload),
        )
        store.complete(connection, event.event_id, STAGE, "dead-lettered")
        woken = wake_callbacks(connection, base["uuid"])
    runtime.publish([*([fact.event_id] if FACT_STAGES else []), *woken])
    log.warning("%s", reason, extra={"event_id": event.event_id, "stage": STAGE})
    return "dead-lettered"


def _finish(
    runtime: Runtime,
    event: StoredEvent,
    enrichment: dict[str, Any],
    refused: RefusedOutputs | None = None,
) -> str:
    with runtime.engine.begin() as connection:
        fact = LogEntry.pipeline(event, RUN_ENRICHED, enrichment, status=enrichment["status"])
        store.append(connection, fact, FACT_STAGES)
        if refused is not None:  # the run goes on; what it goes on without is on record
            store.dead_letter(
                connection,
                kind="outputs",
                stage=STAGE,
                event_id=event.event_id,
                detail_type=event.detail_type,
                reason=refused.reason,
                raw=refused.raw,
            )
        store.complete(connection, event.event_id, STAGE, "enriched")
        # the callback is due now, or waits (unpublished) for the status before it
        due, woken = owe_callback(connection, event, enrichment["uuid"])
    runtime.publish(
        [*([event.event_id] if due else []), *([fact.event_id] if FACT_STAGES else []), *woken]
    )
    return "enriched"
