"""No participant can take another's connection: client ids are secrets, on both brokers.

A broker hands a client id to whoever connects with it last. Seat ids were
predictable (`<exercise>-<party>-seat`, or a 24-bit run id), so a participant
with its own credentials and another seat's id knocked that seat offline again
and again. Now every connection of a run has 72 random bits in its id. The
test makes the attack with `mosquitto_sub`: every id that could be worked out
from what a participant knows leaves the seat alone; on Mosquitto the real id
(as if it had leaked) does take it, which shows the test would see a take-over.
"""

import asyncio
import shutil
from pathlib import Path

import pytest

from simulator.run.exercise import Exercise, RunOptions
from simulator.scenario import load_scenario
from simulator.transport import client_id_for

EXAMPLE = Path(__file__).parents[2] / "scenarios" / "example.yaml"
SPEED = 30 * 86_400 / 12


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


async def _connect_as(exercise: Exercise, principal: str, client_id: str) -> None:
    """Connect with `principal`'s own credentials under `client_id`, subscribe, and leave."""
    binary = shutil.which("mosquitto_sub")
    assert binary, "mosquitto_sub is missing: apt-get install mosquitto-clients"
    user, password = exercise.broker.credentials(principal)
    address = exercise.broker.address
    sub = await asyncio.create_subprocess_exec(
        binary, "-h", address.host, "-p", str(address.port), "-u", user, "-P", password,
        "-i", client_id, "-q", "1", "-t", exercise.topics.inbox(principal), "-W", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.wait_for(sub.wait(), 30)


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_a_participant_cannot_knock_another_seat_offline(broker: str, tmp_path: Path) -> None:
    scenario = load_scenario(EXAMPLE)
    options = RunOptions(broker=broker, log=str(tmp_path / "run.db"), clock="realtime", speed=SPEED)
    async with Exercise(scenario, options) as exercise:
        run = asyncio.create_task(exercise.run())
        victim = exercise._transports["northmark"]
        await victim.connected.wait()
        exercise_id = scenario.exercise
        guesses = [
            client_id_for(exercise_id, "northmark"),
            client_id_for(exercise_id, "northmark", "seat"),
            client_id_for(exercise_id, "northmark", exercise.run_id),
        ]
        assert victim.client_id not in guesses
        for guess in guesses:
            await _connect_as(exercise, "southmere", guess)
        assert victim.connected.connections == 1
        if broker == "mosquitto":
            # The same attack with the real id (leaked): Mosquitto hands it over, and the
            # seat reconnects. (amqtt does not close the holder's connection; it drops
            # the session's state instead, which this count would not show.)
            await _connect_as(exercise, "southmere", victim.client_id)
            async with asyncio.timeout(30):
                while victim.connected.connections < 2:
                    await victim.connected.wait_lost()
                    await victim.connected.wait()
        outcome = await run
    assert outcome.result.reason == "the scenario's duration was reached"
    other = Exercise(scenario, RunOptions(broker=broker, log=str(tmp_path / "other.db")))
    assert other.client_id("northmark") != victim.client_id
    assert len(victim.client_id) <= 23
