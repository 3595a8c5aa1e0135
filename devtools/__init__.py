"""Tooling for developers and benchmarks: nothing a production process imports.

* :mod:`devtools.demo` — ``make demo``: the whole pipeline on the embedded default, with a
  summary table; :mod:`devtools.import_demo` is its read-set import part;
* :mod:`devtools.ngs360_receiver` — a local NGS360 callback endpoint that answers exactly as
  the contract's "How the server answers" says (docs/reference/ngs360-callback.md);
* :mod:`devtools.stack` — the whole system as real processes on one machine, with a handle on
  each (kill, restart, CPU and RSS), for the benchmarks and the fault scenarios;
* ``samples/`` — a recorded event stream (``events.jsonl``) and sample events.

The pipeline's packages (schemas, eventlog, workers, producers) never import this one: an
import-linter contract in ``pyproject.toml`` says so and ``make test`` checks it.
"""
