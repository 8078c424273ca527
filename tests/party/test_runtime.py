"""A simulated party's runtime on the in-memory bus, against an umpire the test plays by hand."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from simulator.eventlog import Event, to_json_line
from simulator.messaging.memory import MemoryHub
from simulator.messaging.routing import publish_events
from simulator.messaging.topics import UMPIRE, Topics
from simulator.messaging.wire import (
    CatchUpRequest,
    Ended,
    PlanStated,
    Round,
    RoundDone,
    Submission,
    Tick,
    encode,
)
from simulator.party import PartyRuntime, PartySettings
from simulator.party.policy import PolicyEngine
from simulator.scenario import Scenario, parse_scenario
from tests.party.test_policy_engine import REQUEST, SCENARIO
from tests.umpire.committed import CommittedLog
from tests.umpire.wiring import Listener, connect

# beta's policy answers a written request with an acknowledgement after 2h, then
# (counted from the acknowledgement's commit) an acceptance after 1d.
ACK_AFTER = timedelta(hours=2)


@dataclass
class Stage:
    """beta's runtime, running, and the umpire's connection the test speaks through."""

    scenario: Scenario
    topics: Topics
    log: CommittedLog
    umpire: Listener
    task: "asyncio.Task[Ended]"

    @property
    def start(self) -> datetime:
        return self.scenario.start

    def request(self, case: str, at: datetime) -> Event:
        """alpha's written request to beta in `case`, committed at `at`."""
        data = self.log.drafted(
            "written_request",
            message_id=f"alpha.{case}",
            case_id=case,
            sender="alpha",
            recipient="beta",
            fields=REQUEST,
        )
        return self.log.message(data, at)

    async def publish(self, *events: Event) -> None:
        """Committed events, to the topics of their audience, as the umpire sends them."""
        await publish_events(self.umpire.bus, self.topics, events)

    async def say(self, marker: Round | Tick | Ended) -> None:
        await self.umpire.bus.publish(self.topics.clock, encode(marker))

    def visible(self) -> dict[str, int]:
        """How many committed events each party may see (all of them, in these tests)."""
        return {"alpha": len(self.log.events), "beta": len(self.log.events)}


@contextlib.asynccontextmanager
async def staged(settings: PartySettings | None = None) -> AsyncIterator[Stage]:
    scenario = parse_scenario(SCENARIO, "tests/party/policy-drill.yaml")
    topics = Topics(scenario.exercise)
    hub = MemoryHub()
    umpire = connect(hub, topics, UMPIRE)
    await umpire.subscribe(topics.all_submissions, topics.all_reports)
    log = CommittedLog(scenario)
    engine = PolicyEngine(
        scenario.party("beta"),
        scenario,
        random.Random(1),
        signatories=log.signatories.public_only(keep=["beta"]),
    )
    runtime = PartyRuntime(
        engine=engine, bus=connect(hub, topics, "beta"), topics=topics, settings=settings
    )
    task = asyncio.create_task(runtime.run())
    try:
        async with asyncio.timeout(10):
            await runtime.ready.wait()
            yield Stage(scenario, topics, log, Listener(umpire, topics), task)
    finally:
        # Ended as the umpire ends it, not cancelled: the test is about what it does.
        if not task.done():
            over = Ended(head=len(log.events), time=scenario.start, reason="the test is over")
            await umpire.publish(topics.clock, encode(over))
        async with asyncio.timeout(5):
            await asyncio.wait([task])


async def test_on_a_round_marker_the_party_folds_submits_what_is_due_and_reports() -> None:
    """On a round it folds what it may see, submits what is due and reports its outstanding seqs.

    The round's submissions travel in the report (one message, not one each).
    """
    async with staged() as stage:
        request = stage.request("case-1", stage.start)
        await stage.publish(request)
        await stage.say(Round(round=0, time=stage.start, head=1, visible=stage.visible()))
        # The acknowledgement is settled (no request's content in it): it goes at once,
        # with when it is due, and the umpire holds it until then.
        due = stage.start + ACK_AFTER
        report = await stage.umpire.next(BaseModel)
        assert isinstance(report, RoundDone)
        assert stage.umpire.topic == stage.topics.report("beta")
        (submission,) = report.submissions
        assert (submission.party, submission.seq) == ("beta", 1)
        assert submission.message["type"] == "acknowledgement"
        assert submission.message["in_reply_to"] == request.data["message"]["message_id"]
        # With its promise: it answers a written request 2 hours after it at the soonest.
        assert report.lookahead is not None
        assert report.lookahead.received["written_request"] == ACK_AFTER
        promise = report.lookahead
        assert report == RoundDone(
            party="beta",
            round=0,
            next_due=None,
            ahead=((1, due),),
            lookahead=promise,
            submissions=(submission,),
        )

        # A later round finds it still outstanding, and says so again (sent already).
        await stage.say(Round(round=1, time=due, head=1, visible=stage.visible()))
        report = await stage.umpire.next(BaseModel)
        assert report == RoundDone(
            party="beta", round=1, next_due=None, ahead=((1, due),), lookahead=promise
        )

        # Committed: the outbox settles, and the acknowledgement's follow-up is planned
        # and sent ahead in its turn.
        ack = stage.log.message(submission.message, due)
        await stage.publish(ack)
        await stage.say(Round(round=2, time=due, head=2, visible=stage.visible()))
        report = await stage.umpire.next(BaseModel)
        assert isinstance(report, RoundDone)
        (acceptance,) = report.submissions
        assert (acceptance.seq, acceptance.message["type"]) == (2, "acceptance")
        assert report == RoundDone(
            party="beta",
            round=2,
            next_due=None,
            ahead=((2, due + timedelta(days=1)),),
            lookahead=promise,
            submissions=(acceptance,),
        )


async def test_a_round_that_does_not_ask_the_party_passes_it_by() -> None:
    """A round whose `ask` leaves the party out gets no report; the next that names it does."""
    async with staged() as stage:
        request = stage.request("case-1", stage.start)
        await stage.publish(request)
        visible = stage.visible()
        await stage.say(Round(round=0, time=stage.start, head=1, visible=visible, ask=("alpha",)))
        await stage.say(Round(round=1, time=stage.start, head=1, visible=visible, ask=("beta",)))
        report = await stage.umpire.next(RoundDone)
        assert report.round == 1
        assert report.ahead == ((1, stage.start + ACK_AFTER),)
        assert [s.seq for s in report.submissions] == [1]


async def test_a_party_missing_events_asks_to_catch_up_after_the_grace() -> None:
    """A marker promising more events than it holds makes it ask to catch up, after the grace."""
    settings = PartySettings(catch_up_grace_s=0.3, resend_after_s=1.0)
    loop = asyncio.get_running_loop()
    async with staged(settings) as stage:
        first = stage.request("case-1", stage.start)
        second = stage.request("case-2", stage.start + timedelta(minutes=10))
        await stage.publish(first)  # the second is lost on the way
        marked = loop.time()
        await stage.say(Round(round=0, time=second.time, head=2, visible=stage.visible()))
        asked = await stage.umpire.next(BaseModel)
        waited = loop.time() - marked
        assert asked == CatchUpRequest(party="beta", after=0)
        assert waited >= settings.catch_up_grace_s - 0.02, f"asked after {waited:.3f} s"

        catch_up = (
            b'{"kind":"catch_up","head":2,"events":[%s]}'
            % ",".join(to_json_line(e) for e in (first, second)).encode()
        )
        await stage.umpire.bus.publish(stage.topics.inbox("beta"), catch_up)
        report = await stage.umpire.next(RoundDone)
        assert report.round == 0
        assert report.ahead == ((1, stage.start + ACK_AFTER), (2, second.time + ACK_AFTER))


async def test_in_real_time_it_submits_on_its_own_clock_states_its_plan_and_resends() -> None:
    """On its own clock from the tick it submits when due, states its plan, resends uncommitted."""
    settings = PartySettings(resend_after_s=0.3)
    wall_to_due = 0.5
    speed = ACK_AFTER.total_seconds() / wall_to_due
    loop = asyncio.get_running_loop()
    async with staged(settings) as stage:
        request = stage.request("case-1", stage.start)
        await stage.publish(request)
        ticked = loop.time()
        await stage.say(Tick(time=stage.start, head=1, visible=stage.visible(), speed=speed))
        due = stage.start + ACK_AFTER
        stated = await stage.umpire.next(BaseModel)
        assert stated == PlanStated(party="beta", seen=1, next_due=due)

        submission = await stage.umpire.next(BaseModel)
        sent = loop.time()
        assert isinstance(submission, Submission)
        assert (submission.seq, submission.message["type"]) == (1, "acknowledgement")
        assert sent - ticked >= wall_to_due - 0.02, f"submitted {sent - ticked:.3f} s after"
        stated = await stage.umpire.next(BaseModel)
        assert stated == PlanStated(party="beta", seen=1, next_due=None, seqs=(1,))

        resent = await stage.umpire.next(Submission)
        assert resent == submission
        assert loop.time() - sent >= settings.resend_after_s - 0.02

        # Committed at last: the outbox settles and the follow-up is planned from the commit.
        committed_at = stage.start + ACK_AFTER + timedelta(minutes=1)
        ack = stage.log.message(submission.message, committed_at)
        await stage.publish(ack)
        await stage.say(Tick(time=committed_at, head=2, visible=stage.visible(), speed=speed))
        settled = await stage.umpire.next(PlanStated, lambda p: p.seen == 2)
        assert settled == PlanStated(
            party="beta", seen=2, next_due=committed_at + timedelta(days=1)
        )


async def test_the_party_ends_when_the_umpire_says_the_exercise_ended() -> None:
    """An `Ended` on the clock topic ends the party's run, which returns it."""
    async with staged() as stage:
        await stage.publish(stage.request("case-1", stage.start))
        await stage.say(Round(round=0, time=stage.start, head=1, visible=stage.visible()))
        await stage.umpire.next(RoundDone)
        ended = Ended(head=1, time=stage.start, reason="stopped by the controller")
        await stage.say(ended)
        assert await stage.task == ended


async def test_events_late_within_the_grace_never_cause_a_catch_up() -> None:
    """Events that come after their round marker but within the grace are waited for, every time."""
    settings = PartySettings(catch_up_grace_s=0.5, resend_after_s=1.0)
    async with staged(settings) as stage:
        for number in range(4):
            event = stage.request(f"case-{number}", stage.start + timedelta(minutes=number))
            # The marker overtakes the event it announces (they travel on different topics).
            await stage.say(
                Round(round=number, time=event.time, head=event.position, visible=stage.visible())
            )
            await asyncio.sleep(0.3)  # the event's delay on the way, well within the grace
            await stage.publish(event)
            report = await stage.umpire.next(BaseModel, lambda m: not isinstance(m, Submission))
            assert isinstance(report, RoundDone), f"round {number}: {report}"
            assert report.round == number


async def test_a_cancelled_party_stops_even_while_a_message_reaches_it() -> None:
    """Cancelling `run()` stops the party at every step of a message's delivery."""
    # Exercise.restart_party and the end of Exercise.run cancel a party's run and await it.
    for steps in range(6):
        async with staged() as stage:
            await stage.say(Round(round=0, time=stage.start, head=0, visible=stage.visible()))
            for _ in range(steps):
                await asyncio.sleep(0)  # one step of the event loop: the cancel lands later
            stage.task.cancel()
            done, _ = await asyncio.wait([stage.task], timeout=2)
            assert done, f"still running 2 s after a cancel {steps} loop steps into a delivery"
            assert stage.task.cancelled()
