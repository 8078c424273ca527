"""`simulator serve SCENARIO|LOG`: the exercise console in a browser (registered in cli.py)."""

import asyncio
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from simulator.context import speed_problem
from simulator.errors import ScenarioError, SimulatorError
from simulator.eventlog import LogError
from simulator.logging import configure as configure_logging
from simulator.options import BROKER_HELP, SECURE_OPTION, SEED_OPTION

SCENARIO_SUFFIXES = (".yaml", ".yml")


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _announce(links: dict[str, str]) -> None:
    # stdout, one link a line, flushed: people copy them, scripts and tests read them.
    for name, url in links.items():
        typer.echo(f"{name}: {url}")
    typer.echo("serving; Ctrl-C stops", err=True)


def serve(
    source: Annotated[
        str,
        typer.Argument(metavar="SCENARIO|LOG", help="a scenario YAML file, or a log to replay"),
    ],
    broker: Annotated[str, typer.Option(help=BROKER_HELP)] = "embedded",
    log: Annotated[
        str | None,
        typer.Option("--log", help="where the run's log goes (default: runs/…db)"),
    ] = None,
    seed: Annotated[int | None, SEED_OPTION] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="simulated seconds per real second (default 1; 3600 for a log)"),
    ] = None,
    port: Annotated[int, typer.Option(help="the web server's port")] = 8000,
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    training: Annotated[
        bool,
        typer.Option(
            "--training", help="trainees may also send what the procedure does not allow now"
        ),
    ] = False,
    report_dir: Annotated[
        Path | None,
        typer.Option("--report-dir", help="where the report goes (default: LOG.report/)"),
    ] = None,
    exit_at_end: Annotated[
        bool, typer.Option("--exit-at-end", help="stop serving when the run ends")
    ] = False,
    external: Annotated[
        list[str] | None,
        typer.Option("--external", help="leave this party to a `simulator party` process"),
    ] = None,
    fork: Annotated[
        str | None,
        typer.Option("--fork", help="go on live from this log's first --at events (same parties)"),
    ] = None,
    at: Annotated[
        int | None, typer.Option("--at", help="with --fork: keep the first POS events")
    ] = None,
    secure: Annotated[bool, SECURE_OPTION] = False,
    partitions: Annotated[
        int,
        typer.Option(help="postgresql:// log: split the cases among this many umpires (0: one)"),
    ] = 0,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log what happens")] = False,
) -> None:
    """Run an exercise with its web console (control view and player seats), or replay a log."""
    # The web stack loads only for this command.
    from simulator.run.exercise import RunOptions  # noqa: PLC0415
    from simulator.run.replay import prepare_fork  # noqa: PLC0415
    from simulator.scenario import load_scenario  # noqa: PLC0415
    from simulator.web.serve import ServeOptions, serve_log, serve_scenario  # noqa: PLC0415

    configure_logging(level="info" if verbose else "warning")
    if speed is not None and (problem := speed_problem(speed)):
        _fail(f"--speed {problem}")
    if not 0 <= port <= 65535:
        _fail(f"--port {port} is not a port number")
    if (fork is None) != (at is None):
        _fail("--fork LOG and --at POS go together")
    options = ServeOptions(
        host=host, port=port, training=training, linger=not exit_at_end, report_dir=report_dir
    )
    try:
        if source.endswith(SCENARIO_SUFFIXES):
            try:
                scenario = load_scenario(Path(source))
            except ScenarioError as exc:
                _fail(str(exc))
            run = RunOptions(
                broker=broker,
                log=log,
                seed=seed,
                clock="realtime",
                speed=speed or 1.0,
                external=tuple(external or ()),
                secure=secure,
                partitions=partitions,
            )
            if fork is not None and at is not None:
                if log is not None and not log.startswith("postgres") and Path(log).exists():
                    _fail(f"{log}: already exists; choose a new file")
                start = asyncio.run(
                    prepare_fork(
                        fork, at, log, scenario=scenario, seed=seed, options=run, live=True
                    )
                )
                run, scenario = start.options, start.scenario
                outcome = asyncio.run(
                    serve_scenario(scenario, run, options, announce=_announce, fork=start)
                )
            else:
                outcome = asyncio.run(serve_scenario(scenario, run, options, announce=_announce))
            typer.echo(f"ended: {outcome.result.reason}; log: {outcome.log}", err=True)
        else:
            if (
                log is not None
                or external
                or training
                or secure
                or seed is not None
                or fork
                or partitions
            ):
                _fail(
                    "--log, --seed, --external, --training, --secure, --fork and --partitions "
                    "are for a scenario, not a log"
                )
            asyncio.run(serve_log(source, options, speed=speed or 3600.0, announce=_announce))
    except (LogError, SimulatorError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}")
