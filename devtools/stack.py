"""The whole system as real processes on one machine: for benchmarks, fault drills and soaks.

Production runs each process kind in its own container (docker-compose.yml); the benchmarks and
the fault-injection suite need the same shape on one machine, with a handle on every process so
that it can be killed, restarted and measured.  ``ProcessStack`` is that handle::

    with ProcessStack(settings, log_dir) as stack:
        stack.start_pools()                       # archive, enrich, callback, imports, metrics
        stack.start_poller([queue_url])
        stack.start_sweeper(every=1.0)
        stack.kill("worker:enrich")               # SIGKILL, as the OOM killer would
        stack.restart("worker:enrich")
        print(stack.usage())                      # CPU seconds and peak RSS per process

Every process is ``python -m omics_events …`` with its settings passed the way a container gets
them, as environment variables (``settings_environment``), so what is measured here is what
runs in production.  Each process gets its own session (``start_new_session``) so a kill reaches
a prefork pool's children too, and its output goes to ``{log_dir}/{name}.log``.

CPU and memory are sampled in a background thread with psutil (process plus children): peak RSS
is the largest sum seen, CPU is user + system seconds, kept across restarts of the same name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from pydantic import SecretStr

from celeryconfig import QUEUES
from schemas.settings import Settings, env_name

REPO = Path(__file__).resolve().parent.parent


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that give a process exactly these settings (non-defaults)."""
    env: dict[str, str] = {}
    for name, spec in Settings.model_fields.items():
        value = getattr(settings, name)
        default = spec.default_factory() if spec.default_factory else spec.default  # type: ignore[call-arg]
        if value == default or value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()  # str() of a SecretStr is the mask, not the secret
        elif isinstance(value, list):
            text = ",".join(map(str, value))
        else:
            text = str(getattr(value, "value", value))
        env[env_name(spec)] = text
    return env


@dataclass
class ProcessUsage:
    """What one named process cost, summed over its restarts."""

    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    restarts: int = 0
    #: restarts by the supervisor after the process exited on its own (a crash)
    crashes: int = 0

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / 2**20


@dataclass
class _Managed:
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    usage: ProcessUsage = field(default_factory=ProcessUsage)
    cpu_before_restart: float = 0.0
    last_cpu: float = 0.0
    log_offset: int = 0  # where this incarnation's output starts in the (appended) log
    held_down: bool = False  # killed or stopped on purpose: the supervisor leaves it down


class ProcessStack:
    """Start, kill, restart and measure ``omics-events`` processes sharing one set of settings."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        sample_interval: float = 0.5,
        supervise: bool = False,
    ) -> None:
        """``supervise=True`` restarts a process that exits on its own, a second later, as the
        containers' ``restart: unless-stopped`` policy does in production (docker-compose.yml);
        processes ended through :meth:`kill` or :meth:`stop` stay down until restarted."""
        self.settings = settings
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
        self.env = inherited | settings_environment(settings) | {"PYTHONUNBUFFERED": "1"}
        self.env.update(extra_env or {})
        self._managed: dict[str, _Managed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sample_interval = sample_interval
        self._sampler = threading.Thread(
            target=self._sample_loop, name="stack-sampler", daemon=True
        )
        self._sampler.start()
        self._supervisor: threading.Thread | None = None
        if supervise:
            self._supervisor = threading.Thread(
                target=self._supervise, name="stack-supervisor", daemon=True
            )
            self._supervisor.start()

    # --- starting --------------------------------------------------------------------------

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``python -m omics_events ARGV`` under ``name`` (replacing a dead one)."""
        with self._lock:
            if name in self._managed and self._managed[name].process.poll() is None:
                raise RuntimeError(f"{name} is already running")
            # each process touches its own health file (poller: each receive cycle, sweeper:
            # each round, worker: each finished task), so readiness can be seen per process
            own = {"HEALTH_FILE": str(self.health_path(name))}
            merged = self.env | own | dict(env or {})
            self.health_path(name).unlink(missing_ok=True)
            log_path = self.log_dir / f"{name.replace(':', '-')}.log"
            offset = log_path.stat().st_size if log_path.exists() else 0
            process = self._spawn(name, list(argv), merged)
            previous = self._managed.get(name)
            managed = _Managed(list(argv), merged, process, log_offset=offset)
            if previous is not None:
                managed.usage = previous.usage
                managed.usage.restarts += 1
                managed.cpu_before_restart = previous.usage.cpu_seconds
            self._managed[name] = managed

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name.replace(':', '-')}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "omics_events", *argv],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_pool(
        self,
        pool: str,
        *,
        concurrency: int = 2,
        pool_type: str = "threads",
        name: str = "",
        env: Mapping[str, str] | None = None,
    ) -> str:
        name = name or f"worker:{pool}"
        argv = [
            "worker",
            "--pool",
            pool,
            "--pool-type",
            pool_type,
            "--concurrency",
            str(concurrency),
        ]
        self.start(name, argv, {"OMICS_PROCESS": f"worker:{pool}", **(env or {})})
        return name

    def start_pools(
        self,
        pools: Sequence[str] = QUEUES,
        *,
        concurrency_of: Mapping[str, int] | None = None,
        **options: Any,
    ) -> list[str]:
        """One worker per pool; ``concurrency_of`` overrides ``concurrency`` for some pools."""
        overrides = concurrency_of or {}
        return [
            self.start_pool(
                pool, **(options | ({"concurrency": overrides[pool]} if pool in overrides else {}))
            )
            for pool in pools
        ]

    def start_poller(self, queue_urls: Sequence[str], *, receivers: int = 2) -> str:
        argv = ["poll", *[arg for url in queue_urls for arg in ("--queue-url", url)]]
        self.start("poller", [*argv, "--receivers", str(receivers)], {"OMICS_PROCESS": "poller"})
        return "poller"

    def start_sweeper(self, every: float = 1.0) -> str:
        self.start("sweeper", ["sweep", "--every", str(every)], {"OMICS_PROCESS": "sweeper"})
        return "sweeper"

    def health_path(self, name: str) -> Path:
        return self.log_dir / f"{name.replace(':', '-')}.health"

    def ready(self, name: str) -> bool:
        """Up and doing its job: a worker has connected and said ``ready``; the poller has
        completed a receive cycle; the sweeper a round."""
        if not self.running(name):
            return False
        if name.startswith("worker:"):
            with contextlib.suppress(FileNotFoundError):
                path = self.log_dir / f"{name.replace(':', '-')}.log"
                return b" ready." in path.read_bytes()[self._managed[name].log_offset :]
            return False
        return self.health_path(name).exists()

    def wait_ready(self, names: Sequence[str] | None = None, timeout: float = 120.0) -> None:
        """Wait until every named process (default: all) is :meth:`ready`; raise if one dies
        or the deadline passes, with the end of its log."""
        deadline = time.monotonic() + timeout
        pending = list(names or self.names())
        while pending:
            for name in list(pending):
                if self.ready(name):
                    pending.remove(name)
                elif not self.running(name) and self._supervisor is None:
                    raise RuntimeError(f"{name} exited: {self.log(name)[-2000:]}")
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {timeout:.0f} s: {', '.join(pending)}")
            time.sleep(0.1)

    # --- faults ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._managed)

    def running(self, name: str) -> bool:
        return self._managed[name].process.poll() is None

    def kill(self, name: str, sig: int = signal.SIGKILL, wait: float = 30.0) -> int | None:
        """Signal the process's whole session; waits for it to end. Returns its exit code."""
        self._managed[name].held_down = True
        process = self._managed[name].process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return process.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            return process.wait(wait)

    def restart(self, name: str) -> None:
        managed = self._managed[name]
        if managed.process.poll() is None:
            self.kill(name)
        self.start(name, managed.argv, managed.env)

    def stop(self, name: str, within: float = 30.0) -> float:
        """SIGTERM and wait (SIGKILL after ``within``); seconds it took to exit."""
        started = time.monotonic()
        self._managed[name].held_down = True
        process = self._managed[name].process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(within)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(within)
        return time.monotonic() - started

    def close(self, within: float = 30.0) -> None:
        """SIGTERM every process at once, then wait; SIGKILL whatever is left of each session.

        All at once because each process may take seconds to finish its work in hand; one after
        the other, a stack of seven would take the sum of them.
        """
        self._stop.set()  # the supervisor first: nothing is restarted from here on
        if self._supervisor is not None:
            self._supervisor.join(10)
        for managed in self._managed.values():
            managed.held_down = True
            if managed.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    managed.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within
        for managed in self._managed.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(max(0.1, deadline - time.monotonic()))
            # the session's stragglers too (a prefork pool's children, a hung main process)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(managed.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(5)
        self._sampler.join(5)

    def __enter__(self) -> ProcessStack:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                crashed = [
                    name
                    for name, managed in self._managed.items()
                    if managed.process.poll() is not None and not managed.held_down
                ]
            for name in crashed:
                if self._stop.is_set():
                    return
                with contextlib.suppress(RuntimeError):  # restarted meanwhile
                    self.start(name, self._managed[name].argv, self._managed[name].env)
                    self._managed[name].usage.crashes += 1

    # --- measuring -------------------------------------------------------------------------

    def usage(self) -> dict[str, ProcessUsage]:
        self._sample_once()
        return {name: managed.usage for name, managed in self._managed.items()}

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name.replace(':', '-')}.log").read_text(errors="replace")

    def _sample_loop(self) -> None:
        while not self._stop.wait(self._sample_interval):
            self._sample_once()

    def _sample_once(self) -> None:
        with self._lock:
            items = list(self._managed.values())
        for managed in items:
            try:
                root = psutil.Process(managed.process.pid)
                family = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in family)
                times = [p.cpu_times() for p in family]
            except psutil.Error:
                continue  # ended between looking and asking: the last sample stands
            cpu = sum(t.user + t.system for t in times)
            managed.last_cpu = max(managed.last_cpu, cpu)
            managed.usage.cpu_seconds = managed.cpu_before_restart + managed.last_cpu
            managed.usage.peak_rss_bytes = max(managed.usage.peak_rss_bytes, rss)


class RedisServer:
    """A private ``redis-server`` that can really be killed and restarted with its data lost.

    The shared Redis other tests and processes use must never be flushed or restarted, so a
    drill that needs "Redis restarted, everything in it gone" runs its own: no RDB snapshot, no
    append-only file, so a restart always comes back empty, on the same port (the clients'
    ``REDIS_URL`` stays valid and they reconnect as they would to a restarted server).
    """

    def __init__(self, port: int, log_path: Path, binary: str = "redis-server") -> None:
        self.port = port
        self.log_path = Path(log_path)
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it and wait until it answers PING."""
        import redis

        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server on port {self.port} did not start: "
                        f"{self.log_path.read_text(errors='replace')[-500:]}"
                    ) from None
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown save (there is none configured anyway), data gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
