"""The demo fails, saying why, when its callbacks fail.

Why: pointed at an NGS360 that does not know the demo's runs (404) or with the wrong key (403),
every callback is a dead letter, yet the demo used to print its tables and exit 0.  Two runs
keep it cheap; the demo runs in this process against the session's moto server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from devtools.demo import run_demo
from devtools.ngs360_receiver import Ngs360Receiver
from schemas.settings import Settings
from simulator import ManualClock, MemorySink, Simulator, realistic_mix


def _seed_whose_runs_carry_a_wes_id(runs: int = 2) -> int:
    """A seed whose runs all carry a ``WESRunId`` (10 % of runs have none, so a time-seeded
    two-run demo sometimes calls nothing back), found with the demo's own scenario."""
    for seed in range(100):
        sim = Simulator(seed=seed, speed=1.0, clock=ManualClock(), sink=MemorySink())
        realistic_mix(sim, runs=runs, import_jobs=3, stagger=20.0)
        if all("WESRunId" in run["tags"] for run in sim.ground_truth()["runs"].values()):
            return seed
    raise AssertionError("no seed in 0..99 tags every run")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("known", "key", "answer"),
    [(False, "the-key", "HTTP 404"), (True, "not-the-key", "HTTP 403")],
    ids=["NGS360 does not know the runs", "wrong key"],
)
def test_demo_exits_non_zero_when_callbacks_are_dead_letters(
    make_settings: Callable[..., Settings],
    aws_env: str,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    known: bool,
    key: str,
    answer: str,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_OMICS", raising=False)  # the demo sets it; put back
    with Ngs360Receiver("the-key", auto_register=known) as receiver:
        settings = make_settings(
            database_url=f"sqlite:///{tmp_path}/events.db",
            archive_uri=f"s3://{bucket}/demo",
            ngs360_api_url=receiver.url,
            ngs360_api_key=key,
        )
        console = Console(record=True, width=250)
        status = run_demo(
            settings, console, timeout=120, runs=2, seed=_seed_whose_runs_carry_a_wes_id()
        )
        refused = [r for r in receiver.callbacks() if r.status == int(answer[-3:])]
    out = console.export_text()
    assert status == 1, out[-3000:]
    assert refused, "the demo's callbacks reached the receiver"
    (line,) = [line for line in out.splitlines() if line.startswith("demo failed:")]
    found = re.match(
        r"demo failed: (\d+) of (\d+) callbacks were dead-lettered; most common "
        r"\((\d+)\): (.*)",
        line,
    )
    assert found, line
    dead, _, common, reason = found.groups()
    assert int(dead) == len(refused) and int(common) == len(refused)
    assert reason.startswith(answer)
    assert key not in out or key == "the-key"  # a wrong key is a secret too
    assert "not-the-key" not in out


@pytest.mark.slow
def test_the_demo_passes_with_its_own_receiver(
    make_settings: Callable[..., Settings],
    aws_env: str,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same demo with the NGS360 it starts itself: every callback delivered, exit 0."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_OMICS", raising=False)
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path}/events.db", archive_uri=f"s3://{bucket}/demo"
    )
    console = Console(record=True, width=250)
    assert run_demo(settings, console, timeout=120, runs=2) == 0, console.export_text()[-3000:]
    assert "demo failed" not in console.export_text()
