"""The run outputs mapping (``outputs.json``) that HealthOmics writes for a completed run.

Why the simulator writes it: the enrich worker reads ``{runOutputUri}/logs/outputs.json`` once a
COMPLETED event arrives (what NGS360 does, reference §3), so the file must exist in S3 (moto)
with the real CWL shape: ``{name: {location, basename, class: "File", size}}``, lists of such
objects for array outputs, and plain JSON values for scalars.  It is written *before* the
COMPLETED event is sent; whether real HealthOmics guarantees that is unverified, but a worker
that copes with "not there yet" copes with this too.

:class:`S3OutputStore` puts the file (creating the bucket on first use); :class:`MemoryOutputStore`
only remembers it.  Either way the simulator records every mapping it wrote, so a test can
compare what the workers delivered with the ground truth.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any, Protocol

from simulator.emitter import aws_client

OUTPUTS_KEY_SUFFIX = "logs/outputs.json"


def outputs_uri(run_output_uri: str) -> str:
    return f"{run_output_uri.rstrip('/')}/{OUTPUTS_KEY_SUFFIX}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def build_outputs(
    rng: random.Random, run_output_uri: str, sample: str, workflow_name: str
) -> dict[str, Any]:
    """A CWL-style outputs mapping: single files, an array of files, and plain values."""
    base = f"{run_output_uri.rstrip('/')}/out"

    def file(name: str, basename: str, low: int, high: int) -> dict[str, Any]:
        return {
            "location": f"{base}/{name}/{basename}",
            "basename": basename,
            "class": "File",
            "size": rng.randint(low, high),
        }

    shards = rng.randint(2, 4)
    return {
        "aligned_bam": file("aligned_bam", f"{sample}.bam", 2_000_000_000, 60_000_000_000),
        "aligned_bai": file("aligned_bai", f"{sample}.bam.bai", 1_000_000, 9_000_000),
        "vcf": file("vcf", f"{sample}.g.vcf.gz", 50_000_000, 900_000_000),
        "qc_reports": [
            file("qc_reports", f"{sample}.chr{n}.metrics.txt", 1_000, 90_000)
            for n in range(1, shards + 1)
        ],
        "mean_coverage": round(rng.uniform(25.0, 45.0), 2),
        "sample_name": sample,
        "workflow": workflow_name,
    }


def output_locations(mapping: dict[str, Any]) -> dict[str, Any]:
    """``{name: location}`` for File outputs, lists of locations for arrays, scalars as is."""

    def reduce(value: Any) -> Any:
        if isinstance(value, dict) and value.get("class") == "File":
            return value.get("location")
        if isinstance(value, list):
            return [reduce(item) for item in value]
        return value

    return {name: reduce(value) for name, value in mapping.items()}


class OutputStore(Protocol):
    """Where ``outputs.json`` goes."""

    def put(self, uri: str, mapping: dict[str, Any]) -> None: ...


class MemoryOutputStore:
    """Remembers mappings without writing anywhere."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def put(self, uri: str, mapping: dict[str, Any]) -> None:
        self.objects[uri] = mapping


class S3OutputStore:
    """Writes ``outputs.json`` to S3 (moto in tests), creating missing buckets once."""

    def __init__(
        self, *, endpoint_url: str | None = None, region: str = "us-east-1", client: Any = None
    ) -> None:
        self._client = client or aws_client("s3", endpoint_url=endpoint_url, region=region)
        self._region = region
        self._buckets: set[str] = set()
        self._lock = threading.Lock()

    def put(self, uri: str, mapping: dict[str, Any]) -> None:
        bucket, key = split_s3_uri(uri)
        self._ensure_bucket(bucket)
        self._client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(mapping, indent=2).encode(),
            ContentType="application/json",
        )

    def put_bytes(self, uri: str, body: bytes) -> str:
        """Put any object (a dropped read file); returns its ETag without quotes."""
        bucket, key = split_s3_uri(uri)
        self._ensure_bucket(bucket)
        response = self._client.put_object(Bucket=bucket, Key=key, Body=body)
        return str(response.get("ETag", "")).strip('"')

    def _ensure_bucket(self, bucket: str) -> None:
        with self._lock:
            if bucket in self._buckets:
                return
            try:
                self._client.head_bucket(Bucket=bucket)
            except Exception:
                kwargs: dict[str, Any] = {"Bucket": bucket}
                if self._region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
                try:
                    self._client.create_bucket(**kwargs)
                except Exception as exc:  # someone else created it meanwhile
                    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                    if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
            self._buckets.add(bucket)
