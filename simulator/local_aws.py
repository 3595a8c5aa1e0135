"""A local AWS for the demo, the tests and the benchmarks: the ``moto`` server over real HTTP.

moto runs as a thread (:class:`moto.server.ThreadedMotoServer`) on a free loopback port, and every
client reaches it through botocore's own ``AWS_ENDPOINT_URL`` variable, exactly as a deployment
would reach a VPC endpoint.  Nothing here is imported by the workers: production code never knows
it is talking to an emulator.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

#: Credentials moto accepts; real AWS would reject them, which is the point.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalAws:
    """A running moto server and the endpoint URL that reaches it."""

    server: ThreadedMotoServer
    endpoint_url: str

    def stop(self) -> None:
        self.server.stop()


def start_local_aws(port: int | None = None) -> LocalAws:
    """Start moto on loopback and return its endpoint; the caller stops it."""
    chosen = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=chosen, verbose=False)
    server.start()
    return LocalAws(server=server, endpoint_url=f"http://127.0.0.1:{chosen}")


def local_aws_environment(endpoint_url: str, region: str = "us-east-1") -> dict[str, str]:
    """Environment variables that point botocore (and so every client of ours) at moto."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


@contextmanager
def local_aws(port: int | None = None) -> Iterator[LocalAws]:
    """Run moto for the duration of a ``with`` block, with the environment pointed at it."""
    aws = start_local_aws(port)
    saved = {key: os.environ.get(key) for key in local_aws_environment("")}
    os.environ.update(local_aws_environment(aws.endpoint_url))
    try:
        yield aws
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.stop()
