"""The command line: thin Typer commands that call plain functions.

Errors become an exit code and one clear message here, at the edge, and
nowhere else.
"""

import asyncio
import contextlib
import json
import math
import multiprocessing
import sys
from collections.abc import Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from simulator import __version__
from simulator.brokers import start_broker, transport_for
from simulator.cli.asyncapi import asyncapi_document
from simulator.cli.logview import (
    checkpoints_beside,
    export_log,
    import_logs,
    log_head,
    machine_key,
    metadata_beside,
    report_json,
    show_log,
    verified_everywhere,
    verify_log,
    verify_partitions,
)
from simulator.cli.rulebook import RuleFormat, render_profiles, render_rules
from simulator.cli.runview import Progress, print_summary
from simulator.context import fresh_rng, secret_token, speed_problem, wall_now
from simulator.errors import InputError, ScenarioError, SimulatorError
from simulator.eventlog import (
    Event,
    LogError,
    VerifyReport,
    parse_public_key,
    read_public_key,
)
from simulator.eventlog.witness import split_witness_url
from simulator.letters import LETTERS_DIRECTORY, read_letters, write_letters
from simulator.lifetime import private_workdir
from simulator.load.command import load, umpire
from simulator.logfiles import is_postgres
from simulator.logging import configure as configure_logging
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Control, Tick, describe
from simulator.options import BROKER_HELP, MAX_SEED, SECURE_OPTION, SEED_OPTION
from simulator.protocol import DEFAULT_PROFILE_ID, AgreementProfile, load_profile, profile_ids
from simulator.protocol.ids import PARTY_ID_PATTERN, is_party_id
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
from simulator.run.exercise import RunOptions, default_log_path, run_exercise
from simulator.run.replay import (
    ReplayProgress,
    check,
    confidential_before,
    exercise_end,
    fork,
    range_summary,
    recorded_external,
    recorded_run,
    republish,
    resume,
    stream_range,
)
from simulator.run.seat import UMPIRE_SILENT_S, hold_seat, play_seat, read_seat_file, seat_path
from simulator.run.security import SecurityOptions, broker_tls
from simulator.scenario import load_profile_file, load_scenario, scenario_json_schema
from simulator.transport import SessionSettings, private_client_id
from simulator.web.command import serve

T = TypeVar("T")

CHECK_APART_FROM = 20_000
"""Events from which `simulator report` checks its log in a process of its own."""


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


def _profile(reference: str) -> AgreementProfile:
    """A shipped profile by id, or a profile file (a path ending .yaml), checked."""
    if reference.endswith((".yaml", ".yml")):
        return AgreementProfile.model_validate(load_profile_file(reference))
    return load_profile(reference)


@app.command()
def agreements(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PROFILE.yaml]...",
            help="profile files of your own to check and show (default: the shipped ones)",
        ),
    ] = None,
    fmt: Annotated[
        RuleFormat,
        typer.Option(
            "--format", "-f", help="table (default), json or markdown (with area and ground ids)"
        ),
    ] = RuleFormat.TABLE,
) -> None:
    """List the agreement profiles a scenario may name, or check profile files of your own.

    A profile file that does not validate is printed as file:line: field: what is wrong,
    and the command exits 1.
    """
    if not files:
        render_profiles(fmt, Console(), [load_profile(p) for p in profile_ids()])
        return
    profiles = []
    for name in files:
        if not name.endswith((".yaml", ".yml")):
            raise typer.BadParameter(f"{name!r} is not a profile file (.yaml)")
        try:
            profiles.append(_profile(name))
        except ScenarioError as exc:
            Console(stderr=True, soft_wrap=True).print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(1) from None
    render_profiles(fmt, Console(), profiles)


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
            + " (a scenario's `agreement: profile:`), or a profile file (.yaml)"
        ),
    ] = DEFAULT_PROFILE_ID,
) -> None:
    """Print the rule book the umpire applies: id, article, severity and what it requires."""
    try:
        profile = _profile(agreement)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="--agreement") from None
    except ScenarioError as error:
        raise typer.BadParameter(str(error), param_hint="--agreement") from None
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


def _position(option: str, value: int | None) -> None:
    """Refuse a position below 1 (a log's first event is at 1), naming the option."""
    if value is not None and value < 1:
        _fail(f"{option} takes a position in the log, 1 or more, not {value}")


def _emit_json(data: object, output: Path | None) -> None:
    """Indented JSON to `output`, or to stdout when it is None (or cannot be written:
    a run's summary is not lost for a file that went away while it ran)."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        typer.echo(text, nl=False)
        _fail(f"{output}: cannot write it ({exc.strerror or exc}); the JSON went to stdout")


def _json_target(output: Path | None, option: str = "--json-summary") -> None:
    """Refuse, before a run starts, a file its end could not write; make its directory
    (as --log does). The run's summary had been lost to a traceback after the run."""
    if output is None:
        return
    if output.is_dir():
        _fail(f"{option} {output}: is a directory; give a file's path")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"{option} {output}: cannot make its directory ({exc.strerror or exc})")


def _run(coroutine: Coroutine[Any, Any, T], *, log: str | None = None) -> T:
    """Run a command's coroutine; bad input becomes one message and exit code 2.

    `log`: the log the command writes a run to. Ctrl-C stops the run where it is,
    its log closed cleanly (a closing checkpoint): it says so, and how to go on
    (exit 130, as a shell reports an interrupted command). It had ended silently.
    """
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        if log is None:
            raise
        typer.echo(
            f"interrupted: the run stopped where it was; its log {log} is closed and goes "
            f"on with `simulator resume {log}`",
            err=True,
        )
        raise typer.Exit(130) from None
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
    _position("--at", at)
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
    key: Annotated[
        list[Path] | None,
        typer.Option(
            "--key",
            help="trust only this checkpoint key: a PEM public key (`log key -o FILE`), "
            "a PEM private key or 64 hex digits; may be given more than once",
        ),
    ] = None,
    pubkey: Annotated[
        list[str] | None,
        typer.Option("--pubkey", help="trust only this checkpoint key, as 64 hex digits"),
    ] = None,
    witness: Annotated[
        str | None,
        typer.Option(
            "--witness",
            help="hold the log to the checkpoints kept there too (file, directory or "
            "postgresql:// URL; see SIMULATOR_CHECKPOINT_WITNESS)",
        ),
    ] = None,
) -> None:
    """Check a log's integrity, hash chain, case versions and signed checkpoints.

    Exit 0 when sound; 1 naming the first bad position (or the segment
    between two checkpoints where a rewrite lies) and what is wrong. Without
    --key the key the log names is trusted, and the output says so.
    """
    try:
        pinned = [read_public_key(path) for path in key or []]
    except LogError as exc:
        _fail(str(exc))
    for text in pubkey or []:
        try:
            pinned.append(parse_public_key(text))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--pubkey") from None
    partitions = _run(verify_partitions(location, pinned=pinned))
    if partitions is not None:
        _say_partitions_verified(location, partitions, as_json=as_json)
        return
    report = _run(verify_log(location, pinned=pinned, witness=witness))
    if as_json:
        typer.echo(report_json(report))
    elif report.ok:
        typer.echo(
            f"{location}: sound — {report.checked} events, chain intact, "
            f"{report.checkpoints_checked} signed checkpoints agree"
        )
        for note in report.notes:
            typer.echo(f"  {note}")
    else:
        if report.segment is not None and report.segment[0] != report.segment[1]:
            where = f"positions {report.segment[0]}–{report.segment[1]}"
        elif report.first_bad_position:
            where = f"position {report.first_bad_position}"
        else:
            where = "log"
        err = Console(stderr=True, soft_wrap=True)
        problem = str(report.problem)
        # Most problems name the log and the position themselves: say them once.
        said = problem if problem.startswith(f"{location}: ") else f"{location}: {where}: {problem}"
        err.print(f"[red]{escape(said)}[/]")
        for note in report.notes:
            err.print(f"  {escape(note)}")
    if not report.ok:
        raise typer.Exit(1)


def _say_partitions_verified(
    location: str, partitions: list[tuple[str, VerifyReport]], *, as_json: bool
) -> None:
    """The verdict on each partition of a partitioned run; exit 1 if any is unsound."""
    if as_json:
        rows = [{"log": part, **json.loads(report_json(found))} for part, found in partitions]
        typer.echo(json.dumps({"partitions": rows, "ok": all(f.ok for _, f in partitions)}))
    else:
        typer.echo(f"{location}: a run of {len(partitions)} partitions, each checked on its own")
        err = Console(stderr=True, soft_wrap=True)
        for part, found in partitions:
            if found.ok:
                typer.echo(
                    f"  {part}: sound — {found.checked} events, chain intact, "
                    f"{found.checkpoints_checked} signed checkpoints agree"
                )
            else:
                err.print(f"[red]  {escape(part)}: {escape(str(found.problem))}[/]")
    if not all(found.ok for _, found in partitions):
        raise typer.Exit(1)


@log_app.command("export")
def log_export(
    location: LogArg,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file to write (default: stdout)")
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="where to write the log's signed checkpoints (default with -o: FILE.checkpoints)",
        ),
    ] = None,
) -> None:
    """Export a log as JSON lines, one structured-mode CloudEvent per line.

    The log's signed checkpoints go beside it, so that an import can hold the
    events to them.
    """
    if checkpoints is None and output is not None:
        checkpoints = checkpoints_beside(output)
    metadata = None if output is None else metadata_beside(output)
    for path in (output, checkpoints, metadata):
        if path is not None and path.exists():
            _fail(f"{path}: already exists; choose a new file")
    try:
        if output is None:
            if checkpoints is None:
                _run(export_log(location))
                return
            with checkpoints.open("x", encoding="utf-8") as signed:
                _run(export_log(location, checkpoints=signed))
            return
        assert checkpoints is not None  # set beside -o above
        assert metadata is not None
        with (
            output.open("x", encoding="utf-8") as handle,
            checkpoints.open("x", encoding="utf-8") as signed,
            metadata.open("x", encoding="utf-8") as described,
        ):
            count = _run(export_log(location, handle, checkpoints=signed, metadata=described))
    except OSError as exc:
        # The file to write cannot be made (no such directory, no permission).
        _fail(f"{exc.filename or output}: {exc.strerror or exc}")
    run = (
        f"the run's metadata (scenario, seed, lineage) to {metadata}"
        if json.loads(metadata.read_text(encoding="utf-8"))
        # A partitioned run's export, or a log that records no run: an import gets none.
        else f"no run metadata (scenario, seed, lineage: none to carry) to {metadata}"
    )
    said = (
        f"exported {count} events to {output}, its signed checkpoints to {checkpoints}, {run}"
        if checkpoints.stat().st_size
        # Its side file gone or emptied (`log verify` fails it): the import will say that
        # nothing but its own re-signing vouches for these events.
        else f"exported {count} events to {output} and {run}; {location} has no "
        f"signed checkpoints, so {checkpoints} is empty (`log verify` the log)"
    )
    Console(stderr=True).print(said)


@log_app.command("import")
def log_import(
    source: Annotated[Path, typer.Argument(help="a JSON lines file from `log export`")],
    output: Annotated[str, typer.Option("-o", "--output", help="the new log (path or URL)")],
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="the source's signed checkpoints (default: SOURCE.checkpoints if it exists)",
        ),
    ] = None,
) -> None:
    """Import JSON lines into a new log; the chain is checked first and hashes are kept.

    The events must agree with the source's checkpoints, which the new log
    keeps. The new log's own checkpoints are signed by this machine's key:
    the import says so, and records it for `log verify` and `log show`.
    """
    if not is_postgres(output) and Path(output).exists():
        _fail(f"{output}: already exists; import writes a new log only")
    if not source.is_file():
        _fail(f"{source}: no such file")
    if checkpoints is not None and not checkpoints.is_file():
        _fail(f"{checkpoints}: no such file")
    notes = _run(import_logs(source, output, now=wall_now, checkpoints=checkpoints))
    err = Console(stderr=True, soft_wrap=True)
    for target, note in notes:
        count = note.last_position - note.first_position + 1
        err.print(f"imported {count} events into {target}")
        colour = "yellow" if note.source_checkpoints else "red"
        err.print(f"[{colour}]{escape(note.describe())}[/]")


@log_app.command("key")
def log_key(
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="write the public key (PEM) here, for `--key`"),
    ] = None,
) -> None:
    """Print this machine's checkpoint key: its fingerprint and public key (PEM).

    Give the public key to whoever verifies your logs (`log verify --key FILE`),
    by a channel other than the log itself.
    """
    try:
        fingerprint, pem, where = machine_key()
    except LogError as exc:
        _fail(str(exc))
    if output is not None:
        if output.exists():
            _fail(f"{output}: already exists; choose a new file")
        output.write_bytes(pem)
    typer.echo(f"{fingerprint}  ({where})")
    if output is None:
        typer.echo(pem.decode("ascii"), nl=False)


@log_app.command("witness-init")
def log_witness_init(
    url: Annotated[
        str, typer.Argument(help="postgresql://ADMIN@…/DB[?schema=witness], as an administrator")
    ],
    writer: Annotated[
        list[str],
        typer.Option("--writer", help="a role that writes logs: INSERT only, nothing else"),
    ],
    reader: Annotated[
        list[str] | None,
        typer.Option("--reader", help="a role that verifies logs: SELECT only"),
    ] = None,
) -> None:
    """Create a PostgreSQL witness table that the writers may only add checkpoints to.

    Run it as a role other than the writers'. Then run the writers with
    SIMULATOR_CHECKPOINT_WITNESS=URL (with their own user) and verify with
    `log verify LOG --witness URL`.
    """
    if not is_postgres(url):
        _fail(f"{url}: a witness table needs a postgresql:// URL; a file witness needs no set-up")
    admin, schema = split_witness_url(url)
    try:
        from simulator.eventlog import create_witness  # noqa: PLC0415 - psycopg, on use

        table = create_witness(admin, schema=schema, writers=writer, readers=reader or [])
    except (LogError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(
        f"{table}: writers {', '.join(writer)} may INSERT only (UPDATE, DELETE, TRUNCATE "
        f"revoked); readers: {', '.join(reader or []) or 'none'}"
    )


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
    broker: Annotated[str, typer.Option(help=BROKER_HELP)] = "embedded",
    log: Annotated[
        str | None,
        typer.Option("--log", help="SQLite file or postgresql:// URL (default: runs/…db)"),
    ] = None,
    seed: Annotated[int | None, SEED_OPTION] = None,
    clock: Annotated[
        str, typer.Option(help="simulated (rounds, deterministic) or realtime")
    ] = "simulated",
    speed: Annotated[
        float | None,
        typer.Option(help="realtime only: simulated seconds per real second (default 1)"),
    ] = None,
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
    partitions: Annotated[
        int,
        typer.Option(
            help="realtime, postgresql:// log: split the cases among this many umpires, "
            "each the writer of its own log (schema NAME_pN); 0: one umpire"
        ),
    ] = 0,
) -> None:
    """Run an exercise: the umpire and the simulated parties over a real broker."""
    configure_logging(json=log_json, level="info" if verbose else "warning")
    if clock not in ("simulated", "realtime"):
        _fail(f"--clock must be simulated or realtime, not {clock!r}")
    if speed is not None and (problem := speed_problem(speed)):
        _fail(f"--speed {problem}")
    _json_target(json_summary)
    console = Console(stderr=True)
    if speed is not None and clock == "simulated":
        # Taken as it always was (scripts pass it), but not without a word: it paces nothing.
        console.print(
            "note: --speed paces the realtime clock (--clock realtime); a simulated run "
            "goes as fast as its rounds do",
            highlight=False,
        )
    try:
        scenario = load_scenario(scenario_file)
    except ScenarioError as exc:
        _fail(str(exc))
    progress = Progress()
    # Named before the run, so an interrupted run can say where its log is.
    log = log or str(default_log_path(scenario, RunOptions().runs_dir, wall_now()))
    options = RunOptions(
        broker=broker,
        log=log,
        seed=seed,
        clock="simulated" if clock == "simulated" else "realtime",
        speed=1.0 if speed is None else speed,
        external=tuple(external or ()),
        secure=secure,
        partitions=partitions,
    )
    with console.status("starting…") as status:

        def update(events: Sequence[Event]) -> None:
            progress.commit(events)
            status.update(progress.line())

        def tick(marker: Tick) -> None:
            # Realtime: the line follows the clock every tick, not only the commits.
            progress.tick(marker)
            status.update(progress.line())

        outcome = _run(run_exercise(scenario, options, on_commit=update, on_clock=tick), log=log)
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
    if not is_party_id(party_id):
        # It names a file beside the log: `a/b` failed there with a traceback.
        _fail(f"--party {party_id!r} is no party id (they match {PARTY_ID_PATTERN.pattern})")
    path = seat_path(log, party_id)
    if not path.exists():
        with contextlib.suppress(LogError, SimulatorError, OSError):
            # A run that has ended took its seat files with it: say that, not "run it first".
            if (end := asyncio.run(exercise_end(log))) is not None:
                _fail(
                    f"the exercise in {log} ended at position {end.position} "
                    f"({end.data.get('reason', '')}): there is no seat to take; "
                    "`simulator fork` or `serve` it to go on another way"
                )
    try:
        seat = read_seat_file(path)
        if seat.party != party_id:
            _fail(f"{path} is the seat of party {seat.party}, not of {party_id}")
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
    if order.command == "inject" and not order.inject:
        _fail("inject needs --inject ID")
    if order.command == "note" and not (order.text or "").strip():
        # As speed and inject: bad input is refused here, exit 2, not by the umpire (exit 1).
        _fail('note needs --text "…"')
    takes = {"speed": "speed", "inject": "inject", "note": "text"}.get(order.command)
    given = {"speed": speed, "inject": inject, "text": text}
    if stray := [
        f"--{name}" for name, value in given.items() if value is not None and name != takes
    ]:
        # `pause --speed 60` had paused and left the speed as it was, without a word.
        _fail(f"{order.command} takes no {' or '.join(stray)}")
    if not math.isfinite(timeout) or timeout <= 0:
        # 0 sent the command and said at once it had no answer (it was carried out all the
        # same); NaN and infinity waited for ever for a run that is gone.
        _fail(f"--timeout {timeout:g}: give the seconds to wait for the answer, above 0")
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
        str | None,
        typer.Option(
            help="before publishing, so subscribers can connect: seconds, or 'enter' to wait "
            "for the Enter key (default: 'enter' on a terminal when replay starts the broker, "
            "else 0)"
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(help="the port of the broker replay starts (default: a free one)")
    ] = 0,
    secure: Annotated[bool, SECURE_OPTION] = False,
) -> None:
    """Re-publish a log's events to a broker at a chosen speed, or check it with --check."""
    _position("--from", start)
    _position("--until", until)
    if until is not None and until < start:
        _fail(f"--until {until} comes before --from {start}")
    if check_:
        _replay_check(location, broker)
        return
    pace = _replay_pace(speed)
    if not 0 <= port < 65536:
        _fail("--port must be 0 (a free one) or a port number")
    pause = _replay_wait(wait, ours="://" not in broker)
    console = Console(stderr=True)

    async def publish() -> int:
        # The scenario first: a log that records none (a load run's) is refused before
        # anything is read; the events are then streamed, never held whole in memory.
        scenario, _, _ = await recorded_run(location)
        count, exercise = await range_summary(location, start, until)
        if not count or exercise is None:
            last = "the end" if until is None else until
            raise InputError(f"{location}: no events between {start} and {last}")
        topics = Topics(exercise)
        # The broker's accounts live here: removed with the replay, or swept after a kill.
        with private_workdir("simulator-replay-") as workdir:
            parties = [p.id for p in scenario.parties]
            tls = broker_tls(workdir, topics.exercise, SecurityOptions(secure))
            async with start_broker(
                broker,
                topics,
                parties,
                workdir,
                tls=tls,
                restricted_observer=secure,
                port=port,
            ) as running:
                observer = running.credentials("observer")
                address = running.address
                shown = f"{topics.base}/log/# and {topics.clock}" if secure else topics.tree
                console.print(
                    f"replaying {count} events of {topics.exercise} to "
                    f"{address.display} (observer: {observer.username} / "
                    f"{observer.password}); topics {shown}",
                    highlight=False,
                )
                if address.ca_file is not None:
                    console.print(f"TLS: trust the CA in {address.ca_file}", highlight=False)
                subscribe = (
                    f"mosquitto_sub -h {address.host} -p {address.port} "
                    f"-u {observer.username} -P {observer.password} "
                    + (f"--cafile {address.ca_file} " if address.ca_file else "")
                    + f"-t '{f'{topics.base}/log/#' if secure else topics.tree}' -v"
                )
                console.print(f"subscribe with: {subscribe}", highlight=False, soft_wrap=True)
                if pause is None:
                    console.print("press Enter to start publishing", highlight=False)
                    await asyncio.to_thread(sys.stdin.readline)
                elif pause > 0:
                    console.print(f"publishing in {pause:g} s", highlight=False)
                    await asyncio.sleep(pause)
                bus = transport_for(
                    running,
                    "umpire",
                    # Its own id: two replays of one log to one broker took a fixed one
                    # from each other, again and again, for as long as both ran.
                    SessionSettings(
                        private_client_id(topics.exercise, "replay", secret_token(9)),
                        persistent=False,
                    ),
                    rng=fresh_rng(),
                )
                async with bus:
                    with console.status("replaying…") as status:

                        def progress(p: ReplayProgress) -> None:
                            reached.append(p)
                            status.update(f"position {p.position}: {p.published}/{p.total} events")

                        return await republish(
                            stream_range(location, start, until),
                            bus,
                            topics,
                            speed=pace,
                            total=count,
                            progress=progress,
                            private_cases=await confidential_before(location, start),
                        )

    reached: list[ReplayProgress] = []
    messages = _replayed(publish(), console, reached)
    console.print(f"done: {messages} MQTT messages")


def _replay_check(location: str, broker: str) -> None:
    """`replay --check`: exit 0 when today's code reproduces the log, 1 naming where not."""
    try:
        result = _run(check(location, broker=broker))
    except KeyboardInterrupt:
        # The rerun goes to a directory of its own, removed as it stops; the log is only read.
        typer.echo(f"interrupted: {location} was not checked; it is as it was", err=True)
        raise typer.Exit(130) from None
    if result.ok:
        typer.echo(f"{location}: today's code reproduces all {result.recorded} events")
        if result.what:
            typer.echo(result.what)
        return
    Console(stderr=True).print(
        f"[red]{escape(location)}: diverges at position {result.first_difference}: "
        f"{escape(result.what)}[/]"
    )
    raise typer.Exit(1)


def _replayed(
    publishing: Coroutine[Any, Any, int], console: Console, reached: Sequence[ReplayProgress]
) -> int:
    """Run a replay; one stopped midway says how far it got, so the rest can be replayed.

    Interrupted, it had exited 130 without a word; its broker gone, it named the
    broker but not where to go on from.
    """
    try:
        return _run(publishing)
    except KeyboardInterrupt:
        if not reached:
            console.print("interrupted: nothing was published", highlight=False)
        _replay_stopped(console, "interrupted", reached)
        raise typer.Exit(130) from None
    except typer.Exit:
        _replay_stopped(console, "stopped", reached)
        raise


def _replay_stopped(console: Console, how: str, reached: Sequence[ReplayProgress]) -> None:
    if reached:
        last = reached[-1]
        console.print(
            f"{how}: published {last.published} of {last.total} events, up to position "
            f"{last.position}; the rest with --from {last.position + 1}",
            highlight=False,
        )


def _replay_pace(speed: str) -> float | None:
    """`replay --speed`: a clock's speed, or None for `max` (no pacing)."""
    if speed == "max":
        return None
    try:
        pace = float(speed)
    except ValueError:
        _fail(f"--speed must be a number or max, not {speed!r}")
    if problem := speed_problem(pace):
        _fail(f"--speed {problem}, or max")
    return pace


def _replay_wait(wait: str | None, *, ours: bool) -> float | None:
    """Seconds to wait before publishing; None: until Enter is pressed."""
    if wait is None:
        # A person at a terminal gets time to start a subscriber; a script does not wait.
        return None if ours and sys.stdin.isatty() else 0.0
    if wait == "enter":
        return None
    try:
        pause = float(wait)
    except ValueError:
        _fail("--wait takes seconds or 'enter'")
    if pause < 0:
        _fail("--wait must not be negative")
    return pause


@app.command("fork")
def fork_command(
    location: LogArg,
    at: Annotated[int, typer.Option("--at", help="keep the first POS events")],
    output: Annotated[str, typer.Option("-o", "--output", help="the new log (path or URL)")],
    scenario_file: Annotated[
        Path | None, typer.Option("--scenario", help="go on with this scenario's policies")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="go on with this seed", min=0, max=MAX_SEED)
    ] = None,
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
    _json_target(json_summary)
    outcome = _run(
        fork(location, at, output, scenario=scenario, seed=seed, broker=broker), log=output
    )
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
    external: Annotated[
        list[str] | None,
        typer.Option(
            "--external",
            help="leave this party to a `simulator party` process (default: the ones the "
            "run left to one)",
        ),
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="play every party here, the run's external ones too"),
    ] = False,
) -> None:
    """Go on with an interrupted run (killed, or its machine lost) in its own log."""
    if speed is not None and (problem := speed_problem(speed)):
        _fail(f"--speed {problem}")
    if in_process and external:
        _fail("--in-process plays every party here: drop --external")
    _json_target(json_summary)
    parties = () if in_process else external or None
    if parties is None:
        with contextlib.suppress(LogError, InputError):
            # Said before the run, which waits for them: their players start them again.
            if left := asyncio.run(recorded_external(location)):
                Console(stderr=True).print(
                    f"{', '.join(left)}: left to `simulator party --log {location} --party "
                    "…` as the run did (--in-process to play them here)",
                    markup=False,
                )
    outcome = _run(resume(location, broker=broker, speed=speed, external=parties), log=location)
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
    # The report package loads its renderers, which no other command should pay for.
    from simulator.report import (  # noqa: PLC0415 - see above
        LogIntegrity,
        lettered_cases,
        read_report,
        read_report_letters,
        save_report,
    )

    if charts < 0:
        _fail("--charts must be 0 or more")
    # The report is of the log as it is now: it says whether that is what its writer
    # signed (an edited seed or scenario would otherwise be reported as the run's). A long
    # log is checked in a process of its own while the report is read: the check is a
    # third of the report's time again (a load run's log), and a new process costs about
    # a second of imports, more than checking a short log takes.
    if _run(log_head(location)) < CHECK_APART_FROM:
        data = _run(read_report(location))
        checked = verified_everywhere(location)
    else:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            checking = pool.submit(verified_everywhere, location)
            data = _run(read_report(location))
            checked = checking.result()
    if isinstance(checked, str):
        _fail(checked)
    bad = next((r for r in checked if not r.ok), None)
    integrity = LogIntegrity(
        sound=bad is None,
        checked=sum(r.checked for r in checked),
        closed=_all_or_none([r.closed for r in checked]),
        metadata_vouched=_all_or_none([r.metadata_vouched for r in checked]),
        keys=sorted({use.fingerprint for r in checked for use in r.keys}),
        problem=bad.problem if bad is not None else None,
        partitions=len(checked) if len(checked) > 1 else 0,
    )
    data = data.model_copy(update={"integrity": integrity})
    cases = lettered_cases(data, charts)
    letters = _run(read_report_letters(location, cases, until=data.summary.events))
    try:
        files = save_report(data, output, charted_cases=charts, letters=letters)
    except OSError as exc:
        _fail(f"{exc.filename or output}: {exc.strerror or exc}")
    pages = f", {len(files.pages)} pages of long tables beside them" if files.pages else ""
    only = (
        " (the charted cases' only; `simulator letters --case ID` writes any other's)"
        if cases is not None
        else ""
    )
    Console(stderr=True).print(
        f"wrote {files.html}, {files.markdown} and {files.json}{pages}, and {len(letters)} "
        f"letters in {output / LETTERS_DIRECTORY}{only}",
        highlight=False,
    )
    if bad is not None:
        Console(stderr=True).print(
            f"warning: the log does not verify, and the report says so: {bad.problem}",
            highlight=False,
            markup=False,
        )


def _all_or_none(values: Sequence[bool | None]) -> bool | None:
    """True if every partition says so, False if any says not, None if one cannot tell."""
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


@app.command()
def letters(
    location: LogArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="directory for the letters")],
    case: Annotated[str | None, typer.Option("--case", help="only this case's letters")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, pdf or both (default)")] = "both",
) -> None:
    """Write each written message as the official letter it stands for, as HTML and PDF.

    In the message's language (Russian or English template): the sending party's
    letterhead, date and number, the addressee's coordination unit (Art. 10), the
    body (Art. 4.3 headings for a request; reasons and Art. 5.1 grounds for a refusal),
    the signatory with the seal, and whether the signature verified.
    """
    if fmt not in ("html", "pdf", "both"):
        _fail("--format is html, pdf or both")
    found = _run(read_letters(location, case=case))
    if not found:
        _fail(f"{location}: no written message" + (f" in case {case}" if case else ""), code=1)
    try:
        files = write_letters(
            found, output, html=fmt != "pdf", pdf=fmt != "html", drop_stale=case is None
        )
    except OSError as exc:
        _fail(f"{exc.filename or output}: {exc.strerror or exc}")
    except SimulatorError as exc:
        _fail(str(exc))
    Console(stderr=True).print(
        f"wrote {len(found)} letters to {output} ({len(files.html)} HTML, {len(files.pdf)} PDF); "
        f"index: {files.index}",
        highlight=False,
    )


app.command()(serve)
app.command()(load)
app.command()(umpire)


def main() -> None:
    app()
