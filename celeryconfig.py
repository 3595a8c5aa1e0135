"""Celery settings, and only Celery settings, derived from :class:`schemas.settings.Settings`.

Every pool shares these defaults (docs/design.md §4):

* JSON only, results ignored — the log is where outcomes live, not a result backend;
* late acknowledgement *and* ``task_reject_on_worker_lost``: a task whose worker process dies is
  requeued instead of being acked with the corpse (Celery's default loses it);
* prefetch 1: a slow pool never hoards messages a sibling could run;
* a broker visibility timeout longer than any task and any retry delay, or Redis redelivers
  work that is merely waiting and it runs twice;
* one queue per pool, routed by task name, so ``celery worker -Q archive`` is the archive pool;
* no task events unless ``CELERY_TASK_EVENTS=1``: sending one per task state costs the workers
  ≈ 6-8 ms of CPU per pipeline event (docs/benchmarks.md) for a monitor that is usually not
  there.  Flower needs none of this setting: while it runs (``omics-events flower``) it
  broadcasts ``enable_events`` to every worker every 5 s (its ``--enable_events`` option,
  default on), so the workers it watches send events, including workers started after it.
  They keep sending after Flower stops, until ``celery control disable_events`` or a restart.
  Its worker list and queue lengths (``/api/workers``, ``/api/queues/length``) need no events
  at all: they come from remote control (``inspect``) and the broker.

With no ``REDIS_URL`` the broker is Celery's in-memory transport and workers run inside the
process (the embedded default).  With one, ``redis://`` means kombu's Redis transport as patched
in :mod:`workers.broker` (a dropped connection made workers exit), which
:func:`workers.app.create_app` installs.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from schemas.settings import Settings
from schemas.vocabulary import QUEUES

#: Prefix of every task name; the suffix is the queue it runs on.
TASK_PREFIX = "omics_events."


def task_name(stage: str) -> str:
    return f"{TASK_PREFIX}{stage}"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The ``app.conf`` of every process, as a plain mapping."""
    exchange = Exchange("omics-events", type="direct")
    visibility = settings.broker_visibility_timeout
    transport_options: dict[str, Any] = {
        "visibility_timeout": visibility,
        # scan for abandoned (unacked) messages often enough to matter for short timeouts
        "unacked_restore_interval": max(1, min(60, visibility // 10)),
        "unacked_restore_throttle": 1,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "health_check_interval": 25,
    }
    if settings.redis_url:
        transport_options["global_keyprefix"] = settings.redis_key_prefix
    return {
        "broker_url": settings.redis_url or "memory://",
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # task events: off unless asked for (``CELERY_TASK_EVENTS``); Flower enables them
        # on the workers it watches (module docstring)
        "worker_send_task_events": settings.celery_task_events,
        "task_send_sent_event": settings.celery_task_events,
        "worker_hijack_root_logger": False,
        "task_queues": [Queue(name, exchange, routing_key=name) for name in QUEUES],
        "task_default_queue": QUEUES[0],
        "task_default_exchange": exchange.name,
        "task_default_routing_key": QUEUES[0],
        "task_create_missing_queues": False,
        "task_routes": {task_name(name): {"queue": name, "routing_key": name} for name in QUEUES},
        "task_time_limit": max(60, visibility // 2),
        "task_soft_time_limit": max(30, visibility // 3),
        "timezone": "UTC",
        "enable_utc": True,
    }
