"""Serve the simulator's HealthOmics API over real HTTP, from a background thread.

Why uvicorn in a thread: tests and the embedded default run the simulator in-process next to
real boto3 clients.  A stdlib ``ThreadingHTTPServer`` stalls with keep-alive clients (~23
requests/s on our machines, DESIGN §7) while uvicorn answers ~1,000/s, which matters once
throttling tests hammer the API.  We bind the socket ourselves so ``port=0`` gives a free port
whose number we know before the server starts, and :meth:`SimulatorServer.start` returns only once
the server has answered a health request.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from producers.simulator.api import build_app
from producers.simulator.simulator import Simulator


class SimulatorServer:
    """``SimulatorServer(sim).start()`` → base URL for ``boto3.client("omics", endpoint_url=…)``."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("server not started")
        host = self.host if self.host not in {"0.0.0.0", "::"} else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once the server answers."""
        if self._thread is not None:
            return self.url
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only
        # then, and without it every keep-alive response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.set_inheritable(True)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            build_app(self.simulator),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="omics-sim-http", daemon=True
        )
        self._thread.start()
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError("simulator HTTP server exited during start-up")
            try:
                response = httpx.get(f"{self.url}/_simulator/health", timeout=1.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"simulator HTTP server did not answer within {timeout}s: {last}")

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
