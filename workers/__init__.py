"""The Celery workers: one pool per queue, each a stage of the pipeline.

* :func:`create_app` — the Celery app for given settings (``workers.celery.app`` is the one
  ``celery -A workers`` uses);
* :mod:`workers.app`, :mod:`workers.celery`, :mod:`workers.tasks`, :mod:`workers.runtime` — the
  app, its task wrappers (retry, defer, dead-letter) and the per-process resources;
* :mod:`workers.archive` — follow the log into batched archive objects (queue ``archive``),
  keyed by :mod:`workers.storage` (the S3 or folder archive);
* :mod:`workers.enrich` (+ :mod:`workers.enrich_outputs`) — GetRun, task log links, outputs
  (queue ``enrich``);
* :mod:`workers.callback` (a package: allow-list, key source, run locks, sequence, delivery,
  retries, gap fill, stage) — the NGS360 callback, in order, once (queue ``callback``), and
  :mod:`workers.redelivery` for sending dead callbacks again;
* :mod:`workers.imports` (a package: services, facts, files, planner, jobs, results,
  notifications, stage) — read-set imports from S3 drops (queue ``imports``);
* :mod:`workers.metrics_pool` — the metrics pool: :mod:`workers.metrics` (CloudWatch, rules in
  :mod:`workers.metrics_catalogue`) and :mod:`workers.alerts` (SNS), each a log follower
  (:mod:`workers.follower_loop`);
* :mod:`workers.limits` — the rate and concurrency limiters, memory and Redis backends
  (:mod:`workers.ratelimit` and :mod:`workers.concurrency` re-export them);
* :mod:`workers.reconciler` — GetRun for runs whose events stopped coming;
* :mod:`workers.outbox` — publish owed work after commit, sweep up lost work;
* :mod:`workers.embedded` — workers inside the process (embedded default, demo, tests);
* :mod:`workers.aws`, :mod:`workers.omics`, :mod:`workers.broker`, :mod:`workers.redis_clients`
  — the AWS client factory, the HealthOmics client, the Redis transport and clients;
* :mod:`workers.routing`, :mod:`workers.errors`, :mod:`workers.logs` — which stages an event
  owes, how errors are sorted, structured log lines.

Workers never import :mod:`producers`.
"""

from workers.app import STAGES, create_app
from workers.embedded import embedded_worker
from workers.outbox import publish_owed, sweep

__all__ = ["STAGES", "create_app", "embedded_worker", "publish_owed", "sweep"]
