"""The imports pool: read files landing in S3 become read sets, and failed sources are retried.

What the AWS guidance does with a DynamoDB table, a stream, Step Functions and a custom metric
(the ingestion guide), done here event by event, each step a task on queue ``imports`` that
appends a fact to the log and folds it into ``import_sources``/``import_jobs``/``read_sets`` in
one transaction (:mod:`eventlog.import_projections`):

1. **S3 ``Object Created``** under an ``IMPORT_SOURCES`` prefix (:mod:`.files`): the name says
   what the object is (:func:`schemas.imports.classify_name`).  Junk is reported (*Import File
   Rejected* and a dead letter), never imported; index files and sidecars are ignored.  A read
   file gets its subject and sample ids from ``IMPORT_PATH_TEMPLATE`` or its JSON sidecar
   manifest, and is registered (*Import File Registered*).  A FASTQ mate waits for the other
   one — in the outbox (``not_before``), never as a Celery countdown — for ``IMPORT_MATE_WAIT``
   seconds; whichever mate lands second makes the pair one source and finishes the first one's
   wait.
2. **Batching** (:mod:`.planner`).  A complete source is *ready* and waits
   ``IMPORT_BATCH_WINDOW`` seconds for others; then one planner (a database lock) takes every
   ready source and plans jobs of at most ``IMPORT_MAX_SOURCES_PER_JOB`` (100, HealthOmics'
   limit) per store and role (*Import Job Planned*).  A source is planned once: the fold moves
   it past *ready* in the same transaction.
3. **Starting** a planned job (:mod:`.jobs`) takes one of ``IMPORT_MAX_CONCURRENT_JOBS``
   account-wide slots (:mod:`workers.concurrency`, in Redis) and a token of the ``IMPORT_TPS``
   budget shared by StartReadSetImportJob and GetReadSetImportJob
   (:class:`~workers.ratelimit.GlobalRateLimiter`, taken before every HTTP attempt, botocore's
   retries included).  The ``clientToken`` is the plan's id, so a task run twice never starts
   two jobs (botocore does not fill it in, reference §0.9).  No slot,
   ``ServiceQuotaExceededException`` (402, which no botocore retry mode retries) or throttling:
   the plan waits and tries again; it never fails.  A ``ValidationException`` splits the plan in
   halves until the one bad source is found.
4. **``Read Set Import Job Status Change``** to a terminal status (:mod:`.results`) gives the
   slot back and, for COMPLETED, COMPLETED_WITH_FAILURES and FAILED, reads GetReadSetImportJob
   (the event carries no per-source result) into *Import Job Checked*; a watchdog asks
   GetReadSetImportJob should that event be lost.  Each failed source is classified
   (:func:`schemas.imports.classify_failure`): transient ones are planned again — only they, same
   store, same role — after ``IMPORT_RETRY_DELAY`` doubling per attempt; permanent ones and those
   out of attempts become dead letters and one *Import Sources Failed* fact, whose task
   (:mod:`.notifications`) sends an SNS notification naming the files and the reason.  This
   works for jobs anyone started.

Every fact's id derives from what caused it (the S3 event, the source, the plan, the job), so a
retried or duplicated task appends nothing twice and cannot import a source twice.

Modules (each imports only those listed before it):

* :mod:`.services` — :class:`ImportConfig` (the settings, parsed once), :class:`ImportsApi`
  (StartReadSetImportJob and GetReadSetImportJob under the ``IMPORT_TPS`` budget, errors
  classified by :func:`workers.omics.call`), :class:`ImportServices` (both, and the job slots,
  once per process);
* :mod:`.facts` — :data:`STAGE`, appending and folding facts, finishing tasks, dead letters,
  the ids facts derive from (:func:`ready_id`);
* :mod:`.planner` — step 2, and :func:`~.planner.plan_entry` for every plan (retries, halves);
* :mod:`.files` — step 1: which objects are read files, their ids, pairing mates;
* :mod:`.results` — step 4: a job's end, the watchdog, per-source results, retries, giving up;
* :mod:`.jobs` — step 3: slots, StartReadSetImportJob, refusals split in halves;
* :mod:`.notifications` — the SNS notice of sources given up (:func:`failure_message`);
* :mod:`.stage` — :func:`import_stage`, the task: which step handles which event.

Re-exported here: :data:`STAGE` and :func:`import_stage` (what :mod:`workers.app` wires), the
services and constants, :func:`ready_id` and :func:`failure_message`.
"""

from workers.imports.facts import STAGE, ready_id
from workers.imports.notifications import failure_message
from workers.imports.planner import GENERATED_FROM, PLAN_LOCK_KEY
from workers.imports.services import (
    IMPORT_CALLS,
    JOB_SLOTS,
    ImportConfig,
    ImportsApi,
    ImportServices,
)
from workers.imports.stage import import_stage

__all__ = [
    "GENERATED_FROM",
    "IMPORT_CALLS",
    "JOB_SLOTS",
    "PLAN_LOCK_KEY",
    "STAGE",
    "ImportConfig",
    "ImportServices",
    "ImportsApi",
    "failure_message",
    "import_stage",
    "ready_id",
]
