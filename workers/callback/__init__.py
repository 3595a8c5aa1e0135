"""The callback stage: each enriched run status change, posted once and in order to NGS360.

The contract (``docs/reference/ngs360-callback.md``) decides the shape: the body is built and
checked by :mod:`schemas.ngs360`; ``X-Internal-API-Key`` comes from ``NGS360_API_KEY`` or a Secrets
Manager secret (fetched once, cached, fetched again after a 403) and never appears in a log
line, an event or a dead letter.

Why each rule, against what the Lambda did:

* **The key goes only where it may.**  A run's ``callback_url`` tag is honoured only when it is
  https (http on loopback, for tests) and its scheme, host and port (the scheme's default port
  when it names none) are those of an entry of ``CALLBACK_ALLOWED_HOSTS`` or of
  ``NGS360_API_URL``: a bare ``api-host`` allows ``https://api-host:443``, not port 22.
  Otherwise the callback goes to the configured URL and a ``security`` dead letter says which
  tag was refused and why.  Redirects are never followed, so a server cannot bounce the key
  elsewhere either.
* **In order, never backwards, never twice.**  Callbacks of one run are serialised by a lock per
  run (a Redis lease across processes, an in-process lock in the embedded default).  A
  callback whose run has an earlier status still being enriched or delivered is recorded as
  waiting in the outbox (``outcome = 'waiting'``, unpublished) — by the enrichment that owes
  it, or by the task itself if that status turned up later — and is published once, by the
  transaction that finishes the last status before it (delivered, superseded, skipped,
  dead-lettered; :func:`wake_callbacks`).  Deciding to wait and waking happen under one
  database lock per run, so no wake is missed; the sweeper publishes a waiting callback nobody
  woke after ``WAIT_SAFETY_NET`` (a crash between commit and publish).  Before, a waiting
  callback was re-published every 5 s to look again.  A status not newer than the last one
  delivered for the run is not sent: *Callback Superseded*.  The server remembers only the
  last ``event_id``, so these are what keep a late RUNNING from overwriting COMPLETED.
* **Retries with a window, not forever and not never.**  5xx, 429, 425, 408, timeouts and
  connection errors are retried with exponential backoff and jitter (``Retry-After`` honoured)
  for ``CALLBACK_RETRY_WINDOW``; short waits are Celery retries, longer ones are stored in the
  outbox (:class:`~workers.errors.RetryLater`).  403, 404, 422 and other refusals are permanent:
  a *Callback Failed* fact marked final and a dead letter carrying the response body.
* **Lost events, and only those.**  A terminal status refused with 400 ``Invalid state
  transition: A -> B`` where A is QUEUED or INITIALIZING (:data:`GAP_FILLABLE`), for a run no
  status of which was ever delivered, means the server never saw the run running (its
  RUNNING event was lost): the stage reports RUNNING first, from GetRun's ``startTime`` with an
  event id derived from the run, then the terminal status again.  Any other refusal (WES holds
  CANCELING because a user cancelled there, or PAUSED) is the server's word: a RUNNING would
  not help, or would undo the user's pause, so the refusal is recorded as it came.
* **Nothing silent.**  Every attempt is a fact in the log (*Callback Delivered / Failed /
  Skipped / Superseded*) folded into ``deliveries``, each with the answer *it* got: the refused
  terminal status, the RUNNING reported first and the terminal status sent again are three
  facts, and so is a 403 retried with a re-read secret.  Statuses the server does not take
  (DELETED) and runs without a ``WESRunId`` are *Callback Skipped* with the reason.
* **Sent by hand, never retried by itself.**  ``redeliver`` (one event, whatever was sent) and
  the bulk redelivery of dead letters (:mod:`workers.redelivery`) send once: work they resend
  is already finished in the outbox, so a refusal or an outage ends as a dead letter again
  rather than as a retry nobody will run.

The modules, each importing only those above it:

* :mod:`~workers.callback.allow_list` — where a callback and its key may go (:class:`Target`,
  :func:`resolve_target`, :func:`tag_problem`).
* :mod:`~workers.callback.key_source` — the key, from settings or the Secrets Manager cache
  (:class:`ApiKey`, :class:`KeyUnavailable`).
* :mod:`~workers.callback.run_locks` — the lock per run across processes (:func:`run_lock`,
  ``LOCK_LEASE``).
* :mod:`~workers.callback.sequence` — the order in the outbox: owing, waiting, waking
  (:func:`owe_callback`, :func:`wake_callbacks`; ``STAGE`` and the outbox markers).
* :mod:`~workers.callback.delivery` — one callback's body, its POST, and the facts recording
  each answer (:class:`Call`).
* :mod:`~workers.callback.retries` — a failed attempt: backoff within the window, or a dead
  letter.
* :mod:`~workers.callback.gap_fill` — the RUNNING reported first (:func:`running_event_id`,
  :data:`GAP_FILLABLE`).
* :mod:`~workers.callback.stage` — the task itself: checks, turn, send
  (:func:`deliver_callback`, :func:`redeliver`).

The names below are re-exported here, so ``from workers.callback import …`` stays the way in.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.callback.allow_list import (
    Target,
    allowed_hosts,
    callback_endpoint,
    resolve_target,
    tag_problem,
)
from workers.callback.delivery import MAX_BODY, Call
from workers.callback.gap_fill import GAP_FILLABLE, INVALID_TRANSITION, running_event_id
from workers.callback.key_source import SECRET_PERMANENT, ApiKey, KeyUnavailable
from workers.callback.retries import RETRY_BASE
from workers.callback.run_locks import LOCK_LEASE, run_lock
from workers.callback.sequence import (
    ENRICH_STAGE,
    SEQUENCE_LOCK_KEY,
    STAGE,
    WAIT_SAFETY_NET,
    WAITING,
    WOKEN,
    owe_callback,
    wake_callbacks,
)
from workers.callback.stage import deliver_callback, redeliver

__all__: Sequence[str] = (
    "ENRICH_STAGE",
    "GAP_FILLABLE",
    "INVALID_TRANSITION",
    "LOCK_LEASE",
    "MAX_BODY",
    "RETRY_BASE",
    "SECRET_PERMANENT",
    "SEQUENCE_LOCK_KEY",
    "STAGE",
    "WAITING",
    "WAIT_SAFETY_NET",
    "WOKEN",
    "ApiKey",
    "Call",
    "KeyUnavailable",
    "Target",
    "allowed_hosts",
    "callback_endpoint",
    "deliver_callback",
    "owe_callback",
    "redeliver",
    "resolve_target",
    "run_lock",
    "running_event_id",
    "tag_problem",
    "wake_callbacks",
)
