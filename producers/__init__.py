"""The producers: what puts events into the log.

Every event enters through one door, the intake, whoever brings it:

* :mod:`producers.intake` — validate, append durably, then publish the work the events owe;
* :mod:`producers.poller` — ``omics-events poll``: SQS into the intake, the door in production;
* :mod:`producers.sender` — ``omics-events send``: files or standard input into the intake;
* :mod:`producers.replay` — ``omics-events replay``: archived events back into the log, then
  the rebuild; with its parts
  :mod:`producers.replay_sources` (the window, the sources, the archive listing),
  :mod:`producers.replay_prepare` (batches parsed and formatted in worker processes),
  :mod:`producers.replay_followers` (the log followers kept quiet over replayed events) and
  :mod:`producers.replay_facts` (the pipeline's archived facts appended after the events).

This layer sits under ``cli`` and over ``workers``, ``eventlog`` and ``schemas``; it never
imports the development tools (``simulator``, ``devtools``; ``lint-imports`` checks both).
It re-exports nothing, so importing one producer loads no other (a replay's worker
processes, which import :mod:`producers.replay_prepare`, stay light).
"""
