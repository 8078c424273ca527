"""The command line: thin Typer commands that call plain functions.

Errors become an exit code and one clear message here, at the edge, and
nowhere else.
"""

from typing import Annotated

import typer
from rich.console import Console

from simulator import __version__
from simulator.protocol import RULES
from simulator.rulebook import RuleFormat, render_rules

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Simulate, umpire and replay exercises of the Article 4-7 assistance procedure.",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"simulator {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Simulate, umpire and replay exercises of the Article 4-7 assistance procedure."""


@app.command()
def rules(
    fmt: Annotated[
        RuleFormat, typer.Option("--format", "-f", help="table (default), json or markdown")
    ] = RuleFormat.TABLE,
    severity: Annotated[
        str | None, typer.Option(help="only rules of this severity: error, warning, info")
    ] = None,
) -> None:
    """Print the rule book the umpire applies: id, article, severity and what it requires."""
    chosen = RULES
    if severity is not None:
        chosen = tuple(r for r in RULES if r.severity.value == severity)
        if not chosen:
            raise typer.BadParameter(
                f"unknown severity {severity!r}; use error, warning or info",
                param_hint="--severity",
            )
    render_rules(fmt, Console(), chosen)


def main() -> None:
    app()
