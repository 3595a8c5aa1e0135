"""Publishing owed work to Celery, after commit, and sweeping up what was lost.

The outbox makes the broker disposable (DESIGN.md §3 step 3): an event and its work are
committed together; only then is a task published.  If the publish fails (broker down), or the
message is lost afterwards (Redis restarted empty, a worker killed before it acknowledged), the
work is still in the outbox, and :func:`sweep` publishes it again once it is overdue.  Tasks are
idempotent, so an unnecessary re-publish costs one no-op task, never a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery

from celeryconfig import task_name
from eventlog import store
from eventlog.store import OutboxItem
from workers.runtime import runtime_of

log = logging.getLogger(__name__)


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


def sweep(app: Celery, *, redeliver_after: float | None = None, limit: int = 500) -> int:
    """Re-publish overdue work; returns how many tasks were published."""
    runtime = runtime_of(app)
    after = timedelta(
        seconds=runtime.settings.outbox_redeliver_after
        if redeliver_after is None
        else redeliver_after
    )
    total = 0
    while True:
        with runtime.engine.begin() as connection:
            items = store.claim_due(connection, redeliver_after=after, limit=limit)
            sent = publish(app, items)
            store.mark_published(connection, sent)
        total += len(sent)
        if len(items) < limit or len(sent) < len(items):
            break
    if total:
        log.info("sweeper re-published %d overdue tasks", total)
    return total
