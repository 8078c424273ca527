"""The realtime clock over real brokers: runs end as their simulated twins, pauses stay quiet."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simulator.brokers import transport_for
from simulator.context import ScaledClock, fresh_rng
from simulator.messaging.wire import Control, Tick, decode_from_umpire
from simulator.projections.summary import RunSummary
from simulator.run.exercise import Exercise, RunOptions, RunOutcome, run_exercise
from simulator.scenario import Scenario, load_scenario, parse_scenario
from simulator.transport import SessionSettings
from tests.runtime.test_exercise import exported
from tests.scenario.samples import DECLINER, offer_inject, two_parties

SCENARIOS = Path(__file__).parents[2] / "scenarios"
# Wall seconds a realtime twin takes to cover its simulated twin's span: fast enough for the
# suite, slow enough that a busy machine's latency stays far inside every deadline.
TWIN_SECONDS = 12.0


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def outcome(summary: RunSummary) -> dict[str, Any]:
    """What a realtime run must share with its simulated twin."""
    return {
        "case states": summary.case_states,
        "violations": sorted((v.rule, v.case) for v in summary.violations),
        "ended because": summary.ended_because,
    }


@pytest.mark.parametrize(
    ("name", "broker"),
    [
        ("example.yaml", "embedded"),
        ("forged-request.yaml", "mosquitto"),
        ("confidential-vetting.yaml", "embedded"),
        ("lost-cargo.yaml", "mosquitto"),
    ],
)
async def test_a_realtime_run_ends_as_its_simulated_twin(
    name: str, broker: str, tmp_path: Path
) -> None:
    """Same scenario and seed: the same cases, final states and violations in realtime, and
    the same events at the same simulated times, in the same order."""
    scenario = load_scenario(SCENARIOS / name)
    simulated = await run_exercise(
        scenario, RunOptions(broker=broker, log=str(tmp_path / "simulated.db"))
    )
    first, last = simulated.summary.simulated_start, simulated.summary.simulated_end
    assert first is not None
    assert last is not None
    speed = (last - first).total_seconds() / TWIN_SECONDS
    realtime = await run_exercise(
        scenario,
        RunOptions(broker=broker, log=str(tmp_path / "realtime.db"), clock="realtime", speed=speed),
    )
    assert outcome(realtime.summary) == outcome(simulated.summary)
    assert realtime.summary.cases == simulated.summary.cases
    logs = [await exported(tmp_path / f"{name}.db") for name in ("simulated", "realtime")]
    assert course(logs[1]) == course(logs[0])


async def test_a_paused_realtime_run_announces_its_clock_only_on_its_tick(tmp_path: Path) -> None:
    """Paused for 10 s, a realtime run publishes its clock at most once per tick, time standing."""
    scenario = load_scenario(SCENARIOS / "example.yaml")
    options = RunOptions(log=str(tmp_path / "run.db"), clock="realtime", speed=60)
    async with Exercise(scenario, options) as exercise:
        tick_s = exercise.umpire.settings.clock_tick_s
        observer = transport_for(
            exercise.broker, "observer", SessionSettings("tick-counter", persistent=False),
            rng=fresh_rng(),
        )  # fmt: skip
        async with observer, asyncio.TaskGroup() as group:
            await observer.subscribe(exercise.topics.clock)
            run = group.create_task(exercise.run())
            ticks: list[Tick] = []

            async def count() -> None:
                async for incoming in observer.messages():
                    marker = decode_from_umpire(bytes(incoming.payload))
                    if isinstance(marker, Tick):
                        ticks.append(marker)

            counter = group.create_task(count())
            async with asyncio.timeout(30):
                while not ticks:  # noqa: ASYNC110 -- the first tick says the run is up
                    await asyncio.sleep(0.05)
            exercise.umpire.apply_control(Control(command="pause"))
            async with asyncio.timeout(30):
                while not (ticks and ticks[-1].paused):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            before = len(ticks)
            window = 10.0
            await asyncio.sleep(window)  # the measured window itself, not a wait for a condition
            during = ticks[before:]
            exercise.umpire.apply_control(Control(command="stop"))
            await run
            counter.cancel()
    assert during, "a paused run still ticks"
    assert len(during) <= window / tick_s + 1
    assert all(t.paused for t in during)
    assert len({t.time for t in during}) == 1, "simulated time stood still while paused"


def test_a_scaled_clock_runs_from_its_start_once_and_stays_paused() -> None:
    """`start_now`: simulated time from then, not from when the clock was made; only the first
    call counts (partitions share the clock: time must not go back); a paused clock stays
    paused until resumed."""
    wall = [100.0]
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    clock = ScaledClock(start, speed=60.0, source=lambda: wall[0])
    wall[0] = 110.0  # ten seconds of setup
    assert clock.now() == start + timedelta(minutes=10)
    clock.start_now()
    assert clock.now() == start
    wall[0] = 111.0
    clock.start_now()  # a second umpire starting a second later
    assert clock.now() == start + timedelta(minutes=1)
    paused = ScaledClock(start, speed=60.0, source=lambda: wall[0])
    paused.pause()
    wall[0] = 120.0
    paused.start_now()
    assert paused.paused
    assert paused.now() == start
    paused.resume()
    wall[0] = 121.0
    assert paused.now() == start + timedelta(minutes=1)


async def twins(scenario: Scenario, tmp_path: Path) -> tuple[RunOutcome, RunOutcome]:
    """A 30-day scenario run on Mosquitto in simulated time, then in 6 s of realtime."""
    simulated = await run_exercise(
        scenario, RunOptions(broker="mosquitto", log=str(tmp_path / "simulated.db"))
    )
    realtime = await run_exercise(
        scenario,
        RunOptions(
            broker="mosquitto",
            log=str(tmp_path / "realtime.db"),
            clock="realtime",
            speed=30 * 86_400 / 6,
        ),
    )
    return simulated, realtime


# A case due exactly at the end (the fourth, at 30d), as every ten days lands it.
AT_THE_END = (
    two_parties("at-the-end", "A case due at the very end")
    + """\
generators:
  - {id: tick, from: alpha, to: beta, count: 4, every: 10d, send: {type: withdrawal}}
"""
)


async def test_what_is_due_at_the_very_end_is_part_of_a_realtime_run_too(tmp_path: Path) -> None:
    """Simulated time takes what is due at the end itself; realtime ended first and left
    it out (a scenario with a generator on a fixed interval: found by a stranger's twin)."""
    simulated, realtime = await twins(
        parse_scenario(AT_THE_END, "tests/runtime/at-the-end.yaml"), tmp_path
    )
    assert ("unknown-case", "tick-0004") in outcome(simulated.summary)["violations"]
    assert outcome(realtime.summary) == outcome(simulated.summary)
    assert realtime.summary.simulated_end == simulated.summary.simulated_end
    logs = [await exported(tmp_path / f"{name}.db") for name in ("simulated", "realtime")]
    assert course(logs[1]) == course(logs[0])


# Beta declines an offer a day after it: the offer a day before the end, so at the end.
DECLINED_AT_THE_END = (
    two_parties("declined-at-the-end", "A reply due at the very end", beta_policy="decliner")
    + DECLINER
    + "injects:\n"
    + offer_inject("29d")
)


async def test_an_inject_is_stamped_at_its_own_time_so_its_replies_come_as_in_simulated_time(
    tmp_path: Path,
) -> None:
    """Realtime stamped an inject when the umpire woke for it, a little late (minutes at
    this speed), so a reply a day after it fell after the end: the offer stayed open."""
    simulated, realtime = await twins(
        parse_scenario(DECLINED_AT_THE_END, "tests/runtime/declined-at-the-end.yaml"), tmp_path
    )
    assert simulated.summary.case_states == {"offer-1": "declined"}
    assert outcome(realtime.summary) == outcome(simulated.summary)
    offer = [e for e in await exported(tmp_path / "realtime.db") if e["source"] == "inject/offer"]
    assert [e["time"] for e in offer] == ["2026-03-31T09:00:00.000000Z"]


def course(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a realtime run's log must share with its simulated twin's, event by event: what,
    when (simulated time), in which case, under which id. Not the wall clock, nor hashes."""
    return [(e["type"], e["time"], e.get("subject"), e["id"]) for e in events]


# alpha asks orally on day 1 and confirms in writing exactly 3 days later: on the deadline
# of Art. 4.2, which is in time.
CONFIRMED_ON_THE_DEADLINE = (
    two_parties("confirmed-on-the-deadline", "A written confirmation due at its deadline")
    + """\
injects:
  - id: oral
    at: 1d
    send:
      type: oral_request
      from: alpha
      to: beta
      case: cargo-1
      fields:
        area: state_facilities_and_special_cargo
        urgent: true
        requesting_party_name: Alpha Agency
        requested_party_name: Beta Agency
        essence: A consignment has not arrived.
        purpose: Trace the consignment.
        justification: The parts are needed before the final.
        assistance_sought: Check the transit yards.
    then:
      - reply: written_confirmation
        after: 3d
"""
)


async def test_a_submission_due_on_a_deadline_is_recorded_when_due_not_when_it_arrived(
    tmp_path: Path,
) -> None:
    """Realtime recorded a simulated party's submission when it arrived, a few milliseconds
    (at this speed, minutes) after it was due: a confirmation due on its deadline came
    after the deadline had passed, and the case lapsed (found by a stranger's twin of
    example.yaml with the confirmation 3 days after the oral request)."""
    simulated, realtime = await twins(
        parse_scenario(CONFIRMED_ON_THE_DEADLINE, "tests/runtime/confirmed.yaml"), tmp_path
    )
    assert simulated.summary.violations == []
    assert outcome(realtime.summary) == outcome(simulated.summary)
    logs = [await exported(tmp_path / f"{name}.db") for name in ("simulated", "realtime")]
    assert course(logs[1]) == course(logs[0])
    confirmation = [e for e in logs[1] if e["type"] == "coop.msg.written_confirmation"]
    assert [e["time"] for e in confirmation] == ["2026-03-06T09:00:00.000000Z"]


# beta accepts a request on day 1 and plans results for day 8; alpha withdraws on day 4.
# The second request (day 2) has beta report a round while the results are planned, so in
# simulated time they go ahead to the umpire, which holds them until the withdrawal.
WITHDRAWN_WHILE_PLANNED = (
    two_parties(
        "withdrawn-while-planned", "A withdrawal before the planned results", beta_policy="worker"
    )
    + """\
policies:
  worker:
    on:
      written_request:
        - reply: acceptance
          after: 1d
          then:
            - reply: results
              after: 7d
              fields: {summary: The yards were searched.}
injects:
  - id: request
    at: 1h
    send:
      type: written_request
      from: alpha
      to: beta
      case: cargo-1
      fields:
        area: state_facilities_and_special_cargo
        requesting_party_name: Alpha Agency
        requested_party_name: Beta Agency
        essence: A consignment has not arrived.
        purpose: Trace the consignment.
        justification: The parts are needed before the final.
        assistance_sought: Check the transit yards.
  - id: another
    at: 2d
    send:
      type: written_request
      from: alpha
      to: beta
      case: cargo-2
      fields:
        area: state_facilities_and_special_cargo
        requesting_party_name: Alpha Agency
        requested_party_name: Beta Agency
        essence: A second consignment has not arrived.
        purpose: Trace the consignment.
        justification: The parts are needed before the final.
        assistance_sought: Check the transit yards.
  - id: withdraw
    at: 4d
    send:
      type: withdrawal
      from: alpha
      to: beta
      case: cargo-1
      fields: {reason: The consignment turned up at home.}
"""
)


async def test_a_withdrawn_request_is_not_worked_on_in_simulated_time_as_in_realtime(
    tmp_path: Path,
) -> None:
    """A simulated party dropped nothing when a request was withdrawn: its planned results came
    days later into the closed case (case-closed), charged to a party that did no wrong. In
    simulated time those results had gone ahead to the umpire, which held them: the party now
    takes them back, and the log has no trace of them, as in realtime, where they were never
    sent."""
    simulated, realtime = await twins(
        parse_scenario(WITHDRAWN_WHILE_PLANNED, "tests/runtime/withdrawn-while-planned.yaml"),
        tmp_path,
    )
    assert simulated.summary.case_states == {"cargo-1": "withdrawn", "cargo-2": "completed"}
    assert outcome(simulated.summary)["violations"] == []
    logs = [await exported(tmp_path / f"{name}.db") for name in ("simulated", "realtime")]
    kinds = [e["type"] for e in logs[0] if e.get("subject") == "cargo-1"]
    assert "coop.msg.results" not in kinds
    assert kinds[-1] == "coop.msg.withdrawal"
    assert [e for e in logs[0] if e["type"] == "coop.rejection"] == []
    assert outcome(realtime.summary) == outcome(simulated.summary)
    assert course(logs[1]) == course(logs[0])
