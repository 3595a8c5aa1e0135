"""A local AWS for the demo, the tests and the benchmarks: the ``moto`` server over real HTTP.

moto runs as a thread (:class:`moto.server.ThreadedMotoServer`) on a free loopback port, and every
client reaches it through botocore's own ``AWS_ENDPOINT_URL`` variable, exactly as a deployment
would reach a VPC endpoint.  Nothing here is imported by the workers: production code never knows
it is talking to an emulator.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto import backends
from moto.core.utils import unix_time
from moto.server import ThreadedMotoServer
from moto.sqs.models import Message, SQSBackend

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


def _retention_check(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's own check, reading the one attribute it needs instead of all of them."""
    retention_period = self.get_queue(queue_name).message_retention_period
    return bool(retention_period + message.sent_timestamp / 1000 > unix_time())


def lighten_moto() -> None:
    """Take two costs off moto that real AWS does not have, keeping every answer the same.

    * For each message ``ReceiveMessage`` hands out, moto checks the retention period by building
      *every* queue attribute, the approximate counts among them, which walk all the queue's
      messages: one receive from a queue of *n* messages costs O(n²).  Profiled on the
      2,000-event simulated stream, that walk was 28 % of all CPU of the test process.
    * For each request, the server lists moto's package directory to learn whether the host
      names a service (8 % of the same profile); the list is the same every time.

    Idempotent; patches the classes in this process only (the server is a thread of it).
    """
    if SQSBackend.is_message_valid_based_on_retention_period is _retention_check:
        return
    SQSBackend.is_message_valid_based_on_retention_period = _retention_check  # type: ignore[method-assign]
    modules = tuple(backends.list_of_moto_modules())
    cached: Any = functools.wraps(backends.list_of_moto_modules)(lambda: modules)
    backends.list_of_moto_modules = cached


def start_local_aws(port: int | None = None) -> LocalAws:
    """Start moto on loopback and return its endpoint; the caller stops it."""
    lighten_moto()
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
