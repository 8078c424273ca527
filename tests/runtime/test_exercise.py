"""Whole exercises over real brokers: determinism, observers, a party restarted mid-run."""

import asyncio
import contextlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from simulator.brokers import start_broker
from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.run.exercise import Exercise, RunOptions, run_exercise
from simulator.scenario import Scenario, load_scenario

EXAMPLE = Path(__file__).parents[2] / "scenarios" / "example.yaml"
VARIABLE = ("wallclock", "hash", "prevhash")


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(EXAMPLE)


async def exported(path: Path) -> list[dict[str, Any]]:
    """The log's events without the fields that differ between runs (wall-clock time)."""
    async with open_log(path, read_only=True) as store:
        events = [e.model_dump(mode="json") async for e in store.read(upgrade=False)]
    for event in events:
        for key in VARIABLE:
            event.pop(key)
    return events


def without_control(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A log's events without the controller's own record (`coop.control`) and positions.

    A paused and resumed run records the two commands; what the parties did is
    the same as in an undisturbed run, one or two positions further on.
    """
    return [
        {k: v for k, v in e.items() if k != "position"}
        for e in events
        if e["type"] != "coop.control"
    ]


async def test_same_seed_gives_the_same_log_on_both_brokers(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Two runs on the embedded broker and one on Mosquitto give identical logs."""
    logs = []
    for name, broker in (("a", "embedded"), ("b", "embedded"), ("c", "mosquitto")):
        outcome = await run_exercise(
            scenario, RunOptions(broker=broker, log=str(tmp_path / f"{name}.db"))
        )
        assert outcome.result.reason == "the scenario's duration was reached"
        logs.append(await exported(tmp_path / f"{name}.db"))
    assert len(logs[0]) > 20
    assert logs[0] == logs[1]
    assert logs[0] == logs[2]


async def test_another_seed_gives_another_log(scenario: Scenario, tmp_path: Path) -> None:
    """The seed matters: a different one changes the simulated agencies' timing."""
    await run_exercise(scenario, RunOptions(log=str(tmp_path / "a.db"), seed=1))
    await run_exercise(scenario, RunOptions(log=str(tmp_path / "b.db"), seed=2))
    assert await exported(tmp_path / "a.db") != await exported(tmp_path / "b.db")


async def test_independent_subscriber_sees_every_committed_event(
    scenario: Scenario, tmp_path: Path
) -> None:
    """mosquitto_sub, subscribed to the exercise tree as the observer, sees every event."""
    binary = shutil.which("mosquitto_sub")
    assert binary, "mosquitto_sub is missing: apt-get install mosquitto-clients"
    stdbuf = shutil.which("stdbuf")
    assert stdbuf, "stdbuf (coreutils) is missing"
    exercise = Exercise(scenario, RunOptions(log=str(tmp_path / "run.db")))
    party_ids = [p.id for p in scenario.parties]
    async with start_broker("mosquitto", exercise.topics, party_ids, tmp_path / "broker") as broker:
        user, password = broker.credentials("observer")
        # stdbuf: a piped stdout is block-buffered, and we must read the SUBACK line now.
        watcher = await asyncio.create_subprocess_exec(
            stdbuf, "-oL", binary, "-h", broker.address.host, "-p", str(broker.address.port),
            "-u", user, "-P", password, "-i", "observer-test", "-q", "1",
            "-t", exercise.topics.tree, "-F", "%t\t%p", "-d",
            stdout=asyncio.subprocess.PIPE, limit=1 << 20,  # a line is one MQTT message
        )  # fmt: skip
        assert watcher.stdout is not None
        # -d prints the SUBACK; only then is the subscription in place.
        while b"SUBACK" not in await asyncio.wait_for(watcher.stdout.readline(), 10):
            pass
        seen: set[str] = set()
        news = asyncio.Event()

        async def watch() -> None:
            assert watcher.stdout is not None
            async for line in watcher.stdout:
                topic, _, payload = line.decode().rstrip("\n").partition("\t")
                if topic.startswith(exercise.topics.base) and payload.startswith("{"):
                    seen.update(e["id"] for e in json.loads(payload).get("events", ()))
                    news.set()

        watching = asyncio.create_task(watch())
        try:
            async with Exercise(
                scenario, RunOptions(log=str(tmp_path / "run.db")), broker=broker
            ) as running:
                await running.run()
            async with open_log(tmp_path / "run.db", read_only=True) as store:
                committed = {e.id async for e in store.read()}
            # The last messages may still be on their way to the subscriber: wait for them
            # (or for 30 s, and then say which never came).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    while not committed <= seen:
                        news.clear()
                        await news.wait()
        finally:
            watcher.terminate()
            await watcher.wait()
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    assert committed
    assert committed <= seen, f"missed: {sorted(committed - seen)[:5]}"


async def test_party_restarted_mid_run_catches_up_and_nothing_is_lost(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A party stopped mid-run and started afresh catches up; the log equals an undisturbed run."""
    await run_exercise(scenario, RunOptions(log=str(tmp_path / "calm.db")))
    halfway = asyncio.Event()
    commits = 0

    def count(events: Sequence[Event]) -> None:
        nonlocal commits
        commits += len(events)
        if commits >= 10:
            halfway.set()

    async with Exercise(
        scenario, RunOptions(log=str(tmp_path / "rough.db")), on_commit=count
    ) as exercise:
        victim = scenario.parties[1].id

        async def disturb() -> None:
            await halfway.wait()
            await exercise.restart_party(victim)

        disturber = asyncio.create_task(disturb())
        outcome = await exercise.run()
        with contextlib.suppress(asyncio.CancelledError):
            await disturber
        restarted = exercise.runtimes[victim]
    assert halfway.is_set()
    assert restarted.engine.position > 0, "the new runtime never caught up"
    assert outcome.summary.events == len(await exported(tmp_path / "rough.db"))
    assert await exported(tmp_path / "rough.db") == await exported(tmp_path / "calm.db")


async def test_bad_submissions_are_rejected_recorded_and_the_run_goes_on(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Garbage, an oversize payload and a spoofed sender each become a rejection event."""
    halfway = asyncio.Event()

    def count(events: Sequence[Event]) -> None:
        if any(e.position >= 8 for e in events):
            halfway.set()

    async with Exercise(
        scenario, RunOptions(log=str(tmp_path / "run.db")), on_commit=count
    ) as exercise:
        party = scenario.parties[0].id
        other = scenario.parties[1].id
        bus = exercise._transports[party]
        spoof = {
            "kind": "submission",
            "party": party,
            "seq": 999,
            "message": {
                "type": "acceptance",
                "message_id": "spoof.1",
                "case_id": "energy-1",
                "sender": other,
                "recipient": party,
            },
        }

        async def attack() -> None:
            await halfway.wait()
            topic = exercise.topics.submit(party)
            await bus.publish(topic, b"{not json")
            await bus.publish(topic, b'{"kind":"submission","pad":"' + b"x" * 300_000 + b'"}')
            await bus.publish(topic, json.dumps(spoof).encode())

        attacker = asyncio.create_task(attack())
        outcome = await exercise.run()
        await attacker
    async with open_log(tmp_path / "run.db", read_only=True) as store:
        rejections = [e async for e in store.read() if e.type == "coop.rejection"]
    reasons = [e.data["reason"] for e in rejections]
    assert len(rejections) == 3, reasons
    assert any("not JSON" in r for r in reasons)
    assert any("exceeds the limit" in r for r in reasons)
    assert any("is not the connection's party" in r for r in reasons)
    assert all(e.recipient == party for e in rejections)
    assert outcome.result.reason == "the scenario's duration was reached"
    assert outcome.summary.rejections == 3
