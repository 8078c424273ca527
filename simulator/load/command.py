"""`simulator load`: the Typer command (registered in simulator.cli)."""

import asyncio
import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from simulator.errors import SimulatorError
from simulator.eventlog import LogError
from simulator.load.ceiling import (
    DEFAULT_P99_BOUND_MS,
    DEFAULT_STEPS,
    Ceiling,
    RampStep,
    find_max,
)
from simulator.load.conversation import PATHS, Mix, load_mix
from simulator.load.interrupt import Interruption
from simulator.load.interrupt import interruptible as interruptible_by_signals
from simulator.load.report import VERDICTS, LoadReport, cpu_roles
from simulator.load.runner import LoadOptions, run_load
from simulator.logging import configure as configure_logging
from simulator.options import BROKER_HELP, MAX_SEED, SECURE_OPTION
from simulator.transport import BrokerAddress

# Exit codes (`VERDICTS`): 0 all carried and nothing lost, 1 something lost, duplicated
# or undelivered, 2 could not run (or be carried to its end), 3 saturated: nothing lost,
# but offered more than it carried (cases never started or still open after the drain),
# 130 stopped by Ctrl-C or SIGTERM (the figures cover what ran).
EXIT_LOSS = VERDICTS["lost"]
EXIT_FAILED = VERDICTS["failed"]
EXIT_SATURATED = VERDICTS["saturated"]

if TYPE_CHECKING:
    from simulator.load.metrics import LoadMetrics


async def _interruptible(
    options: LoadOptions, progress: Callable[[dict[str, Any]], None], console: Console
) -> LoadReport:
    """The run, stopped gracefully by Ctrl-C or SIGTERM (`simulator.load.interrupt`)."""
    interruption = Interruption(lambda said: console.print(said, highlight=False))
    with interruptible_by_signals(interruption):
        return await run_load(options, on_progress=progress, interruption=interruption)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(EXIT_FAILED)


def load(
    parties: Annotated[int, typer.Option(help="parties (an even number: they talk in pairs)")] = 10,
    rate: Annotated[float, typer.Option(help="new cases per second (all processes together)")] = 50,
    duration: Annotated[float, typer.Option(help="seconds of new cases")] = 10,
    broker: Annotated[str, typer.Option(help=BROKER_HELP)] = "embedded",
    qos: Annotated[int, typer.Option(help="MQTT QoS of every publish: 0, 1 or 2")] = 1,
    processes: Annotated[int, typer.Option(help="load generator processes")] = 2,
    payload_bytes: Annotated[
        int, typer.Option(help="pad opening requests to about this many bytes (0: no padding)")
    ] = 0,
    mix: Annotated[
        Path | None,
        typer.Option(help=f"YAML/JSON shares of the paths: {', '.join(PATHS)}"),
    ] = None,
    one_per_message: Annotated[
        bool,
        typer.Option(
            "--one-per-message", help="every submission its own MQTT publish (no batching)"
        ),
    ] = False,
    per_party: Annotated[
        bool,
        typer.Option(
            "--per-party",
            help="batched, but a connection per party instead of one gateway per process",
        ),
    ] = False,
    log: Annotated[
        str | None,
        typer.Option(
            help="the log: a SQLite file or a postgresql:// URL (default: a temporary file)"
        ),
    ] = None,
    partitions: Annotated[
        int,
        typer.Option(
            help="split the cases among this many umpire processes, each the single writer "
            "of its partition's log (needs --log postgresql://…?schema=NAME: the partitions' "
            "logs are the schemas NAME_p0, NAME_p1, …)"
        ),
    ] = 1,
    worker_command: Annotated[
        list[str] | None,
        typer.Option(
            help="start the generator processes with this command instead, on another host "
            "('ssh gen1 /srv/coop/.venv/bin/python -m simulator.load.worker'); may be given "
            "more than once, taken in turn; the broker must be reachable from there"
        ),
    ] = None,
    standbys: Annotated[
        int,
        typer.Option(
            help="umpire processes that wait to take over a partition whose owner dies "
            "(needs --log postgresql://…)"
        ),
    ] = 0,
    json_file: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    html: Annotated[Path | None, typer.Option(help="write an HTML page of the run here")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus metrics on this loopback port")
    ] = None,
    drain: Annotated[
        float,
        typer.Option(
            help="seconds to let open cases finish after the schedule; those still open then "
            "are unfinished (exit 3), not lost"
        ),
    ] = 10,
    connect_timeout: Annotated[
        float,
        typer.Option(
            "--connect-timeout",
            min=0.1,
            help="seconds every connection waits for the broker before the run gives up (exit 2)",
        ),
    ] = 30,
    find_max_: Annotated[
        bool,
        typer.Option(
            "--find-max",
            help="ramp the rate from --rate up by 1.3x, a --duration run a step, and report "
            "the highest held (every case done, nothing lost, p99 under --p99-bound)",
        ),
    ] = False,
    p99_bound: Annotated[
        float, typer.Option(help="--find-max: the message p99 a rate must hold, in ms")
    ] = DEFAULT_P99_BOUND_MS,
    steps: Annotated[int, typer.Option(help="--find-max: runs of the ramp at most")] = (
        DEFAULT_STEPS
    ),
    case_deadline: Annotated[
        float, typer.Option(help="a case slower than this many seconds is a deadline miss")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="seed of the path choices", min=0, max=MAX_SEED)] = 1,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="no live progress")] = False,
    secure: Annotated[bool, SECURE_OPTION] = False,
) -> None:
    """Load-test message flows: whole conversations at a target rate, reconciled against the log.

    Exit 0 when every case was carried and nothing lost or duplicated; 1 when
    something was lost, duplicated or never delivered; 2 when the run could
    not be made or carried to its end; 3 when it was saturated: nothing lost,
    but offered more than it carried (cases never started, or still open when
    the drain ran out: counted as unfinished, not lost); 130 when it was
    stopped (Ctrl-C or SIGTERM: no new cases from then, the open ones drain
    unless it is stopped again, nothing lost is still proved). The figures
    (--json, --html) are written in every case but the first kind of 2. With
    --find-max: 0 when some rate held, 3 when not even --rate did.
    """
    configure_logging(level="error")
    console = Console(stderr=True)
    try:
        chosen_mix = load_mix(mix) if mix is not None else Mix()
        options = LoadOptions(
            parties=parties,
            rate=rate,
            duration_s=duration,
            broker=broker,
            qos=qos,
            processes=processes,
            payload_bytes=payload_bytes,
            mix=chosen_mix,
            one_per_message=one_per_message,
            per_party=per_party,
            log=log,
            seed=seed,
            drain_s=drain,
            case_deadline_s=case_deadline,
            connect_timeout_s=connect_timeout,
            secure=secure,
            partitions=partitions,
            standbys=standbys,
            worker_commands=tuple(worker_command or ()),
        )
        options.check()
        _check_the_rest(p99_bound, metrics_port, json_file, html)
        if find_max_ and metrics_port is not None:
            raise SimulatorError(
                "--metrics-port serves one run's figures: leave it out of --find-max"
            )
        if find_max_ and log is not None:
            raise SimulatorError(
                "--find-max makes a run per step, each with its own log: leave out --log"
            )
    except SimulatorError as exc:
        raise _fail(str(exc)) from None
    if find_max_:
        _find_max(options, p99_bound, steps, json_file, html, quiet)
        return

    headed = False

    def show(snapshot: dict[str, Any]) -> None:
        # A head once, then one row of figures a second: 64 columns, so no line wraps at 80.
        nonlocal headed
        if quiet:
            return
        if not headed:
            console.print(progress_head(), highlight=False)
            headed = True
        console.print(progress_row(snapshot), highlight=False)

    metrics = _metrics(metrics_port)

    def progress(snapshot: dict[str, Any]) -> None:
        show(snapshot)
        if metrics is not None:
            metrics.update(snapshot)

    try:
        report = asyncio.run(_interruptible(options, progress, console))
    except (SimulatorError, LogError) as exc:
        if json_file is not None:
            # Whoever reads the figures (a CI job, a dashboard) learns why there are none.
            _write_json(json_file, _failed(options, exc))
        raise _fail(str(exc)) from None
    data = report.as_json()
    if metrics is not None:
        metrics.final(data)
    if json_file is not None:
        _write_json(json_file, data)
    if html is not None:
        from simulator.load.page import render_page  # noqa: PLC0415 - matplotlib is slow to load

        html.write_text(render_page(data), encoding="utf-8")
    _print_summary(data, Console())
    if report.failure is not None:
        raise _fail(report.failure)
    if report.verdict != "ok":
        raise typer.Exit(VERDICTS[report.verdict])


def _find_max(
    options: LoadOptions,
    p99_bound: float,
    steps: int,
    json_file: Path | None,
    html: Path | None,
    quiet: bool,
) -> None:
    console = Console(stderr=True)

    def show(step: RampStep) -> None:
        if not quiet:
            console.print(ramp_row(step), highlight=False)

    interruption = Interruption(lambda said: console.print(said, highlight=False))

    async def ramp() -> Ceiling:
        with interruptible_by_signals(interruption):
            return await find_max(
                options,
                p99_bound_ms=p99_bound,
                steps=steps,
                on_step=show,
                run=functools.partial(run_load, interruption=interruption),
                interruption=interruption,
            )

    try:
        ceiling = asyncio.run(ramp())
    except (SimulatorError, LogError) as exc:
        if json_file is not None:
            _write_json(json_file, _failed(options, exc))
        raise _fail(str(exc)) from None
    data = {**(ceiling.figures or {}), "find_max": ceiling.as_json()}
    if json_file is not None:
        _write_json(json_file, data)
    if html is not None and ceiling.figures is not None:
        from simulator.load.page import render_page  # noqa: PLC0415 - matplotlib is slow to load

        html.write_text(render_page(data), encoding="utf-8")
    Console().print(ceiling_summary(ceiling), highlight=False)
    if ceiling.verdict != "ok":
        raise typer.Exit(VERDICTS[ceiling.verdict])


def ramp_row(step: RampStep) -> str:
    """One step of --find-max: offered and committed events/s, p99, and whether it held."""
    held = "held" if step.held else f"not held: {step.why}"
    return (
        f"offered {step.offered_events_per_s:,.0f} events/s ({step.offered_cases_per_s:g} "
        f"cases/s): committed {step.committed_events_per_s_sustained:,.0f}/s sustained, "
        f"p99 {step.p99_ms:g} ms, {step.cases_completed} of {step.cases_scheduled} cases; {held}"
        f"{_step_cpu(step)}"
    )


def _step_cpu(step: RampStep) -> str:
    if step.cores_busy is None:
        return ""
    return f"; CPU: {step.cores_busy:g} cores busy, ran out first: {step.cpu_why}"


def ceiling_summary(ceiling: Ceiling) -> str:
    best = ceiling.best
    if best is None:
        first = ceiling.steps[0]
        return (
            f"no rate held with p99 under {ceiling.p99_bound_ms:g} ms: the first, "
            f"{first.offered_events_per_s:,.0f} events/s, was {first.why}{_step_cpu(first)}"
        )
    after = [s for s in ceiling.steps if not s.held]
    beyond = (
        f"; the next, {after[0].offered_events_per_s:,.0f} events/s, was {after[0].why}"
        f"{_step_cpu(after[0])}"
        if after
        # Every step held: the ceiling is higher than the ramp went, not found.
        else f"; every one of the {len(ceiling.steps)} steps held: the ceiling is higher "
        "(more --steps, or a higher --rate to start from, to find it)"
    )
    return (
        f"highest rate held with p99 under {ceiling.p99_bound_ms:g} ms: "
        f"{best.offered_events_per_s:,.0f} events/s offered ({best.offered_cases_per_s:g} "
        f"cases/s), {best.committed_events_per_s_sustained:,.0f} committed events/s "
        f"sustained, p99 {best.p99_ms:g} ms{_step_cpu(best)}{beyond}"
    )


def _failed(options: LoadOptions, exc: Exception) -> dict[str, Any]:
    """The figures of a run that could not be made: what it was asked, and why (exit 2)."""
    return {**_asked(options), "failure": str(exc), "ok": False, "verdict": "failed"}


def _asked(options: LoadOptions) -> dict[str, Any]:
    """What the run was asked to do, for a JSON written when it could not be made."""
    return {
        "broker": _shown(options.broker),
        "log": options.log,
        "parties": options.parties,
        "processes": options.processes,
        "qos": options.qos,
        "duration_s": options.duration_s,
        "offered_cases_per_s": options.rate,
    }


def _shown(broker: str) -> str:
    """A broker as the figures name it: a URL without its password."""
    if "://" not in broker:
        return broker
    try:
        return BrokerAddress.from_url(broker, environ={}).display
    except SimulatorError:
        return "external"


def _metrics(port: int | None) -> "LoadMetrics | None":
    """The Prometheus endpoint on `port`, if asked for; a port taken is one message."""
    if port is None:
        return None
    from simulator.load.metrics import LoadMetrics  # noqa: PLC0415 - only when asked

    try:
        return LoadMetrics(port)
    except OSError as exc:
        raise _fail(f"--metrics-port {port}: {exc.strerror or exc}") from None


def _check_the_rest(
    p99_bound: float, metrics_port: int | None, json_file: Path | None, html: Path | None
) -> None:
    """What LoadOptions does not hold: refused before the run, never after it (its figures
    had been lost to a traceback, or a run that lost messages had exited 2, not 1, for a
    path that could not be written)."""
    if not (math.isfinite(p99_bound) and p99_bound > 0):
        raise SimulatorError(f"--p99-bound must be a positive number of ms, not {p99_bound}")
    if metrics_port is not None and not 1 <= metrics_port <= 65535:
        raise SimulatorError(f"--metrics-port must be 1..65535, not {metrics_port}")
    for option, path in (("--json", json_file), ("--html", html)):
        if path is None:
            continue
        if path.is_dir():
            raise SimulatorError(f"{option} {path}: is a directory; give a file's path")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimulatorError(
                f"{option} {path}: cannot make its directory ({exc.strerror})"
            ) from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(f"--json {path}: {exc.strerror or exc}") from None


# Live progress columns: head, snapshot key, width, format of the figure.
_PROGRESS = (
    ("t (s)", "t", 7, ".1f"),
    ("cases", "cases_started", 10, ""),
    ("done", "cases_completed", 10, ""),
    ("open", "open", 8, ""),
    ("events/s", "events_per_s", 10, ".0f"),
    ("p99 ms", "p99_ms", 9, ".1f"),
    ("resends", "resends", 9, ""),
)


def progress_head() -> str:
    """The head of the live progress rows."""
    return "".join(f"{head:>{width}}" for head, _, width, _ in _PROGRESS)


def progress_row(snapshot: dict[str, Any]) -> str:
    """One second of a load run: time, cases started, done and open, rate, p99, resends."""
    return "".join(f"{snapshot[key]:>{width}{form}}" for _, key, width, form in _PROGRESS)


def _second(t: float | None) -> str:
    return "-" if t is None else f"{t:g} s"


def cpu_line(data: dict[str, Any]) -> str:
    """The cores each role kept busy, its CPU per event, and what ran out first ("" if unknown)."""
    roles = cpu_roles(data)
    if not roles:
        return ""
    return f"CPU, cores busy over the run: {roles}\nran out of CPU first: {data['cpu_use']['why']}"


def _print_summary(data: dict[str, Any], console: Console) -> None:
    lat, case = data["latency_ms"], data["case_latency_ms"]
    cases = data["cases"]
    console.print(
        f"{data['mode']} over {data['broker']}, QoS {data['qos']}, {data['parties']} parties, "
        f"{data['processes']} process(es), {data['duration_s']:g} s\n"
        f"cases: offered {data['offered_cases_per_s']:g}/s, achieved "
        f"{data['achieved_cases_per_s']:g}/s; {cases['completed']} of {cases['scheduled']} "
        f"completed, {cases['incomplete']} incomplete\n"
        f"committed events: {data['committed_events_per_s']:g}/s on average over the run, "
        f"{data['committed_events_per_s_sustained']:g}/s sustained (the median second of the "
        f"schedule); MQTT messages: {data['mqtt_messages_per_s']:g}/s\n"
        f"message latency ms: p50 {lat['p50']} p90 {lat['p90']} p99 {lat['p99']} "
        f"p99.9 {lat['p99_9']} max {lat['max']}\n"
        f"case latency ms:    p50 {case['p50']} p90 {case['p90']} p99 {case['p99']} "
        f"p99.9 {case['p99_9']} max {case['max']}\n"
        f"deadline misses {data['deadline_misses']}; lost {data['lost']}, duplicated "
        f"{data['duplicated']}, rejected {data['rejected']}, undelivered {data['undelivered']} "
        f"(resends {data['resends']}, catch-ups {data['catch_ups']}, duplicate deliveries "
        f"{data['deliveries_duplicated']})",
        highlight=False,
    )
    cpu = cpu_line(data)
    if cpu:
        console.print(cpu, highlight=False)
    split = data.get("partitions")
    if split:
        owners = "; ".join(
            f"partition {n}: {' then '.join(names) or 'nobody'}"
            + (" (taken over)" if len(names) > 1 else "")
            for n, names in split["owners"].items()
        )
        console.print(
            f"{split['count']} partitions, {split['standbys']} standbys ({owners}); "
            f"`simulator log verify {data['log']}` checks each",
            highlight=False,
            soft_wrap=True,
        )
    if data.get("saturated"):
        unfinished, climb = data["unfinished"], data["saturation"]
        console.print(
            f"saturated: offered {climb['offered_events_per_s']:g} events/s; "
            f"{cases['not_started']} cases never started, {unfinished['cases']} unfinished "
            f"when the {data['drain_s']:g} s drain ran out ({unfinished['submissions_in_flight']}"
            f" submissions and {unfinished['deliveries_in_flight']} deliveries in flight: late, "
            f"not lost)",
            highlight=False,
        )
    climb = data.get("saturation") or {}
    if (
        climb.get("backlog_climbing_from_s") is not None
        or climb.get("latency_climbing_from_s") is not None
    ):
        console.print(
            f"backlog climbing from {_second(climb['backlog_climbing_from_s'])}, latency "
            f"from {_second(climb['latency_climbing_from_s'])}; committed "
            f"{climb['committed_events_per_s_while_climbing']} events/s meanwhile",
            highlight=False,
        )
    if not data.get("log_kept", True):
        console.print(
            "log: a temporary file, deleted when the run ended (keep it with --log FILE)",
            highlight=False,
        )
    if data["errors"]:
        console.print("errors: " + "; ".join(data["errors"][:5]), highlight=False)


__all__ = ["load"]


def umpire(
    log: Annotated[
        str,
        typer.Option(
            help="the run's log, postgresql://…?schema=NAME (its partitions' logs are "
            "NAME_p0, NAME_p1, …: `simulator load --partitions`)"
        ),
    ],
    broker: Annotated[
        str,
        typer.Option(
            help="the run's broker as mqtt:// (or mqtts://) user:password@host:port,host:port… "
            "(the umpire's account; or SIMULATOR_MQTT_USERNAME and SIMULATOR_MQTT_PASSWORD)"
        ),
    ],
    name: Annotated[str, typer.Option(help="this umpire's name in logs and fencing")] = "",
    partitions: Annotated[
        int | None,
        typer.Option(help="the run's partitions, checked against its log (default: its own)"),
    ] = None,
) -> None:
    """Join a partitioned load run as one more umpire: it owns a free partition or stands by.

    It reads the run's description from partition 0's log, takes the first
    partition nobody owns (PostgreSQL holds who does), and otherwise waits as a
    standby to take over a partition whose owner dies, resuming from its log.
    SIGTERM or Ctrl-C ends it; an owner commits what it has decided first.
    """
    from simulator.load.partitioned import serve, spec_from_log  # noqa: PLC0415 - psycopg

    configure_logging(level="warning")
    console = Console(stderr=True)
    chosen = name or f"umpire-{os.getpid()}"
    try:
        BrokerAddress.from_url(broker)
        spec = asyncio.run(spec_from_log(log, broker, chosen))
    except (SimulatorError, LogError) as exc:
        raise _fail(str(exc)) from None
    if partitions is not None and partitions != spec.partitions:
        raise _fail(f"--partitions {partitions}: the run at {log} has {spec.partitions}")

    def emit(kind: str, payload: dict[str, Any]) -> None:
        if kind == "owner":
            console.print(
                f"{chosen}: owner of partition {payload['partition']} of {spec.partitions} "
                f"(resumed from {payload['resumed']} events)",
                highlight=False,
            )
        elif kind == "standby":
            console.print(
                f"{chosen}: standby (all {spec.partitions} partitions owned)", highlight=False
            )

    try:
        result = asyncio.run(serve(spec, emit))
    except (SimulatorError, LogError) as exc:
        raise _fail(str(exc)) from None
    if result.get("partition") is None:
        console.print(f"{chosen}: stopped as a standby", highlight=False)
        return
    console.print(
        f"{chosen}: partition {result['partition']} stopped at head {result['head']}"
        + (" (ownership lost)" if result.get("lost") else ""),
        highlight=False,
    )
    if result.get("failure"):
        raise _fail(str(result["failure"]))
    if result.get("lost"):
        raise typer.Exit(EXIT_FAILED)
