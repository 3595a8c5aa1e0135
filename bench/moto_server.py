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
the baseline use this server.  Started by ``bench/harness.py``; by hand::

    .venv/bin/python bench/moto_server.py -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.utils import unix_time
from moto.server import main
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

if __name__ == "__main__":
    main()
