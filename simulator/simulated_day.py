"""A realistic simulated day of EventBridge events, generated in memory in seconds.

Why: rebuild, replay and their benchmarks need tens of thousands to a million events shaped
like a lab's day — runs and their tasks moving through their lifecycles, import jobs and read
sets, store status changes — with EventBridge's delivery faults (duplicates, out-of-order
delivery, an archive replay re-sending some events with ``replay-name``), and need the *same*
events for the same seed.  Feeding them through SQS would take hours on the local fakes
(docs/design.md §7), so this drives the HealthOmics simulator on a :class:`ManualClock` with a
:class:`MemorySink` (≈40,000 events/s) and adds the store events it does not simulate.

Large days are made of several simulators (one per ``chunk`` events, each its own seed) spread
over the same 24 hours, so memory stays bounded when the caller consumes chunk by chunk.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator import ManualClock, MemorySink, Simulator, realistic_mix

#: The day's first second (the simulator's default epoch: a real 2026 trace).
DAY_START = datetime(2026, 1, 22, 22, 16, 9, tzinfo=UTC)
#: Events per simulated run with ``tasks_per_run=(6, 10)`` (measured: ≈35).
EVENTS_PER_RUN = 35
ACCOUNT = "123456789012"
REGION = "us-east-1"
STORE_TYPES = {
    "Sequence Store Status Change": ("sequenceStore", ["CREATED", "ACTIVE", "UPDATED", "ACTIVE"]),
    "Reference Store Status Change": ("referenceStore", ["CREATED", "ACTIVE", "DELETED"]),
    "Variant Store Status Change": ("variantStore", ["CREATING", "CREATED", "ACTIVE"]),
    "Annotation Store Status Change": ("annotationStore", ["CREATING", "creation failed"]),
}


def _store_events(rng: random.Random, stores: int, start: datetime) -> list[dict[str, Any]]:
    """Status events of ``stores`` stores over the day, ids from ``rng`` (deterministic)."""
    out: list[dict[str, Any]] = []
    kinds = sorted(STORE_TYPES)
    for index in range(stores):
        detail_type = kinds[index % len(kinds)]
        resource, statuses = STORE_TYPES[detail_type]
        store_id = str(rng.randrange(10**9, 10**10))
        arn = f"arn:aws:omics:{REGION}:{ACCOUNT}:{resource}/{store_id}"
        when = start + timedelta(seconds=rng.uniform(0, 80_000))
        for status in statuses:
            when += timedelta(seconds=rng.randint(1, 600))
            detail: dict[str, Any] = {"omicsVersion": "1.0.0", "arn": arn, "status": status}
            if resource in {"variantStore", "annotationStore"}:
                detail.update(storeId=store_id, storeName=f"{resource.lower()}_{index}")
            out.append(
                {
                    "version": "0",
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "detail-type": detail_type,
                    "source": "aws.omics",
                    "account": ACCOUNT,
                    "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": REGION,
                    "resources": [arn],
                    "detail": detail,
                }
            )
    return out


def simulated_chunk(
    events: int,
    *,
    seed: int,
    duplicate_rate: float = 0.05,
    reorder_rate: float = 0.1,
    replay_rate: float = 0.01,
    start: datetime = DAY_START,
) -> list[dict[str, Any]]:
    """About ``events`` events of one simulated account over a day, as delivered (faults on)."""
    runs = max(1, events // EVENTS_PER_RUN)
    sink = MemorySink()
    sim = Simulator(
        seed=seed,
        clock=ManualClock(start),
        sink=sink,
        deterministic_ids=True,
        duplicate_rate=duplicate_rate,
        reorder_rate=reorder_rate,
    )
    realistic_mix(
        sim,
        runs=runs,
        tasks_per_run=(6, 10),
        import_jobs=max(1, runs // 40),
        stagger=86_400 / runs,
    )
    sim.run_until_idle()
    delivered = list(sink.events)
    rng = random.Random(f"{seed}/day")
    stores = _store_events(rng, max(4, events // 2000), start)
    for event in stores:  # delivered at a random place, sometimes twice
        delivered.insert(rng.randrange(len(delivered) + 1), event)
        if rng.random() < duplicate_rate:
            delivered.insert(rng.randrange(len(delivered) + 1), dict(event))
    for index in rng.sample(range(len(delivered)), int(len(delivered) * replay_rate)):
        resent = dict(delivered[index])  # EventBridge archive replay: the same event, marked
        resent["replay-name"] = f"omics-backfill-{seed}"
        delivered.insert(rng.randrange(len(delivered) + 1), resent)
    return delivered


def simulated_day(
    total: int,
    *,
    seed: int = 1,
    chunk: int = 50_000,
    duplicate_rate: float = 0.05,
    reorder_rate: float = 0.1,
    replay_rate: float = 0.01,
) -> Iterator[list[dict[str, Any]]]:
    """Exactly ``total`` delivered events (duplicates included), in chunks of about ``chunk``."""
    produced = 0
    part = 0
    while produced < total:
        want = min(chunk, total - produced)
        events = simulated_chunk(
            max(want, 200),
            seed=seed * 1000 + part,
            duplicate_rate=duplicate_rate,
            reorder_rate=reorder_rate,
            replay_rate=replay_rate,
        )
        while len(events) < want:  # a short chunk (few runs): top it up with another seed
            part += 1
            events += simulated_chunk(want - len(events) + 200, seed=seed * 1000 + part)
        events = events[:want]
        produced += len(events)
        part += 1
        yield events


def simulated_day_events(total: int, **options: Any) -> list[dict[str, Any]]:
    """:func:`simulated_day` as one list."""
    return [event for chunk in simulated_day(total, **options) for event in chunk]
