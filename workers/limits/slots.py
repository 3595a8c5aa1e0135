"""Global concurrency limits: at most N holders of a resource at once, across every worker.

Why: HealthOmics allows 5 concurrent read-set import jobs per account (quota ``L-F57A8D18``),
and a job is not a call — it runs for minutes or hours after StartReadSetImportJob returned.  A
rate limiter cannot express that; a counting semaphore can.  It must be shared by every process
of every imports worker, so it lives in a :class:`SlotStore` backend
(:mod:`workers.limits.backends`: Redis, or memory when every worker is in this one process).

A slot is *leased*, not owned forever: the holder (an import plan's id) takes it before starting
the job and gives it back when the job's terminal event is handled.  HealthOmics events are best
effort, so a terminal event may never come; the lease then expires after ``ttl`` seconds and the
slot returns by itself.  Taking a slot one already holds renews it, so a retried task cannot
take two.

The limit is a courtesy to the service, not the last line of defence: HealthOmics itself
answers ``ServiceQuotaExceededException`` (402) past its quota, which the imports pool treats as
"wait", never as a failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class SlotStore(ABC):
    """Leased slots of one resource (``tests/contract/test_limits.py`` holds every backend to it).

    ``acquire`` takes or renews ``holder``'s lease for ``ttl`` seconds if fewer than ``limit``
    others hold one; an expired lease is no holder; ``release`` of a non-holder is a no-op.
    """

    @abstractmethod
    def acquire(self, holder: str, limit: int, ttl: float) -> bool: ...

    @abstractmethod
    def release(self, holder: str) -> None: ...

    @abstractmethod
    def holders(self) -> list[str]: ...
