"""kombu's Redis transport, made to survive a dropped connection.

:func:`install` (called by :func:`workers.app.create_app`) makes ``redis://`` and ``rediss://``
mean :class:`Transport` in the process, so every Celery process (the pools, the poller's
publisher, Flower) uses it; the URLs stay ``redis://`` (Flower reads the scheme to find the
queue lengths, which ``broker_transport = "module:Class"`` would break).  It is kombu's own
transport with two changes to how a channel closes; everything else is kombu 5.7's.

Why a worker exited when its Redis connection dropped (seen in the ``redis-lost`` drill and
reproduced by ``redis-connections-dropped``, tests/faults/): Celery reacts to the connection
error by ``collect()``-ing the broken connection, then ``close()``-ing it.

1. ``collect()`` closes the channel.  kombu's ``Channel.close()`` first reads the reply of the
   BRPOP it has in flight, if any (kombu #1733: a message Redis popped for it would otherwise
   be lost).  With the connection gone that read raises; ``close()`` stops half way — the
   channel not marked closed, its unacknowledged messages not given back — and the error is
   ignored.  ``collect()`` then closes the transport's other channels; the remote-control
   mailbox's raises too (deleting its auto-delete queue needs Redis), which ends the loop before
   it reaches this channel again, and ``collect()`` drops the transport's ``client`` (the
   connection's settings).
2. ``close()`` closes the same channel again.  Giving back the unacknowledged messages needs a
   new connection pool, whose parameters kombu reads from that ``client``: ``None`` by now, so
   ``AttributeError: 'NoneType' object has no attribute 'hostname'``.  That is no connection
   error, Celery does not recover from it: "Unrecoverable error", the worker exits.  (A task
   finishing after the drop acknowledges through the same path, with the same error.)

The fix: a BRPOP reply that cannot be read while closing is given up (its connection is gone;
if Redis had popped a message for it, that message is lost with it, and the outbox's sweeper
re-publishes it: workers/outbox.py) and the close goes on, so the channel closes once and for
all; and a channel whose connection settings are gone raises a *connection* error, which Celery
and kombu handle (retry the connection, log a failed acknowledgement) instead of dying.
"""

from __future__ import annotations

import logging
from queue import Empty
from typing import Any

import kombu.transport
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def close(self) -> None:
        if self._in_poll and not self.closed:
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors as error:
                log.warning(
                    "broker connection lost with a BRPOP in flight (%r); closing the channel "
                    "anyway (a message popped for it is re-published by the outbox sweeper)",
                    error,
                )
            finally:
                self._in_poll = None
        super().close()

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        connection = self.connection
        if connection is None or connection.client is None:
            raise kombu_redis.get_redis_ConnectionError()(
                "the broker connection of this channel was closed"
            )
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


#: This module's transport, as kombu names transports.
TRANSPORT = f"{__name__}:Transport"


def install() -> None:
    """Make ``redis://`` and ``rediss://`` use :class:`Transport` in this process.

    kombu's alias table is its registry of transports by URL scheme; its cache of resolved
    names is cleared for them, in case a connection was made before (tests, one-off tools).
    """
    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = TRANSPORT
        kombu.transport._transport_cache.pop(scheme, None)
