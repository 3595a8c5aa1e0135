"""A TCP proxy that injects network faults between a process and a real server.

* ``holding``: new connections are accepted and their first bytes read, but nothing is
  forwarded — the client is stuck mid-request (a worker in the middle of an S3 PUT), which is
  exactly when a test wants to kill it.  ``held`` is set once such a connection exists.
* :meth:`cut` / :meth:`restore`: every open connection is closed and new ones are refused
  until restored — to the client, the server is down (a PostgreSQL outage), without stopping
  the real server other tests share.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.holding = threading.Event()
        self.held = threading.Event()
        self._down = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        self._down.set()
        self._close_all()

    def restore(self) -> None:
        self._down.clear()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._close_all()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()
                continue
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.holding.is_set():
            with contextlib.suppress(OSError):
                client.recv(65536)
            self.held.set()
            self._stop.wait()
            return
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self._track(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
