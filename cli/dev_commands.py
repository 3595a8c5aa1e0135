"""The development commands: ``demo``, ``simulate`` and ``receiver``.

Why apart: they run the simulator (:mod:`simulator`) and the local stand-ins (:mod:`devtools`),
which a production process never needs; each imports them inside its body, so importing this
module (every ``omics-events`` start does) loads neither.
"""

from __future__ import annotations

import sys

import click

from cli.wiring import console, settings, stop_on_signals


@click.command("demo")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the work.")
@click.option("--runs", default=20, show_default=True, help="Simulated workflow runs.")
@click.option(
    "--seed", type=int, default=None, help="Simulator seed (default: the clock), to repeat a demo."
)
def demo(timeout: float, runs: int, seed: int | None) -> None:
    """Simulate HealthOmics, poll, process and archive; print a summary.

    Exits non-zero if any event the simulator emitted did not reach its final stage.
    """
    from devtools.demo import run_demo

    loaded = settings()
    sys.exit(run_demo(loaded, console, timeout=timeout, runs=runs, seed=seed))


@click.command(
    "simulate",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulate(args: tuple[str, ...]) -> None:
    """Run the HealthOmics simulator (API + events to SQS); --help for its options."""
    from simulator.cli import main as simulator_main

    sys.exit(simulator_main(list(args)))


@click.command("receiver")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--strict",
    is_flag=True,
    help="Answer 404 for WES run ids it was not told about (default: every id is known).",
)
def receiver(host: str, port: int, strict: bool) -> None:
    """A local NGS360 callback endpoint that answers as the contract says (demo, compose)."""
    from devtools.ngs360_receiver import CALLBACK_PATH, Ngs360Receiver

    loaded = settings()
    key = loaded.ngs360_api_key.get_secret_value() if loaded.ngs360_api_key else ""
    if not key:
        raise click.ClickException("set NGS360_API_KEY: the receiver checks the key it is sent")
    server = Ngs360Receiver(key, host=host, port=port, auto_register=not strict)
    server.start()
    console.print(f"NGS360 receiver: POST http://{host}:{server.port}{CALLBACK_PATH}")
    stop = stop_on_signals()
    seen = 0
    while not stop.wait(5.0):
        received = server.callbacks()
        for request in received[seen:]:
            body = request.json() if isinstance(request.json(), dict) else {}
            console.print(
                f"{request.status} {body.get('wes_run_id', '?')} {body.get('status', '?')} "
                f"{body.get('event_id', '?')}"
            )
        seen = len(received)
    server.stop()


COMMANDS: tuple[click.Command, ...] = (demo, simulate, receiver)
