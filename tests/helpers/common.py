"""What every kind of test needs: where the repo is, names no other test uses, and waiting.

``wait_for`` is a deadline on a condition, never a timed assertion: it returns as soon as the
condition holds and fails only when it did not hold within ``timeout`` (generous, so a loaded
machine slows a test down instead of failing it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
#: recorded and documented HealthOmics events, one per file
EVENTS = REPO / "tests" / "events"


def unique(prefix: str) -> str:
    """A name no other test (nor another run of this one) uses: databases, buckets, queues."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg.connect) takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def wait_for(
    condition: Callable[[], bool], timeout: float = 60.0, what: str = "", interval: float = 0.1
) -> None:
    """Poll ``condition`` every ``interval`` seconds until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or condition}")
        time.sleep(interval)
