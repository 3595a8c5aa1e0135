"""The invariants every fault scenario must end with, in one place.

Each check returns a list of problems (empty: it holds) rather than asserting, for two reasons:
the drill waits for the *cheap* checks to come clean before running the expensive ones (a
deadline on a condition, never a timed assertion), and when the deadline passes the failure
message lists every broken invariant at once instead of the first.

* every distinct event the simulator delivered exactly once in the log and in the archive (a
  line of exactly one batch object), and every pipeline fact once in the archive;
* every run with a ``WESRunId`` tag ends with its true final status on the receiver, and no
  callback ``event_id`` was accepted twice;
* every import source imported exactly once, or dead-lettered with a reason naming it;
* the projections equal a fresh fold of the log (``eventlog.rebuild.check``);
* the SQS queue empty, the outbox finished;
* no secret (the NGS360 key, the AWS secret key) in any process log;
* every malformed message put on the queue in ``dead_letters``, with its raw bytes.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from eventlog.rebuild import check as rebuild_check
from eventlog.tables import dead_letters, events, import_sources, outbox
from tests.faults.driver import ARCHIVE_PREFIX, Drill
from workers.archive import archived_through
from workers.storage import batch_range


@dataclass
class Figures:
    """What the report shows for a scenario."""

    events: int = 0  # distinct events delivered to the queue
    lost: int = 0  # delivered but missing from the log or the archive
    duplicated: int = 0  # logged/archived/called back more than once
    dropped_upstream: int = 0  # never delivered by the simulator (EventBridge is best effort)
    callbacks: int = 0  # callbacks the receiver accepted
    imported: int = 0
    dead_lettered: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _unknowable_runs(drill: Drill) -> set[str]:
    """Runs the simulator dropped *every* event of: no pipeline can know they exist."""
    seen = {
        event["detail"].get("runId")
        for event in drill.sim.delivered_events
        if event.get("detail-type") in ("Run Status Change", "Task Status Change")
    }
    return set(drill.sim.run_ids()) - seen


def log_and_archive(drill: Drill, figures: Figures, *, with_s3: bool) -> list[str]:
    """Every distinct delivered event once in the log and archived (at or before the archive
    cursor); ``with_s3``: the bucket holds batch objects only, their ranges do not overlap, and
    every event and every pipeline fact of the log is a line of exactly one of them."""
    problems: list[str] = []
    delivered = drill.delivered_ids()
    logged = Counter(drill.logged_ids())
    archived = set(drill.archived_ids())
    figures.events = len(delivered)
    missing = delivered - set(logged)
    unarchived = delivered - archived
    twice = [e for e, n in logged.items() if n > 1]
    strangers = set(logged) - delivered
    figures.lost = len(missing | unarchived)
    if missing:
        problems.append(f"{len(missing)} delivered events not in the log: {sorted(missing)[:3]}")
    if unarchived:
        problems.append(f"{len(unarchived)} events not archived: {sorted(unarchived)[:3]}")
    if strangers:
        problems.append(f"{len(strangers)} logged events nobody sent: {sorted(strangers)[:3]}")
    if with_s3 and not problems:
        problems += _batch_objects(drill, twice)
    if twice:
        problems.append(f"{len(twice)} events logged or archived twice: {twice[:3]}")
    figures.duplicated = len(twice)
    return problems


def _batch_objects(drill: Drill, twice: list[str]) -> list[str]:
    """The archive's objects against the log; ids found on two lines are added to ``twice``."""
    problems: list[str] = []
    with drill.engine.connect() as connection:
        through = archived_through(connection)
        rows = connection.execute(
            select(events.c.seq, events.c.event_id, events.c.origin).where(events.c.seq <= through)
        ).all()
    pages = drill.s3.get_paginator("list_objects_v2").paginate(
        Bucket=drill.archive_bucket, Prefix=ARCHIVE_PREFIX
    )
    keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
    strange = [key for key in keys if batch_range(key) is None or "/batches/dt=" not in key]
    if strange:
        problems.append(f"archive: {len(strange)} objects that are not batches {strange[:2]}")
    lines: Counter[str] = Counter()
    seqs: Counter[int] = Counter()
    for key in keys:
        span = batch_range(key)
        if span is None:
            continue
        body = drill.s3.get_object(Bucket=drill.archive_bucket, Key=key)["Body"].read()
        found = [json.loads(line) for line in gzip.decompress(body).splitlines()]
        numbers = [line["seq"] for line in found]
        if not numbers or (numbers[0], numbers[-1]) != span or numbers != sorted(numbers):
            problems.append(f"archive: {key} does not hold exactly the rows its name says")
        seqs.update(numbers)
        for line in found:
            lines[line["event"]["id"] if "event" in line else line["fact"]["event_id"]] += 1
    expected = {event_id for _, event_id, _ in rows}
    absent = expected - set(lines)
    if absent:
        problems.append(f"archive: {len(absent)} log rows in no batch: {sorted(absent)[:3]}")
    twice.extend(event_id for event_id, n in lines.items() if n > 1)
    overlapping = [seq for seq, n in seqs.items() if n > 1]
    if overlapping:
        problems.append(f"archive: {len(overlapping)} log positions in two batches")
    return problems


def callbacks(drill: Drill, figures: Figures) -> list[str]:
    """Every WES-tagged run's true final status on the receiver; no event id accepted twice."""
    problems: list[str] = []
    truth = drill.sim.ground_truth()["runs"]
    held = drill.receiver.runs()
    unknowable = _unknowable_runs(drill)
    for run_id, wes in drill.wes_ids().items():
        if run_id in unknowable:
            continue
        run, state = truth[run_id], held.get(wes)
        if not run["terminal"]:
            problems.append(f"run {run_id} has not ended in the simulator yet")
        elif state is None or state.omics_status != run["status"]:
            problems.append(
                f"run {run_id}: receiver {state and state.omics_status}, truth {run['status']}"
            )
    # "delivered" is what the server acted on.  A callback whose worker was killed after the
    # POST but before recording it is sent again (at least once is all HTTP offers): the
    # contract's idempotency key makes the server answer `already_processed` and change
    # nothing.  Such resends are counted, not failures; a second *application* is a failure.
    applied = Counter(event_id for state in held.values() for event_id, _, _ in state.applied)
    resent = sum(
        1
        for request in drill.receiver.callbacks()
        if 200 <= request.status < 300 and (request.answer or {}).get("already_processed")
    )
    twice = {e: n for e, n in applied.items() if n > 1}
    figures.callbacks = sum(applied.values())
    figures.duplicated += len(twice)
    if resent:
        figures.extra["callbacks_resent"] = resent
    if twice:
        problems.append(f"callback event ids applied twice: {dict(list(twice.items())[:3])}")
    if unknowable:
        figures.extra["runs_never_heard_of"] = len(unknowable)
    return problems


def imports(drill: Drill, figures: Figures) -> list[str]:
    """Each valid dropped file imported exactly once; each junk file and permanent failure
    dead-lettered with a reason naming it; every other job's sources imported once."""
    problems: list[str] = []
    truth = drill.sim.ground_truth()
    finished: Counter[str] = Counter()
    for job in truth["import_jobs"].values():
        if not job["terminal"]:
            problems.append(f"import job {job} has not ended")
            return problems
        for source in job["sources"]:
            if source["status"] == "FINISHED":
                finished[source["source1"]] += 1
    delivered = drill.delivered_ids()
    never_sent = {uri for event_id, uri in drill.drop_events.items() if event_id not in delivered}
    with drill.engine.connect() as connection:
        rows = connection.execute(
            select(import_sources.c.source_key, import_sources.c.outcome, import_sources.c.reason)
        ).all()
        letters = list(
            connection.execute(
                select(dead_letters.c.reason).where(dead_letters.c.kind == "import")
            ).scalars()
        )
    outcomes = {row.source_key: row.outcome for row in rows}
    # given up with a reason: the source's own record says why (a permanent failure, attempts
    # exhausted, a file that is not a read file), or a dead letter names it
    given_up = {
        row.source_key
        for row in rows
        if row.outcome in ("dead", "rejected", "orphaned") and row.reason
    } | {uri for uri in drill.undeliverable if any(r.startswith(f"{uri}: ") for r in letters)}
    figures.dead_lettered = len(given_up)
    for uri, mate in drill.sources.items():
        if uri in never_sent:
            continue  # its Object Created event was dropped upstream: nobody can know the file
        if mate in never_sent:
            # the mate's event was dropped: the pair cannot be imported, and must be given up
            # with the reason (its mate never came), never imported alone
            if finished[uri] or uri not in given_up:
                problems.append(f"{uri}: its mate was never seen, outcome {outcomes.get(uri)}")
            continue
        if finished[uri] != 1:
            problems.append(f"{uri} imported {finished[uri]} times (outcome {outcomes.get(uri)})")
        elif outcomes.get(uri) != "imported":
            problems.append(f"{uri}: imported, but the log says {outcomes.get(uri)}")
    for uri in drill.undeliverable - never_sent:
        if finished[uri]:
            problems.append(f"{uri} should not have been imported")
        if uri not in given_up:
            problems.append(f"{uri}: not given up with a reason (outcome {outcomes.get(uri)})")
    ours = set(drill.sources) | drill.undeliverable
    for source1, count in finished.items():
        if source1 not in ours and count != 1:
            problems.append(f"external source {source1} imported {count} times")
    figures.imported = sum(1 for uri in drill.sources if finished[uri] == 1)
    return problems


def stage_latency(drill: Drill) -> dict[str, dict[str, float]]:
    """Per stage: work items, median and slowest seconds from owed to done (a figure)."""
    with drill.engine.connect() as connection:
        rows = connection.execute(
            select(outbox.c.stage, outbox.c.created_at, outbox.c.done_at).where(
                outbox.c.done_at.is_not(None)
            )
        ).all()
    spans: dict[str, list[float]] = {}
    for stage, created, done in rows:
        spans.setdefault(stage, []).append((done - created).total_seconds())
    return {
        stage: {
            "n": len(values),
            "p50": round(sorted(values)[len(values) // 2], 1),
            "max": round(max(values), 1),
        }
        for stage, values in sorted(spans.items())
    }


def quiet(drill: Drill) -> list[str]:
    """Nothing left to do: the queue empty, the outbox finished, the log archived."""
    problems: list[str] = []
    depth = drill.queue_depth()
    if depth != (0, 0):
        problems.append(f"SQS queue not empty: {depth} (visible, in flight)")
    owed = drill.unfinished_work()
    if owed:
        problems.append(f"{owed} outbox rows unfinished")
    with drill.engine.connect() as connection:
        through = archived_through(connection)
        behind = connection.execute(
            select(func.count()).select_from(events).where(events.c.seq > through)
        ).scalar_one()
    if behind:
        problems.append(f"{behind} log rows not archived yet (the archive cursor is behind)")
    return problems


def malformed(drill: Drill) -> list[str]:
    """Every malformed body put on the queue is a dead letter holding its raw bytes."""
    if not drill.malformed:
        return []
    with drill.engine.connect() as connection:
        rows = connection.execute(
            select(dead_letters.c.raw, dead_letters.c.reason).where(
                dead_letters.c.kind == "rejected"
            )
        ).all()
    kept = {bytes(row.raw) for row in rows if row.reason}
    missing = [body for body in drill.malformed if body not in kept]
    return (
        [f"{len(missing)} malformed messages not dead-lettered: {missing[:2]!r}"] if missing else []
    )


def projections(drill: Drill) -> list[str]:
    """The live projections equal a fresh fold of the log (``omics-events rebuild --check``)."""
    result = rebuild_check(drill.engine)
    return [] if result.ok else [f"projections differ from a rebuild: {result.difference}"]


def secrets(drill: Drill) -> list[str]:
    """No secret in any process log (every file the stack and the drill wrote)."""
    problems = []
    for path in sorted(Path(drill.log_dir).glob("*.log")):
        text = path.read_text(errors="replace")
        for name, secret in drill.secrets.items():
            if secret in text:
                problems.append(f"{name} appears in {path.name}")
    return problems


def settled(drill: Drill) -> list[str]:
    """The cheap invariants: what the drill waits for before the full check."""
    if not drill.stream_done.is_set():
        return ["the stream is still running"]
    figures = Figures()
    return (
        quiet(drill)
        + log_and_archive(drill, figures, with_s3=False)
        + callbacks(drill, figures)
        + imports(drill, figures)
        + malformed(drill)
    )


def full_check(drill: Drill) -> tuple[list[str], Figures]:
    """Every invariant, with the figures for the report."""
    figures = Figures()
    stats = drill.sim.ground_truth()["events"]
    figures.dropped_upstream = sum(stats.get("dropped", {}).values())
    figures.extra["stage_seconds"] = stage_latency(drill)
    problems = (
        quiet(drill)
        + log_and_archive(drill, figures, with_s3=True)
        + callbacks(drill, figures)
        + imports(drill, figures)
        + malformed(drill)
        + projections(drill)
        + secrets(drill)
    )
    return problems, figures
