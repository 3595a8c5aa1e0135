"""A dropped Redis connection must not make a worker exit, nor lose what the
worker holds.

What Celery's consumer does when its broker connection breaks
(``Consumer.on_connection_error_after_connected``) is ``collect()`` the connection, then
``close()`` it.  With kombu's own Redis transport, a channel with a BRPOP in flight and an
unacknowledged message crashed the second step with ``AttributeError`` (not a connection error:
Celery's "Unrecoverable error", the worker exits).  workers/broker.py explains why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from celery.utils.threads import bound_open_broker_sockets
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT
from kombu import Consumer, Exchange, Queue
from kombu.common import ignore_errors

from schemas.settings import Settings
from tests.helpers.factories import run_event
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.queues import messages_per_work
from workers import create_app
from workers.outbox import task_name


@pytest.fixture
def proxied_redis(redis_url: str) -> Iterator[FaultProxy]:
    """The shared Redis behind a proxy this test can cut (the server itself is never touched)."""
    client = redis_lib.Redis.from_url(redis_url)
    port = client.connection_pool.connection_kwargs.get("port", 6379)
    client.close()
    proxy = FaultProxy(f"tcp://127.0.0.1:{port}").start()
    yield proxy
    proxy.stop()


def test_connection_dropped_with_brpop_in_flight_closes_cleanly_and_keeps_the_message(
    make_settings: Callable[..., Settings],
    proxied_redis: FaultProxy,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{proxied_redis.port}/0",
        redis_key_prefix=redis_prefix,
        database_url=f"sqlite:///{tmp_path / 'log.db'}",
    )
    app = create_app(settings)
    event_id = run_event()["id"]
    app.send_task(task_name("archive"), args=[event_id], queue="archive", routing_key="archive")

    received: list[Any] = []
    connection = app.connection_for_read()
    consumer = Consumer(
        connection.default_channel,
        queues=[Queue("archive", routing_key="archive")],
        callbacks=[lambda body, message: received.append(message)],
        accept=["json"],
    )
    consumer.consume()
    # like Celery's remote-control mailbox: an auto-delete fanout queue on a channel of its own
    mailbox = Queue(
        f"{redis_prefix}pidbox", Exchange(f"{redis_prefix}pidbox", "fanout"), auto_delete=True
    )
    Consumer(connection.channel(), queues=[mailbox], accept=["json"]).consume()
    for _ in range(20):  # a worker takes the message, and does not acknowledge it yet
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.5)
        if received:
            break
    assert len(received) == 1
    for _ in range(20):  # and waits for the next one: a BRPOP in flight
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            if connection.default_channel._in_poll:
                break
    assert connection.default_channel._in_poll
    assert len(received) == 1

    proxied_redis.cut()  # the network drops every connection, and Redis is unreachable
    # what Celery's consumer does then (Consumer.on_connection_error_after_connected)
    bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT)
    with contextlib.suppress(Exception):
        connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
    # ignore_errors: connection errors only; this raised AttributeError, and the worker exited
    ignore_errors(connection, connection.close)
    with pytest.raises(connection.connection_errors):
        received[0].ack()  # a task finishing after the drop: an error Celery logs, no crash
    proxied_redis.restore()

    # the unacknowledged message is still in Redis, to be given back (visibility timeout) or
    # re-published by the sweeper; nothing was lost
    client = redis_lib.Redis.from_url(redis_url)
    assert messages_per_work(client, redis_prefix) == {(task_name("archive"), event_id): 1}
