"""A seat's reports to the umpire cannot stop a simulated run, whatever they say.

An outside client with a party's credentials plays its seat (`--external`): it
answers the umpire's rounds on the party's report topic with reports no
simulated party of ours writes, over a real broker. The umpire reads what the
report promises and goes on; the run ends as runs end, saying why.
"""

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from simulator.brokers import transport_for
from simulator.messaging.wire import Lookahead, Round, RoundDone, decode_from_umpire, encode
from simulator.run.exercise import Exercise, RunOptions
from simulator.scenario import load_scenario
from simulator.transport import SessionSettings

EXAMPLE = Path(__file__).parents[2] / "scenarios" / "example.yaml"
SEAT = "southmere"
# The longest delay a timedelta holds: past the calendar's end from any event.
FOREVER = timedelta(days=999_999_999)


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


async def _answer_rounds(exercise: Exercise, report: Callable[[Round], RoundDone]) -> None:
    """Play the seat: answer every round that asks it with `report(round)`, sending nothing."""
    seat = transport_for(
        exercise.broker, SEAT, SessionSettings(f"hostile-{SEAT}"), rng=random.Random(1)
    )
    async with seat:
        await seat.subscribe(exercise.topics.clock)
        async for incoming in seat.messages():
            marker = decode_from_umpire(incoming.payload)
            if isinstance(marker, Round) and (marker.ask is None or SEAT in marker.ask):
                await seat.publish(exercise.topics.report(SEAT), encode(report(marker)))


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_a_lookahead_past_the_calendars_end_is_a_promise_never_to_act(
    broker: str, tmp_path: Path
) -> None:
    """A round report promising to act on a request only 999,999,999 days after it: the
    umpire takes it as a promise never to act on one (a moment past the calendar's end),
    and the run goes on to its end. Before, adding the delay to the next request's time
    raised OverflowError in the umpire's commit, and the run died with a traceback."""
    scenario = load_scenario(EXAMPLE)

    def report(marker: Round) -> RoundDone:
        promise = Lookahead(received={"written_request": FOREVER, "oral_request": FOREVER})
        return RoundDone(party=SEAT, round=marker.round, lookahead=promise)

    options = RunOptions(
        broker=broker, log=str(tmp_path / "run.db"), external=(SEAT,), party_timeout_s=30
    )
    async with Exercise(scenario, options) as exercise:
        seat = asyncio.create_task(_answer_rounds(exercise, report))
        try:
            async with asyncio.timeout(120):
                outcome = await exercise.run()
        finally:
            seat.cancel()
    # Its requests unanswered, the run ends when nothing is left to happen, as runs end.
    assert outcome.result.reason == "nothing left to happen"
    assert outcome.summary.case_states, "no case was opened: the run never got going"
