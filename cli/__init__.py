"""The ``omics-events`` command groups that are more than a line of wiring.

``omics_events.py`` stays the thin entry point (the click group, settings loading, the Celery
app factory); a command whose body is long lives here, one module per command group:

* :mod:`cli.log_commands` — ``rebuild``, ``replay``, ``runs``, ``run``: the log and its
  projections, with progress bars on standard error and results on standard output;
* :mod:`cli.checks` — ``config check``: one line per dependency the configuration names;
* :mod:`cli.health` — ``health``: liveness as progress, for container health checks.

This is the top layer: it may import producers, workers, eventlog and schemas, and nothing
imports it back (``make test`` runs ``lint-imports``).  The development commands (``demo``,
``simulator``) load :mod:`devtools` and :mod:`simulator` inside their function bodies, so a
production container never imports them.
"""
