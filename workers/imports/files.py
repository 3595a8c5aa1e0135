"""Step 1 of the imports pool: which S3 objects are read files, their ids, and pairing mates.

Why a module of its own: an ``Object Created`` event under an ``IMPORT_SOURCES`` prefix is the
only input of the pool, and everything about it is decided here: the name says what the object
is (:func:`schemas.imports.classify_name`); junk is rejected (*Import File Rejected* and a dead
letter), index files and sidecars are ignored; a read file gets its subject and sample ids from
``IMPORT_PATH_TEMPLATE`` or its JSON sidecar manifest and is registered (*Import File
Registered*).  A FASTQ mate waits for the other one — in the outbox (``not_before``), never as a
Celery countdown — for ``IMPORT_MATE_WAIT`` seconds; whichever mate lands second makes the pair
one source, finishes the first one's wait, and appends the source's *Import Source Ready* fact
(which waits ``IMPORT_BATCH_WINDOW`` for the planner, :mod:`workers.imports.planner`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError
from sqlalchemy import Connection, select

from eventlog import import_projections as proj
from eventlog import store
from eventlog.store import StoredEvent, utcnow
from eventlog.tables import events
from schemas.imports import ALIGNED_TYPES, ImportSidecar, ReadFileName, classify_name
from schemas.vocabulary import SOURCE_READY
from workers.errors import PermanentError, RetryLater
from workers.imports.facts import STAGE, dead_letter, fact, finish, ready_id, record, source_row
from workers.imports.services import ImportConfig, ImportServices
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class _Rejected(Exception):
    """The read file will not be imported, for ``reason`` (a fact and a dead letter say so)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Landed:
    """A read file that landed under a watched prefix: where it is and what its name says."""

    bucket: str
    key: str
    #: the key below the rule's prefix, what ``IMPORT_PATH_TEMPLATE`` matches
    relative: str
    kind: ReadFileName

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.key[: len(self.key) - len(self.name)]

    @property
    def source_key(self) -> str:
        """The source's key: its first file's URI, whichever mate this is."""
        return f"s3://{self.bucket}/{self.folder}{self.kind.source1_name}"

    @property
    def mate_uri(self) -> str | None:
        mate = self.kind.mate_name
        return f"s3://{self.bucket}/{self.folder}{mate}" if mate else None


def on_object_created(runtime: Runtime, services: ImportServices, event: StoredEvent) -> str:
    """An S3 ``Object Created``: ignore it, reject it, or register the read file it is."""
    config = services.config
    detail = event.payload.get("detail") or {}
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    key = str((detail.get("object") or {}).get("key") or "")
    if not config.rules:
        return finish(runtime, event, "ignored: IMPORT_SOURCES is empty")
    found = config.match(bucket, key)
    if found is None:
        return finish(runtime, event, "ignored: outside IMPORT_SOURCES")
    _rule, relative = found
    uri = f"s3://{bucket}/{key}"
    name = key.rsplit("/", 1)[-1]
    kind = classify_name(name, config.sidecar_suffix)
    if kind.kind == "companion":
        if config.ids_from == "sidecar" and name.endswith(config.sidecar_suffix):
            _wake_data_file(runtime, bucket, key[: -len(config.sidecar_suffix)])
        return finish(runtime, event, f"ignored: {kind.why}")
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
    landed = _Landed(bucket, key, relative, kind)
    try:
        registered = _registration(runtime, config, event, landed)
    except _Rejected as rejected:
        return _reject(runtime, event, uri, landed.source_key, rejected.reason)
    return _register(runtime, config, event, registered)


def _registration(
    runtime: Runtime, config: ImportConfig, event: StoredEvent, landed: _Landed
) -> dict[str, Any]:
    """The *Import File Registered* detail of ``landed``, or :class:`_Rejected`."""
    kind = landed.kind
    if config.ids_from == "path":
        ids = _ids_from_path(config, landed)
    else:
        ids = _ids_from_sidecar(runtime, config, event, landed)
    for field in ("sampleId", "subjectId"):
        if not 1 <= len(str(ids.get(field) or "")) <= 127:
            raise _Rejected(f"{field} must be 1-127 characters")
    reference = ids.get("referenceArn") or config.reference_arn
    if kind.file_type in ALIGNED_TYPES and not reference:
        raise _Rejected(
            f"an aligned {kind.file_type} needs a reference genome: set IMPORT_REFERENCE_ARN "
            "(or referenceArn in its sidecar manifest)"
        )
    extra = {k: ids[k] for k in ("description", "generatedFrom", "tags") if ids.get(k)}
    return {
        "sourceKey": landed.source_key,
        "uri": landed.uri,
        "mate": kind.mate,
        "mateUri": landed.mate_uri,
        "paired": kind.paired,
        "fileType": kind.file_type,
        "subjectId": ids["subjectId"],
        "sampleId": ids["sampleId"],
        "referenceArn": reference if kind.file_type in ALIGNED_TYPES else None,
        "name": str(ids.get("name") or kind.stem or landed.name)[:127],
        "extra": extra or None,
        "storeId": config.store_id,
        "roleArn": config.role_arn,
        "s3EventId": event.event_id,
    }


def _ids_from_path(config: ImportConfig, landed: _Landed) -> dict[str, Any]:
    """``IMPORT_IDS_FROM=path``: the subject and sample ids ``IMPORT_PATH_TEMPLATE`` finds."""
    found_ids = config.template.match(landed.relative)
    if found_ids is None:
        raise _Rejected(
            f"{landed.relative!r} does not match IMPORT_PATH_TEMPLATE {config.template.template!r}"
        )
    sample = found_ids.get("sample") or landed.kind.stem or landed.name
    return {"sampleId": sample, "subjectId": found_ids.get("subject") or sample}


def _ids_from_sidecar(
    runtime: Runtime, config: ImportConfig, event: StoredEvent, landed: _Landed
) -> dict[str, Any]:
    """``IMPORT_IDS_FROM=sidecar``: the ids of the file's (or its mate's) sidecar manifest,
    waited for up to ``IMPORT_MATE_WAIT`` seconds after the file landed."""
    mate_name = landed.kind.mate_name
    names = [landed.name] + ([mate_name] if mate_name else [])
    try:
        sidecar = _read_sidecar(runtime, landed.bucket, [landed.folder + n for n in names], config)
    except PermanentError as error:
        raise _Rejected(error.reason) from error
    if sidecar is None:
        waited = (utcnow() - event.received_at).total_seconds()
        if waited >= config.mate_wait:
            raise _Rejected(
                f"no sidecar manifest {landed.uri}{config.sidecar_suffix} within "
                f"{config.mate_wait:.0f} s (IMPORT_IDS_FROM=sidecar)"
            )
        raise RetryLater(
            f"waiting for the sidecar manifest of {landed.uri}", config.mate_wait - waited
        )
    return sidecar.model_dump(by_alias=True, exclude_none=True)


def _register(
    runtime: Runtime, config: ImportConfig, event: StoredEvent, registered: dict[str, Any]
) -> str:
    """Register the file: a first mate waits for the other, a complete source is *ready*."""
    source_key = registered["sourceKey"]
    now = utcnow()
    wait: float | None = None
    with runtime.engine.begin() as connection:
        record(connection, fact(event, proj.FILE_REGISTERED, registered))
        row = source_row(connection, source_key)
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
                record(
                    connection,
                    fact(
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
    """The mate did not come within ``IMPORT_MATE_WAIT``: a fact and a dead letter."""
    reason = (
        f"FASTQ {registered['uri']}: its mate {registered['mateUri']} did not arrive within "
        f"{config.mate_wait:.0f} s (IMPORT_MATE_WAIT); the pair is imported if the mate arrives "
        "later"
    )
    record(
        connection,
        fact(
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
    dead_letter(connection, event, reason, event.payload)


def _reject(
    runtime: Runtime, event: StoredEvent, uri: str, source_key: str | None, reason: str
) -> str:
    """A file under a watched prefix that will not be imported: a fact and a dead letter."""
    log.warning("not importing %s: %s", uri, reason, extra={"event_id": event.event_id})
    with runtime.engine.begin() as connection:
        record(
            connection,
            fact(
                event, proj.FILE_REJECTED, {"uri": uri, "sourceKey": source_key, "reason": reason}
            ),
        )
        dead_letter(connection, event, f"{uri}: {reason}", event.payload)
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
