"""The ``omics-events`` commands, one module per command group.

``omics_events.py`` stays the thin entry point (the click group, settings loading, the Celery
app factory, ``main``); it adds each module's ``COMMANDS`` to its group:

* :mod:`cli.wiring` — what every command gets from the entry point (its settings loader and
  app factory, on the click context), the console, ``--since/--until`` parsing, the stop of the
  ``--every`` loops;
* :mod:`cli.pipeline_commands` — ``send``, ``poll``, ``worker``, ``sweep``, ``reconcile``,
  ``flower``: the pipeline's processes;
* :mod:`cli.callback_commands` — ``deliveries``, ``dead-letters``, ``redeliver``: the callbacks
  to NGS360 and sending them again;
* :mod:`cli.status_commands` — ``imports``, ``metrics``, ``health``: where the pipeline stands;
* :mod:`cli.config_commands` — ``config show|check|env-example|table``, ``db upgrade|current``;
* :mod:`cli.log_commands` — ``rebuild``, ``replay``, ``runs``, ``run``: the log and its
  projections, with progress bars on standard error and results on standard output;
* :mod:`cli.dev_commands` — ``demo``, ``simulate``, ``receiver``: the development commands;
* :mod:`cli.checks` — the checks behind ``config check``: one line per dependency the
  configuration names;
* :mod:`cli.health` — the check behind ``health``: liveness as progress, for container health
  checks.

This is the top layer: it may import producers, workers, eventlog and schemas, and nothing
imports it back (``make test`` runs ``lint-imports``).  The development commands (``demo``,
``simulate``, ``receiver``) load :mod:`devtools` and :mod:`simulator` inside their function
bodies, so a production container never imports them.  The package re-exports nothing: the
entry point imports the command modules by name.
"""
