"""The Celery application: configured from ``celeryconfig`` and settings, nothing else.

:func:`create_app` builds a fresh app for given settings — tests build one per test, pointed at
their own database and broker prefix — and registers every stage on it.  The app carries a
:class:`~workers.runtime.Runtime` (``app.runtime``) from which tasks get the engine, the AWS
clients and the archive; nothing connects until a task needs it.
"""

from __future__ import annotations

from celery import Celery

import celeryconfig
from schemas.settings import Settings, load_settings
from workers import archive, broker, callback, enrich, imports, metrics_pool
from workers.outbox import publish_unpublished
from workers.runtime import Runtime
from workers.tasks import StageFunction, register_stage

#: stage -> the function that does its work.
STAGES: dict[str, StageFunction] = {
    archive.STAGE: archive.archive_event,
    enrich.STAGE: enrich.enrich_run,
    callback.STAGE: callback.deliver_callback,
    imports.STAGE: imports.import_stage,
}


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    if settings.redis_url:
        broker.install()  # kombu's Redis transport, made to survive a dropped connection
    app = Celery("omics_events", set_as_current=False)
    app.conf.update(celeryconfig.celery_config(settings))
    app.runtime = Runtime(settings)  # type: ignore[attr-defined]
    # stages publish the work they owe next (enrich -> callback) right after their commit
    app.runtime.publisher = lambda event_ids: publish_unpublished(app, event_ids)  # type: ignore[attr-defined]
    for stage, handler in STAGES.items():
        register_stage(app, stage, handler, celeryconfig.task_name(stage))
    archive.install(app)  # the archive pool: a log follower inside workers of queue `archive`
    metrics_pool.install(app)  # the metrics pool: a log follower inside workers of queue `metrics`
    return app
