"""An exercise whose cases are split among partitioned umpires, over real brokers and PostgreSQL.

Each partition's umpire writes its own log (a schema `{schema}_p{n}`) and decides
its own cases; partition 0's carries out the controller's commands and records
the run's start and end. The run must end as the same scenario does with one
umpire: the same cases, final states and violations, and the same report (but
for the times a realtime clock gives and the positions that follow from them).
"""

import asyncio
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from simulator.brokers import transport_for
from simulator.cli import app
from simulator.cli.logview import verify_partitions
from simulator.context import fresh_rng
from simulator.errors import SimulatorError
from simulator.eventlog import Event, LogError
from simulator.logfiles import open_log, partition_location
from simulator.messaging.wire import Tick, decode_from_umpire
from simulator.protocol.ids import partition_of
from simulator.records import CONTROL, EXERCISE_ENDED, REJECTION
from simulator.report.files import read_report
from simulator.run.exercise import Exercise, RunOptions, RunOutcome, run_exercise
from simulator.scenario import Scenario, load_scenario
from simulator.transport import SessionSettings
from tests.eventlog.conftest import pg_url, run_schema
from tests.runtime.seats import SIMULATOR
from tests.runtime.test_realtime import TWIN_SECONDS, _keys, outcome

__all__ = ["_keys", "pg_url", "run_schema"]

SCENARIOS = Path(__file__).parents[2] / "scenarios"
# Its six cases fall in both partitions of two (t-1, t-3, x-1 | t-2, t-4, t-5).
SCENARIO = SCENARIOS / "tri-river.yaml"
# What a realtime clock makes differ between two runs of one scenario: when things
# happened, how long answers took, and the positions and file names that follow the order.
TIMING = frozenset(
    {
        "log_id",
        "head_hash",
        "time",
        "simulated_end",
        "simulated_seconds",
        "opened_at",
        "last_at",
        "request_at",
        "execution_started_at",
        "after",
        "median_seconds",
        "max_seconds",
        "median_response_seconds",
        "position",
        "letter",
    }
)


MOMENT = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00|Z)?")


async def simulated_twin(scenario: Scenario, tmp_path: Path) -> tuple[RunOutcome, float]:
    """The scenario's one-umpire simulated run, and the speed a realtime twin of it takes."""
    simulated = await run_exercise(scenario, RunOptions(log=str(tmp_path / "simulated.db")))
    first, last = simulated.summary.simulated_start, simulated.summary.simulated_end
    assert first is not None
    assert last is not None
    return simulated, (last - first).total_seconds() / TWIN_SECONDS


def comparable(value: Any) -> Any:
    """A report's data without what a realtime clock makes differ; lists of rows sorted."""
    if isinstance(value, str):
        # A time quoted in words ("the oral request of 2026-09-09 08:00 was not confirmed").
        return MOMENT.sub("<time>", value)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        rows = [comparable(v) for v in value]
        return sorted(rows, key=lambda row: orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
    return value


async def events_of(location: str) -> list[Event]:
    async with open_log(location, read_only=True) as store:
        return [event async for event in store.read()]


async def test_one_partition_or_two_end_alike_and_report_alike(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """tri-river with one umpire (simulated), one partition and two: same cases, states,
    violations and report; each case in its own partition's log, every log sound."""
    scenario = load_scenario(SCENARIO)
    simulated, speed = await simulated_twin(scenario, tmp_path)
    one, two = f"{pg_url}?schema={run_schema}", f"{pg_url}?schema={run_schema}x"

    def realtime(log: str, partitions: int) -> RunOptions:
        return RunOptions(log=log, clock="realtime", speed=speed, partitions=partitions)

    # Side by side: a realtime run mostly waits for its clock.
    by_one, by_two = await asyncio.gather(
        run_exercise(scenario, realtime(one, 1)), run_exercise(scenario, realtime(two, 2))
    )
    try:
        assert outcome(by_one.summary) == outcome(simulated.summary)
        assert outcome(by_two.summary) == outcome(simulated.summary)
        assert by_two.summary.cases == simulated.summary.cases
        assert sum(simulated.summary.cases.values()) == 6
        report_one = (await read_report(one)).model_dump(mode="json")
        report_two = (await read_report(two)).model_dump(mode="json")
        assert comparable(report_two) == comparable(report_one)
        assert report_two["summary"]["events"] == simulated.summary.events

        # Each case's events are in its own partition's log; the start and end in partition 0's.
        logs = {n: await events_of(partition_location(two, n)) for n in (0, 1)}
        for n, events in logs.items():
            cases = {e.subject for e in events if e.subject is not None}
            assert cases, f"partition {n} decided no case"
            assert all(partition_of(case, 2) == n for case in cases)
        assert logs[0][0].type == "coop.exercise.started"
        assert logs[0][-1].type == EXERCISE_ENDED
        assert all(e.time <= logs[0][-1].time for e in logs[1])
        for location in (one, two):
            checked = await verify_partitions(location)
            assert checked is not None
            assert all(found.ok for _, found in checked), checked
    finally:
        await _drop(pg_url, f"{run_schema}x", 2)


async def test_a_partitioned_run_with_nothing_left_ends_when_its_twin_does(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """lost-cargo ends with nothing left to happen at its last results (a partition 1 case).

    Partition 0 stamped the run's end at the latest time it had taken itself, days
    before what partition 1 recorded last: the end came before events of the run.
    """
    scenario = load_scenario(SCENARIOS / "lost-cargo.yaml")
    simulated, speed = await simulated_twin(scenario, tmp_path)
    log = f"{pg_url}?schema={run_schema}"
    realtime = await run_exercise(
        scenario, RunOptions(log=log, clock="realtime", speed=speed, partitions=2)
    )
    assert realtime.summary.ended_because == simulated.summary.ended_because
    assert simulated.summary.ended_because == "nothing left to happen"
    assert realtime.summary.simulated_end == simulated.summary.simulated_end
    logs = {n: await events_of(partition_location(log, n)) for n in (0, 1)}
    end = logs[0][-1]
    assert end.type == EXERCISE_ENDED
    assert max(e.time for e in logs[1]) == end.time


async def _drop(url: str, schema: str, partitions: int) -> None:
    import psycopg  # noqa: PLC0415 - only the clean-up needs the driver here

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for n in range(partitions):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_p{n}" CASCADE')


async def test_the_controller_and_a_stray_party_over_mosquitto_pub(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """On Mosquitto, with mosquitto_pub: a pause holds both partitions' clocks; a party's
    submission on the wrong partition is refused in the log, naming the right one; a stop
    ends the run with partition 0's end after every partition's last event."""
    assert shutil.which("mosquitto_pub"), "mosquitto-clients is missing (scripts/check)"
    scenario = load_scenario(SCENARIO)
    # Slow: the run is stopped long before its own end.
    options = RunOptions(
        broker="mosquitto",
        log=f"{pg_url}?schema={run_schema}",
        clock="realtime",
        speed=600,
        partitions=2,
    )
    case = next(f"stray-{n}" for n in range(100) if partition_of(f"stray-{n}", 2) == 1)
    async with Exercise(scenario, options) as exercise:
        broker = exercise.broker
        base = f"coop/{exercise.topics.exercise}"

        async def publish(principal: str, topic: str, payload: dict[str, Any]) -> None:
            user, password = broker.credentials(principal)
            command = [
                "mosquitto_pub", "-h", broker.address.host, "-p", str(broker.address.port),
                "-u", user, "-P", password, "-q", "1", "-t", topic,
                "-m", orjson.dumps(payload).decode(),
            ]  # fmt: skip
            await asyncio.to_thread(subprocess.run, command, check=True, timeout=30)

        observer = transport_for(
            broker, "observer", SessionSettings("partition-ticks", persistent=False),
            rng=fresh_rng(),
        )  # fmt: skip
        ticks: dict[int | None, Tick] = {}
        async with observer, asyncio.TaskGroup() as group:
            await observer.subscribe(exercise.topics.clock)

            async def follow() -> None:
                async for incoming in observer.messages():
                    marker = decode_from_umpire(bytes(incoming.payload))
                    if isinstance(marker, Tick):
                        ticks[marker.partition] = marker

            follower = group.create_task(follow())
            run = group.create_task(exercise.run())
            async with asyncio.timeout(60):
                while set(ticks) != {0, 1}:  # noqa: ASYNC110 -- both umpires are up
                    await asyncio.sleep(0.05)
            await publish("controller", f"{base}/control", {"kind": "control", "command": "pause"})
            async with asyncio.timeout(60):
                while not all(t.paused for t in ticks.values()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert all(u.paused for u in exercise.umpires)
            status = exercise.umpire.status()
            heads = status["partition_heads"]
            assert isinstance(heads, dict)
            assert set(heads) == {"0", "1"}
            assert status["head"] == sum(heads.values())

            stray = {
                "kind": "submission",
                "party": "riverton",
                "seq": 999_999,
                "message": {"type": "written_request", "message_id": "x", "case_id": case},
            }
            await publish("riverton", f"{base}/submit/riverton/0", stray)
            location = partition_location(options.log or "", 0)
            refused: list[Event] = []
            async with asyncio.timeout(60):
                while not refused:
                    refused = [e for e in await events_of(location) if e.type == REJECTION]
                    await asyncio.sleep(0.1)
            reason = refused[0].data["reason"]
            assert "belongs to partition 1 of 2, not to 0: submit it on submit/riverton/1" in reason

            # Paused, a jump moves the one clock to the next thing due in any partition:
            # both umpires announce the clock's new time.
            await publish("controller", f"{base}/control", {"kind": "control", "command": "jump"})
            clock = exercise.umpire.clock
            async with asyncio.timeout(60):
                while "jump" not in [  # noqa: ASYNC110 -- the log says when it is done
                    e.data["command"] for e in await events_of(location) if e.type == CONTROL
                ]:
                    await asyncio.sleep(0.1)
                while not all(t.time == clock.now() for t in ticks.values()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert all(e.paused for e in exercise.umpires)
            await publish("controller", f"{base}/control", {"kind": "control", "command": "stop"})
            async with asyncio.timeout(60):
                outcome_ = await run
            follower.cancel()
    assert outcome_.result.reason == "stopped by the controller"
    logs = {n: await events_of(partition_location(options.log or "", n)) for n in (0, 1)}
    ended = logs[0][-1]
    assert ended.type == EXERCISE_ENDED
    assert all(e.time <= ended.time for e in logs[1])
    assert [e.data["command"] for e in logs[0] if e.type == CONTROL] == ["pause", "jump", "stop"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ([], "--partitions needs --clock realtime"),
        (["--clock", "realtime"], "--partitions needs --log postgresql://"),
    ],
)
def test_partitions_need_realtime_and_postgresql(
    tmp_path: Path, extra: list[str], said: str
) -> None:
    result = CliRunner().invoke(
        app,
        ["run", str(SCENARIO), "--partitions", "2", "--log", str(tmp_path / "r.db"), *extra],
    )
    assert result.exit_code != 0
    assert said in " ".join(result.output.split())
    assert not (tmp_path / "r.db").exists()


async def test_a_killed_partitioned_run_is_resumed_each_partition_from_its_own_log(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """SIGKILL mid-run, then `simulator resume`: every partition goes on from its own log,
    nothing committed twice, and the run ends as its one-umpire simulated twin."""
    scenario = load_scenario(SCENARIO)
    simulated, speed = await simulated_twin(scenario, tmp_path)
    log = f"{pg_url}?schema={run_schema}"
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(SCENARIO), "--log", log, "--clock", "realtime",
        "--speed", str(speed), "--partitions", "2",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    heads: dict[int, int] = {}
    try:
        async with asyncio.timeout(90):
            # Both partitions have committed something of their own: a run well under way.
            while not (heads.get(0, 0) >= 3 and heads.get(1, 0) >= 2):
                await asyncio.sleep(0.1)
                heads = {n: len(await _events_or_none(partition_location(log, n))) for n in (0, 1)}
        # While it runs, its partitions are its own: a second process is refused.
        early = await asyncio.create_subprocess_exec(
            *SIMULATOR, "resume", log,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, said = await asyncio.wait_for(early.communicate(), 60)
        assert early.returncode == 2, said.decode()[-2000:]
        assert "held by another umpire" in " ".join(said.decode().split())
    finally:
        os.kill(run.pid, signal.SIGKILL)
        await run.wait()
    killed = {n: await events_of(partition_location(log, n)) for n in (0, 1)}
    assert all(e.type != EXERCISE_ENDED for e in killed[0])

    resumed = await asyncio.create_subprocess_exec(
        *SIMULATOR, "resume", log, "--json-summary", str(tmp_path / "resumed.json"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(resumed.communicate(), 120)
    assert resumed.returncode == 0, err.decode()[-2000:]
    after = {n: await events_of(partition_location(log, n)) for n in (0, 1)}
    for n in (0, 1):
        # Each partition's log went on from where it stood, its first events untouched.
        assert [e.hash for e in after[n][: len(killed[n])]] == [e.hash for e in killed[n]]
        ids = [e.id for e in after[n]]
        assert len(ids) == len(set(ids))
    assert after[0][-1].type == EXERCISE_ENDED
    summary = orjson.loads((tmp_path / "resumed.json").read_bytes())
    assert summary["case_states"] == simulated.summary.case_states
    assert sorted((v["rule"], v["case"]) for v in summary["violations"]) == sorted(
        (v.rule, v.case) for v in simulated.summary.violations
    )
    checked = await verify_partitions(log)
    assert checked is not None
    assert all(found.ok for _, found in checked), checked


async def _events_or_none(location: str) -> list[Event]:
    """A partition's events so far; none while its log is not made yet."""
    try:
        return await events_of(location)
    except (SimulatorError, LogError):
        return []
