"""`simulator run | scenario | asyncapi | control`, run as a user would."""

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from simulator.cli import app
from simulator.cli.app import _run as cli_run
from simulator.cli.runview import print_summary
from simulator.errors import ScenarioError
from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.options import MAX_SEED
from simulator.projections.summary import RunSummary
from simulator.run.control import control_path
from simulator.run.seat import SeatFile, read_seat_file, seat_path, write_seat_file
from simulator.scenario import load_scenario
from simulator.scenario.model import Scenario

EXAMPLE = Path(__file__).parent.parent / "scenarios" / "example.yaml"
SIMULATOR = [sys.executable, "-m", "simulator"]


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def test_run_writes_the_log_and_a_json_summary(tmp_path: Path) -> None:
    """A run exits 0 and its JSON summary has the log, events, cases, violations, expectations."""
    log, summary = tmp_path / "run.db", tmp_path / "summary.json"
    result = CliRunner().invoke(
        app, ["run", str(EXAMPLE), "--log", str(log), "--json-summary", str(summary)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(summary.read_text())
    assert data["log"] == str(log)
    assert data["events"] > 20
    assert sum(data["cases"].values()) == len(data["case_states"])
    assert isinstance(data["violations"], list)
    assert {e["id"] for e in data["expectations"]} >= {"results-in-time"}
    assert "Cases by final state" in result.stdout
    assert log.exists()
    assert not Path(f"{log}.control.json").exists()


def test_a_run_that_fails_before_its_first_event_leaves_no_log(tmp_path: Path) -> None:
    """No broker there: exit 2 naming it, and no empty log for the next run to take up."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runs = tmp_path / "runs"
    runs.mkdir()
    log = runs / "run.db"
    broker = f"mqtt://u:p@127.0.0.1:{port}"
    result = CliRunner().invoke(app, ["run", str(EXAMPLE), "--log", str(log), "--broker", broker])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{port} unavailable" in result.output
    assert sorted(runs.iterdir()) == []
    # A log that was there before is the user's: a failed run leaves it alone.
    log.write_bytes(b"")
    result = CliRunner().invoke(app, ["run", str(EXAMPLE), "--log", str(log), "--broker", broker])
    assert result.exit_code == 2
    assert log.exists()


BROKEN = {
    "wrong type": ("seed: 6", "seed: seven", "seed"),
    "id with /": ("- id: northmark", "- id: north/mark", "parties[0].id"),
    "id with +": ("- id: northmark", "- id: north+mark", "parties[0].id"),
    "id with #": ("- id: northmark", "- id: 'north#mark'", "parties[0].id"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scenario_is_refused_before_anything_starts(tmp_path: Path, case: str) -> None:
    """A broken scenario: exit 2, file, line and field named, no log or broker started."""
    old, new, field = BROKEN[case]
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = text.splitlines().index(next(t for t in text.splitlines() if old in t)) + 1
    log = tmp_path / "run.db"
    result = CliRunner().invoke(app, ["run", str(broken), "--log", str(log)])
    assert result.exit_code == 2
    message = result.stderr.replace("\n", "")
    assert f"{broken}:{line}:" in message
    assert field in message
    assert not log.exists()


def test_unknown_party_in_an_inject_is_refused(tmp_path: Path) -> None:
    """An inject from a party the scenario does not have is named with its line."""
    text = EXAMPLE.read_text(encoding="utf-8")
    marker = "from: northmark"
    assert marker in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(marker, "from: nowhere", 1), encoding="utf-8")
    result = CliRunner().invoke(app, ["scenario", "validate", str(broken)])
    assert result.exit_code == 1
    assert "nowhere" in result.stderr
    assert f"{broken}:" in result.stderr


CONFIRMED_LATER = """\
version: 1
exercise: confirmed-later
title: An oral request, confirmed by the controller's own inject
start: 2026-03-02T09:00:00Z
duration: 10d
parties:
  - {id: alpha, name: Alpha Agency, head: {name: A. Head}, deputies: [{name: A. Deputy}],
     seal: A-SEAL, coordination_unit: Liaison Office}
  - {id: beta, name: Beta Agency, head: {name: B. Head}, deputies: [{name: B. Deputy}],
     seal: B-SEAL, coordination_unit: Liaison Office}
injects:
  - id: call
    at: 1h
    send:
      type: oral_request
      from: alpha
      to: beta
      case: case-1
      fields: {area: public_order, urgent: true, essence: A wagon is missing., purpose: Find it.,
               justification: The grid waits for it., assistance_sought: Search the sidings.}
  - id: fax
    at: 1d
    send: {type: written_confirmation, from: alpha, to: beta, case: CASE}
"""


def test_a_written_confirmation_inject_runs_to_the_end(tmp_path: Path) -> None:
    """Scheduled as its own inject, a confirmation confirms the oral request; the run ends well."""
    scenario = tmp_path / "confirmed.yaml"
    scenario.write_text(CONFIRMED_LATER.replace("CASE", "case-1"), encoding="utf-8")
    log, summary = tmp_path / "run.db", tmp_path / "summary.json"
    result = CliRunner().invoke(
        app, ["run", str(scenario), "--log", str(log), "--json-summary", str(summary)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(summary.read_text())
    assert data["ended_because"] == "nothing left to happen"
    assert data["violations"] == []
    events = asyncio.run(_events(log))
    confirmation = next(e for e in events if e.type == "coop.msg.written_confirmation")
    assert confirmation.data["message"]["confirms"] == "inject.call"
    assert confirmation.data["message"]["essence"] == "A wagon is missing."
    assert events[-1].type == "coop.exercise.ended"


async def _events(log: Path) -> list[Event]:
    async with open_log(log, read_only=True) as store:
        return [e async for e in store.read()]


def test_a_written_confirmation_inject_with_nothing_to_confirm_is_refused(
    tmp_path: Path,
) -> None:
    """No oral request in its case: refused before anything starts, with file, line and field."""
    scenario = tmp_path / "unconfirmable.yaml"
    text = CONFIRMED_LATER.replace("CASE", "case-2")
    scenario.write_text(text, encoding="utf-8")
    log = tmp_path / "run.db"
    result = CliRunner().invoke(app, ["run", str(scenario), "--log", str(log)])
    assert result.exit_code == 2
    line = text.splitlines().index(next(t for t in text.splitlines() if "case: case-2" in t)) + 1
    message = result.stderr.replace("\n", "")
    assert f"{scenario}:{line}:" in message
    assert "injects[1].send.type" in message
    assert "no inject sends an oral_request in case 'case-2'" in message
    assert not log.exists()


def test_bad_input_found_inside_a_run_is_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario error raised in a task of the run exits 2 with its message, no traceback."""

    async def fails() -> None:
        raise ScenarioError("scenarios/x.yaml", "inject.fax: the message is invalid", line=7)

    async def run() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(fails())

    with pytest.raises(typer.Exit) as exited:
        cli_run(run())
    assert exited.value.exit_code == 2
    err = capsys.readouterr().err
    assert "scenarios/x.yaml:7: inject.fax: the message is invalid" in err
    assert "Traceback" not in err


def test_scenario_schema_and_asyncapi_are_json() -> None:
    """The scenario JSON Schema and the AsyncAPI document print as JSON with their key parts."""
    schema = json.loads(CliRunner().invoke(app, ["scenario", "schema"]).stdout)
    assert {"parties", "injects", "policies"} <= set(schema["properties"])
    document = json.loads(CliRunner().invoke(app, ["asyncapi"]).stdout)
    assert document["asyncapi"].startswith("3.")
    assert document["channels"]["submit"]["address"] == "coop/{exercise}/submit/{party}"
    assert "WrittenRequest" in document["components"]["schemas"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_shipped_scenario_schema_is_current() -> None:
    """scenarios/scenario.schema.json (which the YAML files point editors at) is up to date."""
    shipped = json.loads((EXAMPLE.parent / "scenario.schema.json").read_text(encoding="utf-8"))
    generated = json.loads(CliRunner().invoke(app, ["scenario", "schema"]).stdout)
    assert shipped == generated, "run: simulator scenario schema -o scenarios/scenario.schema.json"


def test_every_asyncapi_reference_resolves() -> None:
    """Every $ref in the AsyncAPI document points at something in it."""
    document = json.loads(CliRunner().invoke(app, ["asyncapi"]).stdout)
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert node, ref


async def test_control_pauses_and_resumes_a_realtime_run(tmp_path: Path) -> None:
    """`simulator control pause` stops simulated time in a realtime run; resume goes on."""
    log = tmp_path / "rt.db"
    summary = tmp_path / "summary.json"
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--clock", "realtime", "--speed", "400000",
        "--log", str(log), "--json-summary", str(summary),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    control = Path(f"{log}.control.json")
    for _ in range(200):
        if control.exists():
            break
        await asyncio.sleep(0.05)
    assert control.exists(), "the run never wrote its control file"
    assert control.stat().st_mode & 0o077 == 0, "the control file must be private"
    paused = subprocess.run(
        [*SIMULATOR, "control", "pause", "--log", str(log)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert paused.returncode == 0, paused.stderr
    await asyncio.sleep(1.5)
    stamp = log.stat().st_mtime
    await asyncio.sleep(1.5)
    # Paused: no new rounds commit anything, so the log file is not written.
    assert log.stat().st_mtime == stamp
    with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True)) as db:
        paused_head = int(db.execute("SELECT max(position) FROM events").fetchone()[0])
    resumed = subprocess.run(
        [*SIMULATOR, "control", "resume", "--log", str(log)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    _, errors = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 0, errors.decode()[-2000:]
    data = json.loads(summary.read_text())
    # With nothing left to happen a realtime run may end before its duration.
    assert data["ended_because"] in {
        "the scenario's duration was reached",
        "nothing left to happen",
    }
    # How far a realtime run gets depends on timing; that it went on after the
    # pause (the log grew past what it held while paused) does not.
    assert data["events"] > paused_head


def test_control_without_a_running_exercise_says_so(tmp_path: Path) -> None:
    """No control file: a clear message, exit 2."""
    result = CliRunner().invoke(app, ["control", "pause", "--log", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "is the exercise running" in result.stderr.replace("\n", " ")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["note"], 'note needs --text "…"'),
        (["note", "--text", "  "], 'note needs --text "…"'),
        (["inject", "--inject", ""], "inject needs --inject ID"),
        (["pause", "--speed", "60"], "pause takes no --speed"),
        (["speed", "--speed", "60", "--text", "faster"], "speed takes no --text"),
        (["stop", "--inject", "request-energy", "--text", "x"], "stop takes no --inject or --text"),
    ],
)
def test_control_arguments_a_command_cannot_use_are_refused_before_sending(
    tmp_path: Path, arguments: list[str], said: str
) -> None:
    """A note without text had gone to the umpire and come back refused (exit 1, where a
    speed without --speed is exit 2), and `pause --speed 60` paused without a word on the
    speed it left as it was. Now each is exit 2, naming the option, before anything is sent."""
    result = CliRunner().invoke(
        app, ["control", *arguments, "--log", str(tmp_path / "x.db")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2, result.output
    assert said in result.stderr


def _control(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIMULATOR, "control", *args, "--log", str(log)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _realtime_run(log: Path) -> asyncio.subprocess.Process:
    """`simulator run` of the example at x600, once its control file is there."""
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--clock", "realtime", "--speed", "600",
        "--log", str(log),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    control = Path(f"{log}.control.json")
    try:
        async with asyncio.timeout(60):
            while not control.exists():  # noqa: ASYNC110 -- another process writes it
                await asyncio.sleep(0.05)
    except BaseException:
        run.kill()
        await run.wait()
        raise
    return run


async def test_control_answers_say_what_was_done_and_what_was_not(tmp_path: Path) -> None:
    """Each control command prints the umpire's answer; refused, unknown or unanswered exit 1."""
    log = tmp_path / "rt.db"
    run = await _realtime_run(log)
    try:
        status = _control(log, "status")
        assert status.returncode == 0, status.stderr
        assert "exercise riverbend-cup: realtime clock at x600" in status.stdout
        assert "cases" in status.stdout
        assert "northmark" in status.stdout
        # Times as people read them, to the minute, not ISO 8601 with an offset.
        assert re.search(
            r"time {5}\d{4}-\d\d-\d\d \d\d:\d\d \(ends 2026-04-01 09:00\)", status.stdout
        )
        assert "+00:00" not in status.stdout
        unknown = _control(log, "inject", "--inject", "nosuch")
        assert unknown.returncode == 1
        said = " ".join(unknown.stderr.split())
        assert "no inject 'nosuch'" in said
        assert "request-energy" in said, "the known injects are named"
        paused = _control(log, "pause")
        assert paused.returncode == 0, paused.stderr
        assert "paused at" in paused.stdout
        again = _control(log, "pause")
        assert again.returncode == 1
        assert "paused already" in again.stderr
        assert "(paused)" in _control(log, "status").stdout
        stopped = _control(log, "stop")
        assert stopped.returncode == 0, stopped.stderr
        _, errors = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0, errors.decode()[-2000:]
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
    with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True)) as db:
        done = [
            json.loads(body)["data"]["command"]
            for (body,) in db.execute("SELECT body FROM events WHERE type = 'coop.control'")
        ]
    assert done == ["pause", "stop"], "what the controller did is in the log; refusals are not"
    gone = _control(log, "status")
    assert gone.returncode != 0
    assert "is the exercise running" in " ".join(gone.stderr.split())


async def test_control_of_a_killed_run_exits_non_zero(tmp_path: Path) -> None:
    """The run was killed (its control file is left behind): control says so and exits 1."""
    log = tmp_path / "rt.db"
    control = Path(f"{log}.control.json")
    run = await _realtime_run(log)
    try:
        assert _control(log, "status").returncode == 0
    finally:
        run.kill()
        await run.wait()
    assert control.exists()
    gone = _control(log, "pause")
    assert gone.returncode == 1
    assert "still running" in " ".join(gone.stderr.split()) or "no answer" in gone.stderr


async def test_a_timeout_no_answer_could_meet_is_bad_input_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    """`control --timeout` of 0, below 0, NaN or infinity: exit 2 naming it, before sending.

    Before: `--timeout 0` paused the run and said there was no answer, the run "has ended
    or is not responding" (exit 1); NaN and infinity waited for ever for a run that is gone.
    """
    log = tmp_path / "rt.db"
    run = await _realtime_run(log)
    try:
        for timeout in ("0", "-1", "nan", "inf"):
            refused = _control(log, "pause", "--timeout", timeout)
            assert refused.returncode == 2, (timeout, refused.stderr)
            assert "--timeout" in refused.stderr, refused.stderr
        status = _control(log, "status")
        assert status.returncode == 0, status.stderr
        assert "(paused)" not in status.stdout
    finally:
        run.send_signal(signal.SIGINT)
        await run.wait()


@pytest.mark.parametrize(
    ("command", "speed"),
    [
        ("run", "nan"),
        ("run", "inf"),
        ("run", "1e400"),
        ("run", "0.0001"),
        ("replay", "nan"),
        ("replay", "abc"),
        ("resume", "-1"),
    ],
)
def test_a_speed_no_clock_can_run_at_is_one_clear_error(
    tmp_path: Path, command: str, speed: str
) -> None:
    """NaN, infinity and 1e400 had reached the clock and crashed it with a traceback."""
    target = str(EXAMPLE) if command == "run" else str(tmp_path / "absent.db")
    extra = ["--clock", "realtime"] if command == "run" else []
    result = CliRunner().invoke(
        app, [command, target, *extra, "--speed", speed], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2, result.output
    assert "--speed must be" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "absent.db").exists()


def test_a_speed_given_to_a_simulated_run_is_said_to_pace_nothing(tmp_path: Path) -> None:
    """`run --speed 3600` on the simulated clock runs as before (scripts pass it), saying that
    the speed paces the realtime clock only; without --speed nothing is said. Before: taken
    without a word, as if it had paced the run."""
    said: list[str] = []
    for extra in (["--speed", "3600"], []):
        log = tmp_path / f"run{len(said)}.db"
        result = CliRunner().invoke(
            app, ["run", str(EXAMPLE), "--log", str(log), *extra], env={"COLUMNS": "300"}
        )
        assert result.exit_code == 0, result.output
        said.append(" ".join(result.output.split()))
    assert "note: --speed paces the realtime clock (--clock realtime)" in said[0]
    assert "--speed" not in said[1]


def test_a_json_summary_that_could_not_be_written_is_refused_before_the_run(
    tmp_path: Path,
) -> None:
    """A directory as --json-summary had cost the run's summary, in a traceback after it;
    a file in a directory not made yet gets the directory, as --log does."""
    log = tmp_path / "run.db"
    refused = CliRunner().invoke(
        app, ["run", str(EXAMPLE), "--log", str(log), "--json-summary", str(tmp_path)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "is a directory" in refused.output
    assert not log.exists(), "refused before anything ran"
    nested = tmp_path / "out" / "deep" / "summary.json"
    ran = CliRunner().invoke(
        app, ["run", str(EXAMPLE), "--log", str(log), "--json-summary", str(nested)]
    )
    assert ran.exit_code == 0, ran.output
    assert json.loads(nested.read_text())["events"] > 0


async def test_ctrl_c_stops_a_run_says_where_its_log_is_and_it_resumes(tmp_path: Path) -> None:
    """Ctrl-C at a terminal (SIGINT to the foreground group) had ended a run silently.

    It now says the log is closed and how to go on (exit 130), and `simulator resume`
    carries the run to its end from there. The run's broker, in a session of its own,
    is not stopped by the Ctrl-C under the run's feet.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "run",
        str(EXAMPLE),
        "--clock",
        "realtime",
        "--speed",
        "2000",
        "--broker",
        "mosquitto",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    runs = tmp_path / "runs"
    try:
        async with asyncio.timeout(120):
            # Under way: its log holds the exercise's start and the first inject.
            while not (logs := list(runs.glob("*.db"))) or _events_in(logs[0]) < 2:
                assert process.returncode is None, "the run ended before it was stopped"
                await asyncio.sleep(0.1)
            os.killpg(process.pid, signal.SIGINT)
            assert process.stderr is not None
            said = " ".join((await process.stderr.read()).decode().split())
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    (log,) = logs
    assert code == 130, said
    relative = f"runs/{log.name}"
    assert f"its log {relative} is closed and goes on with `simulator resume {relative}`" in said
    resumed = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "simulator",
            "resume",
            relative,
            "--speed",
            "1000000",
            "--json-summary",
            "summary.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ended_because"] == "the scenario's duration was reached"


def _events_in(log: Path) -> int:
    """How many events the log holds (read while its run writes it)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True)) as db:
            return int(db.execute("select count(*) from events").fetchone()[0])
    except sqlite3.Error:
        return 0  # not made yet


@pytest.mark.parametrize(
    "command",
    [
        ["run", str(EXAMPLE)],
        ["fork", "parent.db", "--at", "1", "-o", "fork.db"],
        ["serve", str(EXAMPLE)],
        ["load", "--duration", "1"],
    ],
    ids=["run", "fork", "serve", "load"],
)
@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_a_seed_outside_the_scenarios_range_is_refused_by_name(
    command: list[str], seed: str, tmp_path: Path
) -> None:
    """`--seed` holds what a scenario's `seed` holds (0 to 2**63 - 1). Before: -1 and 2**64
    were taken, and only a scenario file refused them."""
    result = CliRunner().invoke(app, [*command, "--seed", seed], env={"COLUMNS": "200"})

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--seed'" in result.output
    assert not (tmp_path / "fork.db").exists()


def test_the_seed_option_and_the_scenarios_seed_hold_the_same_range() -> None:
    field = Scenario.model_fields["seed"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert (bounds["Ge"].ge, bounds["Le"].le) == (0, MAX_SEED)


def test_a_party_id_or_seat_and_control_files_no_run_wrote_are_one_message(
    tmp_path: Path,
) -> None:
    """`simulator party --party a/b` had failed with a traceback (the id names a file), and
    so had a seat or control file that is no JSON, of another shape, or a directory; a seat
    file copied under another party's name had played that other party, and a person's
    seat (`run --external` of a human party) had been played answering nothing."""
    log = tmp_path / "run.db"

    def party(name: str) -> Any:
        return CliRunner().invoke(
            app, ["party", "--log", str(log), "--party", name], env={"COLUMNS": "200"}
        )

    def refused(result: Any, words: str) -> None:
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert words in " ".join(result.output.split())

    refused(party("a/b"), "--party 'a/b' is no party id")
    seat = seat_path(str(log), "southmere")
    seat.write_text("{", encoding="utf-8")
    refused(party("southmere"), "not a seat file `simulator run --external` wrote")
    seat.write_bytes(b"\xff")
    refused(party("southmere"), "unreadable seat file")
    seat.unlink()
    seat.mkdir()
    refused(party("southmere"), "unreadable seat file")
    write_seat_file(
        seat_path(str(log), "northmark"),
        SeatFile(exercise="x", party="southmere", host="127.0.0.1", port=1,
                 username="southmere", password="p", seed=1, scenario="{}"),
    )  # fmt: skip
    refused(party("northmark"), "is the seat of party southmere, not of northmark")
    seat.rmdir()
    desk = load_scenario(EXAMPLE.parent / "human" / "refusal-desk.yaml")
    write_seat_file(
        seat_path(str(log), "southmere"),
        SeatFile(exercise=desk.exercise, party="southmere", host="127.0.0.1", port=1,
                 username="southmere", password="p", seed=1,
                 scenario=desk.model_dump_json(by_alias=True)),
    )  # fmt: skip
    refused(party("southmere"), "party southmere is played by a person (human: true)")
    control_path(str(log)).write_text("{}", encoding="utf-8")
    refused(
        CliRunner().invoke(app, ["control", "status", "--log", str(log)], env={"COLUMNS": "200"}),
        "not a control file `simulator run` wrote: exercise: Field required",
    )


def test_a_seat_file_written_again_is_never_seen_half_written(tmp_path: Path) -> None:
    """A seat file is put in place whole: one opened before it is written again still
    reads whole (written in place, a reader had found it empty or cut short)."""
    path = tmp_path / "run.db.party-southmere.json"
    first = SeatFile(
        exercise="x", party="southmere", host="127.0.0.1", port=1,
        username="southmere", password="p", seed=1, scenario="{}" * 50_000,
    )  # fmt: skip
    write_seat_file(path, first)
    with path.open(encoding="utf-8") as reader:
        write_seat_file(path, first.model_copy(update={"seed": 2}))
        assert SeatFile.model_validate_json(reader.read()) == first
    assert read_seat_file(path).seed == 2
    assert path.stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(
    ("notes", "actions", "said"),
    [(1, 7, "controller: 1 note, 7 actions"), (2, 1, "controller: 2 notes, 1 action")],
)
def test_the_summary_counts_the_controllers_notes_and_actions_in_words(
    notes: int, actions: int, said: str
) -> None:
    """One note is "1 note", one action "1 action". Before: "controller: 1 notes, 7 actions"."""
    summary = RunSummary(
        log="x.db", exercise="x", events=3, messages=0, rejections=0, cases={},
        case_states={}, violations=[], violations_by_rule={}, violations_by_article={},
        expectations=[], simulated_start=None, simulated_end=None, ended_because="stopped",
        controller_notes=notes, controller_actions=actions,
    )  # fmt: skip
    out = StringIO()
    print_summary(summary, Console(file=out, width=80))
    assert f"{said} (in the report)" in out.getvalue()


def test_a_party_for_an_exercise_that_has_ended_is_told_so(tmp_path: Path) -> None:
    """`simulator party` for a run that has ended says the exercise ended, where and why, and
    that there is no seat to take; for a log that is not there, to run the exercise first,
    and nothing is made. Before: "no seat file; run the exercise with --external PARTY --log
    LOG first", of a run that had ended."""
    log = tmp_path / "run.db"
    ran = CliRunner().invoke(app, ["run", str(EXAMPLE), "--log", str(log)])
    assert ran.exit_code == 0, ran.output
    told = CliRunner().invoke(
        app, ["party", "--log", str(log), "--party", "southmere"], env={"COLUMNS": "300"}
    )
    assert told.exit_code == 2, told.output
    said = " ".join(told.output.split())
    assert "ended at position 32 (the scenario's duration was reached): there is no seat" in said
    absent = tmp_path / "absent.db"
    told = CliRunner().invoke(
        app, ["party", "--log", str(absent), "--party", "southmere"], env={"COLUMNS": "300"}
    )
    assert told.exit_code == 2, told.output
    assert "no seat file; run the exercise with --external" in " ".join(told.output.split())
    assert not list(tmp_path.glob("absent*"))
