"""An ASGI app served by uvicorn from a daemon thread, on a port known before it starts.

The HealthOmics simulator and the NGS360 receiver are both local fakes that tests, benchmarks
and the embedded demo run in-process next to real HTTP clients.  Why uvicorn in a thread: a
stdlib ``ThreadingHTTPServer`` stalls with keep-alive clients (~23 requests/s on our machines,
docs/design.md §7) while uvicorn answers ~1,000/s, which matters once throttling tests hammer
an API.

We bind the socket ourselves so ``port=0`` gives a free port whose number we know before the
server starts, with ``IPPROTO_TCP`` so that uvicorn sets ``TCP_NODELAY`` on accepted
connections (without it every keep-alive response waits ~40 ms for a delayed ACK), and
:meth:`ThreadedHttpServer.start` returns only once ``health_path`` has answered 200.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn


class ThreadedHttpServer:
    """Serve ``app`` until :meth:`stop`; ``start()`` returns the base URL."""

    def __init__(
        self, app: Any, *, host: str, port: int, name: str, health_path: str, backlog: int = 128
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.health_path = health_path
        self.backlog = backlog
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError(f"{self.name} not started")
        host = self.host if self.host not in {"0.0.0.0", "::"} else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        if self._thread is not None:
            return self.url
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(self.backlog)
        sock.set_inheritable(True)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._thread is not None and not self._thread.is_alive():
                break
            try:
                if httpx.get(f"{self.url}{self.health_path}", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s: {last}")

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
