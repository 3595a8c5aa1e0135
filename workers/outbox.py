"""Publishing owed work to Celery, after commit, and sweeping up what the broker lost.

The outbox makes the broker disposable (docs/design.md §3 step 3): an event and its work are
committed together; only then is a task published.  If the publish fails (broker down), or the
message is lost afterwards (Redis restarted empty, a worker killed before it acknowledged), the
work is still in the outbox, and :func:`sweep` publishes it again.

What the sweeper publishes (docs/reliability.md, "The sweeper's rule"):

* work never published (its producer died between commit and publish, or the broker was down)
  once the producer's grace period is over, and deferred work once it is due;
* work published longer ago than ``OUTBOX_REDELIVER_AFTER`` only if the broker really lost it.
  Being old is not enough: a long backlog waits in its queue for longer than that, and
  re-publishing it would give every waiting task a second copy.  So the sweeper takes one
  snapshot of the broker per sweep (:func:`take_census`: every queue list and kombu's
  ``unacked`` hash, in one ``MULTI``) and re-publishes an overdue item only when no message for
  it is waiting in a queue, nor held by a worker (delivered, not yet acknowledged) since less
  than ``OUTBOX_REDELIVER_AFTER``.  A message held longer than that is taken for one whose
  worker died (Redis itself would give it back only after ``BROKER_VISIBILITY_TIMEOUT``).

The snapshot is taken *before* the outbox is read: work that finished in between is done in the
database and not claimed; a message moving from a queue to a worker, or back, is in the snapshot
on one side or the other.  What remains is a message in the hands of a worker between its
``BRPOP`` and kombu's write to ``unacked`` (microseconds): re-published then, it costs one no-op
task, because every stage is idempotent.

Why each re-publish happened is logged and counted (:class:`SweepReport`): the broker lost its
data (a sentinel key the sweeper keeps in Redis is gone: restarted without persistence, or
flushed), a message is missing (lost on its own: see docs/reliability.md), a worker held it too
long.  With the in-memory transport (the embedded default) the broker lives and dies with this
process: work published before this process started is lost, anything later is not.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis as redis_lib
from celery import Celery
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel

from celeryconfig import QUEUES, task_name
from eventlog import store
from eventlog.store import OutboxItem
from workers.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)

#: When this process started: the in-memory broker holds nothing published before.
PROCESS_STARTED = datetime.now(UTC)
#: The key (under ``REDIS_KEY_PREFIX``) whose disappearance means Redis lost its data.
SENTINEL_KEY = "omics-events:broker-sentinel"

#: Why the sweeper published something, as counted in :class:`SweepReport`.
OWED = "owed"  # never published, or deferred and due again: not a re-publish
BROKER_LOST_DATA = "broker lost its data (restarted or flushed)"
MESSAGE_MISSING = "message missing from the broker"
HELD_TOO_LONG = "held by a worker longer than OUTBOX_REDELIVER_AFTER (worker lost?)"
EARLIER_PROCESS = "published to the in-memory broker of an earlier process"

WorkKey = tuple[str, str]  # (task name, event id)
#: How many re-published items a sweep's log line names.
EXAMPLES = 5


def publish(app: Celery, items: Sequence[OutboxItem]) -> list[int]:
    """Send one task per item; returns the outbox ids that reached the broker."""
    sent: list[int] = []
    if not items:
        return sent
    try:
        with app.producer_or_acquire() as producer:
            for item in items:
                app.send_task(
                    task_name(item.stage),
                    args=[item.event_id],
                    queue=item.stage,
                    routing_key=item.stage,
                    producer=producer,
                )
                sent.append(item.id)
    except Exception as error:  # broker down: the sweeper will publish it later
        log.warning(
            "could not publish %d of %d tasks (%s); the outbox keeps them for the sweeper",
            len(items) - len(sent),
            len(items),
            error,
        )
    return sent


def publish_owed(app: Celery, event_ids: Sequence[str]) -> int:
    """Publish the due work of events a producer has just committed."""
    engine = runtime_of(app).engine
    with engine.connect() as connection:
        items = store.pending_for(connection, event_ids)
    sent = publish(app, items)
    if sent:
        with engine.begin() as connection:
            store.mark_published(connection, sent)
    return len(sent)


def publish_unpublished(app: Celery, event_ids: Sequence[str]) -> int:
    """Publish the due work of the given events that was never published.

    What a stage calls after committing work it owes (the next stage of the same event, a
    derived event's first stage): work already in flight is left alone, so a running task is
    not sent twice; anything this misses the sweeper publishes later.
    """
    engine = runtime_of(app).engine
    with engine.connect() as connection:
        items = store.pending_for(connection, event_ids, unpublished_only=True)
    sent = publish(app, items)
    if sent:
        with engine.begin() as connection:
            store.mark_published(connection, sent)
    return len(sent)


# --- what the broker holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerCensus:
    """One consistent snapshot of the work the Redis broker holds."""

    #: work with a message waiting in a queue
    waiting: frozenset[WorkKey]
    #: work with a message delivered to a worker and not acknowledged: when it was delivered
    held_since: dict[WorkKey, float]
    #: since when the broker holds its current data (the sentinel's creation), epoch seconds
    data_since: float


def _work_of(raw: Any) -> WorkKey | None:
    """(task name, event id) of a kombu message as Redis stores it; None if it is not ours."""
    try:
        message = json.loads(raw) if isinstance(raw, str | bytes) else raw
        name = message["headers"]["task"]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]  # Celery's message protocol 2: [args, kwargs, embed]
        return str(name), str(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _queue_keys(prefix: str) -> list[str]:
    """Every Redis list kombu keeps a queue in (one per priority step)."""
    return [
        f"{prefix}{queue}{RedisChannel.sep}{step}" if step else f"{prefix}{queue}"
        for queue in QUEUES
        for step in PRIORITY_STEPS
    ]


def take_census(client: redis_lib.Redis, prefix: str) -> BrokerCensus:
    """Read every queue and kombu's ``unacked`` hash in one ``MULTI`` (so a message moving
    between them is seen once), and keep the sentinel that dates the broker's data."""
    sentinel = prefix + SENTINEL_KEY
    now = time.time()
    client.set(sentinel, _sentinel_value(), nx=True)
    keys = _queue_keys(prefix)
    with client.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.lrange(key, 0, -1)
        pipe.hgetall(f"{prefix}{RedisChannel.unacked_key}")
        pipe.zrange(f"{prefix}{RedisChannel.unacked_index_key}", 0, -1, withscores=True)
        pipe.get(sentinel)
        replies = pipe.execute()
    lists, unacked, index, stamp = replies[: len(keys)], replies[-3], replies[-2], replies[-1]
    waiting = {work for messages in lists for raw in messages if (work := _work_of(raw))}
    delivered = {tag: score for tag, score in index}
    held: dict[WorkKey, float] = {}
    for tag, value in unacked.items():
        try:
            work = _work_of(json.loads(value)[0])  # kombu stores [message, exchange, key]
        except (ValueError, IndexError, TypeError):
            work = None
        if work is not None:
            held[work] = max(held.get(work, 0.0), delivered.get(tag, now))
    try:
        since = float(json.loads(stamp)["since"]) if stamp else now
    except (ValueError, KeyError, TypeError):
        since = now
    return BrokerCensus(frozenset(waiting), held, since)


def _broker_client(runtime: Runtime) -> redis_lib.Redis:
    def connect(runtime: Runtime) -> redis_lib.Redis:
        assert runtime.settings.redis_url
        return redis_lib.Redis.from_url(
            runtime.settings.redis_url, socket_timeout=30, socket_connect_timeout=10
        )

    return runtime.resource("outbox-broker-census", connect)


# --- the sweep -------------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What one sweep published, and why."""

    #: tasks published, by reason (:data:`OWED` is first publication, the rest re-publishes)
    published: Counter[str] = field(default_factory=Counter)
    #: overdue work left alone because the broker still holds its message
    still_in_broker: int = 0
    #: the first few re-published: "stage event-id", for the log line
    examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.published.values())

    @property
    def republished(self) -> int:
        """Tasks published again because the broker lost them."""
        return self.total - self.published[OWED]

    def summary(self) -> str:
        lost = ", ".join(
            f"{count} {why}" for why, count in self.published.most_common() if why != OWED
        )
        named = f" e.g. {', '.join(self.examples)}" if self.examples else ""
        return (
            f"published {self.published[OWED]} owed tasks; re-published {self.republished} "
            f"lost ones{f' ({lost})' if lost else ''}; {self.still_in_broker} overdue still "
            f"in the broker{named}"
        )


def sweep(app: Celery, *, redeliver_after: float | None = None, limit: int = 500) -> int:
    """Publish owed work and re-publish lost work; returns how many tasks were published."""
    return sweep_report(app, redeliver_after=redeliver_after, limit=limit).total


def sweep_report(
    app: Celery, *, redeliver_after: float | None = None, limit: int = 500
) -> SweepReport:
    """One sweep (module docstring), with what it published and why."""
    runtime = runtime_of(app)
    after = timedelta(
        seconds=runtime.settings.outbox_redeliver_after
        if redeliver_after is None
        else redeliver_after
    )
    report = SweepReport()
    in_memory = not runtime.settings.redis_url
    census = None if in_memory else _census_if_needed(runtime, after)
    last_id = 0
    while True:
        with runtime.engine.begin() as connection:
            items = store.claim_due(
                connection, redeliver_after=after, limit=limit, after_id=last_id
            )
            reasons = {item.id: _why(item, census, after, in_memory) for item in items}
            chosen = [item for item in items if reasons[item.id] is not None]
            sent = publish(app, chosen)
            store.mark_published(connection, sent)
        report.still_in_broker += len(items) - len(chosen)
        report.published.update(reasons[item_id] for item_id in sent)
        done = set(sent)
        report.examples.extend(
            f"{item.stage} {item.event_id}"
            for item in chosen
            if item.id in done and reasons[item.id] != OWED
        )
        del report.examples[EXAMPLES:]
        if len(items) < limit or len(sent) < len(chosen):
            break
        last_id = items[-1].id
    if report.republished:
        log.warning("sweeper: %s", report.summary())
    elif report.total:
        log.info("sweeper: %s", report.summary())
    return report


def _census_if_needed(runtime: Runtime, after: timedelta) -> BrokerCensus | None:
    """The Redis broker's snapshot when something is overdue; None when nothing is, or when
    Redis cannot be read (then overdue work waits for the next sweep: it cannot be told lost)."""
    with runtime.engine.connect() as connection:
        overdue = store.has_overdue(connection, redeliver_after=after)
    prefix = runtime.settings.redis_key_prefix
    try:
        client = _broker_client(runtime)
        if overdue:
            return take_census(client, prefix)
        # keep the sentinel anyway, so that it dates the broker's data when it is needed
        client.set(prefix + SENTINEL_KEY, _sentinel_value(), nx=True)
    except redis_lib.RedisError as error:
        log.warning("sweeper: cannot read the broker (%s); overdue work waits", error)
    return None


def _sentinel_value() -> str:
    return json.dumps({"since": time.time(), "token": uuid.uuid4().hex})


def _why(
    item: OutboxItem, census: BrokerCensus | None, after: timedelta, in_memory: bool
) -> str | None:
    """Why ``item`` must be published now, or None when the broker still holds it (or, without
    a snapshot of Redis, cannot be told to have lost it)."""
    if item.published_at is None:
        return OWED
    if in_memory:  # the in-memory broker dies with its process, and only then loses work
        return EARLIER_PROCESS if item.published_at < PROCESS_STARTED else None
    if census is None:
        return None
    work = (task_name(item.stage), item.event_id)
    if work in census.waiting:
        return None
    delivered = census.held_since.get(work)
    if delivered is not None:
        return HELD_TOO_LONG if time.time() - delivered >= after.total_seconds() else None
    if item.published_at.timestamp() < census.data_since:
        return BROKER_LOST_DATA
    return MESSAGE_MISSING
