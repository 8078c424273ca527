"""One exercise wired on an in-memory hub: a SQLite log, the umpire and the simulated parties.

As `simulator.run.exercise` wires it, without a broker: every principal has its
own `MemoryBus` with the ACL a broker would give it (`grants_for`), so the code
under test talks to a bus as it does over MQTT. Never proof of a broker
feature (tests/transport and tests/runtime are); a quick stage for the logic.

`Listener` reads one bus and awaits the next message of a kind: tests wait on
messages, not on sleeps.
"""

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel

from simulator.brokers.access import grants_for
from simulator.context import ScaledClock, VirtualClock, seeded, wall_now
from simulator.eventlog import EventStore, NewEvent
from simulator.logfiles import open_log
from simulator.messaging.memory import Delivered, MemoryBus, MemoryHub
from simulator.messaging.topics import OBSERVER, UMPIRE, Topics
from simulator.messaging.wire import (
    decode_answer,
    decode_control,
    decode_from_party,
    decode_from_umpire,
)
from simulator.party import PartyRuntime, PartySettings
from simulator.party.policy import PolicyEngine
from simulator.records import record_exercise_started
from simulator.run.security import SecurityOptions, signatories_for
from simulator.scenario import Scenario
from simulator.signing import Signatories
from simulator.umpire import Umpire, UmpireResult, UmpireSettings
from simulator.umpire.agenda import ScenarioAgenda
from simulator.umpire.sequencer import Sequencer

ClockMode = Literal["simulated", "realtime"]
W = TypeVar("W", bound=BaseModel)


def connect(hub: MemoryHub, topics: Topics, principal: str) -> MemoryBus:
    """`principal`'s own connection, held to its topics as the broker's ACL would hold it."""
    return hub.connect(principal, access=grants_for(topics, principal))


def decoded(topics: Topics, topic: str, payload: bytes) -> BaseModel:
    """A wire message as whoever reads `topic` decodes it."""
    if topic == topics.answers:
        return decode_answer(payload)
    if topic == topics.control:
        return decode_control(payload)
    if topics.party_of(topic, "submit") or topics.party_of(topic, "report"):
        return decode_from_party(payload)
    return decode_from_umpire(payload)


class Listener:
    """One bus's messages, decoded, read in arrival order by whoever awaits the next one."""

    def __init__(self, bus: MemoryBus, topics: Topics) -> None:
        self.bus = bus
        self.topics = topics
        self._messages: AsyncIterator[Delivered] = aiter(bus.messages())
        # The topic of the message `next` returned last.
        self.topic = ""

    async def next(self, kind: type[W], where: Callable[[W], bool] | None = None) -> W:
        """The next message of `kind` (that `where` accepts); the others before it are passed."""
        async for incoming in self._messages:
            message = decoded(self.topics, incoming.topic, incoming.payload)
            if isinstance(message, kind) and (where is None or where(message)):
                self.topic = incoming.topic
                return message
        raise AssertionError(f"{self.bus.client}'s connection closed before a {kind.__name__}")


@dataclass
class Wired:
    scenario: Scenario
    seed: int
    hub: MemoryHub
    topics: Topics
    location: Path
    store: EventStore
    signatories: Signatories
    umpire: Umpire
    runtimes: dict[str, PartyRuntime]

    def connect(self, principal: str) -> MemoryBus:
        return connect(self.hub, self.topics, principal)

    async def listen(self, principal: str = OBSERVER, *filters: str) -> Listener:
        """A new connection for `principal`, subscribed (to the whole tree unless told)."""
        bus = self.connect(principal)
        await bus.subscribe(*(filters or (self.topics.tree,)))
        return Listener(bus, self.topics)

    def start_event(self) -> NewEvent:
        scenario = self.scenario
        return record_exercise_started(
            self.umpire.sequencer.agreement,
            event_id="exercise-started",
            exercise=scenario.exercise,
            at=scenario.start,
            wallclock=wall_now(),
            scenario=scenario.title,
            seed=self.seed,
            signatures=self.signatories.record(),
        )

    async def run(self) -> UmpireResult:
        """The umpire's run with every simulated party's; each party ends when told to."""
        async with asyncio.TaskGroup() as group:
            parties = [
                group.create_task(runtime.run(), name=f"party[{party}].run")
                for party, runtime in self.runtimes.items()
            ]
            for runtime in self.runtimes.values():
                await runtime.ready.wait()
            result = await self.umpire.run(start_events=[self.start_event()])
            async with asyncio.timeout(10):
                await asyncio.gather(*parties)
        return result


@contextlib.asynccontextmanager
async def wired(
    scenario: Scenario,
    workdir: Path,
    *,
    clock: ClockMode = "simulated",
    speed: float = 1.0,
    seed: int | None = None,
    scripted: tuple[str, ...] = (),
    settings: UmpireSettings | None = None,
    party_settings: PartySettings | None = None,
) -> AsyncIterator[Wired]:
    """An exercise of `scenario` on a fresh hub, its log in `workdir`.

    `scripted` parties get no runtime: the test plays them on its own connection.
    """
    seed = scenario.seed if seed is None else seed
    topics = Topics(scenario.exercise)
    hub = MemoryHub()
    workdir.mkdir(parents=True, exist_ok=True)
    location = workdir / f"{scenario.exercise}-{clock}.db"
    signatories = signatories_for(scenario, str(location), SecurityOptions())
    start = scenario.start
    timer: VirtualClock | ScaledClock = (
        VirtualClock(start) if clock == "simulated" else ScaledClock(start, speed=speed)
    )
    settings = dataclasses.replace(settings or UmpireSettings(), simulated=clock == "simulated")
    runtimes = {
        party.id: PartyRuntime(
            engine=PolicyEngine(
                party,
                scenario,
                seeded(seed, "party", party.id),
                signatories=signatories.public_only(keep=[party.id]),
            ),
            bus=connect(hub, topics, party.id),
            topics=topics,
            settings=party_settings,
        )
        for party in scenario.parties
        if not party.human and party.id not in scripted
    }
    async with open_log(location, create=True, now=wall_now) as store:
        umpire = Umpire(
            sequencer=Sequencer(
                scenario.protocol_agreement(signatories.verify),
                scenario.exercise,
                wallclock=wall_now,
            ),
            store=store,
            bus=connect(hub, topics, UMPIRE),
            topics=topics,
            parties=[p.id for p in scenario.parties],
            reporting=[p.id for p in scenario.parties if not p.human],
            clock=timer,
            end=scenario.start + scenario.duration,
            agenda=ScenarioAgenda(scenario, seeded(seed, "agenda"), signatories=signatories),
            settings=settings,
        )
        yield Wired(scenario, seed, hub, topics, location, store, signatories, umpire, runtimes)


@contextlib.asynccontextmanager
async def scripted_realtime(
    scenario: Scenario, workdir: Path, *, speed: float, settings: UmpireSettings
) -> AsyncIterator[tuple[Wired, Listener, asyncio.TaskGroup]]:
    """A realtime run with alpha's seat played by the test: the run, what alpha reads, and a
    task group to run it in (the run's task is the test's to start)."""
    async with (
        wired(
            scenario, workdir, clock="realtime", speed=speed, scripted=("alpha",), settings=settings
        ) as ex,
        asyncio.TaskGroup() as group,
    ):
        alpha = await ex.listen("alpha", *ex.topics.party_filters("alpha"))
        yield ex, alpha, group
