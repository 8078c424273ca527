"""A party of an exercise whose cases are split among two umpires: one lane per partition.

Each partition numbers its own log, so both may send a position 1; the party
keeps what it holds of each apart, folds both, submits each case's messages to
its partition, asks the right umpire to catch it up, and tells each umpire what
it has seen of that one's log. On the in-memory bus, with the test as both umpires.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from simulator.eventlog import Event
from simulator.messaging.memory import MemoryHub
from simulator.messaging.routing import publish_events
from simulator.messaging.topics import UMPIRE, Topics
from simulator.messaging.wire import CatchUpRequest, Ended, PlanStated, Submission, Tick, encode
from simulator.party import PartyRuntime
from simulator.party.policy import PolicyEngine
from simulator.protocol.ids import partition_of
from simulator.scenario import Scenario, parse_scenario
from tests.party.test_policy_engine import REQUEST, SCENARIO
from tests.umpire.committed import CommittedLog
from tests.umpire.wiring import Listener, connect

# A case of each partition (of two), by the stable hash that routes them.
CASE_OF = {0: "case-1", 1: "case-2"}
# Fast enough that beta's 2-hour acknowledgements come due at once.
SPEED = 3600.0 * 500


@dataclass
class Partitioned:
    scenario: Scenario
    topics: Topics
    # Each partition's log, as its own umpire would commit it.
    logs: dict[int, CommittedLog]
    umpire: Listener
    runtime: PartyRuntime

    def request(self, partition: int) -> Event:
        """alpha's written request to beta, in a case of `partition`, committed there."""
        case = CASE_OF[partition]
        log = self.logs[partition]
        data = log.drafted(
            "written_request",
            message_id=f"alpha.{case}",
            case_id=case,
            sender="alpha",
            recipient="beta",
            fields=REQUEST,
        )
        return log.message(data, self.scenario.start)

    async def publish(self, partition: int, *events: Event) -> None:
        await publish_events(self.umpire.bus, self.topics, events, partition=partition)

    async def tick(self, partition: int, head: int, beta_sees: int) -> None:
        tick = Tick(
            time=self.scenario.start,
            head=head,
            visible={"alpha": head, "beta": beta_sees},
            speed=SPEED,
            partition=partition,
        )
        await self.umpire.bus.publish(self.topics.clock, encode(tick))


@contextlib.asynccontextmanager
async def partitioned() -> AsyncIterator[Partitioned]:
    scenario = parse_scenario(SCENARIO, "tests/party/policy-drill.yaml")
    assert {p: partition_of(c, 2) for p, c in CASE_OF.items()} == {0: 0, 1: 1}
    topics = Topics(scenario.exercise, partitions=2)
    hub = MemoryHub()
    umpire = connect(hub, topics, UMPIRE)
    await umpire.subscribe(*topics.partition_filters(0), *topics.partition_filters(1))
    logs = {0: CommittedLog(scenario), 1: CommittedLog(scenario)}
    engine = PolicyEngine(
        scenario.party("beta"),
        scenario,
        random.Random(1),
        signatories=logs[0].signatories.public_only(keep=["beta"]),
    )
    runtime = PartyRuntime(engine=engine, bus=connect(hub, topics, "beta"), topics=topics)
    task = asyncio.create_task(runtime.run())
    try:
        async with asyncio.timeout(10):
            await runtime.ready.wait()
            yield Partitioned(scenario, topics, logs, Listener(umpire, topics), runtime)
    finally:
        if not task.done():
            over = Ended(head=1, time=scenario.start, reason="the test is over")
            await umpire.publish(topics.clock, encode(over))
        async with asyncio.timeout(5):
            await asyncio.wait([task])


async def test_both_partitions_position_1_are_folded_and_answered_on_their_own_partition() -> None:
    """Two events at position 1, one per partition: both folded, each case answered on its own."""
    async with partitioned() as stage:
        requests = {p: stage.request(p) for p in (0, 1)}
        assert requests[0].position == requests[1].position == 1
        for partition, request in requests.items():
            await stage.publish(partition, request)
            await stage.tick(partition, head=1, beta_sees=1)
        answered: dict[str, tuple[str, dict[str, object]]] = {}
        while len(answered) < 2:
            submission = await stage.umpire.next(Submission)
            answered[stage.umpire.topic] = (submission.message["case_id"], submission.message)
        assert {topic: case for topic, (case, _) in answered.items()} == {
            stage.topics.submit("beta", 0): CASE_OF[0],
            stage.topics.submit("beta", 1): CASE_OF[1],
        }
        assert all(m["type"] == "acknowledgement" for _, m in answered.values())
        # The policy saw both, in a merged log's order and numbering (time, partition).
        session = stage.runtime.session
        assert {p: lane.folded for p, lane in session.lanes.items()} == {0: 1, 1: 1}
        assert stage.runtime.engine.position == 2


async def test_a_short_lane_asks_its_own_umpire_from_its_own_position() -> None:
    """Partition 1's marker says beta misses an event: the ask goes to partition 1 only."""
    async with partitioned() as stage:
        for partition in (0, 1):
            await stage.publish(partition, stage.request(partition))
            await stage.tick(partition, head=1, beta_sees=1)
        # Partition 1 committed a second event beta may see, whose message was lost.
        await stage.tick(1, head=2, beta_sees=2)
        ask = await stage.umpire.next(CatchUpRequest)
        assert stage.umpire.topic == stage.topics.report("beta", 1)
        assert (ask.party, ask.after) == ("beta", 1)


async def test_the_plan_is_stated_to_each_umpire_with_what_was_seen_of_its_log() -> None:
    """Each partition's umpire hears what beta has folded of its own log (idleness is per log)."""
    async with partitioned() as stage:
        await stage.publish(1, stage.request(1))
        await stage.tick(0, head=0, beta_sees=0)
        await stage.tick(1, head=1, beta_sees=1)
        seen: dict[str, int] = {}
        deadline = stage.scenario.start + timedelta(days=365)
        while seen.get(stage.topics.report("beta", 1)) != 1 or len(seen) < 2:
            plan = await stage.umpire.next(PlanStated)
            assert plan.next_due is None or plan.next_due < deadline
            seen[stage.umpire.topic] = plan.seen
        assert seen == {stage.topics.report("beta", 0): 0, stage.topics.report("beta", 1): 1}


async def test_a_message_of_no_partition_of_the_run_is_ignored() -> None:
    """Events said to be of partition 7 of a two-partition run are not taken (nor folded)."""
    async with partitioned() as stage:
        session = stage.runtime.session
        await stage.publish(7, stage.request(1))
        await stage.tick(1, head=0, beta_sees=0)
        # Its plan statement comes after it took both messages (one queue, in order).
        await stage.umpire.next(PlanStated)
        assert all(not lane.waiting and not lane.folded for lane in session.lanes.values())


async def test_a_late_marker_of_another_partition_does_not_set_the_clock_back() -> None:
    """Every partition announces the one clock; a marker made earlier but come later is
    not run on, and a pause is taken from partition 0's umpire, which carries it out."""
    async with partitioned() as stage:
        session = stage.runtime.session
        start = stage.scenario.start

        def tick(partition: int, minutes: int, *, paused: bool = False) -> Tick:
            return Tick(
                time=start + timedelta(minutes=minutes),
                head=0,
                visible={"alpha": 0, "beta": 0},
                speed=1.0,
                paused=paused,
                partition=partition,
            )

        session.take(encode(tick(0, 10)))
        session.take(encode(tick(1, 5)))  # made before partition 0's, come after it
        now = session.now()
        assert now is not None
        assert now >= start + timedelta(minutes=10)
        assert session.lanes[1].marker == tick(1, 5)  # its head still counts for its lane
        session.take(encode(tick(1, 20, paused=True)))  # partition 1 is not the controller's
        assert session.marker == tick(0, 10)
        session.take(encode(tick(0, 20, paused=True)))
        assert session.marker == tick(0, 20, paused=True)
        assert session.now() == start + timedelta(minutes=20)
