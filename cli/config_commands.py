"""The environment a process runs in: ``config show|check|env-example|table`` and
``db upgrade|current``.

Why together: they are what an operator runs when setting up or checking an environment — what
the settings resolve to, whether every dependency they name answers (:mod:`cli.checks`, imported
inside the command), the generated ``.env.example`` and README table, and the database's
migrations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from cli.wiring import console, settings
from schemas.settings import load_settings, settings_table

README_TABLE_START = "<!-- config-table:start -->"
README_TABLE_END = "<!-- config-table:end -->"


@click.group("config")
def config() -> None:
    """Configuration."""


@config.command("show")
def config_show() -> None:
    """Print the resolved configuration, secrets masked."""
    loaded = load_settings()
    table = Table(title="configuration")
    table.add_column("variable")
    table.add_column("value")
    for name, value in loaded.masked().items():
        table.add_row(name, value)
    console.print(table)


@config.command("check")
def config_check() -> None:
    """Print the configuration (secrets masked) and check every dependency it names."""
    from cli.checks import run_checks

    loaded = settings()
    config_show.callback()  # type: ignore[misc]
    results = run_checks(loaded)
    for result in results:
        mark = "[green]ok[/green]   " if result.ok else "[red]FAIL[/red] "
        console.print(f"{mark} {result.name:<12} {result.detail}", highlight=False)
    if not all(result.ok for result in results):
        sys.exit(1)


@config.command("env-example")
@click.option("--write", "path", type=click.Path(path_type=Path), default=None)
def config_env_example(path: Path | None) -> None:
    """Print (or write) .env.example: every variable with its default and documentation."""
    from schemas.settings import env_example

    text = env_example()
    if path is None:
        click.echo(text, nl=False)
    else:
        path.write_text(text)
        click.echo(f"wrote {path}")


@config.command("table")
@click.option("--write", "readme", type=click.Path(path_type=Path), default=None)
def config_table(readme: Path | None) -> None:
    """Print the Markdown table of every setting (or write it into README)."""
    table = settings_table()
    if readme is None:
        click.echo(table)
        return
    text = readme.read_text()
    start, end = text.index(README_TABLE_START), text.index(README_TABLE_END)
    readme.write_text(text[: start + len(README_TABLE_START)] + "\n" + table + "\n" + text[end:])
    click.echo(f"wrote the configuration table into {readme}")


@click.group("db")
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from eventlog.db import create_db_engine, upgrade

    loaded = settings()
    engine = create_db_engine(loaded.database_url)
    console.print(f"database at migration {upgrade(engine, revision)}")


@db.command("current")
def db_current() -> None:
    """Print the database's migration revision and the code's."""
    from eventlog.db import create_db_engine, current_revision, head_revision

    loaded = settings()
    engine = create_db_engine(loaded.database_url)
    console.print(f"database: {current_revision(engine) or 'none'}  code: {head_revision()}")


COMMANDS: tuple[click.Command, ...] = (config, db)
