"""moto's server for the benches: two O(queue depth) lookups per message made O(1), one race fixed.

moto 5 checks the retention period of every message ``ReceiveMessage`` returns, and the
``ContentBasedDeduplication`` attribute for every message sent, through the queue's
``attributes``, which computes every attribute — among them ``ApproximateNumberOfMessages*``,
scans of the whole queue.  Sending or receiving a 10,000-message backlog is then quadratic, and
the fake SQS, not the system under test, becomes what the benches measure (py-spy on moto: about
half of its CPU in those scans during ``bench/end_to_end.py``, most of it while ``bench/burst.py``
sends).  This reads ``MessageRetentionPeriod`` directly, and answers the send's question without
the counts on a standard queue; the answers are the same.

And moto's ``Queue.delete_message`` replaces the message list without holding the lock that
``add_message`` appends under, so a message sent while another is being deleted can vanish:
``bench/burst.py`` (sending 10,000 while the poller deletes) lost 20 that way.  Deleting under
the lock fixes it.  Both the pipeline and
the baseline use this server.

It also counts and slows requests, so both systems are measured against the same S3: every
request is counted by service (from its SigV4 credential scope) and HTTP method, and
``GET /_bench/requests`` answers the counts as JSON (``{"s3": {"PUT": 12, …}, "sqs": …}``);
``--s3-latency SECONDS`` makes every S3 request wait that long in its server thread before
moto answers (moto has no latency knob).  Server-side on purpose: the wait costs the client
nothing but time, as a remote S3's round trip does, it is the same for every client whatever
its SDK or retry settings, and the count is what the store saw (retries included), not what a
client believes it sent.  Started by ``bench/harness.py``; by hand::

    .venv/bin/python bench/moto_server.py -H 127.0.0.1 -p 5000 [--s3-latency 0.02]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import moto.server
from moto.core.utils import unix_time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import Message, Queue, SQSBackend

_sending = threading.local()
_delete_message = Queue.delete_message
_all_attributes = Queue.attributes
_send_message = SQSBackend.send_message


def _valid_for_retention(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


def _attributes(self: Queue) -> dict[str, Any]:
    """While sending to a standard queue moto only asks for ``ContentBasedDeduplication`` (a
    FIFO attribute): answer without counting every message of the queue."""
    if getattr(_sending, "active", False) and not self.fifo_queue:
        return {}
    return _all_attributes.fget(self)  # type: ignore[no-any-return]


def _send(self: SQSBackend, *args: Any, **kwargs: Any) -> Message:
    _sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.active = False


def _delete(self: Queue, receipt_handle: str) -> None:
    """moto rebuilds the message list without the lock ``add_message`` takes: a message sent
    during a delete is dropped (lost update).  Hold the lock (a reentrant ``Condition``)."""
    with self._messages_lock:
        _delete_message(self, receipt_handle)


SQSBackend.is_message_valid_based_on_retention_period = _valid_for_retention  # type: ignore[method-assign]
Queue.attributes = property(_attributes)  # type: ignore[assignment,method-assign]
SQSBackend.send_message = _send  # type: ignore[method-assign]
Queue.delete_message = _delete  # type: ignore[method-assign]

STATS_PATH = "/_bench/requests"


class CountingDispatcher(DomainDispatcherApplication):
    """moto's WSGI dispatcher, counting each request and delaying the S3 ones."""

    #: seconds every S3 request waits before moto answers it (set by ``main``)
    s3_latency = 0.0
    _counts: Counter[tuple[str, str]] = Counter()
    _lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == STATS_PATH:
            return self._stats(start_response)
        service = _service(environ.get("HTTP_AUTHORIZATION", ""))
        with self._lock:
            self._counts[(service, environ.get("REQUEST_METHOD", "?"))] += 1
        if service == "s3" and self.s3_latency > 0:
            time.sleep(self.s3_latency)  # werkzeug serves each request in its own thread
        return super().__call__(environ, start_response)

    def _stats(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            counts = dict(self._counts)
        out: dict[str, dict[str, int]] = {}
        for (service, method), count in counts.items():
            out.setdefault(service, {})[method] = count
        body = json.dumps(out).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def _service(authorization: str) -> str:
    """``AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, …`` → ``s3``."""
    scope = authorization.partition("Credential=")[2].split(",", 1)[0].split("/")
    return scope[3] if len(scope) == 5 else "unsigned"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--s3-latency", type=float, default=0.0)
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    CountingDispatcher.s3_latency = max(0.0, ours.s3_latency)
    moto.server.DomainDispatcherApplication = CountingDispatcher  # type: ignore[misc]
    moto.server.main(rest)


if __name__ == "__main__":
    main()
