"""Rebuild and replay rates on PostgreSQL, for 100k and 1M events.

What it measures, for each size N:

* **load** — N simulated events (a realistic day: runs, tasks, imports, stores; duplicates,
  reordering and archive replays on; :mod:`simulator.simulated_day`) parsed and inserted
  straight into ``events`` in batches (no folds: the log only), then ``VACUUM ANALYZE`` (as
  autovacuum would have done to a lab's log long before), and the same events written as a
  folder archive: ``--layout batches`` (the default) by the archive pool's own follower
  (:class:`workers.archive.ArchiveFollower`, gzip JSON-lines objects of 1,000 log rows),
  ``--layout per-event`` as archives before 2026-12 (``raw/YYYY/MM/DD/{id}.json``); before
  each timed phase, a ``CHECKPOINT`` and a ``sync`` (:func:`settle`);
* **rebuild** — ``eventlog.rebuild.rebuild``: the whole log folded into scratch, swapped into
  the live projection tables, checksummed (events of the log per second);
* **check** — ``rebuild --check``: fold into scratch and compare with the live tables;
* **replay** — ``producers.replay.replay`` from that folder into an empty database: list, then
  read and parse in worker processes and append with ``COPY`` (events per second), then the
  rebuild it ends with, reported apart and in total.  ``--replays K`` appends K times, each
  into a new database, and reports the median: on a shared virtual disk the same append has
  taken 72 to 106 s at 1M (the disk's latency, not the CPU: PostgreSQL waits on WAL syncs).

Figures, not assertions (docs/design.md §2).  Run::

    .venv/bin/python bench/rebuild_replay.py --events 100000 --events 1000000 --replays 3 --write

``--write`` appends the table, the command, the date, the machine and the versions to
``docs/benchmarks.md``.  Needs PostgreSQL (``DATABASE_URL``, default the local one); every
database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eventlog import rebuild as rebuilder  # noqa: E402
from eventlog.db import create_db_engine, upgrade  # noqa: E402
from eventlog.store import LogEntry, utcnow  # noqa: E402
from eventlog.tables import events  # noqa: E402
from producers.replay import ReplayReport, open_source, replay  # noqa: E402
from schemas.parsing import ParsedEvent, canonical_json, parse_event  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from simulator.simulated_day import simulated_day  # noqa: E402
from workers import create_app  # noqa: E402
from workers.archive import ArchiveFollower  # noqa: E402
from workers.storage import raw_key  # noqa: E402

console = Console(width=160)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGETS = {"rebuild": 20_000, "replay": 10_000}


@dataclass
class Figures:
    events: int
    unique: int
    load_s: float
    rebuild_s: float
    rebuild_rate: float
    check_s: float
    check_rate: float
    replay_s: float
    replay_rate: float
    replay_rebuild_s: float
    replay_total_rate: float
    checksum_equal: bool
    rows: dict[str, int]
    replay_rates: list[float]  # every replay's append rate; replay_s/replay_rate are the median's


def _admin(base_url: str) -> psycopg.Connection:
    libpq = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=True)


def _url(base_url: str, name: str) -> str:
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def _database(base_url: str, names: list[str]) -> str:
    name = f"oe_bench_{uuid.uuid4().hex[:10]}"
    with _admin(base_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    names.append(name)
    url = _url(base_url, name)
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def settle(base_url: str) -> None:
    """Let what the load wrote reach the disk before a phase is timed: at 1M events the load
    leaves ≈ 1 GB of PostgreSQL pages and a million files dirty, and a replay timed while they
    are written back spends a third of its time waiting on the disk (measuring the load, not
    the replay)."""
    with _admin(base_url) as admin:
        admin.execute("CHECKPOINT")
    os.sync()


def write_batches(url: str, archive: Path) -> float:
    """The log as the archive pool writes it: batch objects in a folder archive; seconds."""
    started = time.perf_counter()
    settings = Settings(database_url=url, archive_uri=f"file://{archive}")
    app = create_app(settings)
    follower = ArchiveFollower(app.runtime)
    while follower.run_once():
        pass
    follower.close()
    app.runtime.close()
    return time.perf_counter() - started


def load(url: str, total: int, archive: Path, layout: str) -> tuple[int, float]:
    """Generate, parse, insert into ``events`` (no folds) and write the folder archive."""
    engine = create_db_engine(url)
    started = time.perf_counter()
    seen: set[str] = set()
    statement = insert(events)
    for chunk in simulated_day(total, seed=42):
        rows = []
        for raw in chunk:
            parsed = parse_event(raw)
            if not isinstance(parsed, ParsedEvent) or parsed.event_id in seen:
                continue
            seen.add(parsed.event_id)
            entry = LogEntry.from_parsed(parsed)
            rows.append(
                {
                    "event_id": entry.event_id,
                    "origin": entry.origin,
                    "source": entry.source,
                    "detail_type": entry.detail_type,
                    "resource_arn": entry.resource_arn,
                    "resource_id": entry.resource_id,
                    "status": entry.status,
                    "event_time": entry.event_time,
                    "received_at": utcnow(),
                    "caused_by": None,
                    "payload": entry.payload,
                }
            )
            if layout == "per-event":
                path = archive / raw_key("", parsed.event_id, parsed.time)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(canonical_json(parsed.payload))
        with engine.begin() as connection:
            for start in range(0, len(rows), 5000):
                connection.execute(statement, rows[start : start + 5000])
        console.print(f"  loaded {len(seen):,} events", highlight=False)
    engine.dispose()
    # a lab's log was not bulk-loaded a second ago: autovacuum has been through it (hint bits,
    # visibility map, statistics); without this the rebuild below races autovacuum's first pass
    with _admin(url) as admin:
        admin.execute("VACUUM ANALYZE events")
    if layout == "batches":
        console.print(f"  archive batches written in {write_batches(url, archive):.1f}s")
    return len(seen), time.perf_counter() - started


def replay_once(base_url: str, archive: Path, unique: int, names: list[str]) -> ReplayReport:
    """Append the folder archive into a new, empty database (a lab that lost its own)."""
    app = create_app(Settings(database_url=_database(base_url, names)))
    settle(base_url)
    report = replay(app, open_source(str(archive), s3_client=lambda: None), rebuild_after=False)
    assert report.appended == unique and not report.interrupted, report
    console.print(
        f"  replay (append): {report.seconds:.1f}s, {_rate(report):,.0f} events/s "
        f"({report.fetched:,} objects)"
    )
    app.runtime.close()
    return report


def _rate(report: ReplayReport) -> float:
    """Events appended per second (an object holds one event, or a batch of them)."""
    return report.appended / report.seconds if report.seconds > 0 else 0.0


def measure(
    base_url: str,
    total: int,
    names: list[str],
    workdir: Path,
    replays: int = 1,
    layout: str = "batches",
) -> Figures:
    console.rule(f"{total:,} events")
    archive = workdir / f"archive-{total}"
    log_url = _database(base_url, names)
    unique, load_s = load(log_url, total, archive, layout)
    console.print(f"  load: {load_s:.1f}s")

    engine = create_db_engine(log_url)
    settle(base_url)
    rebuilt = rebuilder.rebuild(engine)
    console.print(f"  rebuild: {rebuilt.seconds:.1f}s, {rebuilt.rate:,.0f} events/s")
    checked = rebuilder.check(engine)
    assert checked.ok, checked.difference
    check_rate = checked.log_events / checked.seconds
    console.print(f"  check: {checked.seconds:.1f}s, {check_rate:,.0f} events/s")
    engine.dispose()

    report = replay_once(base_url, archive, unique, names)
    engine = create_db_engine(_url(base_url, names[-1]))
    again = rebuilder.rebuild(engine)
    engine.dispose()
    console.print(f"  replay's rebuild: {again.seconds:.1f}s")
    # the disk's latency varies from run to run (a shared virtual disk): the median of a few
    reports = [report]
    for _ in range(replays - 1):
        with _admin(base_url) as admin:  # the previous copy, its disk space and dirty pages
            admin.execute(f'DROP DATABASE IF EXISTS "{names[-1]}" WITH (FORCE)')
        reports.append(replay_once(base_url, archive, unique, names))
    middle = sorted(reports, key=lambda r: r.seconds)[len(reports) // 2]
    total_s = middle.seconds + again.seconds
    return Figures(
        events=total,
        unique=unique,
        load_s=load_s,
        rebuild_s=rebuilt.seconds,
        rebuild_rate=rebuilt.rate,
        check_s=checked.seconds,
        check_rate=check_rate,
        replay_s=middle.seconds,
        replay_rate=_rate(middle),
        replay_rebuild_s=again.seconds,
        replay_total_rate=unique / total_s,
        checksum_equal=again.checksum == rebuilt.checksum,
        rows=rebuilt.rows,
        replay_rates=[_rate(r) for r in reports],
    )


def table(results: list[Figures]) -> Table:
    view = Table(title="rebuild and replay on PostgreSQL")
    for column in (
        "events delivered",
        "unique (log)",
        "rebuild s",
        "rebuild ev/s",
        "check ev/s",
        "replay append s",
        "replay ev/s",
        "+ rebuild s",
        "replay total ev/s",
        "same checksum",
    ):
        view.add_column(column, justify="right")
    for r in results:
        view.add_row(
            f"{r.events:,}",
            f"{r.unique:,}",
            f"{r.rebuild_s:.1f}",
            f"{r.rebuild_rate:,.0f}",
            f"{r.check_rate:,.0f}",
            f"{r.replay_s:.1f}",
            f"{r.replay_rate:,.0f}",
            f"{r.replay_rebuild_s:.1f}",
            f"{r.replay_total_rate:,.0f}",
            "yes" if r.checksum_equal else "NO",
        )
    return view


def machine(base_url: str) -> dict[str, str]:
    with _admin(base_url) as admin:
        server = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "load average (1 min) at the end": f"{os.getloadavg()[0]:.2f}",
        "cores": str(os.cpu_count()),
        "memory": f"{memory:.0f} GiB",
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "postgresql": server,
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
    }


def markdown(results: list[Figures], command: str, info: dict[str, str]) -> str:
    lines = [
        f"## Rebuild and replay — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
        "| events delivered | unique (log) | rebuild s | rebuild events/s | check events/s "
        "| replay append s | replay objects/s | + its rebuild s | replay total events/s "
        "| same checksum |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.events:,} | {r.unique:,} | {r.rebuild_s:.1f} | {r.rebuild_rate:,.0f} "
            f"| {r.check_rate:,.0f} | {r.replay_s:.1f} | {r.replay_rate:,.0f} "
            f"| {r.replay_rebuild_s:.1f} | {r.replay_total_rate:,.0f} "
            f"| {'yes' if r.checksum_equal else 'NO'} |"
        )
    rows = results[-1].rows
    lines += [
        "",
        *(
            f"Replays of {r.events:,} events (events/s): "
            + ", ".join(f"{rate:,.0f}" for rate in r.replay_rates)
            + " — the table has the median."
            for r in results
            if len(r.replay_rates) > 1
        ),
        f"Projection rows at {results[-1].events:,} events: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items()))
        + ".",
        f"Targets: rebuild ≥ {TARGETS['rebuild']:,} events/s, replay from a folder ≥ "
        f"{TARGETS['replay']:,} events/s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, action="append", help="repeatable; default 100000")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--write", action="store_true", help="append to docs/benchmarks.md")
    parser.add_argument(
        "--replays", type=int, default=1, help="replays per size (the median is reported)"
    )
    parser.add_argument(
        "--layout",
        choices=("batches", "per-event"),
        default="batches",
        help="the archive replayed: batch objects (since 2026-12) or an object per event",
    )
    args = parser.parse_args(argv)
    sizes = args.events or [100_000]
    console.print(
        f"load average at the start: {os.getloadavg()[0]:.2f} (other work on the "
        "machine slows every figure down)"
    )
    names: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="oe-bench-"))
    results: list[Figures] = []
    try:
        for size in sizes:
            results.append(
                measure(args.database_url, size, names, workdir, args.replays, args.layout)
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with _admin(args.database_url) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    console.print(table(results))
    command = "python bench/rebuild_replay.py " + shlex.join(
        a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("postgres")
    )
    info = machine(args.database_url)
    console.print(info)
    if args.write:
        target = REPO / "docs" / "benchmarks.md"
        if not target.exists():
            target.write_text(
                "# Benchmarks\n\nFigures printed by `bench/`, appended by `--write`; newest last."
                " Never timed assertions in tests (docs/design.md §2).\n\n"
            )
        with target.open("a") as stream:
            stream.write("\n" + markdown(results, command, info))
        console.print(f"appended to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
