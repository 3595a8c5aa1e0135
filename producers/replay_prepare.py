"""Turning a batch of archived objects into log rows, away from the process that appends them.

Why: a replay is CPU work in Python — reading an object (≈ 15 µs), :func:`schemas.parse_event`
(≈ 50 µs: strict JSON, the envelope and detail models) and formatting the row (≈ 10 µs) — and
the appending process spends the same again waiting on PostgreSQL's ``COPY``.  In one
interpreter the two share one GIL, so a replay ran at ≈ 5,000 objects/s whatever the cores.
Here a batch is prepared in a worker process (:class:`Preparers`) and comes back as what the
log's bulk door takes: for PostgreSQL the ``COPY`` text of its rows
(:func:`eventlog.entries.copy_line`), for SQLite the :class:`eventlog.entries.LogEntry` values;
the replay's own process then only checks, copies and commits.

The workers are plain Python processes running :func:`serve`, fed pickled jobs on
their standard input, as the rebuild's fold processes are (:mod:`eventlog.rebuild`), rather than
a :mod:`multiprocessing` pool: every worker of a spawn or fork-server pool imports the caller's
main module first (CPython runs the main script again in each; the CLI's costs ≈ 0.7 s of CPU,
a benchmark's ≈ 2 s), and a fork of a process holding threads and database connections is
not safe.  A worker imports this module, the parser and :mod:`eventlog.entries` (no
SQLAlchemy): ≈ 0.5 s.  They are started before the listing, so that this overlaps it.

A small replay (one batch or less) is prepared in a thread instead: starting worker processes
costs more than it saves.  A replay *with side effects* is prepared in a thread too and keeps
the parsed events, because the stages they owe and the live folds need them.

What a worker does with a batch is what the intake does with one: parse every raw event, keep
the first of each event id, drop what is outside the window, and hand back the rejected ones
(reason and raw bytes) to be dead-lettered by the appending process — nothing is written here.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from eventlog.entries import LogEntry, copy_line, utcnow
from producers.replay_sources import Item
from schemas.parsing import ParsedEvent, ParseLimits, RawEvent, Rejected, parse_event

if TYPE_CHECKING:
    from producers.replay_sources import Source, Window


@dataclass(frozen=True)
class Job:
    """One batch to prepare: the items to fetch from ``source`` (a folder or a file, readable
    from any process) or the raw events already fetched (S3: fetched by the replay's threads)."""

    limits: ParseLimits
    window: Window
    form: str  # "copy" (PostgreSQL), "entries" (SQLite) or "parsed" (with side effects)
    source: Source | None = None
    # the Items as plain tuples: a NamedTuple pickles (and unpickles) through Python code,
    # ≈ 1 µs an item of the replaying process's time
    items: Sequence[tuple[Any, ...]] = ()
    raws: Sequence[RawEvent] = ()


@dataclass
class Prepared:
    """A batch ready to append, and what was counted on the way."""

    fetched: int  # objects read
    events: int  # events parsed from them
    outside: int  # of which outside the window
    repeated: int  # of which repeating an event id earlier in the batch
    event_ids: list[str] = field(default_factory=list)  # the rows, in order
    copy_text: bytes = b""  # form "copy": the rows as COPY text
    entries: list[LogEntry] = field(default_factory=list)  # form "entries"
    parsed: list[ParsedEvent] = field(default_factory=list)  # form "parsed"
    rejected: list[Rejected] = field(default_factory=list)


def prepare(job: Job) -> Prepared:
    """Fetch, parse and format one batch (in a worker process, or a thread for small ones)."""
    raws: list[RawEvent] = list(job.raws)
    if job.source is not None:
        for fields in job.items:
            raws.extend(job.source.fetch(Item(*fields)))
    received_at = utcnow().isoformat()
    result = Prepared(fetched=len(job.items) or len(raws), events=len(raws), outside=0, repeated=0)
    lines: list[str] = []
    seen: set[str] = set()
    for raw in raws:
        parsed = parse_event(raw, job.limits)
        if isinstance(parsed, Rejected):
            result.rejected.append(parsed)
            continue
        if not job.window.contains(parsed.time):
            result.outside += 1
            continue
        if parsed.event_id in seen:
            result.repeated += 1
            continue
        seen.add(parsed.event_id)
        result.event_ids.append(parsed.event_id)
        if job.form == "parsed":
            result.parsed.append(parsed)
            continue
        entry = LogEntry.from_parsed(parsed)
        if job.form == "entries":
            result.entries.append(entry)
            continue
        # the bytes as received are the payload, unless they were an SNS envelope around it
        payload = (
            json.dumps(parsed.payload, ensure_ascii=False)
            if parsed.unwrapped
            else parsed.raw.decode("utf-8")
        )
        lines.append(copy_line(entry, payload, received_at))
    result.copy_text = "".join(lines).encode("utf-8")
    return result


def default_processes() -> int:
    """One worker process per core: PostgreSQL and the appending process mostly wait."""
    return max(1, os.cpu_count() or 1)


#: A frame on a worker's pipes: its length, then a pickle (a Job in, a Prepared or a _Failed out).
_FRAME = struct.Struct(">Q")


def _write_frame(stream: BinaryIO, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_frame(stream: BinaryIO) -> Any:
    """The next value, or :data:`_CLOSED` at the end of the stream."""
    head = stream.read(_FRAME.size)
    if not head:
        return _CLOSED
    if len(head) < _FRAME.size:
        raise EOFError("a replay worker's pipe closed inside a frame")
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("a replay worker's pipe closed inside a frame")
    return pickle.loads(data)  # our own worker's (or parent's) frame


_CLOSED = object()


@dataclass
class _Failed:
    """What a worker sends back when preparing a batch raised (a file gone since the listing)."""

    error: BaseException


def serve() -> None:
    """A worker: prepare each job read from standard input until it closes."""
    # Ctrl-C reaches the whole process group: the replay stops after the batch in hand, and
    # its workers must live until it has (they are in their own group too; belt and braces)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the frames go on the real standard output; anything printed goes to standard error
    frames_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    frames_in = sys.stdin.buffer
    # the imports are done and live as long as the process: keep them out of every collection
    # (a batch allocates tens of thousands of objects; each collection would walk them too)
    gc.freeze()
    while (job := _read_frame(frames_in)) is not _CLOSED:
        try:
            result: Prepared | _Failed = prepare(job)
        except Exception as error:
            result = _Failed(error)
        _write_frame(frames_out, result)


class _Worker:
    """One worker process and the thread that hands it jobs, one at a time."""

    def __init__(self, jobs: queue.SimpleQueue[tuple[Job, Future[Prepared]] | None]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            # -c, not -m: run as __main__, this module's classes would be pickled as __main__'s
            [sys.executable, "-c", "from producers.replay_prepare import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            process_group=0,  # Ctrl-C is the replay's to handle, not the worker's
        )
        self._jobs = jobs
        self._thread = threading.Thread(target=self._run, name="replay-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        broken: BaseException | None = None
        while (item := self._jobs.get()) is not None:
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            if broken is None:
                try:
                    _write_frame(self.process.stdin, job)
                    result = _read_frame(self.process.stdout)
                    if result is _CLOSED:
                        raise EOFError("no answer")
                except Exception as error:  # the worker or the pipe: no later job can be trusted
                    broken = self._broken(error)
            if broken is not None:  # every job this thread takes from now on fails the same way
                future.set_exception(broken)
            elif isinstance(result, _Failed):
                future.set_exception(result.error)
            else:
                future.set_result(result)

    def _broken(self, error: Exception) -> RuntimeError:
        try:
            code: int | str = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = "still running"
        broken = RuntimeError(
            f"a replay worker process ended (exit {code}; {type(error).__name__}: {error}); "
            "see its errors above"
        )
        broken.__cause__ = error
        return broken

    def close(self, *, wait: bool) -> None:
        """Stop the thread (its None is already queued), then the process: at the end of its
        input when ``wait``, at once otherwise."""
        self._thread.join()
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        if wait:
            try:
                self.process.wait(timeout=30)
                return
            except subprocess.TimeoutExpired:
                pass
        self.process.kill()
        self.process.wait()


class Preparers:
    """Where batches are prepared: worker processes, or one thread for small or live replays.

    ``submit`` returns futures; the caller keeps a bounded number in flight, in order.  The
    workers start at once (a replay creates this before listing its source).
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._jobs: queue.SimpleQueue[tuple[Job, Future[Prepared]] | None] = queue.SimpleQueue()
        self._workers = [_Worker(self._jobs) for _ in range(processes)]
        self._thread: ThreadPoolExecutor | None = None
        if processes == 0:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-parse")

    @property
    def in_flight(self) -> int:
        """Batches worth keeping in flight: one per worker, and one more being appended."""
        return max(1, self.processes) + 1

    def submit(self, job: Job) -> Future[Prepared]:
        if self._thread is not None:
            return self._thread.submit(prepare, job)
        future: Future[Prepared] = Future()
        self._jobs.put((job, future))
        return future

    def close(self, *, wait: bool = True) -> None:
        """Cancel what was not started, let the workers finish (or, ``wait=False``, stop them:
        a replay too small for them that started them before listing)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.close(wait=wait)
