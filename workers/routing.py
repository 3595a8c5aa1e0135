"""Which stages an event owes, by source and ``detail-type`` (docs/design.md §3 step 4).

A stage is also the name of its queue and of its worker pool.  The intake writes one outbox row
per stage when it appends an event; stages that depend on another (a callback needs the
enrichment first) are owed by the stage before them when it finishes, not up front.
"""

from __future__ import annotations

from schemas.imports import parse_rules
from schemas.parsing import OMICS_SOURCE, ParsedEvent
from schemas.s3 import S3ObjectCreated
from schemas.settings import Settings
from schemas.vocabulary import IMPORT_JOB_STATUS_CHANGE, RUN_STATUS_CHANGE, Stage

#: What every accepted event owes up front: nothing but its own stages.  Archiving is not a
#: stage any more: the archive pool follows the log (:mod:`workers.archive`) and puts
#: every row — events and pipeline facts — in batch objects, so no event owes archive work.
ALWAYS: tuple[str, ...] = ()
#: What a pipeline fact owes when it is appended: nothing (the archive follower archives it
#: with the events, so a replay restores the pipeline's own history too).
FACT_STAGES: tuple[str, ...] = ()
#: A run status change is enriched; the enrich stage then owes the callback (docs/design.md §3).
RUN_STAGES: tuple[str, ...] = (Stage.ENRICH,)
#: What a ``Run Status Reconciled`` fact owes (the reconciler appends it).
RECONCILED_STAGES: tuple[str, ...] = FACT_STAGES + RUN_STAGES
#: Read-set import work: read files landing in S3 under ``IMPORT_SOURCES`` start
#: imports; finished import jobs have their failed sources retried.  (``Read Set Status Change``
#: owes no stage: the intake folds it into ``read_sets`` like every event.)
IMPORT_EVENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("aws.s3", "Object Created"),
        (OMICS_SOURCE, IMPORT_JOB_STATUS_CHANGE),
    }
)
IMPORT_STAGES: tuple[str, ...] = (Stage.IMPORTS,)


def stages_for(event: ParsedEvent, settings: Settings | None = None) -> tuple[str, ...]:
    """The stages the intake owes for ``event`` when it is first appended."""
    if event.source == OMICS_SOURCE and event.detail_type == RUN_STATUS_CHANGE:
        enrich = settings is None or settings.enrich_runs  # ENRICH_RUNS=false: archive only
        return ALWAYS + RUN_STAGES if enrich else ALWAYS
    if (event.source, event.detail_type) in IMPORT_EVENTS and _import_wanted(event, settings):
        return ALWAYS + IMPORT_STAGES
    return ALWAYS


def _import_wanted(event: ParsedEvent, settings: Settings | None) -> bool:
    """An S3 object owes the imports stage only under an ``IMPORT_SOURCES`` prefix (when the
    settings are known: without them the stage itself decides)."""
    if event.source != "aws.s3" or settings is None:
        return True
    detail = event.detail
    if not isinstance(detail, S3ObjectCreated):
        return False
    return any(
        rule.relative(detail.bucket.name, detail.object.key) is not None
        for rule in parse_rules(settings.import_sources)
    )
