"""The metrics pool: the CloudWatch emitter and the alerts follower, in one worker loop.

Why a module of its own: the emitter (:mod:`workers.metrics`) and the alerts follower
(:mod:`workers.alerts`) are independent followers of the log, each with its own cursor, so a
CloudWatch outage does not hold up alerts and an SNS outage does not hold up metrics.  They share
a loop and a queue, and that wiring is all this module holds; keeping it out of both followers
is what keeps them from importing each other.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from workers.alerts import AlertsFollower
from workers.follower_loop import Followed, FollowerLoop, FollowerStep
from workers.metrics import QUEUE, MetricsEmitter
from workers.runtime import Runtime, runtime_of


class MetricsPoolStep(FollowerStep):
    """Runs the metrics emitter and the alerts follower every ``METRICS_FLUSH_INTERVAL`` in a
    worker that consumes queue ``metrics`` (:mod:`workers.follower_loop`): a backlog of metrics
    takes up to 20 full batches, then the alerts' turn."""

    label = "metrics-pool"
    queue = QUEUE

    def create(self, parent: Any) -> FollowerLoop:
        return metrics_loop(runtime_of(parent.app))


def metrics_loop(runtime: Runtime) -> FollowerLoop:
    """The metrics pool's loop: the emitter (20 full batches a turn at most), then the alerts."""
    followers = [
        Followed("metrics", MetricsEmitter(runtime), drain=20),
        Followed("alerts", AlertsFollower(runtime)),
    ]
    return FollowerLoop("metrics-pool", runtime.settings.metrics_flush_interval, followers)


def install(app: Celery) -> None:
    """Make every worker of ``app`` that consumes queue ``metrics`` run the metrics pool."""
    app.steps["worker"].add(MetricsPoolStep)
