"""The umpire's two clock drivers on the in-memory bus: rounds (simulated) and realtime."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from simulator.context import seeded
from simulator.errors import InternalError
from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.messaging.memory import Published
from simulator.messaging.topics import CONTROLLER, OBSERVER
from simulator.messaging.wire import (
    Control,
    ControlAnswer,
    Ended,
    PlanStated,
    Round,
    RoundDone,
    Submission,
    Tick,
    decode_from_party,
    decode_from_umpire,
    encode,
)
from simulator.party.policy import PolicyEngine
from simulator.projections.summary import RunSummary, summarize
from simulator.protocol import parse_message
from simulator.protocol.drafting import draft
from simulator.records import CLOCK_ELAPSED, CONTROL, MESSAGE_PREFIX, REJECTION, audience
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import Scenario, load_scenario, parse_scenario
from simulator.umpire import UmpireSettings, core
from simulator.umpire.rounds import PartySilent
from simulator.umpire.sequencer import Pending
from tests.runtime.test_exercise import exported
from tests.scenario.samples import offer_inject, two_parties
from tests.umpire.committed import CommittedLog
from tests.umpire.wiring import Listener, Wired, scripted_realtime, wired

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


def _rounds_and_reports(exercise: Wired) -> tuple[dict[int, Round], list[RoundDone]]:
    markers: dict[int, Round] = {}
    reports: list[RoundDone] = []
    for message in exercise.hub.published:
        if message.topic == exercise.topics.clock:
            marker = decode_from_umpire(message.payload)
            if isinstance(marker, Round):
                markers.setdefault(marker.round, marker)
        elif exercise.topics.party_of(message.topic, "report"):
            report = decode_from_party(message.payload)
            if isinstance(report, RoundDone):
                reports.append(report)
    return markers, reports


async def test_a_round_asks_only_the_parties_with_news_or_a_plan_due(tmp_path: Path) -> None:
    """Each round names who must report; only they report, and the others stay silent."""
    scenario = load_scenario(SCENARIOS / "four-rivers-season.yaml")
    scenario = scenario.model_copy(update={"duration": timedelta(days=4)})
    async with wired(scenario, tmp_path) as exercise:
        result = await exercise.run()
    markers, reports = _rounds_and_reports(exercise)
    assert len(markers) == result.rounds > 5
    assert all(m.ask for m in markers.values()), "a round that asks nobody is not held"
    assert all(r.party in (markers[r.round].ask or ()) for r in reports)
    assert {(r.party, r.round) for r in reports} == {
        (p, m.round) for m in markers.values() for p in m.ask or ()
    }
    # Asked are the parties that saw events since they last reported or have a plan
    # due: never a party whose count of visible events is what it last reported on.
    covered: dict[str, int] = {}
    for number in sorted(markers):
        marker = markers[number]
        for party in marker.ask or ():
            if party in covered and marker.visible[party] == covered[party]:
                due = [r for r in reports if r.party == party and r.round < number][-1].next_due
                assert due is not None, (party, number)
                assert due <= marker.time, (party, number)
            covered[party] = marker.visible[party]


def _promising_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parties that report with no lookahead, as before it was introduced."""
    original = RoundDone.__init__

    def init(self: RoundDone, **fields: Any) -> None:
        original(self, **{**fields, "lookahead": None})

    monkeypatch.setattr(RoundDone, "__init__", init)


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in SCENARIOS.glob("*.yaml")), ids=lambda name: name
)
async def test_rounds_held_by_lookahead_write_the_log_of_a_round_after_every_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Asking a party only once it may act writes the same log as asking after every commit.

    Every shipped scenario, its simulated parties promising how soon they act
    (`PolicyEngine.lookahead`) and then promising nothing: the same events,
    byte for byte in what they say, in fewer rounds (a scenario with a forged
    request promises nothing about requests, and gains only elsewhere).
    """
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    async with wired(scenario, tmp_path / "lookahead") as exercise:
        fewer = await exercise.run()
    promised = await exported(exercise.location)
    with monkeypatch.context() as patch:
        _promising_nothing(patch)
        async with wired(scenario, tmp_path / "every-commit") as exercise:
            every = await exercise.run()
        _, reports = _rounds_and_reports(exercise)
        assert reports
        assert all(r.lookahead is None for r in reports)
    asked = await exported(exercise.location)
    ended = promised[-1]["data"], asked[-1]["data"]
    assert ended[0]["rounds"] == fewer.rounds < every.rounds == ended[1]["rounds"]
    for data in ended:
        data.pop("rounds")
    assert len(promised) > 3
    assert promised == asked
    await _promises_kept(scenario, exercise.location)


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in SCENARIOS.glob("*.yaml")), ids=lambda name: name
)
async def test_appending_once_a_round_writes_the_log_of_appending_at_every_instant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The rounds driver appends what it decides once a round, before the round's marker.

    Every shipped scenario: the same events, byte for byte in what they say, as
    appending at every simulated instant something is decided; and no more
    appends than rounds, apart from events that must be appended at once (a
    rejection, the controller's records, the start and the end).
    """
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")

    async def run(where: str) -> tuple[list[dict[str, Any]], int, int]:
        async with wired(scenario, tmp_path / where) as exercise:
            appends = 0
            append = exercise.umpire.committer.append

            async def counted(batch: Pending) -> list[Event]:
                nonlocal appends
                appends += 1
                return await append(batch)

            exercise.umpire.committer.append = counted  # type: ignore[method-assign]
            result = await exercise.run()
        return await exported(exercise.location), appends, result.rounds

    once, appends, rounds = await run("once-a-round")
    with monkeypatch.context() as patch:
        patch.setattr(core, "_never_repeats", lambda _: False)
        every, appends_every, _ = await run("every-instant")
    assert len(once) > 3
    assert once == every
    at_once = sum(
        not (e["type"].startswith(MESSAGE_PREFIX) or e["type"] == CLOCK_ELAPSED) for e in once
    )
    assert appends <= rounds + at_once
    assert appends < appends_every


async def _promises_kept(scenario: Scenario, location: Path) -> None:
    """Every plan a party makes of an event is due no sooner than its lookahead promised."""
    made = 0
    async with open_log(location, read_only=True) as store:
        events = [e async for e in store.read()]
    for party in scenario.parties:
        # Seeded as the run's own engine was (`wired`), so it makes the same plans.
        engine = PolicyEngine(party, scenario, seeded(scenario.seed, "party", party.id))
        promise = engine.lookahead()
        for event in events:
            if party.id not in (audience(event) or {party.id}):
                continue
            before = set(engine.plans)
            engine.observe(event)
            new = [engine.plans[seq] for seq in set(engine.plans) - before]
            if not new:
                continue
            made += len(new)
            kind = event.type.removeprefix(MESSAGE_PREFIX)
            table = promise.own if event.sender == party.id else promise.received
            assert kind in table, (party.id, event.position, kind)
            assert all(plan.due >= event.time + table[kind] for plan in new), event.position
    assert made


async def test_a_submission_lost_on_the_bus_is_resent_and_committed_once(
    tmp_path: Path,
) -> None:
    """A party's first submissions, lost before the umpire, are resent and committed once.

    In rounds they travel in the party's report: the umpire, missing the report,
    says the round again, and the party repeats it, with what it carried.
    """
    scenario = load_scenario(SCENARIOS / "example.yaml")
    async with wired(scenario, tmp_path / "calm") as calm:
        await calm.run()
    party = next(iter(calm.runtimes))
    topic = calm.topics.report(party)

    def carrying(client: str, message: Published) -> bool:
        if client != "umpire" or message.topic != topic:
            return False
        report = decode_from_party(message.payload)
        return isinstance(report, RoundDone) and bool(report.submissions)

    async with wired(scenario, tmp_path / "lossy") as lossy:
        lossy.hub.drop(carrying)
        await lossy.run()
    [(_, lost)] = lossy.hub.lost
    report = decode_from_party(lost.payload)
    assert isinstance(report, RoundDone)
    sent = [m for m in lossy.hub.published if m.topic == topic and m.payload == lost.payload]
    assert len(sent) >= 2, "the lost report was said again"
    events = await exported(lossy.location)
    ids = [e["id"] for e in events]
    for submission in report.submissions:
        assert ids.count(submission.message["message_id"]) == 1
    # Lost and said again within its round: the log is the undisturbed run's.
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


async def test_a_realtime_run_slow_to_start_still_ends_as_its_rounds_twin(tmp_path: Path) -> None:
    """Simulated time runs from the umpire's start, not from when its clock was made.

    On a NATS cluster, starting the broker, connecting and subscribing took 2-3 s after
    the clock was made: at x216,000 a week of the example's month was gone before its
    first inject, recorded a week late, and the run ended otherwise than its twin. Here
    the setup takes half the run's span (2 s at a quarter of the span a second).
    """
    scenario = load_scenario(SCENARIOS / "forged-request.yaml")
    async with wired(scenario, tmp_path / "simulated") as simulated:
        await simulated.run()
        twin = await summary_of(simulated)
    assert twin.simulated_start is not None
    assert twin.simulated_end is not None
    speed = (twin.simulated_end - twin.simulated_start).total_seconds() / 4.0
    async with wired(scenario, tmp_path / "slow", clock="realtime", speed=speed) as realtime:
        await asyncio.sleep(2.0)  # the slow setup itself, not a wait for anything
        await realtime.run()
        summary = await summary_of(realtime)
    assert outcome(summary) == outcome(twin)
    assert summary.cases == twin.cases
    # Each inject recorded at its time, give or take a quarter of a second of wall time
    # (not two seconds' worth late).
    planned, recorded = (
        {e["id"]: datetime.fromisoformat(e["time"]) for e in log if e["id"].startswith("inject.")}
        for log in (await exported(simulated.location), await exported(realtime.location))
    )
    assert planned
    assert planned.keys() == recorded.keys()
    for inject, at in planned.items():
        assert abs(recorded[inject] - at) < timedelta(seconds=0.25 * speed), inject


TINY = two_parties("tiny-drill", "Two parties, nothing scheduled", seed=5)

REQUEST: dict[str, Any] = {
    "area": "public_order",
    "essence": "Crowd safety at the final.",
    "purpose": "Align stewarding rules.",
    "justification": "Both states host supporters.",
    "assistance_sought": "Copies of the crowd-safety regulations.",
}
# A realtime tick short enough for a test to wait on several of them.
TICK_S = 0.2


def _alphas_request(ex: Wired, n: int = 1) -> dict[str, Any]:
    """alpha's written request `alpha.n` in case-n to beta, signed, as its seat would send it."""
    scenario = ex.scenario
    return ex.signatories.sign(
        draft(
            "written_request",
            message_id=f"alpha.{n}",
            case_id=f"case-{n}",
            sender=scenario.party("alpha"),
            recipient=scenario.party("beta"),
            fields=REQUEST,
        )
    )


async def _state_a_plan(alpha: Listener, tick: Tick, seqs: tuple[int, ...]) -> None:
    """alpha states its plan after it sent `seqs`, as a simulated party's runtime does.

    Until it has, the umpire waits for it before it takes anything (up to `hold_s`):
    a party whose plan it does not know may still send something due before then.
    """
    plan = PlanStated(party="alpha", seen=tick.visible.get("alpha", 0), seqs=seqs)
    await alpha.bus.publish(alpha.topics.report("alpha"), encode(plan))


@contextlib.asynccontextmanager
async def _alpha_scripted_in_realtime(
    tmp_path: Path, *, human: bool = False, speed: float = 1.0
) -> AsyncIterator[tuple[Wired, asyncio.TaskGroup]]:
    """The tiny drill in realtime, alpha's seat played by the test, and a task group to run it.

    `human`: alpha's seat is a person's (the umpire expects no plan from it)."""
    text = TINY.replace("seal: A-SEAL\n", "seal: A-SEAL\n    human: true\n") if human else TINY
    scenario = parse_scenario(text, "tests/umpire/tiny-drill.yaml")
    assert scenario.party("alpha").human == human
    settings = UmpireSettings(clock_tick_s=TICK_S)
    async with (
        wired(
            scenario,
            tmp_path,
            clock="realtime",
            speed=speed,
            scripted=("alpha",),
            settings=settings,
        ) as ex,
        asyncio.TaskGroup() as group,
    ):
        yield ex, group


@pytest.mark.parametrize("human", [False, True], ids=["simulated", "person"])
async def test_in_realtime_a_simulated_partys_submission_is_recorded_when_it_was_due(
    tmp_path: Path, human: bool
) -> None:
    """A simulated party says when its submission was due (`Submission.due`): it is recorded
    then, never before what the log holds nor after the umpire's clock. A person's is
    recorded when it arrives, whatever it says (a seat could claim any time at all)."""
    async with _alpha_scripted_in_realtime(tmp_path, human=human, speed=3600) as (ex, group):
        topics = ex.topics
        alpha = await ex.listen("alpha", *topics.party_filters("alpha"))
        run = group.create_task(ex.run())
        start = ex.scenario.start
        async with asyncio.timeout(10):
            first = await alpha.next(Tick)
            # A few simulated minutes on (a tick is 12 of them at x3600).
            sent_after = await alpha.next(Tick, lambda t: t.time > first.time)
            claims = {1: start - timedelta(days=1), 2: start + timedelta(days=10)}
            for seq, due in claims.items():
                message = _alphas_request(ex, seq)
                submission = Submission(party="alpha", seq=seq, message=message, due=due)
                await alpha.bus.publish(topics.submit("alpha"), encode(submission))
            if not human:
                # As a runtime does: its plan when it sent them, and again once it has
                # seen the first committed (the umpire waits for that before the second).
                await _state_a_plan(alpha, first, seqs=(1, 2))
                await _state_a_plan(alpha, await alpha.next(Tick, lambda t: t.head == 2), (2,))
            await alpha.next(Tick, lambda t: t.head == 3)
            ex.umpire.stop("the test is over")
            await run
    events = await exported(ex.location)
    recorded = {e["id"]: datetime.fromisoformat(e["time"]) for e in events}
    if human:
        # When they arrived: after the tick seen before they were sent, by the clock.
        assert recorded["alpha.1"] >= sent_after.time
        assert recorded["alpha.2"] < start + timedelta(days=1)
    else:
        # No earlier than what the log held (the exercise's start), no later than the clock.
        assert recorded["alpha.1"] == start
        assert start < recorded["alpha.2"] < start + timedelta(days=1)


async def _take_back_seq_1(
    ex: Wired, alpha: Listener, first: str, seen: int, *, outstanding: int
) -> PlanStated:
    """alpha sends seq 1 and its plan taking seq 1 back (`first` first), then seq 1 again;
    its plan names `outstanding` as still to come. Returns that plan."""
    topics = ex.topics
    taken_back = Submission(party="alpha", seq=1, message=_alphas_request(ex, 1))
    plan = PlanStated(party="alpha", seen=seen, seqs=(outstanding,), retracted=(1,))
    for what in (first, "retraction" if first == "submission" else "submission"):
        if what == "submission":
            await alpha.bus.publish(topics.submit("alpha"), encode(taken_back))
        else:
            await alpha.bus.publish(topics.report("alpha"), encode(plan))
    await alpha.bus.publish(topics.submit("alpha"), encode(taken_back))
    return plan


@pytest.mark.parametrize("first", ["submission", "retraction"])
async def test_in_realtime_a_submission_its_party_took_back_is_never_decided(
    tmp_path: Path, first: str
) -> None:
    """A simulated party that drops a plan already sent (its case was withdrawn) says so in
    its plan (`PlanStated.retracted`). The umpire takes a party's submission only once it
    has its current plan, so the submission is dropped whether it came before the word
    taking it back or after it (they travel on different topics); no rejection either."""
    async with _alpha_scripted_in_realtime(tmp_path, speed=3600) as (ex, group):
        topics = ex.topics
        alpha = await ex.listen("alpha", *topics.party_filters("alpha"))
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            tick = await alpha.next(Tick)
            seen = tick.visible.get("alpha", 0)
            # The same submission again (a resend that crossed the word), then one that stands.
            await _take_back_seq_1(ex, alpha, first, seen, outstanding=2)
            stands = Submission(party="alpha", seq=2, message=_alphas_request(ex, 2))
            await alpha.bus.publish(topics.submit("alpha"), encode(stands))
            await alpha.next(Tick, lambda t: t.head == tick.head + 1)
            ex.umpire.stop("the test is over")
            await run
    events = await exported(ex.location)
    assert [e["id"] for e in events if e["type"].startswith(MESSAGE_PREFIX)] == ["alpha.2"]
    assert [e for e in events if e["type"] == REJECTION] == []


@pytest.mark.parametrize("first", ["submission", "retraction"])
async def test_another_message_under_a_number_taken_back_is_refused_as_a_reuse(
    tmp_path: Path, first: str
) -> None:
    """What a party took back is dropped, resends of it too; another message under its
    number is not the one taken back: it is refused as a reuse of the number, with the
    reason, as under any number already used, not dropped without a trace."""
    async with _alpha_scripted_in_realtime(tmp_path, speed=3600) as (ex, group):
        topics = ex.topics
        alpha = await ex.listen("alpha", *topics.party_filters("alpha"))
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            tick = await alpha.next(Tick)
            seen = tick.visible.get("alpha", 0)
            plan = await _take_back_seq_1(ex, alpha, first, seen, outstanding=3)
            other = Submission(party="alpha", seq=1, message=_alphas_request(ex, 2))
            await alpha.bus.publish(topics.submit("alpha"), encode(other))
            stands = Submission(party="alpha", seq=3, message=_alphas_request(ex, 3))
            await alpha.bus.publish(topics.submit("alpha"), encode(stands))
            # The rejection first: alpha sees it, so it states its plan again before seq 3.
            refused = await alpha.next(Tick, lambda t: t.head > tick.head)
            restated = plan.model_copy(update={"seen": refused.visible.get("alpha", 0)})
            await alpha.bus.publish(topics.report("alpha"), encode(restated))
            await alpha.next(Tick, lambda t: t.head == tick.head + 2)
            ex.umpire.stop("the test is over")
            await run
    events = await exported(ex.location)
    assert [e["id"] for e in events if e["type"].startswith(MESSAGE_PREFIX)] == ["alpha.3"]
    [rejection] = [e for e in events if e["type"] == REJECTION]
    assert "sequence number 1 " in str(rejection["data"])


async def test_a_person_cannot_take_back_a_message_before_sending_it(tmp_path: Path) -> None:
    """Only a simulated party takes submissions back (`PlanStated.retracted`): a person's
    message counts when it arrives, so a stated plan naming it first (a client of their
    own on the broker) does not make the umpire drop it without a trace."""
    async with _alpha_scripted_in_realtime(tmp_path, human=True, speed=3600) as (ex, group):
        topics = ex.topics
        alpha = await ex.listen("alpha", *topics.party_filters("alpha"))
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            tick = await alpha.next(Tick)
            word = PlanStated(party="alpha", seen=0, retracted=(1,))
            await alpha.bus.publish(topics.report("alpha"), encode(word))
            await alpha.next(Tick, lambda t: t.time > tick.time)
            for seq in (1, 2):
                submission = Submission(party="alpha", seq=seq, message=_alphas_request(ex, seq))
                await alpha.bus.publish(topics.submit("alpha"), encode(submission))
            await alpha.next(Tick, lambda t: t.head > tick.head)
            ex.umpire.stop("the test is over")
            await run
    events = await exported(ex.location)
    assert "alpha.1" in [e["id"] for e in events if e["type"].startswith(MESSAGE_PREFIX)]
    assert [e for e in events if e["type"] == REJECTION] == []


async def test_the_realtime_driver_never_ends_idle_on_a_stale_plan(tmp_path: Path) -> None:
    """A plan stated with fewer events seen than the party may see does not end the run."""
    async with _alpha_scripted_in_realtime(tmp_path) as (ex, group):
        topics = ex.topics
        alpha = await ex.listen("alpha", *topics.party_filters("alpha"))
        observer = await ex.listen()
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            first = await alpha.next(Tick)
            message = _alphas_request(ex)
            submission = Submission(party="alpha", seq=1, message=message)
            await alpha.bus.publish(topics.submit("alpha"), encode(submission))
            await _state_a_plan(alpha, first, seqs=(1,))
            tick = await alpha.next(Tick, lambda t: t.head == 2)
            assert tick.visible == {"alpha": 2, "beta": 2}
            # beta (a runtime) states a current plan with nothing in it: only alpha's is missing.
            await observer.next(PlanStated, lambda p: p.party == "beta" and p.seen == 2)

            stale = PlanStated(party="alpha", seen=1)
            await alpha.bus.publish(topics.report("alpha"), encode(stale))
            for _ in range(3):
                marker = await alpha.next(BaseModel, lambda m: isinstance(m, Tick | Ended))
                assert isinstance(marker, Tick), f"ended on a stale plan: {marker}"
            assert not run.done()

            current = PlanStated(party="alpha", seen=tick.visible["alpha"])
            await alpha.bus.publish(topics.report("alpha"), encode(current))
            ended = await alpha.next(Ended)
            result = await run
    assert ended.reason == result.reason == "nothing left to happen"


async def test_in_realtime_a_submission_carried_in_a_report_is_decided_as_it_arrives(
    tmp_path: Path,
) -> None:
    """A report carrying a submission (as rounds do) has it decided at once in realtime too."""
    async with _alpha_scripted_in_realtime(tmp_path) as (ex, group):
        topics = ex.topics
        alpha = await ex.listen("alpha", *topics.party_filters("alpha"))
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            first = await alpha.next(Tick)
            message = _alphas_request(ex)
            carried = RoundDone(
                party="alpha",
                round=0,
                submissions=(Submission(party="alpha", seq=1, message=message),),
            )
            await alpha.bus.publish(topics.report("alpha"), encode(carried))
            await _state_a_plan(alpha, first, seqs=(1,))
            tick = await alpha.next(Tick, lambda t: t.head == 2)
            await alpha.bus.publish(
                topics.report("alpha"),
                encode(PlanStated(party="alpha", seen=tick.visible["alpha"])),
            )
            await alpha.next(Ended)
            await run
    events = await exported(ex.location)
    assert [e["id"] for e in events if e["type"] == "coop.msg.written_request"] == ["alpha.1"]


async def test_realtime_control_commands_are_answered_and_the_carried_out_ones_logged(
    tmp_path: Path,
) -> None:
    """Each command with an id is answered; a refused one is not logged, carried-out ones are."""
    scenario = load_scenario(SCENARIOS / "example.yaml")
    async with (
        wired(scenario, tmp_path, clock="realtime", speed=1.0) as ex,
        asyncio.TaskGroup() as group,
    ):
        controller = await ex.listen(CONTROLLER, ex.topics.answers)
        observer = await ex.listen()
        run = group.create_task(ex.run())

        async def ask(**command: Any) -> ControlAnswer:
            sent = Control(id=f"q{len(answers) + 1}", **command)
            await controller.bus.publish(ex.topics.control, encode(sent))
            answer = await controller.next(ControlAnswer, lambda a: a.id == sent.id)
            assert answer.command == sent.command
            answers.append(answer)
            return answer

        answers: list[ControlAnswer] = []
        async with asyncio.timeout(10):
            await observer.next(Tick)
            unknown = await ask(command="inject", inject="no-such-inject")
            paused = await ask(command="pause")
            status = await ask(command="status")
            stopped = await ask(command="stop")
            result = await run
    assert not unknown.ok
    assert "no-such-inject" in unknown.detail
    known = [inject.id for inject in scenario.injects]
    assert known
    assert all(name in unknown.detail for name in known), unknown.detail
    assert paused.ok
    assert status.ok
    assert status.status is not None
    assert status.status["paused"] is True
    assert status.status["clock"] == "realtime"
    assert stopped.ok
    assert result.reason == "stopped by the controller"
    logged = [e["data"]["command"] for e in await exported(ex.location) if e["type"] == CONTROL]
    assert logged == ["pause", "stop"]


async def test_a_paused_realtime_run_ticks_at_its_clock_tick_with_time_standing(
    tmp_path: Path,
) -> None:
    """Paused, the umpire announces its clock once per tick, never more often, time standing."""
    scenario = load_scenario(SCENARIOS / "example.yaml")
    settings = UmpireSettings(clock_tick_s=TICK_S)
    count = 8
    loop = asyncio.get_running_loop()
    async with (
        wired(scenario, tmp_path, clock="realtime", speed=60.0, settings=settings) as ex,
        asyncio.TaskGroup() as group,
    ):
        controller = ex.connect(CONTROLLER)
        observer = await ex.listen(OBSERVER, ex.topics.clock)
        run = group.create_task(ex.run())

        async def chatter() -> None:
            """Messages keep arriving (ignored ones): none may bring a tick forward."""
            while True:
                await controller.publish(ex.topics.control, b'{"kind":"control","command":"?"}')
                await asyncio.sleep(TICK_S / 10)

        async with asyncio.timeout(10):
            await observer.next(Tick)
            await controller.publish(ex.topics.control, encode(Control(command="pause")))
            first = await observer.next(Tick, lambda t: t.paused)
            noise = group.create_task(chatter())
            began = loop.time()
            ticks = [await observer.next(Tick) for _ in range(count)]
            elapsed = loop.time() - began
            noise.cancel()
            await controller.publish(ex.topics.control, encode(Control(command="stop")))
            await run
    assert all(t.paused for t in ticks)
    assert {t.time for t in ticks} == {first.time}, "simulated time stood still while paused"
    # Published when the tick is due and never before: `count` ticks span `count` intervals,
    # less what one delivery can be late on the next (a few milliseconds on one loop).
    assert elapsed >= count * TICK_S - 0.05, f"{count} ticks in {elapsed:.3f} s"
    assert elapsed <= count * TICK_S * 2, f"{count} ticks took {elapsed:.3f} s"


async def test_a_controllers_stop_ends_a_rounds_run_while_a_party_has_not_reported(
    tmp_path: Path,
) -> None:
    """Stopped by the controller while waiting for a silent party's report, a rounds run ends."""
    scenario = parse_scenario(TINY, "tests/umpire/tiny-drill.yaml")
    async with (
        wired(scenario, tmp_path, scripted=("alpha",)) as ex,
        asyncio.TaskGroup() as group,
    ):
        controller = await ex.listen(CONTROLLER, ex.topics.answers)
        observer = await ex.listen(OBSERVER, ex.topics.clock, ex.topics.all_reports)
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            await observer.next(Round)
            await observer.next(RoundDone)  # beta has reported; alpha never will
            stop = Control(id="stop-1", command="stop")
            await controller.bus.publish(ex.topics.control, encode(stop))
            answer = await controller.next(ControlAnswer)
            ended = await observer.next(Ended)
            result = await run
    assert answer.ok
    assert ended.reason == result.reason == "stopped by the controller"


async def test_a_cancelled_umpire_stops_even_while_a_message_reaches_it(tmp_path: Path) -> None:
    """Cancelling `run()` stops the umpire at every step of a message's arrival."""
    scenario = parse_scenario(TINY, "tests/umpire/tiny-drill.yaml")
    settings = UmpireSettings(clock_tick_s=TICK_S)
    for steps in range(6):
        async with wired(
            scenario, tmp_path / str(steps), clock="realtime", scripted=("alpha", "beta"),
            settings=settings,
        ) as ex:  # fmt: skip
            controller = ex.connect(CONTROLLER)
            observer = await ex.listen(OBSERVER, ex.topics.clock)
            run = asyncio.create_task(ex.umpire.run(start_events=[ex.start_event()]))
            async with asyncio.timeout(10):
                await observer.next(Tick)
            await controller.publish(ex.topics.control, encode(Control(command="status")))
            for _ in range(steps):
                await asyncio.sleep(0)  # one step of the event loop: the cancel lands later
            run.cancel()
            done, _ = await asyncio.wait([run], timeout=2)
            if not done:
                ex.umpire.stop("the test is over")
                await asyncio.wait([run], timeout=5)
            assert done, f"still running 2 s after a cancel {steps} loop steps into an arrival"
            assert run.cancelled()


async def test_a_batch_being_appended_is_already_the_sequencers_view(tmp_path: Path) -> None:
    """Realtime decides a submission as it arrives, maybe while the last batch is written.

    It must be decided against the cases as that batch leaves them: decided against
    the state before, a notice that came after a deadline's elapse was judged as if
    the deadline had not elapsed (its results-overdue said twice).
    """
    scenario = parse_scenario(TINY, "tests/umpire/tiny.yaml")
    log = CommittedLog(scenario)
    request = parse_message(
        log.drafted(
            "written_request",
            message_id="alpha.case-1",
            case_id="case-1",
            sender="alpha",
            recipient="beta",
            fields=REQUEST,
        )
    )
    async with wired(scenario, tmp_path, clock="realtime", scripted=("alpha", "beta")) as ex:
        umpire = ex.umpire
        writing, release = asyncio.Event(), asyncio.Event()
        append = umpire.committer.append

        async def held_append(batch: Pending) -> list[Event]:
            writing.set()
            await release.wait()
            return await append(batch)

        umpire.committer.append = held_append  # type: ignore[method-assign]
        umpire.sequencer.record(request, scenario.start, party="alpha")
        committing = asyncio.create_task(umpire.commit())
        async with asyncio.timeout(10):
            await writing.wait()
        # Mid-append: the request's case is the sequencer's, and so is its id.
        case = umpire.sequencer.case("case-1")
        assert case is not None
        assert case.requesting == "alpha"
        assert umpire.sequencer.message_ids.get("alpha.case-1") is not None
        release.set()
        async with asyncio.timeout(10):
            await committing


async def test_what_a_round_report_carries_is_judged_as_if_it_came_alone(tmp_path: Path) -> None:
    """A carried submission in another party's name, or of no kind, is rejected, saying why.

    Carrying changes how a submission travels, not who may make it: the umpire
    takes each as if it had come on the reporting party's own submit topic.
    """
    scenario = load_scenario(SCENARIOS / "example.yaml")
    async with wired(scenario, tmp_path) as exercise:
        umpire = exercise.umpire
        spoofed = Submission(party="southmere", seq=1, message={"type": "acknowledgement"})
        own = Submission(party="northmark", seq=1, message={"type": "no_such_kind"})
        report = RoundDone(party="northmark", round=0, submissions=(spoofed, own))
        await umpire._take_report("northmark", encode(report))
        assert umpire.intake.has("northmark", 1)
        decisions = umpire.intake.stage(scenario.start)
    notices = [d.notice for d in decisions if d.notice is not None]
    assert len(notices) == 2
    reasons = " | ".join(n.reason for n in notices)
    assert "no_such_kind" in reasons
    # The one in southmere's name is refused as northmark's (it came on northmark's topic).
    assert all(d.party == "northmark" for d in decisions)
    staged = [d.event for d in decisions if d.event is not None]
    assert len(staged) == 2
    assert {e.type for e in staged} == {REJECTION}


JUMPS = """
version: 1
exercise: jump-edge
title: Jumping to a confirmation due on its deadline
start: 2026-03-02T09:00:00Z
duration: 10d
parties:
  - {id: north, name: North, head: {name: N. H, title: H}, deputies: [{name: N. D, title: D}],
     seal: N, coordination_unit: U}
  - {id: south, name: South, head: {name: S. H, title: H}, deputies: [{name: S. D, title: D}],
     seal: S, coordination_unit: U,
     policy: {on: {oral_request: [{reply: acceptance, after: 1h}]}}}
injects:
  - id: call
    at: 1h
    send: {type: oral_request, from: north, to: south, case: c1,
           fields: {area: public_order, urgent: true, requesting_party_name: North,
                    requested_party_name: South, essence: e, purpose: p, justification: j,
                    assistance_sought: a}}
    then:
      - {reply: written_confirmation, after: 3d}
  - id: wd
    at: 6d
    send: {type: withdrawal, from: north, to: south, case: c1}
"""


def _course(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each message and timer event's type and simulated time, in order."""
    return [
        (e["type"], e["time"])
        for e in events
        if e["type"].startswith(MESSAGE_PREFIX) or e["type"] == CLOCK_ELAPSED
    ]


async def test_jumps_and_notes_in_realtime_keep_every_message_at_its_own_time(
    tmp_path: Path,
) -> None:
    """The controller jumps from timer to timer and writes notes: the log is the twin's.

    A jump had been recorded at the time it jumped to, microseconds of wall time past
    it (simulated milliseconds at x600) and committed first, so what was due there was
    recorded after it: a written confirmation due on the Art. 4.2 deadline seemed late,
    the case lapsed and its party was charged with a breach it did not commit. A jump
    to a timer due at once had raised, and taken the umpire's receiver down with it.
    """
    scenario = parse_scenario(JUMPS, "tests/umpire/jumps.yaml")
    async with wired(scenario, tmp_path / "simulated") as simulated:
        await simulated.run()
    twin = await exported(simulated.location)
    async with (
        wired(scenario, tmp_path / "realtime", clock="realtime", speed=600.0) as ex,
        asyncio.TaskGroup() as group,
    ):
        controller = await ex.listen(CONTROLLER, ex.topics.answers)
        observer = await ex.listen(OBSERVER, ex.topics.clock)
        run = group.create_task(ex.run())
        answers: list[ControlAnswer] = []
        sent_count = 0

        async def ask(**command: Any) -> ControlAnswer | None:
            """The umpire's answer; None if the run ended first."""
            nonlocal sent_count
            sent_count += 1
            sent = Control(id=f"q{sent_count}", **command)
            await controller.bus.publish(ex.topics.control, encode(sent))
            answer = asyncio.create_task(controller.next(ControlAnswer, lambda a: a.id == sent.id))
            await asyncio.wait({answer, run}, return_when=asyncio.FIRST_COMPLETED)
            if not answer.done():
                answer.cancel()
                return None
            answers.append(answer.result())
            return answers[-1]

        async with asyncio.timeout(30):
            await observer.next(Tick)
            while not run.done():
                # A jump, a note, and jumps asked twice at once: the second finds the
                # next timer due already, and is refused rather than failing. Until
                # nothing is left to jump to: then the run ends by itself, once idle.
                jumped = await ask(command="jump")
                if jumped is None or "nothing is scheduled" in jumped.detail:
                    break
                if not jumped.ok:
                    # Due already: the umpire takes it (waiting for a party's word, maybe)
                    # before there is anything to jump over; ask again at its next tick.
                    tick = asyncio.create_task(observer.next(Tick))
                    await asyncio.wait({tick, run}, return_when=asyncio.FIRST_COMPLETED)
                    tick.cancel()
                    continue
                await ask(command="note", text=f"after jump {sent_count}")
                await asyncio.gather(ask(command="jump"), ask(command="jump"))
            result = await run
    assert result.reason == "nothing left to happen"
    events = await exported(ex.location)
    assert _course(events) == _course(twin)
    assert all(not e["data"].get("violations") for e in events if e["type"].startswith("coop.msg"))
    refused = [a.detail for a in answers if a.command == "jump" and not a.ok]
    assert all("jump" in d or "due already" in d for d in refused), refused
    assert [a.detail for a in answers if a.command == "jump" and a.ok]
    times = [e["time"] for e in events]
    assert times == sorted(times), "the log's times never go back"


async def test_an_umpire_that_stops_receiving_stops_its_run_at_once(tmp_path: Path) -> None:
    """The receiver's failure ends the run with an error, rather than leaving it half alive.

    A jump had raised in the receiver; `run()` awaited it only on the way out, so the
    clock ticked on for days of simulated time past the scenario's end, every party's
    submission went unanswered, and the failure showed only at Ctrl-C.
    """
    scenario = parse_scenario(JUMPS, "tests/umpire/jumps.yaml")
    async with wired(scenario, tmp_path, clock="realtime", speed=1.0) as ex:
        observer = await ex.listen(OBSERVER, ex.topics.clock)
        failure = RuntimeError("a receiver's bug")

        async def receive() -> None:
            await observer.next(Tick)
            raise failure

        ex.umpire._receive = receive  # type: ignore[method-assign]
        async with asyncio.timeout(10):
            with pytest.raises(InternalError, match="stopped receiving") as raised:
                await ex.umpire.run(start_events=[ex.start_event()])
    assert raised.value.__cause__ is failure


async def test_a_control_command_the_umpire_fails_on_is_answered_not_fatal(
    tmp_path: Path,
) -> None:
    """A command that raises in the umpire is answered as not carried out; the run goes on."""
    scenario = parse_scenario(JUMPS, "tests/umpire/jumps.yaml")
    async with (
        wired(scenario, tmp_path, clock="realtime", speed=1.0) as ex,
        asyncio.TaskGroup() as group,
    ):
        controller = await ex.listen(CONTROLLER, ex.topics.answers)
        observer = await ex.listen(OBSERVER, ex.topics.clock)
        calls: list[str] = []
        carry_out = ex.umpire.apply_control

        def failing_once(command: Control) -> tuple[bool, str]:
            calls.append(command.command)
            if len(calls) == 1:
                raise ValueError("simulated time cannot go back")
            return carry_out(command)

        ex.umpire.apply_control = failing_once  # type: ignore[method-assign]
        run = group.create_task(ex.run())
        async with asyncio.timeout(10):
            await observer.next(Tick)
            await controller.bus.publish(ex.topics.control, encode(Control(id="a", command="jump")))
            failed = await controller.next(ControlAnswer, lambda a: a.id == "a")
            await controller.bus.publish(ex.topics.control, encode(Control(id="b", command="stop")))
            stopped = await controller.next(ControlAnswer, lambda a: a.id == "b")
            result = await run
    assert not failed.ok
    assert "could not carry out 'jump'" in failed.detail
    assert "cannot go back" in failed.detail
    assert stopped.ok
    assert result.reason == "stopped by the controller"


PING_PONG = """
version: 1
exercise: ping-pong
title: Two parties answering results with results at once
start: 2026-03-02T09:00:00Z
duration: 10d
parties:
  - {id: north, name: North, head: {name: N. H, title: H}, deputies: [{name: N. D, title: D}],
     seal: N, coordination_unit: U,
     policy: {on: {results: [{reply: results, after: 0s, fields: {summary: again}}]}}}
  - {id: south, name: South, head: {name: S. H, title: H}, deputies: [{name: S. D, title: D}],
     seal: S, coordination_unit: U,
     policy: {on: {written_request: [{reply: acceptance, after: 1h,
                                      then: [{reply: results, after: 2h,
                                              fields: {summary: done}}]}],
                   results: [{reply: results, after: 0s, fields: {summary: again}}]}}}
injects:
  - id: ask
    at: 1h
    send: {type: written_request, from: north, to: south, case: c1,
           fields: {area: public_order, essence: e, purpose: p, justification: j,
                    assistance_sought: a}}
"""


async def test_parties_answering_each_other_at_once_without_end_end_the_run(
    tmp_path: Path,
) -> None:
    """Policies that answer results with results `after: 0s` had run for ever at one
    simulated instant (time never reaching the scenario's end); the run ends, saying why."""
    scenario = parse_scenario(PING_PONG, "tests/umpire/ping-pong.yaml")
    async with wired(scenario, tmp_path) as ex, asyncio.timeout(120):
        result = await ex.run()
    assert result.reason.startswith("time stood still at 2026-03-02 13:00: 1001 rounds")
    assert "north results; south results" in result.reason
    events = await exported(ex.location)
    assert events[-1]["type"] == "coop.exercise.ended"
    assert events[-1]["time"].startswith("2026-03-02T13:00:00")


async def _report_too_large_for_the_wire(tmp_path: Path) -> None:
    """A rounds run in which alpha's only report is one the wire refuses."""
    scenario = parse_scenario(TINY, "tests/umpire/tiny-drill.yaml")
    settings = UmpireSettings(party_timeout_s=1.0)
    due = scenario.start + timedelta(hours=2)
    async with (
        wired(scenario, tmp_path, scripted=("alpha",), settings=settings) as ex,
        asyncio.TaskGroup() as group,
        asyncio.timeout(30),
    ):
        alpha = await ex.listen("alpha", ex.topics.clock)
        group.create_task(ex.run())
        marker = await alpha.next(Round)
        ahead = tuple((seq, due) for seq in range(1, 9_000))
        report = RoundDone(party="alpha", round=marker.round, ahead=ahead)
        await alpha.bus.publish(ex.topics.report("alpha"), encode(report))


async def test_a_party_whose_reports_are_refused_is_named_with_why(tmp_path: Path) -> None:
    """A round report too large for the wire is refused each time the party repeats it; when
    the umpire gives up on the party it says why, rather than asking whether it is running.
    (A simulated party holding some 7,000 submissions ahead of their time, as 20,000 cases
    generated at one instant make it, sends such a report.)"""
    with pytest.raises(ExceptionGroup) as caught:
        await _report_too_large_for_the_wire(tmp_path)
    group = caught.value.subgroup(PartySilent)
    assert group is not None
    silent: BaseException = group
    while isinstance(silent, BaseExceptionGroup):
        silent = silent.exceptions[0]
    said = str(silent)
    assert said.startswith("no report for round 0 from alpha within 1 s")
    assert re.search(r"alpha's reports were refused: payload of [0-9]+ bytes exceeds", said)


async def test_a_realtime_run_with_nothing_left_just_before_its_end_ends_when_its_twin_does(
    tmp_path: Path,
) -> None:
    """The last thing happens a second before the end and nothing is left after it: the
    simulated run ends then. At a speed where that second passed before the umpire could
    tell nothing was left, the realtime run said so too, but stamped its end at the
    scenario's end, a second after its twin's."""
    text = two_parties("last-second", "An offer a second before the end") + "injects:\n"
    scenario = parse_scenario(text + offer_inject("29d 23h 59m 59s"), "last-second.yaml")
    async with wired(scenario, tmp_path / "simulated") as simulated:
        await simulated.run()
    async with wired(scenario, tmp_path / "rt", clock="realtime", speed=1_000_000) as realtime:
        await realtime.run()
    ends = [
        [(e["time"], e["data"]["reason"]) for e in events if e["type"] == "coop.exercise.ended"]
        for events in (await exported(simulated.location), await exported(realtime.location))
    ]
    assert ends[0] == [("2026-04-01T08:59:59.000000Z", "nothing left to happen")]
    assert ends[1] == ends[0]


def _offers_to_alpha(days: range) -> str:
    """Injects: beta offers alpha something on each of `days` (cases offer-N)."""
    return "injects:\n" + "".join(
        f"""\
  - id: offer-{day}
    at: {day}d
    send:
      type: offer
      from: beta
      to: alpha
      case: offer-{day}
      fields: {{area: public_order, description: Joint steward training {day}.}}
"""
        for day in days
    )


async def test_a_seat_restating_a_plan_it_never_sends_is_given_up_on_once(
    tmp_path: Path,
) -> None:
    """alpha's seat (the test) says after every commit, as a simulated party's runtime does,
    that a plan of its is due a day before the exercise began, and never sends it. Five
    injects come due in turn.

    The umpire waits `hold_s` for it at the first, names it in a warning and then takes what
    is due without waiting for it, as long as it keeps stating that same plan. Before, each
    restatement (a new statement of the same plan, with more events seen) counted as a new
    plan: the umpire waited `hold_s` again before every inject, and named alpha five times.
    """
    text = two_parties("stuck-seat", "A seat stuck on a plan", seed=5) + _offers_to_alpha(
        range(1, 6)
    )
    scenario = parse_scenario(text, "tests/umpire/stuck-seat.yaml")
    past = scenario.start - timedelta(days=1)
    # The 30 days in about 6 s of wall time; each wait 0.5 s of it.
    settings = UmpireSettings(clock_tick_s=TICK_S, hold_s=0.5, party_timeout_s=1.0)
    with capture_logs() as logged:
        async with scripted_realtime(
            scenario, tmp_path, speed=30 * 86_400 / 6, settings=settings
        ) as (ex, alpha, group):
            run = group.create_task(ex.run())
            stated = -1
            async with asyncio.timeout(60):
                while not run.done():
                    marker = await alpha.next(BaseModel, lambda m: isinstance(m, Tick | Ended))
                    if not isinstance(marker, Tick):
                        break
                    seen = marker.visible.get("alpha", 0)
                    if seen != stated:
                        stated = seen
                        plan = PlanStated(party="alpha", seen=seen, next_due=past)
                        await alpha.bus.publish(ex.topics.report("alpha"), encode(plan))
                result = await run
    offers = [e for e in await exported(ex.location) if e["type"] == "coop.msg.offer"]
    assert [e["id"] for e in offers] == [f"inject.offer-{day}" for day in range(1, 6)]
    given_up = [e for e in logged if e["event"] == "party_not_waited_for"]
    assert [e["party"] for e in given_up] == ["alpha"]
    assert result.reason == "the scenario's duration was reached"
