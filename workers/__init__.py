"""The Celery workers: one pool per queue, each a stage of the pipeline.

* :func:`create_app` — the Celery app for given settings (``workers.celery.app`` is the one
  ``celery -A workers`` uses);
* :mod:`workers.archive` — follow the log into batched archive objects (queue ``archive``);
* :mod:`workers.enrich` — GetRun, task log links, outputs (queue ``enrich``);
* :mod:`workers.callback` — the NGS360 callback, in order, once (queue ``callback``);
* :mod:`workers.reconciler` — GetRun for runs whose events stopped coming;
* :mod:`workers.outbox` — publish owed work after commit, sweep up lost work;
* :mod:`workers.embedded` — workers inside the process (embedded default, demo, tests);
* :mod:`workers.aws` — the one factory of AWS clients;
* :mod:`workers.storage` — the S3 or folder archive.

Workers never import :mod:`producers`.
"""

from workers.app import STAGES, create_app
from workers.embedded import embedded_worker
from workers.outbox import publish_owed, sweep

__all__ = ["STAGES", "create_app", "embedded_worker", "publish_owed", "sweep"]
