"""A party in its own process, killed with SIGKILL mid-run and started again."""

import asyncio
import contextlib
import os
import signal
import sqlite3
from pathlib import Path

from simulator.messaging.wire import Control
from simulator.run.control import control_path, read_control_file, send_control
from simulator.run.exercise import Exercise, RunOptions, run_exercise
from simulator.run.seat import play_seat, read_seat_file, seat_path
from simulator.scenario import load_scenario
from tests.runtime.seats import SIMULATOR, played_to_the_end, until
from tests.runtime.test_exercise import EXAMPLE, exported, without_control
from tests.runtime.test_resume import without_rounds


def _head(log: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


async def _control(log: Path, command: str) -> None:
    sent = await asyncio.create_subprocess_exec(
        *SIMULATOR, "control", command, "--log", str(log),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(sent.communicate(), 60)
    assert sent.returncode == 0, err.decode()


async def _run_with_seat(log: Path) -> tuple[Path, asyncio.subprocess.Process]:
    """`simulator run` of the example leaving southmere to another process; its seat file."""
    seat = Path(f"{log}.party-southmere.json")
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--log", str(log), "--external", "southmere",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(seat.exists, 30)
    except BaseException:
        run.kill()
        await run.wait()
        raise
    return seat, run


async def test_party_process_killed_mid_run_catches_up(tmp_path: Path) -> None:
    """SIGKILL a party's process mid-run, start it again: the log equals an undisturbed run."""
    calm = tmp_path / "calm.db"
    await run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(calm)))

    log = tmp_path / "rough.db"
    seat, run = await _run_with_seat(log)
    try:
        assert seat.stat().st_mode & 0o077 == 0, "the seat file holds a password"

        def play() -> "asyncio.Future[asyncio.subprocess.Process]":
            return asyncio.ensure_future(
                asyncio.create_subprocess_exec(
                    *SIMULATOR,
                    "party",
                    "--log",
                    str(log),
                    "--party",
                    "southmere",
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )

        first = await play()
        await until(lambda: _head(log) >= 10, 60)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL
        killed_at = _head(log)
        second = await play()
        await played_to_the_end(second, run, 120)
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
    assert killed_at < _head(log)
    assert await exported(log) == await exported(calm)
    assert not seat.exists()


async def test_item10_a_second_process_for_one_party_is_refused_and_the_first_keeps_it(
    tmp_path: Path,
) -> None:
    """RELIABILITY item 10: two processes with one party id give one stable owner, no flapping.

    The second `simulator party` for a seat already played exits at once with the
    holder's pid; the first keeps its connection, and the log equals an undisturbed run.
    """
    calm = tmp_path / "calm.db"
    await run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(calm)))

    log = tmp_path / "twice.db"
    seat = Path(f"{log}.party-southmere.json")
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--log", str(log), "--external", "southmere",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    players: list[asyncio.subprocess.Process] = []
    try:
        await until(seat.exists, 30)

        async def play() -> asyncio.subprocess.Process:
            player = await asyncio.create_subprocess_exec(
                *SIMULATOR, "party", "--log", str(log), "--party", "southmere",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            players.append(player)
            return player

        # Paused, so the run cannot end (and its seat file go) before the second arrives.
        await _control(log, "pause")
        first = await play()
        lock = Path(f"{seat}.lock")
        await until(lambda: lock.exists() and lock.read_text().startswith("pid"), 60)
        second = await play()
        _, refused = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 2
        assert "party southmere is already played by another process" in refused.decode()
        assert f"pid {first.pid}" in refused.decode()
        assert first.returncode is None, "the first player lost its seat"
        await _control(log, "resume")
        await played_to_the_end(first, run, 120)
    finally:
        for process in (run, *players):
            if process.returncode is None:
                process.kill()
                await process.wait()
    controlled = await exported(log)
    assert [e["data"]["command"] for e in controlled if e["type"] == "coop.control"] == [
        "pause",
        "resume",
    ]
    assert without_control(controlled) == without_control(await exported(calm))


async def test_a_party_whose_exercise_is_gone_says_so_and_exits(tmp_path: Path) -> None:
    """The run is SIGKILLed (its broker with it): the party process exits 2, saying why."""
    log = tmp_path / "run.db"
    _, run = await _run_with_seat(log)
    try:
        player = await asyncio.create_subprocess_exec(
            *SIMULATOR, "party", "--log", str(log), "--party", "southmere",
            "--give-up-after", "3",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await until(lambda: _head(log) >= 5, 60)
    finally:
        run.kill()
        await run.wait()
    _, err = await asyncio.wait_for(player.communicate(), 60)
    assert player.returncode == 2, err.decode()
    message = " ".join(err.decode().split())
    exercise = load_scenario(EXAMPLE).exercise
    assert f"no word from exercise {exercise!r}'s umpire for 3 s" in message
    assert "start the party again once the exercise runs" in message


async def test_commands_once_the_time_is_up_are_carried_out_at_the_end(tmp_path: Path) -> None:
    """Realtime, the clock past the end while the run waits for a party gone quiet: a note
    and an inject the controller sends then are recorded at the end, as answered.

    Before: answered "sent at" a time past the end, and the inject's message never reached
    the log (its timer lay past the end, which the run no longer takes)."""
    scenario = load_scenario(EXAMPLE)
    end = scenario.start + scenario.duration
    log = tmp_path / "run.db"
    options = RunOptions(
        log=str(log),
        clock="realtime",
        speed=1e6,
        external=("southmere",),
        party_timeout_s=8,
    )
    async with Exercise(scenario, options) as exercise:
        run = asyncio.create_task(exercise.run())
        clock = exercise.umpire.clock
        await until(lambda: clock.now() > end, 60)
        target = read_control_file(control_path(str(log)))
        noted = await send_control(target, Control(command="note", text="time is up"))
        sent = await send_control(target, Control(command="inject", inject="offer-after-refusal"))
        outcome = await run
    assert outcome.result.reason == "the scenario's duration was reached"
    at_the_end = end.strftime("%Y-%m-%d %H:%M")
    assert (noted.ok, noted.detail) == (True, f"note recorded at {at_the_end}")
    assert (sent.ok, sent.detail) == (
        True,
        f"inject 'offer-after-refusal' sent at {at_the_end}",
    )
    events = await exported(log)
    by_id = {e["id"]: e for e in events}
    assert by_id["control-note-1"]["time"] == by_id["inject.offer-after-refusal"]["time"]
    assert by_id["inject.offer-after-refusal"]["subject"] == "offer-1"
    times = [e["time"] for e in events]
    assert times == sorted(times)
    assert events[-1]["type"] == "coop.exercise.ended"
    assert events[-1]["time"] == by_id["control-note-1"]["time"]


async def test_a_seat_file_a_killed_run_left_goes_with_its_resume(tmp_path: Path) -> None:
    """A run leaving southmere to another process is SIGKILLed; `simulator resume
    --in-process` plays southmere itself, and the seat file the killed run left beside the
    log goes.

    Before: it stayed for good, with a password, and `simulator party` read it and tried
    the dead run's broker ("could not connect")."""
    log = tmp_path / "run.db"
    seat, run = await _run_with_seat(log)
    try:
        await until(lambda: _head(log) >= 1, 60)
    finally:
        run.kill()
        await run.wait()
    assert seat.exists()
    resumed = await asyncio.create_subprocess_exec(
        *SIMULATOR, "resume", str(log), "--in-process",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    _, err = await asyncio.wait_for(resumed.communicate(), 120)
    assert resumed.returncode == 0, err.decode()
    assert not seat.exists()
    player = await asyncio.create_subprocess_exec(
        *SIMULATOR, "party", "--log", str(log), "--party", "southmere",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    _, err = await asyncio.wait_for(player.communicate(), 60)
    assert player.returncode == 2
    assert "there is no seat to take" in " ".join(err.decode().split())


async def test_a_paused_run_waits_for_a_party_to_be_started_again(tmp_path: Path) -> None:
    """Simulated clock: paused while its external party is away (never started, or killed),
    the run waits past the party timeout; once the party plays and the run resumes, it ends
    as an undisturbed run. Before: it failed while paused ("no report for round 0 from
    southmere within 3 s"), though the controller had paused it to start the party again."""
    calm = tmp_path / "calm.db"
    await run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(calm)))
    log = tmp_path / "run.db"
    options = RunOptions(log=str(log), external=("southmere",), party_timeout_s=3)
    async with Exercise(load_scenario(EXAMPLE), options) as exercise:
        run = asyncio.create_task(exercise.run())
        # Paused while the umpire waits for southmere's report on a round.
        await until(lambda: "southmere" in exercise.umpire.round.ask, 30)
        target = read_control_file(control_path(str(log)))
        assert (await send_control(target, Control(command="pause"))).ok
        # Twice the party timeout: the run must still be there, paused.
        await asyncio.wait({run}, timeout=2 * options.party_timeout_s)
        assert not run.done(), "the paused run gave up on its party"
        seat = read_seat_file(seat_path(str(log), "southmere"))
        playing = asyncio.create_task(play_seat(seat))
        assert (await send_control(target, Control(command="resume"))).ok
        outcome = await run
        ended = await playing
    assert outcome.result.reason == ended.reason == "the scenario's duration was reached"
    assert without_control(await exported(log)) == without_control(await exported(calm))


async def test_a_realtime_run_paused_at_its_end_waits_for_its_party(tmp_path: Path) -> None:
    """Realtime, the clock past the end, the umpire waiting there for southmere (never
    started): paused, the run waits past the party timeout, and southmere, started then,
    is heard before the end. Before: it ended while paused, without southmere
    ("ended_without"), as the simulated clock had failed while paused."""
    scenario = load_scenario(EXAMPLE)
    log = tmp_path / "run.db"
    # Longer than the umpire's hold on a silent party (10 s), so the run reaches its end's
    # wait with the scenario's timers all taken.
    options = RunOptions(
        log=str(log), clock="realtime", speed=1e6, external=("southmere",), party_timeout_s=14
    )
    async with Exercise(scenario, options) as exercise:
        run = asyncio.create_task(exercise.run())
        started = asyncio.get_running_loop().time()
        # The last of the scenario's timers before the end (routine-0005) is in the log.
        await until(lambda: _head(log) >= 9, 60)
        target = read_control_file(control_path(str(log)))
        assert (await send_control(target, Control(command="pause"))).ok
        left = started + options.party_timeout_s + 4 - asyncio.get_running_loop().time()
        await asyncio.wait({run}, timeout=max(left, 0))
        assert not run.done(), "the paused run ended without its party"
        playing = asyncio.create_task(play_seat(read_seat_file(seat_path(str(log), "southmere"))))
        await until(lambda: "southmere" in exercise.umpire.heard, 30)
        assert (await send_control(target, Control(command="resume"))).ok
        outcome = await run
        await playing
    assert outcome.result.reason == "the scenario's duration was reached"
    events = await exported(log)
    assert any(e["sender"] == "southmere" for e in events if e["type"].startswith("coop.msg."))


async def test_a_resumed_run_leaves_its_external_party_to_its_player_again(
    tmp_path: Path,
) -> None:
    """A run leaving southmere to `simulator party` is SIGKILLed mid-run with its player;
    `simulator resume` (no options) says southmere is left to its player again and writes a
    seat file for its new broker; the player, started again, plays to the end, and the log
    equals an undisturbed run's.

    Before: the resume played southmere itself without a word (the log did not say which
    parties were external), so the player started again found no seat."""
    calm = tmp_path / "calm.db"
    await run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(calm)))
    log = tmp_path / "rough.db"
    seat, run = await _run_with_seat(log)
    first_port = read_seat_file(seat).port
    player = await asyncio.create_subprocess_exec(
        *SIMULATOR, "party", "--log", str(log), "--party", "southmere",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await until(lambda: _head(log) >= 10, 60)
    finally:
        for process in (run, player):
            process.kill()
            await process.wait()
    killed_at = _head(log)
    seat.unlink(missing_ok=True)
    resumed = await asyncio.create_subprocess_exec(
        *SIMULATOR, "resume", str(log), "--broker", "mosquitto",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    try:
        await until(seat.exists, 60)
        assert read_seat_file(seat).port != first_port
        again = await asyncio.create_subprocess_exec(
            *SIMULATOR, "party", "--log", str(log), "--party", "southmere",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        said = await played_to_the_end(again, resumed, 120)
    finally:
        if resumed.returncode is None:
            resumed.kill()
            await resumed.wait()
    assert "southmere: left to `simulator party --log" in " ".join(said.split())
    assert killed_at < _head(log)
    # How many rounds it took is each run process's own count, like its wall clock.
    assert without_rounds(await exported(log)) == without_rounds(await exported(calm))
    assert not seat.exists()
