"""Ready-made workloads: a realistic mix of runs and import jobs for tests, demos and benches.

Why fixed proportions instead of coin flips per run: with ``runs=20, fail_rate=0.15`` a test can
rely on exactly 3 failed runs (and 2 cancelled at ``cancel_rate=0.1``), whatever the seed; the
seed still decides *which* runs, their timing, failure reasons and tasks.  Submissions are
staggered (exponential gaps, like a lab submitting batches through a day, scaled by the
simulator's ``speed``), so events from different runs interleave the way they do in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulator.simulator import Simulator


@dataclass
class ScenarioPlan:
    """What a scenario created."""

    run_ids: list[str] = field(default_factory=list)
    import_job_ids: list[str] = field(default_factory=list)
    #: Planned outcome per run id: COMPLETED, FAILED or CANCELLED.
    outcomes: dict[str, str] = field(default_factory=dict)

    def runs_with(self, outcome: str) -> list[str]:
        return [run_id for run_id, o in self.outcomes.items() if o == outcome]


def realistic_mix(
    sim: Simulator,
    runs: int = 20,
    tasks_per_run: tuple[int, int] = (3, 12),
    fail_rate: float = 0.15,
    cancel_rate: float = 0.1,
    import_jobs: int = 3,
    *,
    sources_per_job: tuple[int, int] = (1, 8),
    stagger: float = 60.0,
    wes_tag_rate: float = 0.9,
    callback_url: str | None = None,
    callback_rate: float = 1.0,
) -> ScenarioPlan:
    """Add ``runs`` runs and ``import_jobs`` import jobs with staggered submissions.

    ``runs * fail_rate`` runs fail and ``runs * cancel_rate`` are cancelled (rounded half up);
    the rest complete.  ``stagger`` is the mean gap between submissions in simulated seconds.  Most
    runs (``wes_tag_rate``) carry a ``WESRunId`` tag; ``callback_url`` (if given) is added as the
    ``callback_url`` tag on a ``callback_rate`` share of runs.
    """
    if not 0 <= fail_rate + cancel_rate <= 1:
        raise ValueError("fail_rate + cancel_rate must be within 0..1")
    low, high = tasks_per_run
    if not 0 <= low <= high:
        raise ValueError("tasks_per_run must be (low, high) with 0 <= low <= high")
    rng = random.Random(f"{sim.seed}/scenario")
    n_failed = int(runs * fail_rate + 0.5)  # half up, not banker's rounding
    n_cancelled = min(runs - n_failed, int(runs * cancel_rate + 0.5))
    outcomes = (
        ["FAILED"] * n_failed
        + ["CANCELLED"] * n_cancelled
        + ["COMPLETED"] * (runs - n_failed - n_cancelled)
    )
    rng.shuffle(outcomes)
    plan = ScenarioPlan()
    delay = 0.0
    for outcome in outcomes:
        run_id = sim.add_run(
            delay=delay,
            tasks=rng.randint(low, high),
            outcome=outcome,
            wes_run_id=rng.random() < wes_tag_rate,
            callback_url=(callback_url if callback_url and rng.random() < callback_rate else None),
        )
        plan.run_ids.append(run_id)
        plan.outcomes[run_id] = outcome
        delay += rng.expovariate(1.0 / stagger) if stagger > 0 else 0.0
    span = max(delay, stagger)
    for _ in range(import_jobs):
        job_id = sim.add_import_job(
            delay=rng.uniform(0.0, span),
            sources=rng.randint(*sources_per_job),
        )
        plan.import_job_ids.append(job_id)
    return plan
