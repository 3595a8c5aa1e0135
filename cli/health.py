"""``omics-events health``: liveness as *progress*, for container health checks.

A Celery worker can stay up yet stop consuming after a broker reconnect (Celery issues #8030,
#10205), so "the process exists" proves nothing.  Each long-running process touches
``HEALTH_FILE`` when it makes progress, and this check reads it:

* ``poller`` / ``sweeper`` — healthy while the file is younger than ``HEALTH_MAX_AGE``
  (the poller touches it after every receive cycle, even an empty one);
* ``worker:<pool>`` — healthy while its queue is empty (idle is fine) or while the file is
  younger than ``HEALTH_MAX_AGE`` (it finished a task recently);
* ``flower`` — its ``/healthcheck`` answers.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import redis

from schemas.settings import Settings


def file_age(path: str | None) -> float | None:
    if not path:
        return None
    try:
        return time.time() - Path(path).stat().st_mtime
    except OSError:
        return None


def queue_length(settings: Settings, queue: str) -> int:
    if settings.redis_url is None:
        return 0
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    return int(client.llen(f"{settings.redis_key_prefix}{queue}"))


def check_health(settings: Settings, kind: str) -> tuple[bool, str]:
    """(healthy, one-line reason) for the process ``kind``."""
    if kind == "flower":
        url = f"http://127.0.0.1:{settings.flower_port}/healthcheck"
        try:
            answer = httpx.get(url, timeout=5)
        except httpx.HTTPError as error:
            return False, f"flower does not answer at {url}: {error}"
        return answer.status_code == 200, f"flower answered HTTP {answer.status_code}"
    age = file_age(settings.health_file)
    fresh = age is not None and age <= settings.health_max_age
    described = "no progress recorded" if age is None else f"last progress {age:.0f} s ago"
    if kind in {"poller", "sweeper"}:
        return fresh, described
    if kind.startswith("worker:"):
        queue = kind.split(":", 1)[1]
        waiting = queue_length(settings, queue)
        if waiting == 0:
            return True, f"queue {queue} is empty"
        return fresh, f"{waiting} waiting in {queue}; {described}"
    return False, f"unknown process kind {kind!r}: use poller, sweeper, flower or worker:<pool>"
