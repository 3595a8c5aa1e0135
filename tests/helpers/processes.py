"""Pipeline processes a test starts: the environment a worker subprocess gets, and the poller
run in a thread of the test's own process."""

from __future__ import annotations

import os
import threading

from producers.poller import Poller
from schemas.settings import Settings


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The test's environment (without Flower's own settings) pointed at ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "ARCHIVE_URI": settings.archive_uri,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class RunningPoller:
    """``with RunningPoller(poller) as p:`` runs the poller in a thread; stops and joins it."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.thread = threading.Thread(target=poller.run, daemon=True)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self.poller

    def __exit__(self, *exc: object) -> None:
        self.poller.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()
