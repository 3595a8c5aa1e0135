"""Settings of run enrichment (GetRun, ``outputs.json``) and of the reconciler that checks
runs the log has had no news of."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.settings.fields import env_var


class EnrichmentSettings(BaseModel):
    """What enrichment reads, and when the reconciler asks HealthOmics itself."""

    enrich_runs: bool = Field(
        default=True,
        validation_alias=env_var("ENRICH_RUNS"),
        description="Enrich every run status change from the HealthOmics API and send it to "
        "NGS360 (the `enrich` and `callback` pools). `false`: run events are only archived.",
    )
    enrich_outputs_wait: float = Field(
        default=300.0,
        ge=0,
        validation_alias=env_var("ENRICH_OUTPUTS_WAIT"),
        description="Seconds after a COMPLETED event arrived during which enrichment keeps "
        "looking for the run's `outputs.json` (retrying with backoff) before it goes on without "
        "the output mapping.",
    )
    enrich_outputs_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        validation_alias=env_var("ENRICH_OUTPUTS_MAX_BYTES"),
        description="Largest `outputs.json` read, in bytes. A bigger one is not read: the run "
        "is enriched and its callback sent without the output mapping, and a dead letter says "
        "why.",
    )
    enrich_outputs_max_depth: int = Field(
        default=32,
        ge=2,
        le=500,
        validation_alias=env_var("ENRICH_OUTPUTS_MAX_DEPTH"),
        description="Deepest JSON nesting read in an `outputs.json` (CWL records of arrays of "
        "files need a handful); a deeper one is treated like an oversized one.",
    )
    reconcile_after: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=env_var("RECONCILE_AFTER"),
        description="Seconds without news after which a run the log holds as not finished is "
        "checked with GetRun by the reconciler (HealthOmics events are best effort).",
    )
    reconcile_interval: float = Field(
        default=300.0,
        ge=0,
        validation_alias=env_var("RECONCILE_INTERVAL"),
        description="Seconds between two reconciler rounds inside the poller; 0 turns them off "
        "(`omics-events reconcile --every N` runs it on its own).",
    )
    reconcile_batch: int = Field(
        default=200,
        ge=1,
        validation_alias=env_var("RECONCILE_BATCH"),
        description="Most runs checked in one reconciler round (oldest news first).",
    )
    reconcile_discover_interval: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=env_var("RECONCILE_DISCOVER_INTERVAL"),
        description="Seconds between two listings of every run (ListRuns) by the poller's "
        "reconciler, which finds runs the log never heard of because every event of theirs was "
        "lost; 0 turns it off. Only runs created after the log's first event are reported.",
    )
