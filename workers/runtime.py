"""What a task needs from the outside world, built lazily once per process.

A Celery app carries one :class:`Runtime` (``app.runtime``).  Nothing is connected when the app
is created: the engine and the AWS clients are built on first use *in the process that uses
them*, and rebuilt if the process was forked (prefork pool children must not share their
parent's database connections).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine

from eventlog.db import engine_for
from schemas.parsing import ParseLimits
from schemas.settings import Settings
from workers.aws import AwsClients
from workers.storage import Archive, open_archive

T = TypeVar("T")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = ParseLimits.from_settings(settings)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._engine: Engine | None = None
        self._aws: AwsClients | None = None
        self._archive: Archive | None = None
        self._resources: dict[str, Any] = {}
        self._resources_lock = threading.RLock()  # factories may use the other properties
        #: Publishes the owed, not yet published work of the given event ids after a stage's
        #: commit (set by :func:`workers.app.create_app`); without it the sweeper publishes it.
        self.publisher: Callable[[Sequence[str]], int] | None = None

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            with self._lock:
                if os.getpid() != self._pid:
                    if self._engine is not None:
                        self._engine.dispose(close=False)
                    self._engine = None
                    self._aws = None
                    self._archive = None
                    self._resources = {}
                    self._pid = os.getpid()

    @property
    def engine(self) -> Engine:
        self._check_fork()
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = engine_for(self.settings)
        return self._engine

    @property
    def aws(self) -> AwsClients:
        self._check_fork()
        if self._aws is None:
            with self._lock:
                if self._aws is None:
                    self._aws = AwsClients(self.settings)
        return self._aws

    @property
    def archive(self) -> Archive:
        self._check_fork()
        if self._archive is None:
            s3 = self.aws.s3 if self.settings.archive_uri.startswith("s3://") else None
            archive = open_archive(self.settings, s3)
            with self._lock:
                self._archive = archive
        return self._archive

    def resource(self, name: str, factory: Callable[[Runtime], T]) -> T:
        """A per-process object built once on first use (a rate-limited client, a key cache)."""
        self._check_fork()
        value = self._resources.get(name)
        if value is None:
            with self._resources_lock:
                value = self._resources.get(name)
                if value is None:
                    value = self._resources[name] = factory(self)
        return value  # type: ignore[no-any-return]

    def publish(self, event_ids: Sequence[str]) -> int:
        """Publish what the given events owe and nobody published yet; 0 without a publisher."""
        if not event_ids or self.publisher is None:
            return 0
        return self.publisher(event_ids)

    def use_engine(self, engine: Engine) -> None:
        """Share an engine built elsewhere (the embedded default and tests)."""
        self._engine = engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __repr__(self) -> str:  # never print settings: they may hold secrets
        return f"<Runtime pid={self._pid}>"


def runtime_of(app: Any) -> Runtime:
    runtime = getattr(app, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("this Celery app was not built by workers.create_app()")
    return runtime
