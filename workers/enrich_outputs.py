"""Finding a completed run's outputs file, and reading it without letting it hurt the stage.

Why apart from :mod:`workers.enrich`: the file is written by the workflow, not by HealthOmics,
so where it is (three documented places, reference §3), whose it is (run ids are reused: a file
older than the run, or in another run's uuid folder, is refused) and whether it is safe to parse
(a bounded read, ``ENRICH_OUTPUTS_MAX_BYTES``, and a nesting count without recursion,
``ENRICH_OUTPUTS_MAX_DEPTH``) are questions of S3 and JSON, answered here; the stage only asks
:class:`OutputsLookup` and maps what it found with :func:`output_mapping`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

#: ``*/logs/outputs.json`` or ``*/logs/output.json`` (the WDL section's name).
OUTPUTS_NAME = re.compile(r"(^|/)logs/outputs?\.json$")
#: Tolerance between S3's clock and HealthOmics' when telling an old outputs file from a new one.
CLOCK_SKEW = timedelta(minutes=5)
_UUID_SEGMENT = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/", re.I)


def output_mapping(document: Any) -> dict[str, Any] | None:
    """``outputs.json`` as ``{name: s3 uri | [uri, …] | value}``.

    CWL File/Directory objects become their ``location`` (or ``path``), arrays map item by item,
    nested records key by key, and plain values (WDL scalars, URIs) stay as they are.
    """
    if not isinstance(document, dict):
        return None

    def reduce(value: Any) -> Any:
        if isinstance(value, dict):
            for key in ("location", "path"):
                if isinstance(value.get(key), str):
                    return value[key]
            return {str(k): reduce(v) for k, v in value.items()}
        if isinstance(value, list):
            return [reduce(item) for item in value]
        return value

    return {str(name): reduce(value) for name, value in document.items()}


def _split_s3(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return (bucket, key) if bucket else None


#: A JSON string (escapes included; an unterminated one runs to the end) or a bracket: what the
#: depth count reads, so that brackets inside strings do not count.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether the brackets of JSON ``text`` nest deeper than ``max_depth``, counted without
    recursion (the check :mod:`schemas.parsing` makes before it decodes an event)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False  # cannot be deeper: the common case, one C-speed pass
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif token in "]}":
            depth -= 1
    return False


@dataclass(frozen=True)
class RefusedOutputs:
    """An outputs file that was found but not read: where, why, and the bytes read of it."""

    uri: str
    reason: str
    raw: bytes


class _Refused(Exception):
    def __init__(self, refused: RefusedOutputs) -> None:
        super().__init__(refused.reason)
        self.refused = refused


class OutputsLookup:
    """Finds a completed run's outputs file among the documented places (reference §3)."""

    def __init__(
        self,
        s3: Any,
        run: dict[str, Any],
        run_uuid: str,
        *,
        max_bytes: int = 4 * 1024 * 1024,
        max_depth: int = 32,
    ) -> None:
        self.s3 = s3
        self.run = run
        self.run_uuid = run_uuid
        self.created = run.get("creationTime")
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.denied: str | None = None
        #: Set when the run's outputs file was found but is over a cap: the search stops there.
        self.refused: RefusedOutputs | None = None

    def candidates(self) -> list[str]:
        run_id = str(self.run.get("id") or self.run.get("runId") or "")
        found: list[str] = []
        run_output = str(self.run.get("runOutputUri") or "").rstrip("/")
        output = str(self.run.get("outputUri") or "").rstrip("/")
        if run_output:
            found.append(f"{run_output}/logs/outputs.json")
        if output and run_id:
            found.append(f"{output}/{run_id}/{self.run_uuid}/logs/outputs.json")
        return found

    def find(self) -> tuple[str, dict[str, Any]] | None:
        try:
            return self._find()
        except _Refused as refusal:
            self.refused = refusal.refused
            return None

    def _find(self) -> tuple[str, dict[str, Any]] | None:
        for uri in self.candidates():
            document = self._read(uri)
            if document is not None:
                return uri, document
        output = str(self.run.get("outputUri") or "").rstrip("/")
        run_id = str(self.run.get("id") or self.run.get("runId") or "")
        if output and run_id:
            for uri in self._listed(f"{output}/{run_id}/"):
                document = self._read(uri)
                if document is not None:
                    return uri, document
        return None

    def _listed(self, prefix_uri: str) -> list[str]:
        """``*/logs/output(s).json`` under the prefix that may belong to this run."""
        split = _split_s3(prefix_uri)
        if split is None:
            return []
        bucket, prefix = split
        keys: list[str] = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if not OUTPUTS_NAME.search(key):
                        continue
                    other_uuid = _UUID_SEGMENT.search("/" + key)
                    if other_uuid and self.run_uuid.lower() not in key.lower():
                        continue  # another run's folder: run ids are reused
                    keys.append(key)
        except ClientError as error:
            if not self._missing_or_denied(error):
                raise
        keys.sort(key=lambda k: (self.run_uuid.lower() not in k.lower(), k))
        return [f"s3://{bucket}/{key}" for key in keys]

    def _read(self, uri: str) -> dict[str, Any] | None:
        split = _split_s3(uri)
        if split is None:
            return None
        bucket, key = split
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if self._missing_or_denied(error):
                return None
            raise
        modified = response.get("LastModified")
        if (
            isinstance(self.created, datetime)
            and isinstance(modified, datetime)
            and modified < self.created - CLOCK_SKEW
        ):
            return None  # written before this run existed: an earlier run with the same id
        body = response["Body"]
        try:
            size = int(response.get("ContentLength") or 0)
            if size > self.max_bytes:
                raise _Refused(RefusedOutputs(uri, self._too_big(uri, size), b""))
            data = body.read(self.max_bytes + 1)  # bounded, whatever S3 said about the size
        finally:
            body.close()
        if len(data) > self.max_bytes:
            raise _Refused(RefusedOutputs(uri, self._too_big(uri, None), data[: self.max_bytes]))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("%s is not UTF-8 JSON; ignored", uri)
            return None
        if nesting_exceeds(text, self.max_depth):
            reason = (
                f"outputs file {uri} nests deeper than {self.max_depth} levels "
                "(ENRICH_OUTPUTS_MAX_DEPTH): not read; the run goes on without its output mapping"
            )
            raise _Refused(RefusedOutputs(uri, reason, data))
        try:
            document = json.loads(text)
        except ValueError:
            log.warning("%s is not JSON; ignored", uri)
            return None
        return document if isinstance(document, dict) else None

    def _too_big(self, uri: str, size: int | None) -> str:
        known = f", it has {size}" if size else ""
        return (
            f"outputs file {uri} is larger than {self.max_bytes} bytes (ENRICH_OUTPUTS_MAX_BYTES"
            f"{known}): not read; the run goes on without its output mapping"
        )

    def _missing_or_denied(self, error: ClientError) -> bool:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}:
            return True
        if code in {"AccessDenied", "403", "AllAccessDisabled"}:
            self.denied = f"outputs not readable: {code}"
            return True
        return False
