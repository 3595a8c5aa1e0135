"""Deliver simulated events to SQS the way an EventBridge rule with an SQS target does.

Why a pipeline between the model and the queue: EventBridge → SQS is at-least-once, unordered and
best effort, and our workers are built for exactly that.  So between "HealthOmics decided a
transition happened" and "a message is in the queue" sit the delivery faults:

* **drop**: the event never arrives (recorded, so a test knows which run the poller must rescue);
* **duplicate**: the same event (same ``id``) arrives twice, the copy a few messages later;
* **reorder**: the event is held back until a newer event *for the same resource* has been sent
  (so ``RUNNING`` really arrives after ``STOPPING``), or, for a resource's last event, until a few
  other events have gone by.  :meth:`EventPipeline.release_held` lets everything out (end of a
  simulation), so reordering never turns into a silent drop.

The SQS body is the event JSON exactly (a target with no input transformer, reference §5), sent
with ``send_message_batch`` in batches of ten.  Decisions come from a seeded ``random.Random``, so
a seed reproduces the same faults on the same event stream.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from simulator.faults import FaultSettings

#: Statuses after which a resource sends no further event (in this simulator).
FINAL_STATUSES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "DELETED",
        "COMPLETED_WITH_FAILURES",
        "ACTIVE",
        "UPLOAD_FAILED",
    }
)

#: SQS ``send_message_batch`` takes at most ten entries.
SQS_BATCH = 10


class SinkError(Exception):
    """Some events could not be delivered; ``unsent`` are they, in order."""

    def __init__(self, message: str, unsent: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.unsent = unsent


class EventSink(Protocol):
    """Where delivered events go.  ``send`` raises :class:`SinkError` for what it could not send."""

    def send(self, events: Sequence[dict[str, Any]]) -> None: ...


class MemorySink:
    """Keeps delivered events in a list (for tests that need no queue)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            self.events.extend(events)


def aws_client(
    service: str, *, endpoint_url: str | None, region: str, client_config: Any = None
) -> Any:
    """A boto3 client for ``service``; fake credentials only when pointed at a local endpoint
    and the environment has none (moto accepts anything, real AWS never sees them)."""
    import boto3  # imported here: no AWS machinery at import time

    session = boto3.session.Session(region_name=region)
    kwargs: dict[str, Any] = {"endpoint_url": endpoint_url, "config": client_config}
    if session.get_credentials() is None and endpoint_url and _is_local(endpoint_url):
        kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client(service, **kwargs)


def _is_local(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in {"localhost", "127.0.0.1", "::1"} or not host.count(".")


class SqsSink:
    """Sends events to one SQS queue, ten per ``send_message_batch``, body = the event JSON."""

    def __init__(
        self,
        queue_url: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        client: Any = None,
        max_attempts: int = 3,
    ) -> None:
        self.queue_url = queue_url
        self._client = client or aws_client("sqs", endpoint_url=endpoint_url, region=region)
        self._max_attempts = max_attempts
        self.batches_sent = 0
        self.messages_sent = 0

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        items = list(events)
        for start in range(0, len(items), SQS_BATCH):
            batch = items[start : start + SQS_BATCH]
            try:
                self._send_batch(batch)
            except SinkError as exc:
                raise SinkError(str(exc), exc.unsent + items[start + SQS_BATCH :]) from exc
            except Exception as exc:
                raise SinkError(f"SQS send failed: {exc}", items[start:]) from exc

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        pending = dict(enumerate(batch))
        for _attempt in range(self._max_attempts):
            entries = [
                {"Id": str(index), "MessageBody": json.dumps(event, separators=(",", ":"))}
                for index, event in pending.items()
            ]
            response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            self.batches_sent += 1
            for ok in response.get("Successful", []):
                pending.pop(int(ok["Id"]), None)
                self.messages_sent += 1
            if not pending:
                return
        failed = [pending[i] for i in sorted(pending)]
        raise SinkError(f"{len(failed)} SQS entries failed after retries", failed)


@dataclass
class _Held:
    event: dict[str, Any]
    resource: str
    wait_for_resource: bool
    budget: int
    is_copy: bool


@dataclass
class DeliveryStats:
    """Counters per ``detail-type``."""

    emitted: Counter[str]
    delivered: Counter[str]
    duplicated: Counter[str]
    dropped: Counter[str]
    reordered: Counter[str]

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            "emitted": dict(self.emitted),
            "delivered": dict(self.delivered),
            "duplicated": dict(self.duplicated),
            "dropped": dict(self.dropped),
            "reordered": dict(self.reordered),
        }


class EventPipeline:
    """Applies the delivery faults and hands events to a sink, keeping score."""

    #: A held non-final event waits for its resource's next event at most this many messages.
    MAX_HOLD = 50

    def __init__(self, sink: EventSink | None, faults: FaultSettings, rng: random.Random) -> None:
        self.sink = sink
        self._faults = faults
        self._rng = rng
        self._held: list[_Held] = []
        self._unsent: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self.stats = DeliveryStats(Counter(), Counter(), Counter(), Counter(), Counter())
        #: Every message handed to the sink, in order (copies included).
        self.delivered: list[dict[str, Any]] = []
        #: ``{id, detail-type, resource, status}`` of every dropped event.
        self.dropped: list[dict[str, Any]] = []
        self.send_errors = 0

    # -- public ---------------------------------------------------------------------------

    def deliver(self, events: Sequence[dict[str, Any]]) -> int:
        """Run ``events`` through the faults and send what comes out; returns messages sent.

        Raises nothing on a sink failure: the unsent messages are kept and sent first next time.
        """
        with self._lock:
            out: list[dict[str, Any]] = []
            for event in events:
                self._route(event, out)
            return self._send(out)

    def release_held(self) -> int:
        """Send every held (reordered or duplicate) event now, and retry unsent ones."""
        with self._lock:
            out = [h.event for h in self._held]
            self._held.clear()
            return self._send(out)

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], DeliveryStats]:
        """Copies of (delivered messages, dropped events, counters), taken under the lock."""
        with self._lock:
            stats = DeliveryStats(
                Counter(self.stats.emitted),
                Counter(self.stats.delivered),
                Counter(self.stats.duplicated),
                Counter(self.stats.dropped),
                Counter(self.stats.reordered),
            )
            return list(self.delivered), list(self.dropped), stats

    @property
    def held_count(self) -> int:
        with self._lock:
            return len(self._held)

    @property
    def backlog(self) -> int:
        """Messages held back or waiting for a retry."""
        with self._lock:
            return len(self._held) + len(self._unsent)

    # -- internals ------------------------------------------------------------------------

    def _route(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        faults = self._faults.get()
        kind = event["detail-type"]
        self.stats.emitted[kind] += 1
        # Always draw the same numbers, whatever the knobs, so decisions stay reproducible.
        drop, reorder, duplicate = self._rng.random(), self._rng.random(), self._rng.random()
        if drop < faults.drop_rate and (not faults.drop_types or kind in faults.drop_types):
            self.stats.dropped[kind] += 1
            self.dropped.append(
                {
                    "id": event["id"],
                    "detail-type": kind,
                    "resource": _resource(event),
                    "status": event.get("detail", {}).get("status"),
                }
            )
            return
        if reorder < faults.reorder_rate:
            self.stats.reordered[kind] += 1
            self._held.append(
                _Held(
                    event=event,
                    resource=_resource(event),
                    wait_for_resource=not _is_final(event),
                    budget=self.MAX_HOLD if not _is_final(event) else self._rng.randint(1, 5),
                    is_copy=False,
                )
            )
        else:
            self._emit(event, out)
        if duplicate < faults.duplicate_rate:
            self.stats.duplicated[kind] += 1
            copy = json.loads(json.dumps(event))
            budget = self._rng.randint(0, 3)
            if budget == 0:
                out.append(copy)
            else:
                self._held.append(
                    _Held(
                        copy, _resource(event), wait_for_resource=False, budget=budget, is_copy=True
                    )
                )

    def _emit(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        out.append(event)
        resource = _resource(event)
        keep: list[_Held] = []
        for held in self._held:
            if held.wait_for_resource and held.resource == resource:
                out.append(held.event)
                continue
            held.budget -= 1
            if held.budget <= 0:
                out.append(held.event)
            else:
                keep.append(held)
        self._held = keep

    def _send(self, out: list[dict[str, Any]]) -> int:
        batch = self._unsent + out
        self._unsent = []
        if not batch:
            return 0
        sent = batch
        if self.sink is not None:
            try:
                self.sink.send(batch)
            except SinkError as exc:
                self.send_errors += 1
                self._unsent = list(exc.unsent)
                unsent_ids = {id(e) for e in exc.unsent}
                sent = [e for e in batch if id(e) not in unsent_ids]
        for event in sent:
            self.stats.delivered[event["detail-type"]] += 1
        self.delivered.extend(sent)
        return len(sent)


def _resource(event: dict[str, Any]) -> str:
    resources = event.get("resources") or [""]
    return str(resources[0])


def _is_final(event: dict[str, Any]) -> bool:
    return str(event.get("detail", {}).get("status", "")).upper() in FINAL_STATUSES
