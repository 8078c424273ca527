"""A seat's reports to the umpire cannot stop a simulated run, whatever they say.

An outside client with a party's credentials plays its seat (`--external`): it
answers the umpire's rounds on the party's report topic with reports no
simulated party of ours writes, over a real broker. The umpire reads what the
report promises and goes on; the run ends as runs end, saying why.
"""

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from simulator.brokers import transport_for
from simulator.eventlog import Event
from simulator.messaging.topics import CONTROLLER, UMPIRE
from simulator.messaging.wire import (
    CatchUp,
    CatchUpRequest,
    Control,
    Lookahead,
    Round,
    RoundDone,
    Submission,
    decode_answer,
    decode_from_umpire,
    encode,
)
from simulator.protocol.drafting import draft
from simulator.records import REJECTION
from simulator.run.exercise import Exercise, RunOptions, RunOutcome
from simulator.scenario import Scenario, load_scenario
from simulator.transport import SessionSettings
from simulator.umpire.rounds import PartySilent, PartyStuck

Stopped = TypeVar("Stopped", bound=Exception)

SCENARIOS = Path(__file__).parents[2] / "scenarios"
EXAMPLE = SCENARIOS / "example.yaml"
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


async def _played(
    scenario: Scenario,
    options: RunOptions,
    report: Callable[[Round], RoundDone],
    on_commit: Callable[[Sequence[Event]], None] | None = None,
) -> RunOutcome:
    """The run to its end, southmere's seat answering each round it is asked with `report`."""
    async with Exercise(scenario, options, on_commit=on_commit) as exercise:
        seat = asyncio.create_task(_answer_rounds(exercise, report))
        try:
            async with asyncio.timeout(120):
                return await exercise.run()
        finally:
            seat.cancel()


async def _stopped_for(
    scenario: Scenario,
    tmp_path: Path,
    report: Callable[[Round], RoundDone],
    party_timeout_s: float,
    error: type[Stopped],
) -> Stopped:
    """The one `error` a run stops with when southmere's seat answers each round with `report`."""
    options = RunOptions(
        broker="embedded",
        log=str(tmp_path / "run.db"),
        external=(SEAT,),
        party_timeout_s=party_timeout_s,
    )
    async with Exercise(scenario, options) as exercise:
        seat = asyncio.create_task(_answer_rounds(exercise, report))
        try:
            async with asyncio.timeout(120):
                with pytest.raises(ExceptionGroup) as raised:
                    await exercise.run()
        finally:
            seat.cancel()
    matched = raised.value.subgroup(error)
    assert matched is not None, f"not stopped for the party: {raised.value!r}"
    [stopped] = matched.exceptions
    assert isinstance(stopped, error)
    return stopped


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
    outcome = await _played(scenario, options, report)
    # Its requests unanswered, the run ends when nothing is left to happen, as runs end.
    assert outcome.result.reason == "nothing left to happen"
    assert outcome.summary.case_states, "no case was opened: the run never got going"


ASKS = 200
# The season's 50 days in about 10 s: some 400 events in the log within 4 s.
SEASON_SPEED = 50 * 86_400 / 10


# Not on the embedded broker: it runs in the umpire's own event loop, so when it delivers
# the command among the asks is at the mercy of the serving (103 of 200 served first
# before, up to 40 after); the umpire's part is the same on every broker.
@pytest.mark.parametrize("broker", ["mosquitto", "nats:1"])
async def test_a_flood_of_catch_up_asks_keeps_nobody_else_waiting(
    broker: str, tmp_path: Path
) -> None:
    """A client with kestrelmark's credentials asks the umpire 200 times at once to catch
    it up from the first event of a 400-event log. The controller's `status`, sent after
    them, is answered before half of them could have been served one by one, and the asker
    is caught up. Before, the umpire served each ask in turn on the task that takes every
    submission, report and command in: 500 asks of a 300-event log kept it deaf for 13 s
    (in real time at x259,200: 39 simulated days, every other party's submissions
    waiting)."""
    scenario = load_scenario(SCENARIOS / "four-rivers-season.yaml")
    asking = "kestrelmark"
    committed: list[int] = []
    grown = asyncio.Event()

    def watch(events: Sequence[Event]) -> None:
        committed.append(len(events))
        if sum(committed) >= 400:
            grown.set()

    options = RunOptions(
        broker=broker,
        log=str(tmp_path / "run.db"),
        clock="realtime",
        speed=SEASON_SPEED,
        workdir=tmp_path / "broker",
    )
    async with Exercise(scenario, options, on_commit=watch) as exercise:
        run = asyncio.create_task(exercise.run())
        umpire = exercise.umpire
        asker = transport_for(
            exercise.broker, asking, SessionSettings("hostile-asker"), rng=random.Random(1)
        )
        controller = transport_for(
            exercise.broker, CONTROLLER, SessionSettings("hostile-ctl"), rng=random.Random(2)
        )
        observer = transport_for(
            exercise.broker, UMPIRE, SessionSettings("hostile-obs"), rng=random.Random(3)
        )
        async with asker, controller, observer, asyncio.timeout(120):
            await grown.wait()
            await asker.subscribe(exercise.topics.inbox(asking))
            await observer.subscribe(exercise.topics.answers)
            ask = encode(CatchUpRequest(party=asking, after=0))
            # All at once, as a flood comes (one at a time, each waits for its PUBACK).
            await asyncio.gather(
                *(asker.publish(exercise.topics.report(asking), ask) for _ in range(ASKS))
            )
            await controller.publish(
                exercise.topics.control, encode(Control(command="status", id="after-the-flood"))
            )
            async for incoming in observer.messages():
                if decode_answer(incoming.payload).id == "after-the-flood":
                    break
            served_by_then = umpire.catch_ups_served
            async for incoming in asker.messages():
                if isinstance(decode_from_umpire(incoming.payload), CatchUp):
                    break
            umpire.stop("the test has seen enough")
            outcome = await run
    assert served_by_then < ASKS // 2, f"{served_by_then} asks were served before the command"
    assert outcome.result.reason == "the test has seen enough"


async def test_a_seat_cannot_take_the_message_ids_another_party_will_number_its_own(
    tmp_path: Path,
) -> None:
    """The client playing southmere opens five cases in the first round under message ids
    `northmark.1` to `northmark.5`: the ids northmark numbers its own messages with
    (`party.seq`). Each is a rejection naming northmark's namespace, and northmark's own
    messages are recorded under their ids. Before, the five were recorded, and northmark's
    written confirmation of its oral request (`northmark.1`) was refused as a message id
    already used by another message: the innocent party lost its message and was charged
    with the missing confirmation."""
    scenario = load_scenario(EXAMPLE)
    northmark, southmere = scenario.party("northmark"), scenario.party(SEAT)
    squats = tuple(
        Submission(
            party=SEAT,
            seq=n,
            message=draft(
                "written_request",
                message_id=f"northmark.{n}",
                case_id=f"squat-{n}",
                sender=southmere,
                recipient=northmark,
                fields={
                    "area": "fuel_and_energy_safety",
                    "essence": "A request under another party's message id.",
                    "purpose": "To test the umpire.",
                    "justification": "An exercise of its intake.",
                    "assistance_sought": "None.",
                },
            ),
        )
        for n in range(1, 6)
    )
    sent: list[int] = []

    def report(marker: Round) -> RoundDone:
        if sent:
            return RoundDone(party=SEAT, round=marker.round)
        sent.append(marker.round)
        return RoundDone(
            party=SEAT, round=marker.round, seqs=tuple(s.seq for s in squats), submissions=squats
        )

    options = RunOptions(
        broker="mosquitto", log=str(tmp_path / "run.db"), external=(SEAT,), party_timeout_s=30
    )
    committed: list[Event] = []
    outcome = await _played(scenario, options, report, on_commit=committed.extend)
    assert outcome.result.reason == "nothing left to happen"
    rejected = [e for e in committed if e.type == REJECTION]
    assert {e.recipient for e in rejected} == {SEAT}, "an innocent party's message was refused"
    assert len(rejected) == len(squats)
    assert all("in northmark's namespace" in e.data["reason"] for e in rejected)
    own = [e for e in committed if e.id.startswith("northmark.")]
    assert own, "northmark sent nothing: the test shows nothing"
    assert all(e.sender == "northmark" for e in own)


async def test_a_seat_saying_a_plan_is_due_that_it_never_sends_is_named(tmp_path: Path) -> None:
    """The client playing southmere answers every round saying its next plan was due in
    2000, and sends nothing. Simulated time cannot move past a plan that is due, so the
    run stops after a few rounds at that instant, naming southmere and the plan it never
    sent. Before, it stopped as a bug of the simulator ("simulated time is stuck …:
    nothing happens", an InternalError), naming no one."""
    scenario = load_scenario(EXAMPLE)
    claimed = datetime(2000, 1, 1, tzinfo=UTC)

    def report(marker: Round) -> RoundDone:
        return RoundDone(party=SEAT, round=marker.round, next_due=claimed)

    stuck = await _stopped_for(scenario, tmp_path, report, 30, PartyStuck)
    assert stuck.parties == (SEAT,)
    assert "southmere's round reports say a plan of its was due at 2000-01-01 00:00" in str(stuck)


async def test_a_round_report_naming_submissions_never_sent_is_named_when_the_run_gives_up(
    tmp_path: Path,
) -> None:
    """The client playing southmere answers its first round naming submissions 7 and 8 as
    sent in it, and never sends them. The umpire waits for them as for a lost submission
    (a party of ours would send it again), then stops the run saying that southmere's
    report came and which of the submissions it names never did. Before, it said no
    report had come from southmere, and asked whether the party was running."""
    scenario = load_scenario(EXAMPLE)

    def report(marker: Round) -> RoundDone:
        return RoundDone(party=SEAT, round=marker.round, seqs=(7, 8))

    silent = await _stopped_for(scenario, tmp_path, report, 3, PartySilent)
    assert silent.parties == (SEAT,)
    assert "southmere reported round 0 with submissions 7, 8 that never came" in str(silent)
