"""The command line: thin Typer commands over the runtime, and the terminal views they print."""

from simulator.cli.app import app, main, report

__all__ = ["app", "main", "report"]
