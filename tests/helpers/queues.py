"""What the queues hold: Redis lists of the Celery broker, and SQS attribute counts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import redis as redis_lib

from workers.outbox import (
    _queue_keys,
    _work_of,
)


def messages_per_work(client: redis_lib.Redis, prefix: str) -> Counter[tuple[str, str]]:
    """How many messages Redis holds for each (task, event id): queued or unacknowledged."""
    held: Counter[tuple[str, str]] = Counter()
    for key in _queue_keys(prefix):
        for raw in client.lrange(key, 0, -1):
            work = _work_of(raw)
            assert work is not None, raw
            held[work] += 1
    for value in client.hvals(f"{prefix}unacked"):
        work = _work_of(json.loads(value)[0])
        assert work is not None
        held[work] += 1
    return held


def queue_depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )
