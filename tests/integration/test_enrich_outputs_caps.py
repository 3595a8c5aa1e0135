"""A hostile ``outputs.json`` (too deep, too big) never stops a run's COMPLETED callback: the
run is enriched and delivered without its output mapping, and a dead letter says why.  End to
end like tests/integration/test_enrich_callback.py: the simulator, moto S3, the receiver,
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from eventlog.projections import RUN_ENRICHED
from eventlog.tables import events
from tests.helpers.callback_rig import Rig

DEEP = ('{"result": ' + "[" * 900 + "]" * 900 + "}").encode()


def _oversized(run_id: str) -> bytes:
    return json.dumps(
        {"bam": {"class": "File", "location": f"s3://out/{run_id}/x.bam"}, "pad": "x" * 10_000}
    ).encode()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (lambda run_id: DEEP, "nests deeper than 32 levels (ENRICH_OUTPUTS_MAX_DEPTH)"),
        (_oversized, "is larger than 4096 bytes (ENRICH_OUTPUTS_MAX_BYTES, it has 100"),
    ],
    ids=["900-levels", "over-size"],
)
def test_a_hostile_outputs_file_still_sends_the_completed_callback(
    make_rig: Callable[..., Rig],
    s3: Any,
    body: Callable[[str], bytes],
    why: str,
) -> None:
    rig = make_rig(seed=7, enrich_outputs_max_bytes=4096)
    run_id = rig.sim.add_run(tasks=1, outcome="COMPLETED")
    delivered = rig.simulate()
    ((uri, _mapping),) = rig.sim.outputs_stored.items()
    bucket, key = uri[5:].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=body(run_id))  # the workflow wrote this
    rig.feed(delivered)
    rig.settle()

    state = rig.receiver.state(rig.wes_ids()[run_id])
    assert state.omics_status == "COMPLETED"
    assert state.outputs is None
    assert state.log_urls  # the rest of the enrichment went with it
    (enriched,) = [
        r.payload["detail"]
        for r in rig.rows(events, events.c.detail_type == RUN_ENRICHED)
        if r.payload["detail"]["status"] == "COMPLETED"
    ]
    assert "outputMapping" not in enriched and why in enriched["outputsNote"]
    (letter,) = rig.dead_letters("outputs")
    assert letter.stage == "enrich" and why in letter.reason and uri in letter.reason
    completed = {e["id"] for e in delivered if e["detail"]["status"] == "COMPLETED"}
    assert letter.event_id in completed
    assert rig.dead_letters("stage") == []  # nothing failed
