"""The umpire's two clock drivers on the in-memory bus: rounds (simulated) and realtime."""

import asyncio
from pathlib import Path
from typing import Any

from simulator.messaging.memory import Published
from simulator.messaging.wire import Submission, decode_from_party
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from simulator.summary import RunSummary, summarize
from tests.runtime.test_exercise import exported
from tests.umpire.wiring import Wired, wired

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def outcome(summary: RunSummary) -> dict[str, Any]:
    """What a realtime run must share with its simulated twin."""
    return {
        "case states": summary.case_states,
        "violations": sorted((v.rule, v.case) for v in summary.violations),
        "ended because": summary.ended_because,
    }


async def summary_of(exercise: Wired) -> RunSummary:
    return await summarize(exercise.store, location=str(exercise.location))


async def test_the_rounds_driver_on_the_memory_bus_writes_the_log_of_a_broker_run(
    tmp_path: Path,
) -> None:
    """Rounds on the in-memory hub write the log a run over the embedded broker writes."""
    scenario = load_scenario(SCENARIOS / "example.yaml")
    broker = await run_exercise(scenario, RunOptions(log=str(tmp_path / "broker.db")))
    async with wired(scenario, tmp_path) as exercise:
        result = await exercise.run()
    assert result.reason == broker.result.reason == "the scenario's duration was reached"
    memory = await exported(exercise.location)
    assert len(memory) > 20
    assert memory == await exported(tmp_path / "broker.db")


async def test_a_submission_lost_on_the_bus_is_resent_and_committed_once(
    tmp_path: Path,
) -> None:
    """A party's first submission, lost before the umpire, is resent and committed exactly once."""
    scenario = load_scenario(SCENARIOS / "example.yaml")
    async with wired(scenario, tmp_path / "calm") as calm:
        await calm.run()
    party = next(iter(calm.runtimes))
    topic = calm.topics.submit(party)

    def first_submission(client: str, message: Published) -> bool:
        return client == "umpire" and message.topic == topic

    async with wired(scenario, tmp_path / "lossy") as lossy:
        lossy.hub.drop(first_submission)
        await lossy.run()
    [(_, lost)] = lossy.hub.lost
    submission = decode_from_party(lost.payload)
    assert isinstance(submission, Submission)
    sent = [m for m in lossy.hub.published if m.topic == topic and m.payload == lost.payload]
    assert len(sent) >= 2, "the lost submission was resent"
    events = await exported(lossy.location)
    ids = [e["id"] for e in events]
    assert ids.count(submission.message["message_id"]) == 1
    # Lost and resent within its round: the log is the undisturbed run's.
    assert events == await exported(calm.location)


async def test_a_realtime_run_on_the_memory_bus_ends_as_its_rounds_twin(tmp_path: Path) -> None:
    """At a high speed, a realtime run ends with its simulated twin's case states and violations."""
    scenario = load_scenario(SCENARIOS / "forged-request.yaml")
    async with wired(scenario, tmp_path) as simulated:
        await simulated.run()
        twin = await summary_of(simulated)
    assert twin.simulated_start is not None
    assert twin.simulated_end is not None
    speed = (twin.simulated_end - twin.simulated_start).total_seconds() / 4.0
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with wired(scenario, tmp_path, clock="realtime", speed=speed) as realtime:
        await realtime.run()
        summary = await summary_of(realtime)
    assert loop.time() - began < 10
    assert outcome(summary) == outcome(twin)
    assert summary.cases == twin.cases
