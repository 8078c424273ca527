"""`simulator replay` on a broker it starts: a known port, and time for a subscriber first."""

import asyncio
import collections
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.brokers import MosquittoBroker, exercise_principals
from simulator.cli import app
from simulator.messaging.topics import Topics
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from tests.eventlog.conftest import pg_schema, pg_url

__all__ = ["pg_schema", "pg_url"]

SIMULATOR = [sys.executable, "-m", "simulator"]


def _subscribe_command(replay: "subprocess.Popen[str]") -> str:
    """The `mosquitto_sub` command a replay prints, read up to its "press Enter"."""
    assert replay.stderr is not None
    command = ""
    for line in replay.stderr:
        if line.startswith("subscribe with: "):
            command = line.removeprefix("subscribe with: ").strip()
        if line.startswith("press Enter"):
            break
    return command


SCENARIO = Path(__file__).parents[1] / "scenarios" / "registry-mixups.yaml"
EXAMPLE = Path(__file__).parents[1] / "scenarios" / "example.yaml"
CONFIDENTIAL = Path(__file__).parents[1] / "scenarios" / "confidential-vetting.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_replay_waits_for_enter_so_a_subscriber_sees_every_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On --port P with --wait enter, the printed mosquitto_sub command gets the whole run."""
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))
    log = tmp_path / "run.db"
    outcome = asyncio.run(run_exercise(load_scenario(SCENARIO), RunOptions(log=str(log))))
    port = _free_port()
    replay = subprocess.Popen(
        [*SIMULATOR, "replay", str(log), "--port", str(port), "--wait", "enter"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    subscriber = None
    try:
        command = _subscribe_command(replay)
        assert replay.stdin is not None
        assert replay.stderr is not None
        assert f"-p {port} " in command, command
        # Debug output says when the broker has acknowledged the subscription; stdbuf
        # makes mosquitto_sub write each line as it comes, not when its buffer fills.
        subscriber = subprocess.Popen(
            # -W: it gives up after 60 s, so a lost message fails the test, not hangs it.
            ["stdbuf", "-oL", *shlex.split(command), "-d", "-W", "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert subscriber.stdout is not None
        for line in subscriber.stdout:
            if "SUBACK" in line:
                break
        replay.stdin.write("\n")
        replay.stdin.flush()
        seen: set[str] = set()
        for line in subscriber.stdout:
            _, _, payload = line.partition(" ")
            if not payload.startswith("{"):
                continue
            seen.update(e["id"] for e in json.loads(payload).get("events", ()))
            if len(seen) == outcome.summary.events:
                break
        assert replay.wait(timeout=60) == 0
    finally:
        for process in (subscriber, replay):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert len(seen) == outcome.summary.events


@pytest.mark.parametrize("wait", ["soon", "-1"])
def test_a_bad_wait_is_refused(tmp_path: Path, wait: str) -> None:
    """--wait takes seconds or 'enter'; anything else is exit 2 before anything starts."""
    result = subprocess.run(
        [*SIMULATOR, "replay", str(tmp_path / "x.db"), "--wait", wait],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--wait" in result.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished simulated run's log (the example scenario), shared by the refusals below."""
    directory = tmp_path_factory.mktemp("recorded")
    log = directory / "run.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMULATOR_KEY_DIR", str(directory / "keys"))
        asyncio.run(run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(log))))
    return log


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("replay {log} --from 0", "--from takes a position in the log, 1 or more, not 0"),
        ("replay {log} --from -3", "--from takes a position in the log, 1 or more, not -3"),
        ("replay {log} --until 0", "--until takes a position in the log, 1 or more, not 0"),
        ("replay {log} --from 9 --until 4", "--until 4 comes before --from 9"),
        ("replay {log} --from 900", "{log}: no events between 900 and the end"),
        ("fork {log} --at 0 -o {dir}/f.db", "{log}: --at 0 is outside the log (1..{head})"),
        ("fork {log} --at -1 -o {dir}/f.db", "{log}: --at -1 is outside the log (1..{head})"),
    ],
)
def test_positions_outside_the_log_are_one_clear_message(
    recorded: Path, command: str, says: str
) -> None:
    """Bad positions exit 2 with one message naming the option and the log, no traceback.

    Before: --from 0 and -3 were a ValueError traceback; fork --at 0 said the log
    was 1..0 long; --until 0 said there were no events "between 1 and the end".
    """
    head = len(sqlite3.connect(recorded).execute("SELECT position FROM events").fetchall())
    fill = {"log": str(recorded), "dir": str(recorded.parent), "head": str(head)}
    result = subprocess.run(
        [*SIMULATOR, *command.format(**fill).split()],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2, result.stderr
    assert says.format(**fill) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (recorded.parent / "f.db").exists()


def _edited_copy(recorded: Path, directory: Path, edits: dict[str, str]) -> Path:
    """A copy of the recorded log (with its checkpoints) whose metadata was edited by hand."""
    log = directory / "edited.db"
    shutil.copyfile(recorded, log)
    shutil.copyfile(f"{recorded}.checkpoints", f"{log}.checkpoints")
    with sqlite3.connect(log) as db:
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", edits.items())
    db.close()
    return log


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("edits", "says"),
    [
        ({"scenario": "not json{"}, "the scenario its metadata records cannot be read"),
        ({"scenario": '{"version": 1}'}, "the scenario its metadata records cannot be read"),
        ({"seed": "abc"}, "its metadata's seed is 'abc', not a whole number"),
        ({"seed": "\u00b2"}, "its metadata's seed is '\u00b2', not a whole number"),
        ({"generation": "x"}, "its metadata's generation is 'x', not a whole number"),
        ({"speed": "fast"}, "its metadata's speed is 'fast', not a number"),
    ],
)
def test_run_metadata_edited_by_hand_is_one_clear_message(
    recorded: Path, tmp_path: Path, edits: dict[str, str], says: str
) -> None:
    """A scenario that is not one, a seed, generation or speed that is no number, in a log's
    metadata (outside the chain, so nothing refuses the edit itself): replay --check, fork
    and resume exit 2 naming the log and the value, and make nothing.

    Before: a pydantic ValidationError or a ValueError traceback (exit 1).
    """
    log = _edited_copy(recorded, tmp_path, edits)
    commands = [["replay", "--check"], ["fork", "--at", "5", "-o", str(tmp_path / "f.db")]]
    if set(edits) & {"generation", "speed"}:
        commands = [["resume"]]
        with sqlite3.connect(log) as db:  # an interrupted run, so that resume goes on with it
            db.execute("DELETE FROM events WHERE type = 'coop.exercise.ended'")
        db.close()
        lines = Path(f"{log}.checkpoints").read_text().splitlines(keepends=True)
        Path(f"{log}.checkpoints").write_text(lines[0])
    else:
        commands.append(["resume"])
    for command in commands:
        code, said = _invoke(*command, str(log))
        assert code == 2, (command, said)
        assert f"{log}: " in said, (command, said)
        assert says in said, (command, said)
    assert not (tmp_path / "f.db").exists()


def test_positions_in_metadata_that_are_no_numbers_are_taken_for_none(
    recorded: Path, tmp_path: Path
) -> None:
    """A fork's position or the positions a run was resumed from, edited into digits Python
    calls digits but cannot read as a number ('²'): the log is shown and reported as a
    run that is no fork and was never resumed, as for any other value that is no number.

    Before: a ValueError traceback from `log show` and `report`.
    """
    log = _edited_copy(
        recorded,
        tmp_path,
        {"fork_position": "\u00b2", "generation": "\u00b2", "resumed_at": "\u00b2"},
    )
    code, said = _invoke("log", "show", str(log))
    assert code == 0, said
    code, said = _invoke("report", str(log), "-o", str(tmp_path / "report"))
    assert code == 0, said
    summary = json.loads((tmp_path / "report" / "report.json").read_text())["summary"]
    assert (summary["lineage"], summary["resumed_at"]) == (None, [])


def test_a_fork_records_its_parents_full_path(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fork parent.db` from the parent's directory records where the parent is from anywhere:
    `resume` of a fork killed before it copied the parent's events reopens it by that name."""
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))
    shutil.copy(recorded, tmp_path / "parent.db")
    shutil.copy(f"{recorded}.checkpoints", tmp_path / "parent.db.checkpoints")
    monkeypatch.chdir(tmp_path)

    code, said = _invoke("fork", "parent.db", "--at", "5", "-o", "fork.db")
    with contextlib.closing(sqlite3.connect(tmp_path / "fork.db")) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'parent'").fetchone()

    assert code == 0, said
    assert row == (os.path.abspath(tmp_path / "parent.db"),)


def test_a_fork_at_the_runs_end_says_where_to_fork(recorded: Path, tmp_path: Path) -> None:
    """`--at` the exercise-ended event names it and the last position a fork may keep."""
    with contextlib.closing(sqlite3.connect(recorded)) as db:
        (head,) = db.execute("SELECT max(position) FROM events").fetchone()

    code, said = _invoke("fork", str(recorded), "--at", str(head), "-o", str(tmp_path / "f.db"))

    assert code == 2
    assert f"the run ended at position {head}; fork at {head - 1} or before" in said


@pytest.mark.parametrize(
    ("original", "edited", "says"),
    [
        (
            "exercise: riverbend-cup",
            "exercise: other-cup",
            "a fork keeps the exercise of its parent (riverbend-cup); the scenario is other-cup",
        ),
        (
            "start: 2026-03-02T09:00:00Z",
            "start: 2025-03-02T09:00:00Z",
            "a fork keeps the start of its parent (2026-03-02T09:00:00+00:00); "
            "the scenario starts 2025-03-02T09:00:00+00:00",
        ),
        (
            "duration: 30d",
            "duration: 6d",
            "the scenario ends 2026-03-08T09:00:00+00:00, before the fork's position",
        ),
    ],
)
def test_a_fork_keeps_its_parents_exercise_and_timeline(
    recorded: Path, tmp_path: Path, original: str, edited: str, says: str
) -> None:
    """`fork --scenario` with another exercise id, another start, or an end before the
    fork's position: exit 2 naming what differs, and no log made.

    Before: another id went on with the kept cases' work lost (a false results-overdue);
    an earlier start or an end before the kept events, a traceback and a half-made log.
    """
    scenario = tmp_path / "edited.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    assert original in text
    scenario.write_text(text.replace(original, edited), encoding="utf-8")
    with contextlib.closing(sqlite3.connect(recorded)) as db:
        (head,) = db.execute("SELECT max(position) FROM events").fetchone()
    output = tmp_path / "f.db"

    code, said = _invoke(
        "fork", str(recorded), "--at", str(head - 1), "--scenario", str(scenario), "-o", str(output)
    )

    assert code == 2, said
    assert says in said
    assert not output.exists()


def _stopped_midway(said: str) -> tuple[int, int]:
    """The published count and position a replay stopped midway names, checked as it says it."""
    found = re.search(
        r"published (\d+) of (\d+) events, up to position (\d+); the rest with --from (\d+)",
        " ".join(said.split()),
    )
    assert found is not None, said
    published, _, position, rest = map(int, found.groups())
    assert rest == position + 1
    return published, position


def _positions(line: str) -> list[int]:
    """The positions of the events in one line of `mosquitto_sub -v` (none for the clock)."""
    _, _, payload = line.partition(" ")
    if not payload.startswith("{"):
        return []
    return [int(e["position"]) for e in json.loads(payload).get("events", ())]


def test_a_replay_interrupted_midway_says_how_far_it_got(recorded: Path) -> None:
    """Ctrl-C (SIGINT) while a replay publishes: exit 130 and one line naming how many events
    went out, up to which position, and where the rest starts; what a subscriber got is no
    further. Before: exit 130 without a word, and a traceback from closing the log's reader
    ("aclose(): asynchronous generator is already running")."""
    port = _free_port()
    replay = subprocess.Popen(
        # A simulated day a second: the example's month takes half a minute.
        [
            *SIMULATOR,
            "replay",
            str(recorded),
            "--port",
            str(port),
            "--wait",
            "enter",
            "--speed",
            "86400",
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    subscriber = None
    try:
        command = _subscribe_command(replay)
        assert replay.stdin is not None
        assert replay.stderr is not None
        subscriber = subprocess.Popen(
            ["stdbuf", "-oL", *shlex.split(command), "-d", "-W", "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert subscriber.stdout is not None
        for line in subscriber.stdout:
            if "SUBACK" in line:
                break
        replay.stdin.write("\n")
        replay.stdin.flush()
        seen: list[int] = []
        for line in subscriber.stdout:
            seen += _positions(line)
            if seen:
                break
        replay.send_signal(signal.SIGINT)
        said = replay.stderr.read()
        assert replay.wait(timeout=60) == 130, said
    finally:
        for process in (subscriber, replay):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    published, position = _stopped_midway(said)
    with contextlib.closing(sqlite3.connect(recorded)) as db:
        (head,) = db.execute("SELECT max(position) FROM events").fetchone()
    assert 1 <= max(seen) <= position < head
    assert published == position
    assert "Traceback" not in said
    assert "asynchronous generator" not in said


@dataclass
class Watched:
    """A Mosquitto of the log's exercise, its umpire's URL, and `mosquitto_sub` on its tree."""

    broker: MosquittoBroker
    url: str
    subscriber: asyncio.subprocess.Process

    async def line(self) -> str:
        assert self.subscriber.stdout is not None
        return (await asyncio.wait_for(self.subscriber.stdout.readline(), 30)).decode()


@contextlib.asynccontextmanager
async def _watched_broker(recorded: Path, tmp_path: Path) -> AsyncIterator[Watched]:
    """A broker a replay reaches by URL, as an operator's own, with a subscriber ready."""
    with contextlib.closing(sqlite3.connect(recorded)) as db:
        (body,) = db.execute("SELECT body FROM events WHERE position = 1").fetchone()
    exercise = json.loads(body)["exercise"]
    broker = MosquittoBroker(
        Topics(exercise),
        exercise_principals(["northmark", "southmere"]),
        workdir=tmp_path / "mosquitto",
    )
    async with broker:
        umpire, observer = broker.credentials("umpire"), broker.credentials("observer")
        port = str(broker.address.port)
        subscriber = await asyncio.create_subprocess_exec(
            *["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port],
            *["-u", "observer", "-P", observer.password, "-t", f"coop/{exercise}/#", "-v", "-d"],
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            watched = Watched(
                broker, f"mqtt://umpire:{umpire.password}@127.0.0.1:{port}", subscriber
            )
            while "SUBACK" not in await watched.line():
                pass
            yield watched
        finally:
            if subscriber.returncode is None:
                subscriber.kill()
                await subscriber.wait()


async def _replaying(recorded: Path, url: str, speed: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *SIMULATOR,
        *["replay", str(recorded), "--broker", url, "--speed", speed],
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "300"},
    )


async def test_a_replay_whose_broker_dies_says_how_far_it_got(
    recorded: Path, tmp_path: Path
) -> None:
    """A replay to a Mosquitto that is SIGKILLed midway: exit 2 naming the broker, then how
    far it got and where the rest starts. Before: the broker named, a traceback from closing
    the log's reader ("athrow(): asynchronous generator is already running"), and no word
    of where to go on from."""
    async with _watched_broker(recorded, tmp_path) as watched:
        replay = await _replaying(recorded, watched.url, "86400")
        try:
            seen: list[int] = []
            while not seen:
                seen += _positions(await watched.line())
            pid = watched.broker.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            _, err = await asyncio.wait_for(replay.communicate(), 60)
            said = err.decode()
            assert replay.returncode == 2, said
        finally:
            if replay.returncode is None:
                replay.kill()
                await replay.wait()
    assert "unavailable" in said
    published, position = _stopped_midway(said)
    assert 1 <= max(seen) <= position
    assert published == position
    assert "Traceback" not in said
    assert "asynchronous generator" not in said


async def test_two_replays_at_once_to_one_broker_each_deliver_every_event_once(
    recorded: Path, tmp_path: Path
) -> None:
    """Two replays of one log to one broker, the second started while the first publishes:
    a subscriber gets every event on each of its topics exactly twice, and neither replay
    loses its connection. Before: both used one client id, so each connection took it from
    the other again and again (`broker_disconnected` over and over, asyncio tracebacks)."""
    async with _watched_broker(recorded, tmp_path) as watched:
        # Three simulated days a second: each takes 10 s, so the two overlap.
        first = await _replaying(recorded, watched.url, "259200")
        second = None
        try:
            got: collections.Counter[tuple[str, str]] = collections.Counter()
            ended = 0

            def take(line: str) -> None:
                nonlocal ended
                topic, _, payload = line.strip().partition(" ")
                if not payload.startswith("{"):
                    return
                data = json.loads(payload)
                ended += data.get("reason") == "replay finished"
                got.update((topic, e["id"]) for e in data.get("events", ()))

            while not got:
                take(await watched.line())
            second = await _replaying(recorded, watched.url, "259200")
            while ended < 2:
                take(await watched.line())
            said = [
                (await asyncio.wait_for(p.communicate(), 60))[1].decode() for p in (first, second)
            ]
            assert (first.returncode, second.returncode) == (0, 0), said
        finally:
            for process in (first, second):
                if process is not None and process.returncode is None:
                    process.kill()
                    await process.wait()
    with contextlib.closing(sqlite3.connect(recorded)) as db:
        ids = {row[0] for row in db.execute("SELECT id FROM events")}
    assert {event for _, event in got} == ids
    assert set(got.values()) == {2}
    for text in said:
        assert "broker_disconnected" not in text
        assert "Traceback" not in text


async def test_a_replay_from_a_later_position_keeps_confidential_cases_off_the_log_topics(
    tmp_path: Path,
) -> None:
    """`replay --from` a position after a confidential case's request (Art. 6.3): the case's
    later events still go only to its parties' inboxes, never to the `log/` topics an
    observer reads (all an observer may read with --secure). Before: a replay learnt a case
    was confidential from its request alone, so `--from 3` put them on `log/`."""
    log = tmp_path / "confidential.db"
    await run_exercise(load_scenario(CONFIDENTIAL), RunOptions(log=str(log)))
    with contextlib.closing(sqlite3.connect(log)) as db:
        # Requests are at 2, 4 and 7: from 3 on, the first case's request is skipped.
        later = {p for (p,) in db.execute("SELECT position FROM events WHERE position >= 3")}
    async with _watched_broker(log, tmp_path) as watched:
        replay = await asyncio.create_subprocess_exec(
            *[*SIMULATOR, "replay", str(log), "--from", "3", "--broker", watched.url],
            stderr=asyncio.subprocess.PIPE,
        )
        on_log: list[str] = []
        seen: set[int] = set()
        try:
            while True:
                topic, _, payload = (await watched.line()).strip().partition(" ")
                if not payload.startswith("{"):
                    continue
                data = json.loads(payload)
                if data.get("reason") == "replay finished":
                    break
                events = data.get("events", ())
                seen.update(int(e["position"]) for e in events)
                if "/log/" in topic:
                    on_log += [e["subject"] for e in events if e.get("subject")]
            _, err = await asyncio.wait_for(replay.communicate(), 60)
            assert replay.returncode == 0, err.decode()
        finally:
            if replay.returncode is None:
                replay.kill()
                await replay.wait()
    assert seen == later
    assert not [case for case in on_log if case.startswith("conf-")]


def test_a_fork_into_a_schema_holding_a_run_names_its_own_option(
    recorded: Path, pg_url: str, pg_schema: str
) -> None:
    """`fork … -o postgresql://…?schema=S` twice: the second is refused, and told to choose a
    new `-o`, the option `fork` names its log with. Before: "choose a new --log", an option
    `fork` does not have."""
    target = f"{pg_url}?schema={pg_schema}"
    code, said = _invoke("fork", str(recorded), "--at", "5", "-o", target)
    assert code == 0, said
    code, said = _invoke("fork", str(recorded), "--at", "5", "-o", target)
    assert code == 2, said
    assert "already holds a run; choose a new -o," in " ".join(said.split())
    assert "--log" not in said


def test_a_check_interrupted_midway_says_the_log_was_not_checked(
    recorded: Path, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT) while `replay --check` reruns the scenario: exit 130, one line saying
    the log was not checked and is as it was, and the rerun's directory gone. Before: exit
    130 without a word."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    check = subprocess.Popen(
        [*SIMULATOR, "replay", str(recorded), "--check"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300", "TMPDIR": str(scratch)},
    )
    try:
        deadline = time.monotonic() + 60
        # The rerun's log appears once the rerun has begun: there is no event to wait on.
        while not list(scratch.glob("simulator-check-*/rerun.db")):
            assert time.monotonic() < deadline, "the rerun never began"
            assert check.poll() is None, check.communicate()
            time.sleep(0.01)
        check.send_signal(signal.SIGINT)
        _, said = check.communicate(timeout=60)
    finally:
        if check.poll() is None:
            check.kill()
            check.wait()
    assert check.returncode == 130, said
    assert f"interrupted: {recorded} was not checked; it is as it was" in " ".join(said.split())
    assert not list(scratch.glob("simulator-check-*"))
