"""What every command gets from the entry point: its settings loader, app factory and console.

Why a module: ``omics_events.py`` owns how settings are loaded (and logging configured) and how
the Celery app is made ready (migrations applied or checked); the commands live in ``cli/``.
The click group puts a :class:`Wiring` with the entry point's two functions on the click context
(``ctx.obj``), and a command asks for them with :func:`settings` and :func:`ready_app`; so
``cli/`` never imports the entry point back (which, run as ``python -m omics_events``, is
``__main__``, and would be loaded a second time).

Also here: the pieces more than one command group uses — the console of the tables, the
``--since/--until`` time bounds, and the SIGTERM/SIGINT stop of the ``--every`` loops.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Console

from schemas.settings import Settings

#: Where the pipeline's commands print their tables (the log commands have their own consoles).
console = Console(stderr=False)


@dataclass(frozen=True)
class Wiring:
    """The entry point's settings loader and app factory, as the commands call them."""

    load_settings: Callable[[], Settings]
    make_app: Callable[[Settings], Any]


def _wiring() -> Wiring:
    wiring = click.get_current_context().find_object(Wiring)
    if wiring is None:
        raise RuntimeError("run the commands through the omics-events group (omics_events.cli)")
    return wiring


def settings() -> Settings:
    """The settings, read from the environment, with logging configured."""
    return _wiring().load_settings()


def ready_app(settings: Settings) -> Any:
    """A Celery app whose database is migrated (embedded SQLite) or checked (PostgreSQL)."""
    return _wiring().make_app(settings)


def time_bound(_ctx: Any, _param: Any, value: str | None) -> datetime | None:
    """A click callback: ``--since``/``--until`` as an aware datetime (ISO-8601, UTC unless it
    says; a date is midnight UTC)."""
    if value is None:
        return None
    from producers.replay_sources import parse_bound

    try:
        return parse_bound(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set: a long-running command finishes its round and stops."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
