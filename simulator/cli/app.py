"""The command line: thin Typer commands that call plain functions.

Errors become an exit code and one clear message here, at the edge, and
nowhere else.
"""

import asyncio
import json
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from simulator import __version__
from simulator.brokers import start_broker, transport_for
from simulator.cli.asyncapi import asyncapi_document
from simulator.cli.logview import export_log, import_log, report_json, show_log, verify_log
from simulator.cli.rulebook import RuleFormat, render_profiles, render_rules
from simulator.cli.runview import Progress, print_summary
from simulator.context import fresh_rng, wall_now
from simulator.errors import InputError, ScenarioError, SimulatorError
from simulator.eventlog import Event, LogError
from simulator.load.command import load
from simulator.logfiles import is_postgres
from simulator.logging import configure as configure_logging
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Control, Tick, describe
from simulator.options import SECURE_OPTION
from simulator.protocol import DEFAULT_PROFILE_ID, load_profile, profile_ids
from simulator.protocol.procedure import (
    BEGIN_MARK,
    mermaid,
    procedure_markdown,
    replace_generated,
)
from simulator.run.control import (
    ANSWER_TIMEOUT_S,
    Unanswered,
    control_path,
    read_control_file,
    render_status,
    send_control,
)
from simulator.run.exercise import RunOptions, run_exercise
from simulator.run.replay import check, fork, read_range, recorded_run, republish, resume
from simulator.run.seat import UMPIRE_SILENT_S, hold_seat, play_seat, read_seat_file, seat_path
from simulator.run.security import SecurityOptions, broker_tls
from simulator.scenario import load_scenario, scenario_json_schema
from simulator.transport import SessionSettings, client_id_for
from simulator.web.command import serve

T = TypeVar("T")


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
    # Quiet by default; `run --verbose` / `--log-json` configure it again.
    configure_logging()


@app.command()
def agreements(
    fmt: Annotated[
        RuleFormat, typer.Option("--format", "-f", help="table (default) or json")
    ] = RuleFormat.TABLE,
) -> None:
    """List the agreement profiles a scenario may name and `rules --agreement` prints."""
    render_profiles(fmt, Console(), [load_profile(p) for p in profile_ids()])


@app.command()
def rules(
    fmt: Annotated[
        RuleFormat, typer.Option("--format", "-f", help="table (default), json or markdown")
    ] = RuleFormat.TABLE,
    severity: Annotated[
        str | None, typer.Option(help="only rules of this severity: error, warning, info")
    ] = None,
    agreement: Annotated[
        str,
        typer.Option(
            help="the agreement whose articles the rules cite: "
            + ", ".join(profile_ids())
            + " (a scenario's `agreement: profile:`)"
        ),
    ] = DEFAULT_PROFILE_ID,
) -> None:
    """Print the rule book the umpire applies: id, article, severity and what it requires."""
    try:
        profile = load_profile(agreement)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="--agreement") from None
    chosen = profile.rule_book()
    if severity is not None:
        chosen = tuple(r for r in chosen if r.severity.value == severity)
        if not chosen:
            raise typer.BadParameter(
                f"unknown severity {severity!r}; use error, warning or info",
                param_hint="--severity",
            )
    if profile.id == DEFAULT_PROFILE_ID:
        render_rules(fmt, Console(), chosen)
    else:
        render_rules(fmt, Console(), chosen, title=f"Rule book: {profile.short_title}")


@app.command()
def procedure(
    update: Annotated[
        Path | None,
        typer.Option(
            help="rewrite the generated part of this document (docs/procedure.md) instead of "
            "printing it"
        ),
    ] = None,
    diagram: Annotated[
        bool, typer.Option("--mermaid", help="print only the state diagram, as Mermaid")
    ] = False,
) -> None:
    """Print the procedure the umpire applies: its state diagram and what each state allows.

    Both are explored from the case state machine itself, not written by hand.
    """
    if update is not None:
        try:
            text = update.read_text(encoding="utf-8")
            update.write_text(replace_generated(text), encoding="utf-8")
        except OSError as exc:
            _fail(f"{update}: {exc.strerror or exc}")
        except ValueError:
            _fail(f"{update}: the markers of the generated part are missing ({BEGIN_MARK})")
        typer.echo(f"updated {update}")
        return
    sys.stdout.write(mermaid() if diagram else procedure_markdown())


log_app = typer.Typer(no_args_is_help=True, help="Inspect, verify, export and import event logs.")
app.add_typer(log_app, name="log")

LogArg = Annotated[str, typer.Argument(help="a SQLite file or a postgresql:// URL")]


def _fail(message: str, code: int = 2) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _emit_json(data: object, output: Path | None) -> None:
    """Indented JSON to `output`, or to stdout when it is None."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; bad input becomes one message and exit code 2."""
    try:
        return asyncio.run(coroutine)
    except (LogError, SimulatorError) as exc:
        _fail(str(exc))
    except ExceptionGroup as group:
        # Raised in a task of the run, bad input reaches here wrapped by its task
        # group: it is still one message, not a traceback of every task.
        ours, rest = group.split((LogError, SimulatorError))
        if ours is None or rest is not None:
            raise
        _fail(str(_first_leaf(ours)))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        sys.stderr.close()
        raise typer.Exit(0) from None
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}")


def _first_leaf(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


@log_app.command("show")
def log_show(
    location: LogArg,
    case: Annotated[str | None, typer.Option("--case", help="only this case")] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="only this type (e.g. refusal, coop.rejection)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="CloudEvents JSON lines")] = False,
    at: Annotated[
        int | None, typer.Option("--at", help="stop at this position and show case states then")
    ] = None,
) -> None:
    """Show a log's events, one line each, with the violations each caused."""
    _run(
        show_log(
            location,
            console=Console(soft_wrap=as_json),
            case=case,
            event_type=event_type,
            as_json=as_json,
            at=at,
        )
    )


@log_app.command("verify")
def log_verify(
    location: LogArg,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
) -> None:
    """Check a log's integrity, hash chain, case versions and signed checkpoints.

    Exit 0 when sound; 1 naming the first bad position and what is wrong.
    """
    report = _run(verify_log(location))
    if as_json:
        typer.echo(report_json(report))
    elif report.ok:
        typer.echo(
            f"{location}: sound — {report.checked} events, chain intact, "
            f"{report.checkpoints_checked} signed checkpoints agree"
        )
    else:
        where = f"position {report.first_bad_position}" if report.first_bad_position else "log"
        Console(stderr=True).print(
            f"[red]{escape(location)}: {where}: {escape(str(report.problem))}[/]"
        )
    if not report.ok:
        raise typer.Exit(1)


@log_app.command("export")
def log_export(
    location: LogArg,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file to write (default: stdout)")
    ] = None,
) -> None:
    """Export a log as JSON lines, one structured-mode CloudEvent per line."""
    if output is None:
        _run(export_log(location))
        return
    if output.exists():
        _fail(f"{output}: already exists; choose a new file")
    with output.open("w", encoding="utf-8") as handle:
        count = _run(export_log(location, handle))
    Console(stderr=True).print(f"exported {count} events to {output}")


@log_app.command("import")
def log_import(
    source: Annotated[Path, typer.Argument(help="a JSON lines file from `log export`")],
    output: Annotated[str, typer.Option("-o", "--output", help="the new log (path or URL)")],
) -> None:
    """Import JSON lines into a new log; the chain is checked first and hashes are kept."""
    if not is_postgres(output) and Path(output).exists():
        _fail(f"{output}: already exists; import writes a new log only")
    if not source.is_file():
        _fail(f"{source}: no such file")
    count = _run(import_log(source, output, now=wall_now))
    Console(stderr=True).print(f"imported {count} events into {output}")


scenario_app = typer.Typer(no_args_is_help=True, help="Check scenario files and get their schema.")
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("validate")
def scenario_validate(
    files: Annotated[list[Path], typer.Argument(help="scenario YAML files")],
) -> None:
    """Check scenario files; each problem is printed as file:line: field: what is wrong."""
    bad = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            bad += 1
            Console(stderr=True, soft_wrap=True).print(f"[red]{escape(str(exc))}[/]")
            continue
        typer.echo(
            f"{path}: ok — exercise {scenario.exercise}, {len(scenario.parties)} parties, "
            f"{len(scenario.injects)} injects, {len(scenario.generators)} generators, "
            f"{len(scenario.expectations)} expectations"
        )
    if bad:
        raise typer.Exit(1)


@scenario_app.command("schema")
def scenario_schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write to this file")
    ] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editors' YAML completion)."""
    _emit_json(scenario_json_schema(), output)


@app.command()
def run(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO", help="a scenario YAML file")],
    broker: Annotated[
        str, typer.Option(help="embedded (default), mosquitto, or an mqtt:// / mqtts:// URL")
    ] = "embedded",
    log: Annotated[
        str | None,
        typer.Option("--log", help="SQLite file or postgresql:// URL (default: runs/…db)"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    clock: Annotated[
        str, typer.Option(help="simulated (rounds, deterministic) or realtime")
    ] = "simulated",
    speed: Annotated[
        float, typer.Option(help="realtime only: simulated seconds per real second")
    ] = 1.0,
    json_summary: Annotated[
        Path | None, typer.Option("--json-summary", help="write the summary as JSON here")
    ] = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="log lines as JSON")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log what happens")] = False,
    external: Annotated[
        list[str] | None,
        typer.Option("--external", help="leave this party to a `simulator party` process"),
    ] = None,
    secure: Annotated[bool, SECURE_OPTION] = False,
) -> None:
    """Run an exercise: the umpire and the simulated parties over a real broker."""
    configure_logging(json=log_json, level="info" if verbose else "warning")
    if clock not in ("simulated", "realtime"):
        _fail(f"--clock must be simulated or realtime, not {clock!r}")
    if speed <= 0:
        _fail("--speed must be positive")
    console = Console(stderr=True)
    try:
        scenario = load_scenario(scenario_file)
    except ScenarioError as exc:
        _fail(str(exc))
    progress = Progress()
    options = RunOptions(
        broker=broker,
        log=log,
        seed=seed,
        clock="simulated" if clock == "simulated" else "realtime",
        speed=speed,
        external=tuple(external or ()),
        secure=secure,
    )
    with console.status("starting…") as status:

        def update(events: Sequence[Event]) -> None:
            progress.commit(events)
            status.update(progress.line())

        def tick(marker: Tick) -> None:
            # Realtime: the line follows the clock every tick, not only the commits.
            progress.tick(marker)
            status.update(progress.line())

        outcome = _run(run_exercise(scenario, options, on_commit=update, on_clock=tick))
    # The file first: printing may fail on a closed pipe (`| head`).
    if json_summary is not None:
        _emit_json(outcome.summary.as_json(), json_summary)
    print_summary(outcome.summary, Console())


@app.command()
def party(
    log: Annotated[str, typer.Option("--log", help="the running exercise's log")],
    party_id: Annotated[str, typer.Option("--party", help="the party to play")],
    give_up_after: Annotated[
        float,
        typer.Option(
            "--give-up-after",
            min=1.0,
            help="seconds without a word from the umpire before taking the exercise for gone",
        ),
    ] = UMPIRE_SILENT_S,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log what happens")] = False,
) -> None:
    """Play one party of a running exercise in this process (see `run --external`)."""
    configure_logging(level="info" if verbose else "warning")
    path = seat_path(log, party_id)
    try:
        seat = read_seat_file(path)
        with hold_seat(path, party_id):
            ended = _run(play_seat(seat, silent_s=give_up_after))
    except SimulatorError as exc:
        _fail(str(exc))
    typer.echo(f"{party_id}: the exercise ended at position {ended.head}: {ended.reason}")


@app.command()
def asyncapi(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write to this file (default: stdout)")
    ] = None,
) -> None:
    """Write the AsyncAPI 3 document of the exercise topics and messages (JSON)."""
    _emit_json(asyncapi_document(), output)


@app.command()
def control(
    command: Annotated[
        str,
        typer.Argument(help="pause, resume, speed, jump, inject, note, stop or status"),
    ],
    log: Annotated[str, typer.Option("--log", help="the running exercise's log")],
    speed: Annotated[float | None, typer.Option(help="with `speed`: the new factor")] = None,
    inject: Annotated[str | None, typer.Option(help="with `inject`: the inject id")] = None,
    text: Annotated[str | None, typer.Option(help="with `note`: the note")] = None,
    timeout: Annotated[
        float, typer.Option(help="seconds to wait for the umpire's answer")
    ] = ANSWER_TIMEOUT_S,
) -> None:
    """Pace a running exercise from another terminal, or ask its status.

    Prints the umpire's answer; exits 0 only when the command was carried out,
    1 when the umpire refused it or did not answer, 2 on bad input.
    """
    try:
        order = Control.model_validate(
            {"command": command, "speed": speed, "inject": inject, "text": text}
        )
    except ValidationError as exc:
        _fail(describe(exc))
    if order.command == "speed" and order.speed is None:
        _fail("speed needs --speed X")
    if order.command == "inject" and order.inject is None:
        _fail("inject needs --inject ID")
    try:
        target = read_control_file(control_path(log))
    except SimulatorError as exc:
        _fail(str(exc))
    try:
        answer = asyncio.run(send_control(target, order, wait_s=timeout))
    except Unanswered as exc:
        _fail(str(exc), code=1)
    except SimulatorError as exc:
        _fail(f"{exc} (is exercise {target.exercise!r} still running?)", code=1)
    if answer.status is not None:
        typer.echo(render_status(answer.status))
    if not answer.ok:
        _fail(f"{order.command} refused: {answer.detail}", code=1)
    if answer.status is None:
        typer.echo(f"{target.exercise}: {answer.detail}")


@app.command()
def replay(
    location: LogArg,
    check_: Annotated[
        bool,
        typer.Option("--check", help="re-run the recorded scenario and seed and compare"),
    ] = False,
    speed: Annotated[str, typer.Option(help="simulated seconds per real second, or max")] = "max",
    start: Annotated[int, typer.Option("--from", help="first position to publish")] = 1,
    until: Annotated[int | None, typer.Option("--until", help="last position")] = None,
    broker: Annotated[
        str, typer.Option(help="embedded, mosquitto, or an mqtt:// URL to publish to")
    ] = "embedded",
    wait: Annotated[
        float, typer.Option(help="seconds to wait before publishing (for subscribers)")
    ] = 0.0,
    secure: Annotated[bool, SECURE_OPTION] = False,
) -> None:
    """Re-publish a log's events to a broker at a chosen speed, or check it with --check."""
    if check_:
        result = _run(check(location, broker=broker))
        if result.ok:
            typer.echo(f"{location}: today's code reproduces all {result.recorded} events")
            return
        Console(stderr=True).print(
            f"[red]{escape(location)}: diverges at position {result.first_difference}: "
            f"{escape(result.what)}[/]"
        )
        raise typer.Exit(1)
    pace = None if speed == "max" else float(speed)
    if pace is not None and pace <= 0:
        _fail("--speed must be positive, or max")
    console = Console(stderr=True)

    async def publish() -> int:
        events = await read_range(location, start, until)
        if not events:
            raise InputError(f"{location}: no events between {start} and {until or 'the end'}")
        scenario, _, _ = await recorded_run(location)
        topics = Topics(events[0].exercise)
        with tempfile.TemporaryDirectory(prefix="simulator-replay-") as workdir:
            parties = [p.id for p in scenario.parties]
            tls = broker_tls(Path(workdir), topics.exercise, SecurityOptions(secure))
            async with start_broker(
                broker, topics, parties, Path(workdir), tls=tls, restricted_observer=secure
            ) as running:
                observer = running.credentials("observer")
                console.print(
                    f"replaying {len(events)} events of {topics.exercise} to "
                    f"{running.address.display} (observer: {observer.username} / "
                    f"{observer.password}); topics "
                    + (f"{topics.base}/log/# and {topics.clock}" if secure else topics.tree)
                )
                if running.address.ca_file is not None:
                    console.print(f"TLS: trust the CA in {running.address.ca_file}")
                if wait > 0:
                    await asyncio.sleep(wait)
                bus = transport_for(
                    running,
                    "umpire",
                    SessionSettings(client_id_for(topics.exercise, "replay"), persistent=False),
                    rng=fresh_rng(),
                )
                async with bus:
                    with console.status("replaying…") as status:
                        return await republish(
                            events,
                            bus,
                            topics,
                            speed=pace,
                            progress=lambda p: status.update(
                                f"position {p.position}: {p.published}/{p.total} events"
                            ),
                        )

    messages = _run(publish())
    console.print(f"done: {messages} MQTT messages")


@app.command("fork")
def fork_command(
    location: LogArg,
    at: Annotated[int, typer.Option("--at", help="keep the first POS events")],
    output: Annotated[str, typer.Option("-o", "--output", help="the new log (path or URL)")],
    scenario_file: Annotated[
        Path | None, typer.Option("--scenario", help="go on with this scenario's policies")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="go on with this seed")] = None,
    broker: Annotated[str, typer.Option(help="embedded, mosquitto or an mqtt:// URL")] = (
        "embedded"
    ),
    json_summary: Annotated[
        Path | None, typer.Option("--json-summary", help="write the summary as JSON here")
    ] = None,
) -> None:
    """Start a new run from a log's first POS events, with other policies or another seed."""
    scenario = None
    if scenario_file is not None:
        try:
            scenario = load_scenario(scenario_file)
        except ScenarioError as exc:
            _fail(str(exc))
    if not is_postgres(output) and Path(output).exists():
        _fail(f"{output}: already exists; choose a new file")
    outcome = _run(fork(location, at, output, scenario=scenario, seed=seed, broker=broker))
    # The file first: printing may fail on a closed pipe (`| head`).
    if json_summary is not None:
        _emit_json(outcome.summary.as_json(), json_summary)
    print_summary(outcome.summary, Console())


@app.command("resume")
def resume_command(
    location: LogArg,
    broker: Annotated[str, typer.Option(help="embedded, mosquitto or an mqtt:// URL")] = (
        "embedded"
    ),
    speed: Annotated[
        float | None,
        typer.Option(help="realtime: simulated seconds per second (default: the recorded one)"),
    ] = None,
    json_summary: Annotated[
        Path | None, typer.Option("--json-summary", help="write the summary as JSON here")
    ] = None,
) -> None:
    """Go on with an interrupted run (killed, or its machine lost) in its own log."""
    if speed is not None and speed <= 0:
        _fail("--speed must be positive")
    outcome = _run(resume(location, broker=broker, speed=speed))
    if json_summary is not None:
        _emit_json(outcome.summary.as_json(), json_summary)
    print_summary(outcome.summary, Console())


@app.command()
def report(
    location: LogArg,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="directory for report.html, .md and .json")
    ],
    charts: Annotated[
        int, typer.Option(help="cases drawn as sequence charts; the others are tabulated")
    ] = 40,
) -> None:
    """Write a log's after-action report: report.html (self-contained), report.md, report.json."""
    # matplotlib takes half a second to load, which no other command should pay.
    from simulator.report import read_report, save_report  # noqa: PLC0415 - see above

    if charts < 0:
        _fail("--charts must be 0 or more")
    data = _run(read_report(location))
    try:
        files = save_report(data, output, charted_cases=charts)
    except OSError as exc:
        _fail(f"{exc.filename or output}: {exc.strerror or exc}")
    Console(stderr=True).print(f"wrote {files.html}, {files.markdown} and {files.json}")


app.command()(serve)
app.command()(load)


def main() -> None:
    app()
