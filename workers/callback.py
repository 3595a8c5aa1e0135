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
  database lock per run (:func:`_sequence_lock`), so no wake is missed; the sweeper publishes
  a waiting callback nobody woke after ``WAIT_SAFETY_NET`` (a crash between commit and
  publish).  Before, a waiting callback was re-published every 5 s to look again.  A status
  not newer than the last one delivered for the run is not sent: *Callback Superseded*.  The
  server remembers only the last ``event_id``, so these are what keep a late RUNNING from
  overwriting COMPLETED.
* **Retries with a window, not forever and not never.**  5xx, 429, 408, timeouts and connection
  errors are retried with exponential backoff and jitter (``Retry-After`` honoured) for
  ``CALLBACK_RETRY_WINDOW``; short waits are Celery retries, longer ones are stored in the
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
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, func, select, update

from eventlog import store
from eventlog.projections import parse_time
from eventlog.store import LogEntry, StoredEvent, derived_id
from eventlog.tables import events, outbox, runs
from schemas.ngs360 import (
    API_KEY_HEADER,
    CALLBACK_PATH,
    Origin,
    build_payload,
    callback_origin,
    show_origin,
    skip_reason,
    utc_z,
)
from schemas.settings import Settings
from schemas.vocabulary import (
    CALLBACK_DELIVERED,
    CALLBACK_FAILED,
    CALLBACK_SKIPPED,
    CALLBACK_SUPERSEDED,
    RUN_ENRICHED,
    STATUS_EVENTS,
    TERMINAL_STATUSES,
    rank_of,
)
from workers.errors import PermanentError, RetryLater
from workers.omics import OmicsApi, OmicsError, as_retry_later
from workers.redis_clients import redis_client
from workers.routing import FACT_STAGES
from workers.runtime import Runtime

log = logging.getLogger(__name__)

STAGE = "callback"
#: The stage whose unfinished work for an earlier status makes a callback wait.
ENRICH_STAGE = "enrich"
#: First retry delay in seconds; doubles per failed attempt up to ``CALLBACK_BACKOFF_MAX``.
RETRY_BASE = 1.0
#: How long a callback recorded as waiting for an earlier status of its run stays unpublished
#: if nothing wakes it: the sweeper's safety net.  It is normally published once, by whatever
#: finishes the status before it (:func:`wake_callbacks`), in the same transaction.
WAIT_SAFETY_NET = 30.0
#: ``outbox.outcome`` of an unfinished callback waiting for an earlier status of its run (the
#: column holds the outcome once the work is done; until then, only this marker).
WAITING = "waiting"
#: ``outbox.outcome`` of a callback its predecessor's transaction made due and publishes after
#: commit: the sweeper leaves it to that publisher for its grace period (eventlog/store.py).
WOKEN = "woken"
#: First key of the PostgreSQL advisory lock that sequences one run's callbacks (the second is
#: a hash of the run's uuid): "wait for the status before" and "wake the status after" are
#: decided under it, so a status finishing never misses a callback just deciding to wait.
SEQUENCE_LOCK_KEY = 0x0CA1
#: Response bodies kept in facts and dead letters.
MAX_BODY = 2000
#: Seconds a run's callback lock outlives a dead holder.  A live holder renews it every third
#: of that for as long as its delivery takes, so the lease need not cover the slowest delivery
#: and a worker killed mid-delivery holds up its run's next callbacks for seconds, not minutes.
LOCK_LEASE = 15.0
#: How the server words a refused transition; A is the state WES holds.
INVALID_TRANSITION = re.compile(r"Invalid state transition: ([A-Z_]+) -> ([A-Z_]+)")
#: WES states from which a RUNNING reported first lets a refused terminal status through: the
#: contract's transition table allows RUNNING from them and every terminal state from RUNNING.
#: (From INITIALIZING only COMPLETE is refused.  Not CANCELING: only CANCELED is allowed
#: there; not PAUSED: RUNNING would undo a user's pause; not UNKNOWN: WES lost the run.)
GAP_FILLABLE = frozenset({"QUEUED", "INITIALIZING"})


# --- where to send ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where one callback goes, and why a run's ``callback_url`` tag was refused (if it was)."""

    url: str | None
    tag: str | None = None
    refused: str | None = None


def callback_endpoint(base_url: str) -> str:
    """The fixed callback path on the host of ``base_url`` (the path does not follow an API
    prefix; credentials in the URL are dropped)."""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, CALLBACK_PATH, "", ""))


def allowed_hosts(settings: Settings) -> set[Origin]:
    """The origins a ``callback_url`` tag may name: ``CALLBACK_ALLOWED_HOSTS`` and always the
    configured API's own (a tag naming it changes nothing: the key goes there anyway)."""
    allowed = {callback_origin(item, entry=True) for item in settings.callback_allowed_hosts}
    if settings.ngs360_api_url:
        allowed.add(callback_origin(settings.ngs360_api_url))
    return allowed


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tag_problem(tag: str, allowed: Iterable[Origin | str]) -> str | None:
    """Why a ``callback_url`` tag may not receive the key, or None if it may.

    Scheme, host and port must match an allowed origin (entries given as text are read as
    ``CALLBACK_ALLOWED_HOSTS`` reads them): a bare host allows its https port, not every port.
    """
    try:
        parts = urlsplit(tag.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return "it is not a URL"
    if parts.scheme not in {"http", "https"} or not host:
        return "it is not an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "it carries credentials"
    if parts.scheme == "http" and not _loopback(host):
        return "plain http is allowed on loopback only"
    origin = callback_origin(tag)
    origins = {callback_origin(a, entry=True) if isinstance(a, str) else a for a in allowed}
    if origin not in origins:
        return f"origin {show_origin(origin)} is not in CALLBACK_ALLOWED_HOSTS"
    return None


def resolve_target(settings: Settings, tag: str | None) -> Target:
    default = callback_endpoint(settings.ngs360_api_url) if settings.ngs360_api_url else None
    if not tag:
        return Target(default)
    problem = tag_problem(tag, allowed_hosts(settings))
    if problem is None:
        return Target(callback_endpoint(tag), tag)
    return Target(default, tag, problem)


# --- the key ----------------------------------------------------------------------------------


#: Secrets Manager answers that waiting will not fix.
SECRET_PERMANENT = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
    }
)


class KeyUnavailable(Exception):
    """No API key could be had (not configured, or the secret cannot be read)."""


class ApiKey:
    """The shared secret: from settings, or from Secrets Manager (cached, refreshable)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._cached: str | None = None

    @classmethod
    def of(cls, runtime: Runtime) -> ApiKey:
        return runtime.resource("ngs360-api-key", cls)

    @property
    def refreshable(self) -> bool:
        settings = self._runtime.settings
        return settings.ngs360_api_key is None and bool(settings.ngs360_api_key_secret)

    def get(self) -> str:
        settings = self._runtime.settings
        if settings.ngs360_api_key is not None and settings.ngs360_api_key.get_secret_value():
            return settings.ngs360_api_key.get_secret_value()
        if not settings.ngs360_api_key_secret:
            raise KeyUnavailable("no API key: set NGS360_API_KEY or NGS360_API_KEY_SECRET")
        with self._lock:
            if self._cached is None:
                self._cached = self._fetch()
            return self._cached

    def refresh(self) -> str:
        """Read the secret again (after a 403: the key may have been rotated)."""
        with self._lock:
            self._cached = self._fetch()
            return self._cached

    def _fetch(self) -> str:
        settings = self._runtime.settings
        client = self._runtime.aws.get("secretsmanager")
        try:
            response = client.get_secret_value(SecretId=settings.ngs360_api_key_secret)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in SECRET_PERMANENT:
                raise  # throttled or unavailable: the stage retries
            raise KeyUnavailable(
                f"cannot read secret {settings.ngs360_api_key_secret}: {code}"
            ) from None
        text = response.get("SecretString")
        if text is None and response.get("SecretBinary") is not None:
            text = bytes(response["SecretBinary"]).decode("utf-8", "replace")
        text = (text or "").strip()
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if isinstance(document, dict):
                value = document.get(settings.ngs360_api_key_secret_field)
                if not isinstance(value, str) or not value:
                    raise KeyUnavailable(
                        f"secret {settings.ngs360_api_key_secret} has no "
                        f"{settings.ngs360_api_key_secret_field!r} field"
                    )
                return value
        if not text:
            raise KeyUnavailable(f"secret {settings.ngs360_api_key_secret} is empty")
        return text

    def __repr__(self) -> str:  # never show the key
        return "<ApiKey ********>"


def _http(runtime: Runtime) -> httpx.Client:
    def build(rt: Runtime) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(rt.settings.callback_timeout),
            follow_redirects=False,  # a redirect must not carry the key to another host
            headers={"User-Agent": "omics-events-callback"},
        )

    return runtime.resource("ngs360-http", build)


# --- ordering ---------------------------------------------------------------------------------


class _LocalLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


@contextmanager
def run_lock(runtime: Runtime, run_uuid: str, timeout: float) -> Iterator[None]:
    """Hold the run's callback lock; :class:`RetryLater` if it stays taken for ``timeout``.

    With Redis (several worker processes) the lock is a Redis lease that expires on its own if
    its holder dies; without Redis every worker is a thread of this process and a local lock is
    enough.  Neither holds a database connection while the request is in flight.
    """
    settings = runtime.settings
    if settings.redis_url:
        client = runtime.resource("redis", lambda rt: redis_client(rt.settings))
        lease = client.lock(
            f"{settings.redis_key_prefix}callback-lock:{run_uuid}",
            timeout=LOCK_LEASE,
            blocking_timeout=timeout,
            thread_local=False,  # the renewing thread must see the holder's token
        )
        if not lease.acquire():
            raise RetryLater(f"run {run_uuid} is busy with another callback", 1.0)
        done = threading.Event()
        renewer = threading.Thread(
            target=_renew, args=(lease, done, run_uuid), name="callback-lock", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            try:
                lease.release()
            except redis.exceptions.LockError:  # the lease expired: nothing left to release
                log.warning("callback lock of run %s expired while held", run_uuid)
        return
    lock = runtime.resource("callback-locks", lambda _rt: _LocalLocks()).get(run_uuid)
    if not lock.acquire(timeout=timeout):
        raise RetryLater(f"run {run_uuid} is busy with another callback", 1.0)
    try:
        yield
    finally:
        lock.release()


def _renew(lease: Any, done: threading.Event, run_uuid: str) -> None:
    """Keep the lease of a live holder from expiring until ``done``."""
    while not done.wait(LOCK_LEASE / 3):
        try:
            lease.extend(LOCK_LEASE, replace_ttl=True)
        except redis.exceptions.LockError:
            log.warning("callback lock of run %s was lost while held", run_uuid)
            return
        except redis.RedisError as error:  # Redis away for a moment: try again next round
            log.warning("renewing the callback lock of run %s failed: %s", run_uuid, error)


def running_event_id(run_uuid: str) -> str:
    """The id of "run ``run_uuid`` is RUNNING" when the pipeline has to say it itself."""
    return derived_id(f"run:{run_uuid}", "status:RUNNING")


def _sequence_lock(connection: Connection, run_uuid: str) -> None:
    """Serialise, until commit, the transactions that decide a run's callback order.

    PostgreSQL: a transaction-scoped advisory lock per run.  SQLite: any write takes the one
    write lock until commit; an UPDATE that matches nothing takes it before anything is read.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(func.pg_advisory_xact_lock(SEQUENCE_LOCK_KEY, func.hashtext(run_uuid)))
        )
    else:
        connection.execute(update(outbox).where(outbox.c.id == -1).values(outcome=None))


def _unfinished_statuses(connection: Connection, run_uuid: str) -> list[Any]:
    """(event id, stage, outcome, status) of the run's statuses still being enriched or sent."""
    return list(
        connection.execute(
            select(outbox.c.event_id, outbox.c.stage, outbox.c.outcome, events.c.status)
            .join(events, events.c.event_id == outbox.c.event_id)
            .where(
                events.c.resource_id == run_uuid,
                events.c.detail_type.in_(sorted(STATUS_EVENTS)),
                outbox.c.stage.in_([ENRICH_STAGE, STAGE]),
                outbox.c.done_at.is_(None),
            )
        )
    )


def wake_callbacks(connection: Connection, run_uuid: str) -> list[str]:
    """After a status of the run finished (in its transaction): the waiting callbacks that no
    earlier status holds up any more, made due; returns their event ids (publish after commit).

    Only those: a callback waiting behind another one stays unpublished until that one is done,
    so each callback is published once, when its turn comes (not every few seconds to look).
    """
    _sequence_lock(connection, run_uuid)
    return _wake_ready(connection, _unfinished_statuses(connection, run_uuid))


def _wake_ready(connection: Connection, rows: Sequence[Any]) -> list[str]:
    """Make due the waiting callbacks among ``rows`` (a run's unfinished statuses) that no
    earlier status holds up; their event ids."""
    ready = [
        row.event_id
        for row in rows
        if row.stage == STAGE
        and row.outcome == WAITING
        and not any(
            rank_of(other.status) < rank_of(row.status)
            for other in rows
            if other.event_id != row.event_id
        )
    ]
    if ready:
        connection.execute(
            update(outbox)
            .where(
                outbox.c.event_id.in_(ready), outbox.c.stage == STAGE, outbox.c.done_at.is_(None)
            )
            .values(not_before=store.utcnow(), published_at=None, outcome=WOKEN)
        )
    return ready


@dataclass(frozen=True)
class _Owed:
    """A callback owed in this transaction, as :func:`_unfinished_statuses` would read it."""

    event_id: str
    status: str | None
    stage: str = STAGE
    outcome: str | None = None


def owe_callback(
    connection: Connection, event: StoredEvent, run_uuid: str
) -> tuple[bool, list[str]]:
    """Owe the callback of a status whose enrichment just finished (in the transaction that
    finished it, after its enrich work is marked done), and wake the run's callbacks it no
    longer holds up: (whether its callback is due now, the callbacks woken), to publish after
    commit.  Its callback waits instead while an earlier status of the run is in flight."""
    _sequence_lock(connection, run_uuid)
    rows = _unfinished_statuses(connection, run_uuid)
    rank = rank_of(event.status)
    behind = any(row.event_id != event.event_id and rank_of(row.status) < rank for row in rows)
    now = store.utcnow()
    store.owe(
        connection,
        [
            {
                "event_id": event.event_id,
                "stage": STAGE,
                "created_at": now,
                "not_before": now + timedelta(seconds=WAIT_SAFETY_NET) if behind else now,
                "publish_count": 0,
                "outcome": WAITING if behind else None,
            }
        ],
    )
    woken = _wake_ready(connection, [*rows, _Owed(event.event_id, event.status)])
    return not behind, woken


def _wait_if_behind(connection: Connection, event: StoredEvent, run_uuid: str) -> bool:
    """Record the callback as waiting if an earlier status of its run is in flight (True)."""
    _sequence_lock(connection, run_uuid)
    if not _earlier_in_flight(connection, event, run_uuid):
        return False
    connection.execute(
        update(outbox)
        .where(
            outbox.c.event_id == event.event_id,
            outbox.c.stage == STAGE,
            outbox.c.done_at.is_(None),
        )
        .values(
            not_before=store.utcnow() + timedelta(seconds=WAIT_SAFETY_NET),
            published_at=None,
            outcome=WAITING,
        )
    )
    return True


def _earlier_in_flight(connection: Connection, event: StoredEvent, run_uuid: str) -> list[str]:
    """Earlier statuses of the run still being enriched or delivered."""
    rank = rank_of(event.status)
    return [
        row.event_id
        for row in _unfinished_statuses(connection, run_uuid)
        if row.event_id != event.event_id and rank_of(row.status) < rank
    ]


# --- one delivery -----------------------------------------------------------------------------


@dataclass
class Call:
    """One callback being worked on: the event, its enrichment, where it goes."""

    event: StoredEvent
    enrichment: dict[str, Any]
    target: Target
    #: Sent by an operator (``redeliver``): one attempt, a failure is final.
    manual: bool = False

    @property
    def run_uuid(self) -> str:
        return str(self.enrichment.get("uuid") or self.event.resource_id or "")

    @property
    def status(self) -> str:
        return str(self.enrichment.get("status") or self.event.status or "").upper()

    def facts(self, **extra: Any) -> dict[str, Any]:
        """The detail of a callback fact: what was sent where, never the key."""
        detail = {
            "eventId": self.event.event_id,
            "eventTime": utc_z(self.event.event_time),
            "uuid": self.run_uuid,
            "runId": self.enrichment.get("runId"),
            "wesRunId": self.enrichment.get("wesRunId"),
            "status": self.status,
            "url": self.target.url,
        }
        detail.update({key: value for key, value in extra.items() if value is not None})
        return detail


def _load(
    connection: Connection, event_id: str
) -> tuple[StoredEvent | None, bool, dict[str, Any] | None]:
    """(the event, whether its callback is done, its enrichment) in one round trip."""
    enriched = events.alias("enriched")
    enrichment = (
        select(enriched.c.payload)
        .where(enriched.c.caused_by == event_id, enriched.c.detail_type == RUN_ENRICHED)
        .scalar_subquery()
    )
    row = connection.execute(
        select(events, outbox.c.done_at.label("stage_done_at"), enrichment.label("enrichment"))
        .outerjoin(outbox, (outbox.c.event_id == events.c.event_id) & (outbox.c.stage == STAGE))
        .where(events.c.event_id == event_id)
    ).one_or_none()
    if row is None:
        return None, False, None
    return store.stored_event(row), row.stage_done_at is not None, _detail(row.enrichment)


def _detail(payload: Any) -> dict[str, Any] | None:
    if not isinstance(payload, dict):
        return None
    detail = payload.get("detail")
    return detail if isinstance(detail, dict) else None


def _history(connection: Connection, event_id: str) -> tuple[int, datetime | None]:
    """(callback facts so far, time of the first failed attempt) for one event."""
    count, first_failure = connection.execute(
        select(
            func.count(),
            func.min(events.c.event_time).filter(events.c.detail_type == CALLBACK_FAILED),
        ).where(events.c.caused_by == event_id, events.c.detail_type.like("Callback %"))
    ).one()
    return int(count), store.as_utc(first_failure) if first_failure else None


def _record(
    runtime: Runtime,
    call: Call,
    detail_type: str,
    *,
    outcome: str | None = None,
    dead_letter: str | None = None,
    **detail: Any,
) -> None:
    """Append one callback fact; with ``outcome``, finish the work and wake the run's next."""
    woken: list[str] = []
    with runtime.engine.begin() as connection:
        count, _ = _history(connection, call.event.event_id)
        facts = call.facts(attempts=detail.pop("attempts", None) or count + 1, **detail)
        fact = LogEntry.pipeline(
            call.event,
            detail_type,
            facts,
            status=str(facts.get("status") or call.status),
            fact=f"{detail_type}#{count + 1}",
        )
        store.append(connection, fact, FACT_STAGES)
        if dead_letter is not None:
            store.dead_letter(
                connection,
                kind="stage",
                stage=STAGE,
                event_id=call.event.event_id,
                detail_type=call.event.detail_type,
                reason=dead_letter[:4000],
                raw=json.dumps(facts, sort_keys=True).encode(),
            )
        if outcome is not None:
            store.complete(connection, call.event.event_id, STAGE, outcome)
            woken = wake_callbacks(connection, call.run_uuid)
    runtime.publish([*([fact.event_id] if FACT_STAGES else []), *woken])


def _body(response: httpx.Response) -> str:
    try:
        return response.text[:MAX_BODY]
    except Exception:  # undecodable bytes
        return response.content[:MAX_BODY].decode("utf-8", "replace")


def _post(
    runtime: Runtime, url: str, payload: dict[str, Any], key: str
) -> tuple[httpx.Response | None, str | None]:
    try:
        return _http(runtime).post(url, json=payload, headers={API_KEY_HEADER: key}), None
    except httpx.TimeoutException as error:
        return None, f"timed out ({type(error).__name__})"
    except httpx.TransportError as error:
        return None, f"connection failed ({type(error).__name__}: {error})"


def _retryable(response: httpx.Response | None) -> bool:
    return (
        response is None or response.status_code in {408, 425, 429} or response.status_code >= 500
    )


def _retry_after(response: httpx.Response | None) -> float:
    if response is None:
        return 0.0
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def deliver_callback(
    runtime: Runtime, event_id: str, *, force: bool = False, recover: bool = False
) -> str:
    """The stage: post one enriched status change.

    ``force`` (``omics-events redeliver``): again, whatever was sent.  ``recover`` (the bulk
    redelivery of dead letters): again although the work is finished, but with the stage's
    own order rules — a status a newer delivered one superseded is not sent, and a status
    whose run still has an earlier one in the pipeline is left (``"waiting"``) untouched.
    """
    manual = force or recover
    with runtime.engine.connect() as connection:
        event, done, enrichment = _load(connection, event_id)
    if event is None:
        raise PermanentError(f"event {event_id} is not in the log")
    if not manual and done:
        return "already-done"
    if enrichment is None:
        raise PermanentError(f"event {event_id} has no Run Enriched fact to send")
    settings = runtime.settings
    target = resolve_target(settings, enrichment.get("callbackUrl"))
    call = Call(event, enrichment, target, manual=manual)
    if call.target.refused:
        _refuse_tag(runtime, call)

    reason = skip_reason(call.status, enrichment.get("wesRunId"))
    if reason is None and call.target.url is None:
        reason = "callbacks are not configured (NGS360_API_URL is unset)"
    if reason is not None:
        _record(runtime, call, CALLBACK_SKIPPED, outcome="skipped", reason=reason)
        return "skipped"
    try:
        payload = _payload(call, call.status, event.event_id, event.event_time)
    except ValueError as error:
        why = f"the callback body would be refused: {error}"[:2000]
        _record(
            runtime,
            call,
            CALLBACK_FAILED,
            outcome="dead-lettered",
            dead_letter=why,
            final=True,
            reason=why,
        )
        return "dead-lettered"

    with run_lock(runtime, call.run_uuid, timeout=3 * settings.callback_timeout + 5):
        if not force:
            with runtime.engine.connect() as connection:
                # the run's last delivery, and whether this work was finished meanwhile: one read
                done_at = (
                    select(outbox.c.done_at)
                    .where(outbox.c.event_id == event_id, outbox.c.stage == STAGE)
                    .scalar_subquery()
                )
                row = connection.execute(
                    select(
                        runs.c.callback_event_id,
                        runs.c.callback_rank,
                        runs.c.callback_status,
                        done_at.label("done_at"),
                    )
                    .select_from(runs)
                    .where(runs.c.run_uuid == call.run_uuid)
                ).one_or_none()
            if not recover and row is not None and row.done_at is not None:
                return "already-done"
            if row is None and not recover:
                with runtime.engine.connect() as connection:  # a run the log never folded
                    if store.is_done(connection, event_id, STAGE):
                        return "already-done"
            if row is not None and row.callback_event_id == event_id:
                if not recover:
                    _finish_quietly(runtime, call, "delivered")
                return "delivered"
            if row is not None and (row.callback_rank or 0) >= rank_of(call.status):
                _record(
                    runtime,
                    call,
                    CALLBACK_SUPERSEDED,
                    outcome="superseded",
                    reason=f"{row.callback_status} ({row.callback_event_id}) was already "
                    f"delivered for this run",
                )
                return "superseded"
            if recover:  # hand-sent: look, but leave the outbox as it is
                with runtime.engine.connect() as connection:
                    if _earlier_in_flight(connection, event, call.run_uuid):
                        return "waiting"
            else:
                with runtime.engine.begin() as connection:
                    if _wait_if_behind(connection, event, call.run_uuid):
                        return "waiting"
        return _send(runtime, call, payload)


def _payload(call: Call, status: str, event_id: str, when: datetime) -> dict[str, Any]:
    enrichment = call.enrichment
    return build_payload(
        omics_run_id=str(enrichment.get("runId") or ""),
        status=status,
        wes_run_id=str(enrichment.get("wesRunId") or ""),
        event_time=when,
        event_id=event_id,
        status_message=enrichment.get("statusMessage") if status == call.status else None,
        failure_reason=enrichment.get("failureReason") if status == call.status else None,
        output_mapping=enrichment.get("outputMapping") if status == call.status else None,
        log_urls=enrichment.get("logUrls") if status == call.status else None,
    )


def _finish_quietly(runtime: Runtime, call: Call, outcome: str) -> None:
    with runtime.engine.begin() as connection:
        store.complete(connection, call.event.event_id, STAGE, outcome)
        woken = wake_callbacks(connection, call.run_uuid)
    runtime.publish(woken)


def _refuse_tag(runtime: Runtime, call: Call) -> None:
    tag = call.target.tag or ""
    reason = (
        f"run {call.enrichment.get('runId')} ({call.run_uuid}) is tagged callback_url={tag[:300]!r}"
        f", refused: {call.target.refused}; the callback and its key went to the configured "
        f"NGS360 API instead ({call.target.url or 'none configured'})"
    )
    with runtime.engine.begin() as connection:
        fresh = store.dead_letter(
            connection,
            kind="security",
            stage=STAGE,
            event_id=call.event.event_id,
            detail_type=call.event.detail_type,
            reason=reason,
            raw=tag.encode("utf-8", "replace"),
        )
    if fresh:
        log.warning("%s", reason, extra={"event_id": call.event.event_id, "stage": STAGE})


def _send(runtime: Runtime, call: Call, payload: dict[str, Any]) -> str:
    assert call.target.url is not None
    key_source = ApiKey.of(runtime)
    try:
        key = key_source.get()
    except KeyUnavailable as error:
        why = str(error)
        _record(
            runtime,
            call,
            CALLBACK_FAILED,
            outcome="dead-lettered",
            dead_letter=why,
            final=True,
            reason=why,
        )
        return "dead-lettered"
    except (BotoCoreError, ClientError) as error:  # Secrets Manager unreachable: transient
        raise RetryLater(f"Secrets Manager: {type(error).__name__}", 5.0) from None

    response, error = _post(runtime, call.target.url, payload, key)
    if response is not None and response.status_code == 403 and key_source.refreshable:
        try:
            fresh = key_source.refresh()
        except KeyUnavailable:
            fresh = key
        if fresh != key:
            log.info("callback refused with 403; retrying once with the secret read again")
            _record_answer(
                runtime,
                call,
                response,
                "HTTP 403: sending again with the secret read again (the key was rotated)",
            )
            key = fresh
            response, error = _post(runtime, call.target.url, payload, key)

    held = _refused_from(response) if call.status in TERMINAL_STATUSES else None
    if held in GAP_FILLABLE and not _status_delivered(runtime, call.run_uuid):
        assert response is not None
        _record_answer(
            runtime,
            call,
            response,
            f"HTTP 400: WES holds {held} and no status of "
            "the run was ever delivered: reporting RUNNING first",
        )
        outcome = _report_running_first(runtime, call, key)
        if outcome is not None:
            return outcome
        response, error = _post(runtime, call.target.url, payload, key)

    if response is not None and 200 <= response.status_code < 300:
        _record(
            runtime,
            call,
            CALLBACK_DELIVERED,
            outcome="delivered",
            httpStatus=response.status_code,
            responseBody=_body(response)[:500],
        )
        return "delivered"
    return _failed(runtime, call, response, error)


def _refused_from(response: httpx.Response | None) -> str | None:
    """The WES state named by a 400 ``Invalid state transition: A -> B`` (A), else None."""
    if response is None or response.status_code != 400:
        return None
    found = INVALID_TRANSITION.search(_body(response))
    return found.group(1) if found else None


def _status_delivered(runtime: Runtime, run_uuid: str) -> bool:
    """Was any status of the run delivered?  (Every non-terminal one is RUNNING to WES.)"""
    with runtime.engine.connect() as connection:
        rank = connection.execute(
            select(runs.c.callback_rank).where(runs.c.run_uuid == run_uuid)
        ).scalar_one_or_none()
    return bool(rank)


def _record_answer(runtime: Runtime, call: Call, response: httpx.Response, reason: str) -> None:
    """One refused attempt the stage follows up itself, with the answer it got."""
    _record(
        runtime,
        call,
        CALLBACK_FAILED,
        httpStatus=response.status_code,
        responseBody=_body(response),
        reason=reason,
    )


def _report_running_first(runtime: Runtime, call: Call, key: str) -> str | None:
    """Send the RUNNING the server never saw; None when it was accepted, else the outcome of
    the callback (its failure recorded with the RUNNING's own answer)."""
    start = parse_time(call.enrichment.get("startTime"))
    if start is None:
        start = _start_time_from_api(runtime, call)
    start = start or parse_time(call.enrichment.get("creationTime")) or call.event.event_time
    running_id = running_event_id(call.run_uuid)
    payload = _payload(call, "RUNNING", running_id, start)
    sent = {"eventId": running_id, "eventTime": utc_z(start), "status": "RUNNING"}
    assert call.target.url is not None
    log.info(
        "NGS360 never saw run %s running; reporting RUNNING (%s) first",
        call.enrichment.get("runId"),
        running_id,
        extra={"event_id": call.event.event_id, "stage": STAGE},
    )
    response, error = _post(runtime, call.target.url, payload, key)
    if response is not None and 200 <= response.status_code < 300:
        _record(
            runtime,
            call,
            CALLBACK_DELIVERED,
            **sent,
            httpStatus=response.status_code,
            responseBody=_body(response)[:500],
            reason="reported RUNNING first: the server had never seen the run running",
        )
        return None
    return _failed(runtime, call, response, error, sent=sent)


def _start_time_from_api(runtime: Runtime, call: Call) -> datetime | None:
    try:
        run = OmicsApi.of(runtime).get_run(str(call.enrichment.get("runId")))
    except OmicsError as error:
        if error.kind in {"wait", "quota"}:
            raise as_retry_later(error) from error
        return None
    if str(run.get("uuid") or "") != call.run_uuid:
        return None
    start = run.get("startTime")
    return start if isinstance(start, datetime) else None


def _give_up(
    runtime: Runtime,
    call: Call,
    why: str,
    status: int | None,
    body: str | None,
    what: str,
    sent: dict[str, Any],
) -> str:
    """The last word on a callback: a final failure fact and a dead letter saying why."""
    _record(
        runtime,
        call,
        CALLBACK_FAILED,
        outcome="dead-lettered",
        dead_letter=why,
        final=True,
        httpStatus=status,
        responseBody=body,
        reason=what,
        **sent,
    )
    return "dead-lettered"


def _failed(
    runtime: Runtime,
    call: Call,
    response: httpx.Response | None,
    error: str | None,
    *,
    sent: dict[str, Any] | None = None,
) -> str:
    """Record a failed attempt: retried later, or dead-lettered (``sent``: what the attempt
    sent when it was not the event's own status, i.e. the RUNNING reported first)."""
    settings = runtime.settings
    sent = sent or {}
    status = response.status_code if response is not None else None
    body = _body(response) if response is not None else None
    what = f"HTTP {status}" if status is not None else (error or "no response")
    subject = "the RUNNING reported first" if sent else "the callback"
    if not _retryable(response) or call.manual:
        verb = "refused" if response is not None and not _retryable(response) else "did not take"
        why = f"NGS360 {verb} {subject}: {what}: {body or ''}".strip()
        if call.manual and _retryable(response):
            why += " (sent by hand: not retried; redeliver it again)"
        return _give_up(runtime, call, why[:4000], status, body, what, sent)
    with runtime.engine.connect() as connection:
        failures_before = connection.execute(
            select(func.count())
            .select_from(events)
            .where(
                events.c.caused_by == call.event.event_id, events.c.detail_type == CALLBACK_FAILED
            )
        ).scalar_one()
        _, first_failure = _history(connection, call.event.event_id)
    now = store.utcnow()
    waited = (now - first_failure).total_seconds() if first_failure else 0.0
    window = settings.callback_retry_window
    if waited >= window:
        why = (
            f"NGS360 did not accept {subject} within CALLBACK_RETRY_WINDOW ({window:.0f} s, "
            f"{failures_before + 1} attempts); last answer: {what}: {body or ''}"
        ).strip()[:4000]
        return _give_up(runtime, call, why, status, body, what, sent)
    delay = min(settings.callback_backoff_max, RETRY_BASE * 2 ** min(int(failures_before), 20))
    delay = max(delay * random.uniform(0.5, 1.0), _retry_after(response))
    delay = min(delay, max(1.0, window - waited))
    _record(
        runtime,
        call,
        CALLBACK_FAILED,
        httpStatus=status,
        responseBody=body,
        reason=what,
        retryIn=round(delay, 3),
        **sent,
    )
    raise RetryLater(f"callback {call.event.event_id}: {what}", delay)


def redeliver(runtime: Runtime, event_id: str) -> str:
    """Send one callback again now, whatever was sent before (``omics-events redeliver``)."""
    try:
        return deliver_callback(runtime, event_id, force=True)
    except RetryLater as wait:  # only a busy run lock or Secrets Manager away get here
        return f"not delivered ({wait.reason}); try again"


__all__: Sequence[str] = (
    "GAP_FILLABLE",
    "STAGE",
    "ApiKey",
    "Target",
    "callback_endpoint",
    "deliver_callback",
    "owe_callback",
    "redeliver",
    "resolve_target",
    "running_event_id",
    "tag_problem",
    "wake_callbacks",
)
