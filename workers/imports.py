"""The imports pool: read files landing in S3 become read sets, and failed sources are retried.

What the AWS guidance does with a DynamoDB table, a stream, Step Functions and a custom metric
(the ingestion guide), done here event by event, each step a task on queue ``imports`` that
appends a fact to the log and folds it into ``import_sources``/``import_jobs``/``read_sets`` in
one transaction (:mod:`eventlog.import_projections`):

1. **S3 ``Object Created``** under an ``IMPORT_SOURCES`` prefix: the name says what the object
   is (:func:`schemas.imports.classify_name`).  Junk is reported (*Import File Rejected* and a
   dead letter), never imported; index files and sidecars are ignored.  A read file gets its
   subject and sample ids from ``IMPORT_PATH_TEMPLATE`` or its JSON sidecar manifest, and is
   registered (*Import File Registered*).  A FASTQ mate waits for the other one — in the outbox
   (``not_before``), never as a Celery countdown — for ``IMPORT_MATE_WAIT`` seconds; whichever
   mate lands second makes the pair one source and finishes the first one's wait.
2. **Batching.**  A complete source is *ready* and waits ``IMPORT_BATCH_WINDOW`` seconds for
   others; then one planner (a database lock) takes every ready source and plans jobs of at most
   ``IMPORT_MAX_SOURCES_PER_JOB`` (100, HealthOmics' limit) per store and role (*Import Job
   Planned*).  A source is planned once: the fold moves it past *ready* in the same transaction.
3. **Starting** a planned job takes one of ``IMPORT_MAX_CONCURRENT_JOBS`` account-wide slots
   (:mod:`workers.concurrency`, in Redis) and a token of the ``IMPORT_TPS`` budget shared by
   StartReadSetImportJob and GetReadSetImportJob (:class:`~workers.ratelimit.GlobalRateLimiter`,
   taken before every HTTP attempt, botocore's retries included).  The ``clientToken`` is the
   plan's id, so a task run twice never starts two jobs (botocore does not fill it in,
   reference §0.9).  No slot, ``ServiceQuotaExceededException`` (402, which no
   botocore retry mode retries) or throttling: the plan waits and tries again; it never fails.
   A ``ValidationException`` splits the plan in halves until the one bad source is found.
4. **``Read Set Import Job Status Change``** to a terminal status gives the slot back and, for
   COMPLETED, COMPLETED_WITH_FAILURES and FAILED, reads GetReadSetImportJob (the event carries no
   per-source result) into *Import Job Checked*.  Each failed source is classified
   (:func:`schemas.imports.classify_failure`): transient ones are planned again — only they, same
   store, same role — after ``IMPORT_RETRY_DELAY`` doubling per attempt; permanent ones and those
   out of attempts become dead letters and one *Import Sources Failed* fact, whose task sends an
   SNS notification naming the files and the reason.  This works for jobs anyone started.

Every fact's id derives from what caused it (the S3 event, the source, the plan, the job), so a
retried or duplicated task appends nothing twice and cannot import a source twice.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from sqlalchemy import Connection, func, select

from eventlog import import_projections as proj
from eventlog import store
from eventlog.store import LogEntry, StoredEvent, derived_id, utcnow
from eventlog.tables import events, import_jobs, import_sources
from schemas.imports import (
    ALIGNED_TYPES,
    ImportRule,
    ImportSidecar,
    PathTemplate,
    classify_failure,
    classify_name,
    parse_rules,
    source_spec,
)
from schemas.parsing import canonical_json
from schemas.settings import Settings
from schemas.vocabulary import SOURCE_READY
from workers.aws import client_config
from workers.concurrency import ConcurrencyLimiter
from workers.errors import PermanentError, RetryLater
from workers.omics import OmicsError, call
from workers.ratelimit import GlobalRateLimiter
from workers.routing import FACT_STAGES
from workers.runtime import Runtime

log = logging.getLogger(__name__)

STAGE = "imports"
#: One budget for StartReadSetImportJob and GetReadSetImportJob (whether HealthOmics counts them
#: in one bucket is unverified, reference §4.2: one budget is the safe reading).
IMPORT_CALLS = "ReadSetImportJobCalls"
#: Name of the account-wide concurrent-job slots.
JOB_SLOTS = "read-set-import-jobs"
#: Arbitrary constant naming the PostgreSQL advisory lock of the batch planner.
PLAN_LOCK_KEY = 0x1A4_0B7C
GENERATED_FROM = "omics-events auto-import"


# --- configuration and per-process services -------------------------------------------------


@dataclass(frozen=True)
class ImportConfig:
    """The import settings, parsed once."""

    rules: tuple[ImportRule, ...]
    template: PathTemplate
    ids_from: str
    sidecar_suffix: str
    store_id: str | None
    role_arn: str | None
    reference_arn: str | None
    mate_wait: float
    batch_window: float
    max_sources: int
    max_attempts: int
    retry_delay: float
    retry_delay_max: float
    quota_wait: float
    watch_interval: float
    notify_topic: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportConfig:
        return cls(
            rules=tuple(parse_rules(settings.import_sources)),
            template=PathTemplate(settings.import_path_template),
            ids_from=settings.import_ids_from,
            sidecar_suffix=settings.import_sidecar_suffix,
            store_id=settings.import_sequence_store_id,
            role_arn=settings.import_role_arn,
            reference_arn=settings.import_reference_arn,
            mate_wait=settings.import_mate_wait,
            batch_window=settings.import_batch_window,
            max_sources=settings.import_max_sources_per_job,
            max_attempts=settings.import_max_attempts,
            retry_delay=settings.import_retry_delay,
            retry_delay_max=settings.import_retry_delay_max,
            quota_wait=settings.import_quota_wait,
            watch_interval=settings.import_job_watch_interval,
            notify_topic=settings.import_notify_topic_arn or settings.alerts_topic_arn,
        )

    def match(self, bucket: str, key: str) -> tuple[ImportRule, str] | None:
        for rule in self.rules:
            relative = rule.relative(bucket, key)
            if relative is not None:
                return rule, relative
        return None

    def retry_delay_for(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``: doubling from ``IMPORT_RETRY_DELAY``, capped."""
        return float(min(self.retry_delay_max, self.retry_delay * 2 ** max(0, attempt - 1)))


class ImportsApi:
    """StartReadSetImportJob and GetReadSetImportJob under the account-wide budget.

    The budget is taken in a ``before-send`` hook, i.e. before *every* HTTP attempt, botocore's
    retries included, so throttling cannot turn into a burst of retries above the quota.
    """

    def __init__(self, settings: Settings) -> None:
        self.limiter = GlobalRateLimiter.from_settings(
            settings, {IMPORT_CALLS: settings.import_tps}
        )
        session = boto3.session.Session(region_name=settings.aws_region)
        self.client = session.client("omics", config=client_config(settings, "omics"))
        for operation in ("StartReadSetImportJob", "GetReadSetImportJob"):
            self.client.meta.events.register(f"before-send.omics.{operation}", self._take_token)

    def _take_token(self, **_: Any) -> None:
        self.limiter.wait(IMPORT_CALLS)

    def start(
        self, store_id: str, role_arn: str, client_token: str, sources: list[dict[str, Any]]
    ) -> dict[str, Any]:
        response = call(
            "StartReadSetImportJob",
            self.client.start_read_set_import_job,
            sequenceStoreId=store_id,
            roleArn=role_arn,
            clientToken=client_token,
            sources=sources,
        )
        return dict(response)

    def get(self, store_id: str, job_id: str) -> dict[str, Any]:
        response = call(
            "GetReadSetImportJob",
            self.client.get_read_set_import_job,
            sequenceStoreId=store_id,
            id=job_id,
        )
        return dict(response)


class ImportServices:
    """What the imports stage needs, built once per process (:meth:`Runtime.resource`)."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.config = ImportConfig.from_settings(settings)
        self.slots = ConcurrencyLimiter.from_settings(
            settings,
            JOB_SLOTS,
            limit=settings.import_max_concurrent_jobs,
            ttl=settings.import_slot_ttl,
        )
        self.api = ImportsApi(settings)

    @classmethod
    def of(cls, runtime: Runtime) -> ImportServices:
        return runtime.resource("imports", cls)


# --- the stage ------------------------------------------------------------------------------


def import_stage(runtime: Runtime, event_id: str) -> str:
    """The ``imports`` stage: dispatch on what the event is."""
    with runtime.engine.connect() as connection:
        event, done = store.get_for_stage(connection, event_id, STAGE)
    if event is None:
        raise PermanentError(f"event {event_id} is not in the log")
    if done:
        return "already-done"
    services = ImportServices.of(runtime)
    kind = (event.source, event.detail_type)
    if kind == ("aws.s3", "Object Created") and event.origin == "aws":
        return _on_object_created(runtime, services, event)
    if event.origin == "aws" and event.detail_type == proj.IMPORT_JOB_STATUS_CHANGE:
        return _on_job_status(runtime, services, event)
    if event.origin == "aws" and event.detail_type == proj.READ_SET_STATUS_CHANGE:
        # routed here by earlier versions; the intake folds these now (idempotent either way)
        return _fold_and_finish(runtime, event, "recorded")
    if event.origin == "pipeline":
        if event.detail_type == SOURCE_READY:
            return _plan_batches(runtime, services, event)
        if event.detail_type == proj.JOB_PLANNED:
            return _start_job(runtime, services, event)
        if event.detail_type == proj.SOURCES_FAILED:
            return _notify_failed(runtime, services, event)
        if event.detail_type == proj.JOB_STARTED:
            return _watch_job(runtime, services, event)
    return _finish(runtime, event, "ignored")


# --- log helpers ----------------------------------------------------------------------------


def _fact(
    cause: StoredEvent, detail_type: str, detail: dict[str, Any], *, event_id: str | None = None
) -> LogEntry:
    """A pipeline fact caused by ``cause``; ``event_id`` pins an id that does not depend on the
    cause (a source's, a plan's, a job's), so two causes of one fact append it once."""
    entry = LogEntry.pipeline(cause, detail_type, detail)
    if event_id is None:
        return entry
    return replace(entry, event_id=event_id, payload={**entry.payload, "id": event_id})


def _record(
    connection: Connection,
    entry: LogEntry,
    stages: Sequence[str] = (),
    *,
    not_before: Any = None,
) -> bool:
    """Append ``entry`` (owing ``stages``) and fold it, in the caller's transaction."""
    if not store.append(connection, entry, (*FACT_STAGES, *stages), not_before=not_before):
        return False
    stored = store.get(connection, entry.event_id)
    if stored is not None:
        proj.apply(connection, stored)
    return True


def _finish(runtime: Runtime, event: StoredEvent, outcome: str) -> str:
    with runtime.engine.begin() as connection:
        store.complete(connection, event.event_id, STAGE, outcome)
    return outcome


def _fold_and_finish(runtime: Runtime, event: StoredEvent, outcome: str) -> str:
    with runtime.engine.begin() as connection:
        proj.apply(connection, event)
        store.complete(connection, event.event_id, STAGE, outcome)
    return outcome


def _source(connection: Connection, key: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(import_sources).where(import_sources.c.source_key == key)
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def ready_id(source_key: str) -> str:
    """The id of a source's *Import Source Ready* fact: one per source, whoever appends it."""
    return derived_id(f"import-source\x1f{source_key}", SOURCE_READY)


def _job_fact_id(store_id: str, job_id: str, fact: str) -> str:
    return derived_id(f"import-job\x1f{store_id}\x1f{job_id}", fact)


def _dead_letter(
    connection: Connection, event: StoredEvent, reason: str, raw: dict[str, Any] | bytes
) -> None:
    store.dead_letter(
        connection,
        kind="import",
        stage=STAGE,
        event_id=event.event_id,
        detail_type=event.detail_type,
        reason=reason,
        raw=raw if isinstance(raw, bytes) else canonical_json(raw),
    )


def _jitter(seconds: float) -> float:
    return seconds * random.uniform(1.0, 1.25)


# --- 1. S3 objects ------------------------------------------------------------------------


def _on_object_created(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    config = services.config
    detail = event.payload.get("detail") or {}
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    key = str((detail.get("object") or {}).get("key") or "")
    if not config.rules:
        return _finish(runtime, event, "ignored: IMPORT_SOURCES is empty")
    found = config.match(bucket, key)
    if found is None:
        return _finish(runtime, event, "ignored: outside IMPORT_SOURCES")
    _rule, relative = found
    uri = f"s3://{bucket}/{key}"
    name = key.rsplit("/", 1)[-1]
    folder = key[: len(key) - len(name)]
    kind = classify_name(name, config.sidecar_suffix)
    if kind.kind == "companion":
        if config.ids_from == "sidecar" and name.endswith(config.sidecar_suffix):
            _wake_data_file(runtime, bucket, key[: -len(config.sidecar_suffix)])
        return _finish(runtime, event, f"ignored: {kind.why}")
    if kind.kind == "junk":
        return _reject(runtime, event, uri, None, str(kind.why))
    if not config.store_id or not config.role_arn:
        return _reject(
            runtime,
            event,
            uri,
            None,
            "automatic import needs IMPORT_SEQUENCE_STORE_ID and IMPORT_ROLE_ARN",
        )
    assert kind.file_type is not None and kind.source1_name is not None
    source_key = f"s3://{bucket}/{folder}{kind.source1_name}"
    mate_uri = f"s3://{bucket}/{folder}{kind.mate_name}" if kind.mate_name else None

    ids: dict[str, Any]
    if config.ids_from == "path":
        found_ids = config.template.match(relative)
        if found_ids is None:
            return _reject(
                runtime,
                event,
                uri,
                source_key,
                f"{relative!r} does not match IMPORT_PATH_TEMPLATE {config.template.template!r}",
            )
        sample = found_ids.get("sample") or kind.stem or name
        ids = {"sampleId": sample, "subjectId": found_ids.get("subject") or sample}
    else:
        names = [name] + ([kind.mate_name] if kind.mate_name else [])
        try:
            sidecar = _read_sidecar(runtime, bucket, [folder + n for n in names], config)
        except PermanentError as error:
            return _reject(runtime, event, uri, source_key, error.reason)
        if sidecar is None:
            waited = (utcnow() - event.received_at).total_seconds()
            if waited >= config.mate_wait:
                return _reject(
                    runtime,
                    event,
                    uri,
                    source_key,
                    f"no sidecar manifest {uri}{config.sidecar_suffix} within "
                    f"{config.mate_wait:.0f} s (IMPORT_IDS_FROM=sidecar)",
                )
            raise RetryLater(
                f"waiting for the sidecar manifest of {uri}", config.mate_wait - waited
            )
        ids = sidecar.model_dump(by_alias=True, exclude_none=True)
    for field in ("sampleId", "subjectId"):
        if not 1 <= len(str(ids.get(field) or "")) <= 127:
            return _reject(runtime, event, uri, source_key, f"{field} must be 1-127 characters")
    reference = ids.get("referenceArn") or config.reference_arn
    if kind.file_type in ALIGNED_TYPES and not reference:
        return _reject(
            runtime,
            event,
            uri,
            source_key,
            f"an aligned {kind.file_type} needs a reference genome: set IMPORT_REFERENCE_ARN "
            "(or referenceArn in its sidecar manifest)",
        )
    extra = {k: ids[k] for k in ("description", "generatedFrom", "tags") if ids.get(k)}
    registered = {
        "sourceKey": source_key,
        "uri": uri,
        "mate": kind.mate,
        "mateUri": mate_uri,
        "paired": kind.paired,
        "fileType": kind.file_type,
        "subjectId": ids["subjectId"],
        "sampleId": ids["sampleId"],
        "referenceArn": reference if kind.file_type in ALIGNED_TYPES else None,
        "name": str(ids.get("name") or kind.stem or name)[:127],
        "extra": extra or None,
        "storeId": config.store_id,
        "roleArn": config.role_arn,
        "s3EventId": event.event_id,
    }
    return _register(runtime, config, event, registered)


def _register(
    runtime: Runtime, config: ImportConfig, event: StoredEvent, registered: dict[str, Any]
) -> str:
    source_key = registered["sourceKey"]
    now = utcnow()
    wait: float | None = None
    with runtime.engine.begin() as connection:
        _record(connection, _fact(event, proj.FILE_REGISTERED, registered))
        row = _source(connection, source_key)
        assert row is not None
        outcome = str(row["outcome"])
        if outcome == "waiting":
            deadline = event.received_at + timedelta(seconds=config.mate_wait)
            if now < deadline:
                wait = (deadline - now).total_seconds()
                result = "waiting-for-mate"
            else:
                _mate_missing(connection, event, registered, config)
                result = "mate-missing"
                store.complete(connection, event.event_id, STAGE, result)
        elif outcome == "orphaned":  # this mate waited in vain; the other may still come
            result = "mate-missing"
            store.complete(connection, event.event_id, STAGE, result)
        else:
            if outcome == "ready":
                _record(
                    connection,
                    _fact(
                        event,
                        SOURCE_READY,
                        {"sourceKey": source_key},
                        event_id=ready_id(source_key),
                    ),
                    (STAGE,),
                    not_before=now + timedelta(seconds=config.batch_window),
                )
                result = "registered"
            else:  # the same object again (an overwrite, a replay): already on its way
                result = f"already {outcome}"
            # the first mate's task is waiting for this one: its wait is over
            for other in (row["source1_event_id"], row["source2_event_id"]):
                if other and other != event.event_id:
                    store.complete(connection, other, STAGE, "paired")
            store.complete(connection, event.event_id, STAGE, result)
    if wait is not None:
        raise RetryLater(f"{registered['uri']} waits for its mate {registered['mateUri']}", wait)
    return result


def _mate_missing(
    connection: Connection, event: StoredEvent, registered: dict[str, Any], config: ImportConfig
) -> None:
    reason = (
        f"FASTQ {registered['uri']}: its mate {registered['mateUri']} did not arrive within "
        f"{config.mate_wait:.0f} s (IMPORT_MATE_WAIT); the pair is imported if the mate arrives "
        "later"
    )
    _record(
        connection,
        _fact(
            event,
            proj.MATE_MISSING,
            {
                "sourceKey": registered["sourceKey"],
                "uri": registered["uri"],
                "mateUri": registered["mateUri"],
                "reason": reason,
            },
        ),
    )
    _dead_letter(connection, event, reason, event.payload)


def _reject(
    runtime: Runtime, event: StoredEvent, uri: str, source_key: str | None, reason: str
) -> str:
    """A file under a watched prefix that will not be imported: a fact and a dead letter."""
    log.warning("not importing %s: %s", uri, reason, extra={"event_id": event.event_id})
    with runtime.engine.begin() as connection:
        _record(
            connection,
            _fact(
                event, proj.FILE_REJECTED, {"uri": uri, "sourceKey": source_key, "reason": reason}
            ),
        )
        _dead_letter(connection, event, f"{uri}: {reason}", event.payload)
        store.complete(connection, event.event_id, STAGE, "rejected")
    return "rejected"


def _read_sidecar(
    runtime: Runtime, bucket: str, keys: list[str], config: ImportConfig
) -> ImportSidecar | None:
    """The first of the files' sidecars that exists, validated; ``None`` if none exists yet."""
    s3 = runtime.aws.s3
    for key in keys:
        sidecar_key = f"{key}{config.sidecar_suffix}"
        try:
            body = s3.get_object(Bucket=bucket, Key=sidecar_key)["Body"].read(65536 + 1)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                continue
            if code in {"AccessDenied", "403"}:
                raise PermanentError(
                    f"cannot read s3://{bucket}/{sidecar_key}: access denied"
                ) from error
            raise
        if len(body) > 65536:
            raise PermanentError(f"sidecar manifest s3://{bucket}/{sidecar_key} is over 64 KiB")
        try:
            return ImportSidecar.model_validate(json.loads(body))
        except (ValueError, ValidationError) as error:
            first = str(error).splitlines()[0:3]
            raise PermanentError(
                f"sidecar manifest s3://{bucket}/{sidecar_key} is not valid: {' '.join(first)}"
            ) from error
    return None


def _wake_data_file(runtime: Runtime, bucket: str, data_key: str) -> None:
    """A sidecar arrived: the read file waiting for it may go now (the sweeper publishes it)."""
    with runtime.engine.begin() as connection:
        waiting = (
            connection.execute(
                select(events.c.event_id).where(
                    events.c.source == "aws.s3",
                    events.c.detail_type == "Object Created",
                    events.c.resource_id == f"{bucket}/{data_key}"[:1024],
                )
            )
            .scalars()
            .all()
        )
        for event_id in waiting:
            store.defer(connection, event_id, STAGE, utcnow())
    runtime.publish(list(waiting))


# --- 2. batching ----------------------------------------------------------------------------


def _spec(row: dict[str, Any]) -> dict[str, Any]:
    """A planned source: the StartReadSetImportJob fields plus our ``sourceKey``."""
    spec: dict[str, Any] = {
        "sourceKey": row["source_key"],
        "sourceFiles": {"source1": row["source1"]},
        "sourceFileType": row["file_type"],
        "subjectId": row["subject_id"],
        "sampleId": row["sample_id"],
        "generatedFrom": GENERATED_FROM,
    }
    if row.get("source2"):
        spec["sourceFiles"]["source2"] = row["source2"]
    if row.get("reference_arn") and row["file_type"] in ALIGNED_TYPES:
        spec["referenceArn"] = row["reference_arn"]
    if row.get("name"):
        spec["name"] = row["name"]
    for field, value in (row.get("extra") or {}).items():
        if field in {"description", "generatedFrom", "tags"} and value:
            spec[field] = value
    return spec


def _plan(
    cause: StoredEvent,
    store_id: str,
    role_arn: str,
    specs: list[dict[str, Any]],
    *,
    attempt: int,
    parent_job_id: str | None,
    plan_id: str | None = None,
) -> LogEntry:
    keys = "\x1f".join(sorted(str(s["sourceKey"]) for s in specs))
    plan_id = plan_id or derived_id(f"import-plan\x1f{store_id}\x1f{attempt}", keys)
    detail = {
        "planId": plan_id,
        "storeId": store_id,
        "roleArn": role_arn,
        "attempt": attempt,
        "parentJobId": parent_job_id,
        "clientToken": plan_id,
        "sources": specs,
    }
    return _fact(cause, proj.JOB_PLANNED, detail, event_id=plan_id)


def _lock_planner(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(PLAN_LOCK_KEY)))


def _plan_batches(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    """A source's batch window is over: plan every ready source into jobs."""
    config = services.config
    source_key = str((event.payload.get("detail") or {}).get("sourceKey") or "")
    planned: list[str] = []
    with runtime.engine.begin() as connection:
        _lock_planner(connection)
        row = _source(connection, source_key)
        if row is None or row["outcome"] != "ready":
            store.complete(connection, event.event_id, STAGE, "already-batched")
            return "already-batched"
        ready = connection.execute(
            select(import_sources)
            .where(import_sources.c.outcome == "ready")
            .order_by(import_sources.c.registered_at, import_sources.c.source_key)
        ).all()
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for item in ready:
            data = dict(item._mapping)
            if data["store_id"] and data["role_arn"]:
                groups[(data["store_id"], data["role_arn"])].append(data)
        for (store_id, role_arn), rows in sorted(groups.items()):
            for start in range(0, len(rows), config.max_sources):
                chunk = rows[start : start + config.max_sources]
                entry = _plan(
                    event,
                    store_id,
                    role_arn,
                    [_spec(r) for r in chunk],
                    attempt=1,
                    parent_job_id=None,
                )
                if _record(connection, entry, (STAGE,)):
                    planned.append(entry.event_id)
                for r in chunk:  # their own windows need not run any more
                    store.complete(connection, ready_id(r["source_key"]), STAGE, "batched")
        store.complete(connection, event.event_id, STAGE, "batched")
    runtime.publish(planned)
    return f"planned {len(planned)} job(s)"


# --- 3. starting jobs -----------------------------------------------------------------------


def _start_job(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    plan = event.payload.get("detail") or {}
    plan_id = str(plan.get("planId") or event.event_id)
    started_id = derived_id(plan_id, proj.JOB_STARTED)
    with runtime.engine.connect() as connection:
        done = store.get(connection, started_id) is not None
    if done:
        return _finish(runtime, event, "already-started")
    config = services.config
    specs = [s for s in plan.get("sources") or [] if isinstance(s, dict)]
    if not specs:
        raise PermanentError(f"import plan {plan_id} has no sources")
    if not services.slots.acquire(plan_id):
        raise RetryLater(
            f"all {services.slots.limit} concurrent import-job slots are taken",
            _jitter(config.quota_wait),
        )
    store_id, role_arn = str(plan["storeId"]), str(plan["roleArn"])
    try:
        response = services.api.start(
            store_id,
            role_arn,
            str(plan.get("clientToken") or plan_id),
            [source_spec(s) for s in specs],
        )
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            services.slots.release(plan_id)  # the job did not start: the slot is free
            delay = config.quota_wait if error.kind == "quota" else random.uniform(1.0, 4.0)
            raise RetryLater(str(error), _jitter(delay)) from error
        if error.kind in {"invalid", "denied", "gone"}:
            services.slots.release(plan_id)
            return _refused(runtime, event, plan, specs, error)
        raise  # unknown outcome (500, timeout): Celery retries with the same clientToken
    job_id = str(response["id"])
    detail = {
        "planId": plan_id,
        "jobId": job_id,
        "storeId": store_id,
        "roleArn": role_arn,
        "attempt": int(plan.get("attempt") or 1),
        "parentJobId": plan.get("parentJobId"),
        "clientToken": plan.get("clientToken") or plan_id,
        "sourceKeys": [s["sourceKey"] for s in specs],
        "creationTime": _iso(response.get("creationTime")),
        "status": response.get("status"),
    }
    started = replace(
        _fact(event, proj.JOB_STARTED, detail, event_id=started_id), resource_id=job_id
    )
    with runtime.engine.begin() as connection:
        _record(connection, started)
        store.complete(connection, event.event_id, STAGE, "started")
        rank = connection.execute(
            select(import_jobs.c.status_rank).where(import_jobs.c.job_id == job_id)
        ).scalar_one_or_none()
        if rank != proj.JOB_RANK["COMPLETED"]:
            # the watchdog: should the job's end event be lost, the started fact's task asks
            watch_at = utcnow() + timedelta(seconds=services.config.watch_interval)
            store.schedule(connection, started.event_id, STAGE, not_before=watch_at)
    if rank == proj.JOB_RANK["COMPLETED"]:  # its end was handled before this commit
        services.slots.release(plan_id)
    log.info(
        "started import job %s (%d sources, attempt %s)",
        job_id,
        len(specs),
        detail["attempt"],
        extra={"job_id": job_id, "event_id": event.event_id},
    )
    return "started"


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


def _refused(
    runtime: Runtime,
    event: StoredEvent,
    plan: dict[str, Any],
    specs: list[dict[str, Any]],
    error: OmicsError,
) -> str:
    """StartReadSetImportJob refused the request itself (validation, access, no such store).

    A refused batch of several sources is split in halves, each planned again, until the bad
    source is alone; a lone source (or a refusal that is not about the sources) fails.
    """
    plan_id = str(plan.get("planId") or event.event_id)
    attempt = int(plan.get("attempt") or 1)
    with runtime.engine.begin() as connection:
        if error.kind == "invalid" and len(specs) > 1:
            middle = len(specs) // 2
            halves = [specs[:middle], specs[middle:]]
            entries = [
                _plan(
                    event,
                    str(plan["storeId"]),
                    str(plan["roleArn"]),
                    half,
                    attempt=attempt,
                    parent_job_id=plan.get("parentJobId"),
                    plan_id=derived_id(plan_id, f"split-{index}"),
                )
                for index, half in enumerate(halves)
            ]
            for entry in entries:
                _record(connection, entry, (STAGE,))
            store.complete(connection, event.event_id, STAGE, "split")
            outcome = "split"
        else:
            reason = f"StartReadSetImportJob refused it: {error.code}: {error.message}"
            _fail_sources(
                connection,
                event,
                str(plan["storeId"]),
                None,
                [(s, reason, "permanent", attempt) for s in specs],
                fact_id=derived_id(plan_id, proj.SOURCES_FAILED),
            )
            store.complete(connection, event.event_id, STAGE, "refused")
            outcome = "refused"
            entries = []
    if entries:
        runtime.publish([entry.event_id for entry in entries])
    else:
        runtime.publish([derived_id(plan_id, proj.SOURCES_FAILED)])
    return outcome


# --- 4. finished jobs -----------------------------------------------------------------------


def _on_job_status(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    detail = event.payload.get("detail") or {}
    job_id = str(detail.get("id") or "")
    store_id = str(detail.get("sequenceStoreId") or "")
    status = str(detail.get("status") or "").upper()
    with runtime.engine.begin() as connection:
        proj.apply(connection, event)
        job = connection.execute(
            select(import_jobs).where(import_jobs.c.job_id == job_id)
        ).one_or_none()
    if status not in proj.JOB_TERMINAL:
        return _finish(runtime, event, "recorded")
    job_row = dict(job._mapping) if job is not None else {}
    if job_row.get("plan_id"):
        plan_id = str(job_row["plan_id"])
        services.slots.release(plan_id)
        with runtime.engine.begin() as connection:  # its end came: the watchdog can stop
            store.complete(connection, derived_id(plan_id, proj.JOB_STARTED), STAGE, "ended")
    if status == "CANCELLED":
        return _finish(runtime, event, "cancelled")
    checked_id = _job_fact_id(store_id, job_id, proj.JOB_CHECKED)
    with runtime.engine.connect() as connection:
        already = store.get(connection, checked_id) is not None
    if already:
        return _finish(runtime, event, "already-checked")
    job_view = _read_job(services, store_id, job_id)
    if str(job_view.get("status")) not in proj.JOB_TERMINAL:
        raise RetryLater(f"GetReadSetImportJob says job {job_id} is {job_view.get('status')}", 30)
    attempt = int(job_row.get("attempt") or 1) if job_row.get("origin") == "ours" else 1
    return _check(runtime, services, event, job_view, attempt, checked_id)


def _read_job(services: ImportServices, store_id: str, job_id: str) -> dict[str, Any]:
    """GetReadSetImportJob: throttling waits, a job we cannot read is permanent."""
    try:
        return services.api.get(store_id, job_id)
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            raise RetryLater(str(error), _jitter(random.uniform(1.0, 4.0))) from error
        if error.kind in {"gone", "denied", "invalid"}:
            raise PermanentError(f"cannot read import job {job_id}: {error}") from error
        raise


def _watch_job(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    """A started job, looked at ``IMPORT_JOB_WATCH_INTERVAL`` after it started: if its end event
    was handled, nothing to do; if HealthOmics says it ended, handle the end as its event would
    have (the facts' ids are the same, so an end event arriving later appends nothing); if it
    still runs, look again later."""
    detail = event.payload.get("detail") or {}
    job_id, store_id = str(detail.get("jobId") or ""), str(detail.get("storeId") or "")
    checked_id = _job_fact_id(store_id, job_id, proj.JOB_CHECKED)
    with runtime.engine.connect() as connection:
        if store.get(connection, checked_id) is not None:
            return _finish(runtime, event, "already-checked")
        status = connection.execute(
            select(import_jobs.c.status).where(import_jobs.c.job_id == job_id)
        ).scalar_one_or_none()
    if status == "CANCELLED":
        return _finish(runtime, event, "cancelled")
    job_view = _read_job(services, store_id, job_id)
    job_status = str(job_view.get("status"))
    if job_status not in proj.JOB_TERMINAL:
        interval = services.config.watch_interval
        raise RetryLater(f"import job {job_id} is still {job_status}", interval)
    log.warning(
        "import job %s ended %s and no event said so: handled from GetReadSetImportJob",
        job_id,
        job_status,
        extra={"job_id": job_id, "event_id": event.event_id},
    )
    if detail.get("planId"):
        services.slots.release(str(detail["planId"]))
    if job_status == "CANCELLED":
        return _finish(runtime, event, "cancelled")
    return _check(runtime, services, event, job_view, int(detail.get("attempt") or 1), checked_id)


def _check(
    runtime: Runtime,
    services: ImportServices,
    event: StoredEvent,
    job: dict[str, Any],
    attempt: int,
    checked_id: str,
) -> str:
    config = services.config
    job_id, store_id = str(job["id"]), str(job["sequenceStoreId"])
    results: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    failed: list[tuple[dict[str, Any], str, str, int]] = []
    for source in job.get("sources") or []:
        spec = {"sourceKey": source["sourceFiles"]["source1"], **source_spec(source)}
        status = str(source.get("status") or "")
        message = source.get("statusMessage")
        result = {
            **spec,
            "status": status,
            "statusMessage": message,
            "readSetId": source.get("readSetId"),
        }
        if status != "FINISHED":
            # a source left NOT_STARTED/IN_PROGRESS by a finished job never got its chance
            kind = classify_failure(message) if status == "FAILED" else "transient"
            result["classification"] = kind
            if kind == "transient" and attempt < config.max_attempts:
                retry.append(spec)
            elif kind == "transient":
                failed.append(
                    (
                        spec,
                        f"still failing after {attempt} attempt(s): {message or status}",
                        "exhausted",
                        attempt,
                    )
                )
            else:
                failed.append(
                    (spec, f"permanent failure: {message or status}", "permanent", attempt)
                )
        results.append(result)
    checked = {
        "jobId": job_id,
        "storeId": store_id,
        "roleArn": job.get("roleArn"),
        "status": job.get("status"),
        "statusMessage": job.get("statusMessage"),
        "attempt": attempt,
        "completionTime": _iso(job.get("completionTime")),
        "sources": results,
    }
    publish: list[str] = []
    with runtime.engine.begin() as connection:
        _record(connection, _fact(event, proj.JOB_CHECKED, checked, event_id=checked_id))
        if retry:
            delay = config.retry_delay_for(attempt)
            entry = _plan(
                event,
                store_id,
                str(job["roleArn"]),
                retry,
                attempt=attempt + 1,
                parent_job_id=job_id,
                plan_id=_job_fact_id(store_id, job_id, "retry"),
            )
            _record(connection, entry, (STAGE,), not_before=utcnow() + timedelta(seconds=delay))
            publish.append(entry.event_id)
        if failed:
            fact_id = _job_fact_id(store_id, job_id, proj.SOURCES_FAILED)
            _fail_sources(connection, event, store_id, job_id, failed, fact_id=fact_id)
            publish.append(fact_id)
        outcome = (
            f"checked: {len(results) - len(retry) - len(failed)} imported, "
            f"{len(retry)} to retry, {len(failed)} failed"
        )
        store.complete(connection, event.event_id, STAGE, outcome[:64])
    runtime.publish(publish)
    if retry or failed:
        log.info(
            "import job %s: %d source(s) to retry, %d given up",
            job_id,
            len(retry),
            len(failed),
            extra={"job_id": job_id, "event_id": event.event_id},
        )
    return outcome


def _fail_sources(
    connection: Connection,
    cause: StoredEvent,
    store_id: str,
    job_id: str | None,
    failed: Iterable[tuple[dict[str, Any], str, str, int]],
    *,
    fact_id: str,
) -> None:
    """Give sources up: one dead letter each, and one fact whose task notifies SNS."""
    items = []
    for spec, reason, classification, attempts in failed:
        files = spec.get("sourceFiles") or {}
        item = {
            "sourceKey": spec["sourceKey"],
            "source1": files.get("source1"),
            "source2": files.get("source2"),
            "sampleId": spec.get("sampleId"),
            "reason": reason,
            "classification": classification,
            "attempts": attempts,
        }
        items.append(item)
        named = " + ".join(f for f in (item["source1"], item["source2"]) if f)
        _dead_letter(
            connection, cause, f"{named}: {reason}", {"storeId": store_id, "jobId": job_id, **item}
        )
    detail = {"storeId": store_id, "jobId": job_id, "sources": items}
    _record(connection, _fact(cause, proj.SOURCES_FAILED, detail, event_id=fact_id), (STAGE,))


# --- 5. notifications -----------------------------------------------------------------------


def failure_message(detail: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) of the SNS notification about sources given up: what, where, what to do."""
    items = [i for i in detail.get("sources") or [] if isinstance(i, dict)]
    store_id = detail.get("storeId")
    job_id = detail.get("jobId")
    subject = f"HealthOmics import: {len(items)} file(s) could not be imported"[:100]
    lines = [
        f"{len(items)} read-set source(s) could not be imported into sequence store {store_id}"
        + (f" (import job {job_id})." if job_id else "."),
        "",
        "What:",
    ]
    for item in items:
        files = " + ".join(f for f in (item.get("source1"), item.get("source2")) if f)
        lines.append(f"  - {files} (sample {item.get('sampleId')}): {item.get('reason')}")
    lines += [
        "",
        "Where: sequence store "
        + str(store_id)
        + (f", import job {job_id}" if job_id else "")
        + "; `omics-events imports --failed` lists them, `omics-events dead-letters` has the "
        "details.",
        "",
        "What to do:",
        "  - permanent: fix the file or its access (S3 object, IAM role, format, ids) and "
        "start an import for it;",
        "  - exhausted: HealthOmics kept failing transiently; check the service health and "
        "re-import the files once it is healthy.",
    ]
    return subject, "\n".join(lines)


def _notify_failed(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    topic = services.config.notify_topic
    if not topic:
        log.warning(
            "import failures not notified: set IMPORT_NOTIFY_TOPIC_ARN or ALERTS_TOPIC_ARN",
            extra={"event_id": event.event_id},
        )
        return _finish(runtime, event, "not notified: no topic")
    subject, text = failure_message(event.payload.get("detail") or {})
    try:
        runtime.aws.get("sns").publish(TopicArn=topic, Subject=subject, Message=text)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"NotFound", "InvalidParameter", "AuthorizationError", "KMSDisabled"}:
            raise PermanentError(f"cannot publish to {topic}: {code}") from error
        raise
    except BotoCoreError:
        raise
    return _finish(runtime, event, "notified")
