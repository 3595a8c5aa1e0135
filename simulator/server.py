"""Serve the simulator's HealthOmics API over real HTTP, from a background thread.

Tests and the embedded default run the simulator in-process next to real boto3 clients; the
serving itself (uvicorn in a thread, a port known up front, ready once it answers) is
:mod:`simulator.http_thread`.
"""

from __future__ import annotations

from simulator.api import build_app
from simulator.http_thread import ThreadedHttpServer
from simulator.simulator import Simulator


class SimulatorServer:
    """``SimulatorServer(sim).start()`` → base URL for ``boto3.client("omics", endpoint_url=…)``."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self._http = ThreadedHttpServer(
            build_app(simulator),
            host=host,
            port=port,
            name="omics-sim-http",
            health_path="/_simulator/health",
        )

    @property
    def host(self) -> str:
        return self._http.host

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once the server answers."""
        return self._http.start(timeout)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        self._http.stop()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
