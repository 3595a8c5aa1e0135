"""The one place Redis clients for locks and limiters are built: with timeouts, always.

Under the ``threads`` pool a Redis command waiting on a dead peer (a failover, a dropped
connection the kernel has not noticed) holds its worker thread for as long as it waits, and
redis-py waits forever by default.  Every client the workers use for a lock, a rate limit or a
concurrency slot therefore comes from :func:`redis_client`, with ``REDIS_SOCKET_TIMEOUT`` on
every read and write and ``REDIS_CONNECT_TIMEOUT`` on every connection: a dead peer becomes a
:class:`redis.exceptions.TimeoutError`, which the task treats as transient (retried later).
The Celery broker has its own transport options (``celeryconfig.py``).
"""

from __future__ import annotations

import redis

from schemas.settings import Settings


def redis_client(settings: Settings) -> redis.Redis:
    """A client of ``REDIS_URL`` with the configured socket timeouts."""
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set: there is no Redis to connect to")
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_keepalive=True,
    )
