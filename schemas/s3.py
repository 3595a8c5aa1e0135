"""The S3 ``Object Created`` EventBridge event (``source: aws.s3``).

Read files landing in a bucket start read set imports, so the workers consume S3's
EventBridge notifications next to HealthOmics events.  These are *EventBridge* S3 events (the
bucket has "Send notifications to Amazon EventBridge" on), not the older S3 event
notifications with a ``Records`` list.  Their detail looks like this (AWS S3 user guide,
"EventBridge event message structure")::

    {"version": "0",
     "bucket": {"name": "amzn-s3-demo-bucket1"},
     "object": {"key": "example-key", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
     "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
     "source-ip-address": "1.2.3.4", "reason": "PutObject"}

``reason`` is ``PutObject``, ``POST Object``, ``CopyObject`` or ``CompleteMultipartUpload``.
``version-id`` is present only on versioned buckets; ``etag`` of a multipart upload ends in
``-<parts>`` and is not an MD5.  Whether ``object.key`` is URL-encoded in EventBridge events
(as it is, ``+`` for space, in the older notifications) is UNVERIFIED: the key is kept exactly
as delivered.

Registration is source-aware: the detail-type ``Object Created`` means this model only when
``source`` is ``aws.s3`` (:data:`S3_DETAIL_MODELS` is looked up by :mod:`schemas.parsing` for
that source only).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["S3_DETAIL_MODELS", "S3_SOURCE", "S3Bucket", "S3Object", "S3ObjectCreated"]

#: The EventBridge ``source`` of S3 events.
S3_SOURCE = "aws.s3"


class S3Bucket(BaseModel):
    """``detail.bucket``."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)


class S3Object(BaseModel):
    """``detail.object``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    key: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class S3ObjectCreated(BaseModel):
    """Detail of ``detail-type: Object Created`` from ``aws.s3``.  Key: ``bucket/key``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str | None = None
    bucket: S3Bucket
    object: S3Object
    request_id: str | None = Field(default=None, alias="request-id")
    requester: str | None = None
    source_ip_address: str | None = Field(default=None, alias="source-ip-address")
    reason: str | None = None

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket.name}/{self.object.key}"

    def resource_key(self) -> str:
        """``bucket/key``: the natural key of the object."""
        return f"{self.bucket.name}/{self.object.key}"


#: Exact ``detail-type`` (source ``aws.s3``) -> its detail model.
S3_DETAIL_MODELS: dict[str, type[BaseModel]] = {"Object Created": S3ObjectCreated}
