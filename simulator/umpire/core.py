"""The umpire: the only writer of the log (DESIGN invariants 1-3 and 6).

It takes submissions from the parties' submit topics through its `Intake`
(decoding each once), decides with the `Sequencer` what each becomes, has the
`Committer` append them in batches (one transaction each), and only then has
its `Router` publish the committed events. It serves catch-up to a party that
missed events, and answers the controller. When it appends is the driver's
business, chosen by the clock: `Rounds` (simulated time, deterministic) or
`Realtime`. A load run composes the same umpire with its own intake, router
and driver (`simulator.load.umpire`); nothing here is overridden.

Every control command is answered (when it carries an id) on the answers
topic and, when carried out, recorded in the log as what the controller did.
"""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Protocol

import structlog

from simulator.context import ScaledClock, VirtualClock
from simulator.errors import InternalError
from simulator.eventlog import (
    Event,
    EventStore,
    NewEvent,
    to_json_line,
)
from simulator.messaging.bus import Bus
from simulator.messaging.routing import Chunker, PartyRouter, Router
from simulator.messaging.topics import Topics
from simulator.messaging.wire import (
    CatchUpRequest,
    Control,
    ControlAnswer,
    Ended,
    PlanStated,
    Round,
    RoundDone,
    Tick,
    WireError,
    decode_control,
    decode_from_party,
    encode,
)
from simulator.protocol import Message
from simulator.records import (
    CLOCK_ELAPSED,
    MESSAGE_PREFIX,
    audience,
    is_message_event,
    record_control,
    record_ended,
    record_note,
)
from simulator.umpire.committer import Committer
from simulator.umpire.intake import Holding, Intake, PartyIntake
from simulator.umpire.notices import Notices
from simulator.umpire.pipeline import Pipeline
from simulator.umpire.realtime import Realtime
from simulator.umpire.rounds import PartySilent, Rounds
from simulator.umpire.sequencer import Decision, Pending, Sequencer

if TYPE_CHECKING:
    from simulator.umpire.partitions import PartitionGroup

log = structlog.get_logger("simulator.umpire")

CATCH_UP_CHUNK = 500
# A party heard from within this many seconds counts as connected (`control status`);
# parties restate their plan at least every `PartySettings.plan_restate_s` (5 s).
CONNECTED_WITHIN_S = 15.0


class Agenda(Protocol):
    """The umpire's own timeline: injects and conditioned injects from the scenario."""

    def next_time(self) -> datetime | None: ...

    def due(self, at: datetime) -> list[tuple[Message, str]]:
        """Messages to inject at `at` (with the source to record), removed from the agenda."""
        ...

    def observe(self, events: Sequence[Event | NewEvent], sequencer: Sequencer) -> None:
        """Committed events, so conditioned injects can be scheduled."""
        ...

    def fire_now(self, inject_id: str, at: datetime) -> bool: ...

    def injects(self) -> list[str]:
        """The ids of the scenario's injects, for the controller's "send now"."""
        ...

    def rest_of_instant(self, at: datetime) -> list[tuple[Message, str]] | None:
        """After a resume: what the log's last instant's timers left unsent, or None if the
        log does not end among them (`ScenarioAgenda.rest_of_instant`)."""
        ...

    def opens_case(self, case_id: str) -> bool:
        """Whether the scenario opens this case itself (an inject's, a generator's)."""
        ...


class EmptyAgenda:
    def next_time(self) -> datetime | None:
        return None

    def due(self, at: datetime) -> list[tuple[Message, str]]:
        return []

    def observe(self, events: Sequence[Event | NewEvent], sequencer: Sequencer) -> None:
        return None

    def fire_now(self, inject_id: str, at: datetime) -> bool:
        return False

    def injects(self) -> list[str]:
        return []

    def rest_of_instant(self, at: datetime) -> list[tuple[Message, str]] | None:
        return None

    def opens_case(self, case_id: str) -> bool:
        return False


def _never_repeats(events: Sequence[NewEvent]) -> bool:
    """Whether no event of these can be one the log holds already (so counted before its append).

    Messages: the sequencer refuses an id it holds, and makes no event for a repeat.
    Elapsed deadlines: numbered by the umpire, on from the log's (`resume`). Not so
    a rejection, whose id is its payload's (the same bad payload sent twice is one
    rejection: the store keeps the first), nor the controller's records.
    """
    return all(is_message_event(e.type) or e.type == CLOCK_ELAPSED for e in events)


def _as_they_were(cases: Container[str]) -> Callable[[Sequence[Event]], Container[str]]:
    """The confidential cases of events published later, as they were at their commit."""
    return lambda _: cases


@dataclass
class RoundState:
    # The round being held (or the next one): rounds held so far.
    number: int = 0
    # Each reporting party's latest report: its plan stands until it reports again.
    reports: dict[str, RoundDone] = field(default_factory=dict)
    # The parties the round being held asks to report (`Round.ask`).
    ask: tuple[str, ...] = ()
    # How many events each party's latest report covers (what it had been shown).
    covered: dict[str, int] = field(default_factory=dict)
    # The last round marker announced, said again while the run is paused.
    last: Round | None = None
    # For each party with events it has not reported on: the soonest it may act on
    # them, by its lookahead (`Rounds`). A party with no promise is asked at once.
    soonest: dict[str, datetime] = field(default_factory=dict)

    def saw(self, party: str, event: Event | NewEvent) -> None:
        """`party` may see `event`, not yet reported on: how soon it may act on it."""
        report = self.reports.get(party)
        if report is None or report.lookahead is None:
            after: timedelta | None = timedelta(0)
        elif not is_message_event(event.type):
            after = None  # only messages start a party's plans
        else:
            kind = event.type.removeprefix(MESSAGE_PREFIX)
            if event.sender == party:
                after = report.lookahead.own.get(kind)
            elif event.recipient == party:
                after = report.lookahead.received.get(kind)
            else:
                after = None
        if after is not None:
            try:
                moment = event.time + after
            except OverflowError:
                # A promise past the calendar's end (no party of ours makes one; a client
                # playing a seat may): it never acts on the event. It had stopped the run.
                return
            current = self.soonest.get(party)
            if current is None or moment < current:
                self.soonest[party] = moment


@dataclass
class UmpireSettings:
    simulated: bool = True
    heartbeat_s: float = 1.0
    party_timeout_s: float = 60.0
    # The load pipeline's longest wait for new work.
    tick_s: float = 0.1
    # A realtime run announces its clock this often (and at once on a change).
    clock_tick_s: float = 1.0
    # A realtime run waits this long at most for a simulated party that may still send
    # something due before what it takes next (`simulator.umpire.realtime`).
    hold_s: float = 10.0
    max_batch: int = 1000
    # Where an exercise's cases are split among umpires (`simulator.eventlog.lease`):
    # the partition this one owns, or None (one umpire for everything). A partition's
    # umpire takes only its own submit and report topics, says its partition in what
    # it sends, and leaves the exercise-wide events (its end) to partition 0's.
    partition: int | None = None


class Driver(Protocol):
    # Submissions wait in the intake until the driver stages them, in its own order:
    # a round's, the load pipeline's batches, realtime's time order.
    # Whether the driver announces the clock to parties (rounds, ticks): only then
    # are the counts of what each party may see kept.
    announces: bool
    # Whether the driver places what the controller did among what is due, in time order
    # (`Umpire.held_controls`), rather than the umpire staging it at once.
    orders_controls: bool

    async def run(self) -> "UmpireResult": ...


DriverKind = Callable[["Umpire"], Driver]


@dataclass
class UmpireResult:
    head: int
    rounds: int
    end_time: datetime
    reason: str
    rejections: int = 0


class Umpire:
    def __init__(
        self,
        *,
        sequencer: Sequencer,
        store: EventStore,
        bus: Bus,
        topics: Topics,
        parties: Iterable[str],
        clock: VirtualClock | ScaledClock,
        end: datetime,
        agenda: Agenda | None = None,
        settings: UmpireSettings | None = None,
        reporting: Iterable[str] | None = None,
        on_commit: Callable[[Sequence[Event]], None] | None = None,
        on_clock: Callable[[Tick], None] | None = None,
        driver: DriverKind | None = None,
        intake: Intake | None = None,
        router: Router | None = None,
    ) -> None:
        self.sequencer = sequencer
        self.store = store
        self.bus = bus
        self._listening = False
        self.topics = topics
        self.parties = tuple(sorted(parties))
        # Parties that report rounds (simulated agencies); human seats do not.
        self.reporting = tuple(sorted(reporting if reporting is not None else self.parties))
        self.clock = clock
        self.end = end
        self.agenda: Agenda = agenda or EmptyAgenda()
        if agenda is not None:
            # A party may not open a case the scenario will: it would take it over.
            sequencer.reserved = agenda.opens_case
        self.settings = settings or UmpireSettings()
        self.on_commit = on_commit
        # Realtime: every clock announced (a live status line follows it).
        self.on_clock = on_clock
        self.log = log.bind(exercise=topics.exercise, party="umpire")
        self.head = 0
        self.visible: dict[str, int] = dict.fromkeys(self.parties, 0)
        self.round = RoundState()
        # Whether committed events wait for the next clock marker (or the end) to be
        # published (`Rounds`, with no person at a seat): a party acts on them only
        # when a round asks it, so one message then carries what many commits made.
        self.publish_later = False
        # What waits, each commit's events with the cases confidential as they were.
        self._later: list[tuple[list[Event], Container[str]]] = []
        # Whether decided events are appended once a round, before its marker, rather
        # than at every simulated instant (`Rounds`, with publish_later, one umpire):
        # nobody sees them before the marker, and the run appended 980 times for 981
        # events in 174 rounds (a quarter of its time awaiting appends). Until then
        # they count as committed for the driver (`_settle`), and wait here, each
        # commit's with the cases confidential as they were.
        self.write_later = False
        self._unwritten: list[tuple[list[NewEvent], Container[str]]] = []
        # Chosen by composition, not by overriding: who may submit and how submissions
        # are decoded (a load run takes batches and gateways), and who is sent what.
        partition = self.settings.partition
        self.intake: Intake = intake or PartyIntake(
            sequencer,
            self.parties,
            partition=None if partition is None else (partition, topics.partitions),
        )
        self.router: Router = router or PartyRouter(bus, topics, partition=partition)
        self.rejections = 0
        self.notices = Notices(self.log)
        self.catch_ups_served = 0
        # Catch-ups asked for and not served yet: party -> the earliest position it asked
        # to be caught up after. Served on a task of their own, one at a time, a party's
        # asks while one waits merged into one: served on the receiving task, a client
        # asking 500 times (with a party's credentials) held every other party's
        # submissions and the controller's commands back for 13 s.
        self._catch_ups: dict[str, int] = {}
        self._catch_up_asked = asyncio.Event()
        self.paused = False
        self.stop_requested: str | None = None
        self._changed = asyncio.Event()
        self._seq = 0
        self._notes = 0
        self._controls = 0
        # What the controller did, each with the simulated time it was done at, until a
        # driver that orders by time (`Driver.orders_controls`) gives it its place: made
        # then, at that place's time (never past what is due before it and not taken yet).
        self.held_controls: list[tuple[datetime, Callable[..., NewEvent]]] = []
        # Realtime: each party's latest plan, and when each principal was last heard from.
        self.plans: dict[str, PlanStated] = {}
        self.heard: dict[str, float] = {}
        # Why each party's last report was refused, until one is taken: a party that
        # repeats a report the wire refuses is heard, and never reports.
        self.refused: dict[str, str] = {}
        # The pipeline driver, while it runs: commits go through it.
        self.pipeline: Pipeline | None = None
        self.tick_now = asyncio.Event()
        # The umpires of the other partitions of this exercise, in this process.
        self.group: PartitionGroup | None = None
        self.committer = Committer(store, max_batch=self.settings.max_batch)
        # Rounds for simulated time, real time, or the load pipeline.
        self.driver: Driver = (driver or (Rounds if self.settings.simulated else Realtime))(self)

    def resume(self, prefix: Sequence[Event]) -> None:
        """Carry on from committed events already in the log (a forked or resumed run)."""
        self.sequencer.load(prefix)
        if prefix:
            self.committer.resume(prefix[-1])
        self._count_visible(prefix)
        # The umpire numbers its own events; numbering again from 1 would give a
        # different event an id already in the log (an append conflict: a crash), and a
        # same-seed fork other ids than its parent's.
        for event in prefix:
            number = _numbered(event.id)
            if number is None:
                continue
            kind, n = number
            if kind == "seq":
                self._seq = max(self._seq, n)
            elif kind == "note":
                self._notes = max(self._notes, n)
            else:
                self._controls = max(self._controls, n)

    def _count_visible(self, events: Sequence[Event]) -> None:
        """The head, and how many events each party may see: what markers tell parties."""
        if events:  # committed in position order: the last is the head
            self.head = max(self.head, events[-1].position)
        self._see(events)

    def _see(self, events: Sequence[Event | NewEvent]) -> None:
        """How many events each party may see, and how soon it may act on them (rounds)."""
        for event in events:
            who = audience(event)
            for party in self.visible if who is None else who:
                if party in self.visible:
                    self.visible[party] += 1
                    if self.settings.simulated:
                        self.round.saw(party, event)

    # -- the run ---------------------------------------------------------------

    async def listen(self) -> None:
        """Subscribe to every submission, report and control command, once.

        Done as soon as the umpire exists (`Exercise` calls it on opening), not when it
        starts running: a submission published in between (the parties are started
        first) would otherwise reach a broker with no subscriber and be lost; now the
        transport holds it until `run` reads it.
        """
        if self._listening:
            return
        partition = self.settings.partition
        if partition is None:
            filters: tuple[str, ...] = (
                self.topics.all_submissions,
                self.topics.all_reports,
                self.topics.control,
            )
        else:
            filters = self.topics.partition_filters(partition)
            if partition == 0:
                # The controller's commands are exercise-wide: partition 0's to carry out.
                filters = (*filters, self.topics.control)
        await self.bus.subscribe(*filters)
        self._listening = True

    async def run(self, start_events: Sequence[NewEvent] = ()) -> UmpireResult:
        await self.listen()
        receiver = asyncio.create_task(self._receive(), name="umpire.receive")
        server = asyncio.create_task(self._serve_catch_ups(), name="umpire.catch_up")
        driving: asyncio.Task[UmpireResult] | None = None
        try:
            for event in start_events:
                self.sequencer.stage(event)
            await self.commit()
            driving = asyncio.create_task(self.driver.run(), name="umpire.drive")
            await asyncio.wait({driving, receiver, server}, return_when=asyncio.FIRST_COMPLETED)
            for listening, doing in ((receiver, "receiving"), (server, "serving catch-ups")):
                failed = (
                    None if listening.cancelled() or not listening.done() else listening.exception()
                )
                if failed is not None and not driving.done():
                    # Nothing comes in any more (or no party that missed events is caught
                    # up): the run cannot go on, and must not seem to (its clock ticking
                    # on, its parties' submissions unanswered).
                    raise InternalError(
                        f"the umpire stopped {doing} ({type(failed).__name__}: {failed}); "
                        "the run was stopped there, and its log holds what was committed"
                    ) from failed
            return await driving
        finally:
            for task in (driving, receiver, server):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    def next_timer(self) -> datetime | None:
        """The next moment something is due: an inject, a deadline, a party's planned action."""
        if self.group is not None:
            return self.group.next_timer()
        return self.own_next_timer()

    def own_next_timer(self) -> datetime | None:
        """`next_timer` of this umpire's own cases (its partition's)."""
        plans = self.round.reports.values() if self.settings.simulated else self.plans.values()
        times = [
            t
            for t in (
                self.agenda.next_time(),
                self.sequencer.next_deadline(),
                *(p.next_due for p in plans),
            )
            if t is not None
        ]
        return min(times) if times else None

    async def finish(self, reason: str, *, at: datetime | None = None) -> UmpireResult:
        at = self.clock.now() if at is None else at
        self.notices.flush()
        if self.settings.partition not in (None, 0):
            # The exercise's end is exercise-wide: partition 0's umpire records it once.
            await self.commit()
            self.log.info("partition_stopped", reason=reason, head=self.head)
            return UmpireResult(self.head, self.round.number, at, reason, self.rejections)
        if self.group is not None:
            # Their last commits come before the end; at the end time, none after it.
            await self.group.stop_others(reason)
        while self.held_controls:
            # What the controller did and the driver had not placed yet: before the end,
            # and no later than it.
            self.stage_control(min(self.held_controls[0][0], at))
        self._seq += 1
        self.sequencer.stage(
            record_ended(
                reason,
                self.round.number,
                event_id=f"umpire-ended-{self._seq}",
                exercise=self.topics.exercise,
                at=at,
                wallclock=self.sequencer.wallclock(),
            )
        )
        await self.commit()
        await self.flush()
        await self.bus.publish(
            self.topics.clock, encode(Ended(head=self.head, time=at, reason=reason))
        )
        self.log.info("exercise_ended", reason=reason, head=self.head, rounds=self.round.number)
        return UmpireResult(self.head, self.round.number, at, reason, self.rejections)

    # -- rounds --------------------------------------------------------------

    async def announce(self) -> None:
        # The marker tells the head: what it announces is in the log.
        await self.write()
        clock = self.clock
        marker: Round | Tick
        if isinstance(clock, ScaledClock) and not self.settings.simulated:
            marker = Tick(
                time=clock.now(),
                head=self.head,
                visible=dict(self.visible),
                paused=self.paused,
                speed=clock.speed,
                partition=self.settings.partition,
            )
            if self.on_clock is not None:
                self.on_clock(marker)
        else:
            marker = Round(
                round=self.round.number,
                time=clock.now(),
                head=self.head,
                visible=dict(self.visible),
                paused=self.paused,
                speed=clock.speed if isinstance(clock, ScaledClock) else None,
                ask=self.round.ask,
            )
            self.round.last = marker
        await self.flush()
        await self.bus.publish(self.topics.clock, encode(marker))

    async def wait_changed(self, seconds: float) -> bool:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel
        # that lands as the awaited event fires, and the umpire would run on.
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            return False
        finally:
            self._changed.clear()
        return True

    def stage_arrivals(self, at: datetime) -> None:
        """Decide whatever arrived and waits, in the intake's order."""
        for decision in self.intake.stage(at):
            self.count_decision(decision)
        self.notices.flush_due()

    def count_decision(self, decision: Decision) -> None:
        """Count and log a decision that rejected its submission; others pass."""
        if decision.notice is not None:
            self.rejections += 1
            notice = decision.notice
            self.notices.warning(
                "submission_rejected", decision.party, seq=notice.seq, reason=notice.reason
            )

    def stage_timers(self, at: datetime) -> None:
        self._stage_timed(self.agenda.due(at), at)

    def stage_rest_of_instant(self, at: datetime) -> None:
        """A resumed log that ends among the timers of its last instant: stage their rest.

        The run had them all before any party acted at that instant (`stage_timers`);
        a fork cut among them had the parties' submissions of that instant go first.
        """
        rest = self.agenda.rest_of_instant(at)
        if rest is not None:
            self._stage_timed(rest, at)

    def _stage_timed(self, due: list[tuple[Message, str]], at: datetime) -> None:
        """The agenda's messages due at `at`, each as its sender's, then the deadlines passed."""
        for message, source in due:
            self.sequencer.record(message, at, party=message.sender, source=source)
        self.sequencer.elapse_due(at, self._elapsed_id)

    def _elapsed_id(self, case_id: str) -> str:
        self._seq += 1
        return f"umpire-elapsed-{case_id}-{self._seq}"

    # -- committing ------------------------------------------------------------

    async def commit(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.commit()
            return
        while self.sequencer.pending.events:
            batch: Pending = self.sequencer.take()
            # The sequencer's own before the append, as the load pipeline does: a
            # submission decided on arrival while this batch is being written (realtime)
            # must see its cases as the batch leaves them. Decided against the state
            # before, a notice that came after a deadline's elapse was judged as if the
            # deadline had not elapsed, and its results-overdue was said twice. A failed
            # append ends the run, so nothing is marked that the log does not hold.
            self.sequencer.committed(batch)
            if self.write_later and _never_repeats(batch.events):
                self._settle(batch.events)
                continue
            await self.write()
            committed = await self.append(batch)
            await self.after_commit(committed)

    def _settle(self, events: list[NewEvent]) -> None:
        """What `after_commit` does before the append, for events appended later (`write`)."""
        self._see(events)
        self.agenda.observe(events, self.sequencer)
        self._unwritten.append((events, self._confidential(events)))

    async def write(self) -> None:
        """Append the events settled but not yet written (`write_later`), in the order decided."""
        if not self._unwritten:
            return
        unwritten, self._unwritten = self._unwritten, []
        events = [event for batch, _ in unwritten for event in batch]
        committed = await self.append(Pending(events=events))
        if len(committed) != len(events):
            # `_never_repeats` promised none was in the log already; counted as seen,
            # a repeat would have told the parties of an event that is not there.
            raise InternalError(
                f"{len(events) - len(committed)} of {len(events)} events settled before "
                "their append were in the log already"
            )
        self.head = max(self.head, committed[-1].position)
        at = 0
        for batch, private in unwritten:
            self._later.append((committed[at : at + len(batch)], private))
            at += len(batch)
        if self.on_commit is not None:
            self.on_commit(committed)

    async def append(self, batch: Pending) -> list[Event]:
        return await self.committer.append(batch)

    async def after_commit(self, committed: list[Event]) -> None:
        """What follows a durable append: publish, let the agenda see it, tell the caller."""
        await self._publish(committed)
        self.agenda.observe(committed, self.sequencer)
        if self.on_commit is not None:
            self.on_commit(committed)

    async def _publish(self, events: Sequence[Event]) -> None:
        if self.driver.announces:
            self._count_visible(events)
        elif events:  # committed in position order: the last is the head
            self.head = max(self.head, events[-1].position)
        if self.publish_later:
            if events:
                self._later.append((list(events), self._confidential(events)))
            return
        await self.router.publish(events, self._confidential)

    async def flush(self) -> None:
        """Publish the committed events that wait for a marker, in as few messages as may be."""
        later, self._later = self._later, []
        while later:
            events, private = later.pop(0)
            # Commits whose cases were confidential alike go out together.
            while later and later[0][1] == private:
                events += later.pop(0)[0]
            await self.router.publish(events, _as_they_were(private))

    def _confidential(self, events: Sequence[Event | NewEvent]) -> set[str]:
        """The confidential cases among these events' (Art. 6.3), as the sequencer knows them."""
        cases = self.sequencer.cases
        return {
            e.subject
            for e in events
            if e.subject is not None
            and (case := cases.get(e.subject)) is not None
            and case.confidential
        }

    # -- receiving ---------------------------------------------------------------

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        async for incoming in self.bus.messages():
            topic = incoming.topic
            payload = bytes(incoming.payload)
            reporter = self.topics.party_of(topic, "report")
            if party := self.topics.party_of(topic, "submit"):
                if self.intake.speaks(party):
                    self.heard[party] = loop.time()
                else:
                    # A principal that is no party (the controller, say: Mosquitto's
                    # pattern ACL lets every user write its own submit topic) has no say;
                    # the intake records its submission's rejection, and why.
                    self.notices.warning("stranger_submission", party, bytes=len(payload))
                if self.settings.partition is not None and not self.topics.is_partitioned(topic):
                    # Partition 0's umpire hears the bare topics only to say so.
                    self.intake.refuse(party, payload, self._unrouted(party))
                else:
                    self.intake.take(party, payload)
            elif reporter is not None and not self.intake.speaks(reporter):
                self.notices.warning("stranger_ignored", reporter, bytes=len(payload))
            elif reporter is not None:
                self.heard[reporter] = loop.time()
                await self._take_report(reporter, payload)
            elif topic == self.topics.control:
                await self._take_control(payload)
            else:
                self.log.warning("message_ignored", topic=topic[:200], bytes=len(payload))
            self._changed.set()

    def _unrouted(self, party: str) -> str:
        count = self.topics.partitions
        return (
            f"this run's cases are split among {count} umpires: submit on "
            f"submit/{party}/N, N the partition of the message's case (0 to {count - 1}; "
            "simulator.protocol.ids.partition_of), not on the bare submit topic"
        )

    async def _take_report(self, party: str, payload: bytes) -> None:
        try:
            decoded = decode_from_party(payload)
        except WireError as exc:
            self.notices.warning("report_ignored", party, reason=str(exc))
            self.refused[party] = str(exc)
            return
        self.refused.pop(party, None)
        if getattr(decoded, "party", party) != party:
            self.notices.warning("report_spoofed", party, claimed=decoded.party)
            return
        if isinstance(decoded, RoundDone):
            for submission in decoded.submissions:
                # Each as if it had come alone on the party's submit topic (a report of
                # an earlier round too: what it carries was submitted all the same).
                self.intake.take(party, encode(submission))
            if decoded.round == self.round.number:
                self.round.reports[party] = decoded
        elif isinstance(decoded, PlanStated):
            # Reports on one topic arrive in order: the latest is the party's plan.
            self.plans[party] = decoded
            if decoded.retracted and party in self.reporting and isinstance(self.intake, Holding):
                # Taken back as its case was withdrawn, before the realtime driver took
                # it: it waits for a plan stated since the withdrawal (`Realtime._held`).
                # Only a simulated party's: a person's message counts when it arrives,
                # and one sent after such a word would be lost without a trace.
                for seq in decoded.retracted:
                    self.intake.retract(party, seq)
        elif isinstance(decoded, CatchUpRequest):
            asked = self._catch_ups.get(party)
            self._catch_ups[party] = decoded.after if asked is None else min(asked, decoded.after)
            self._catch_up_asked.set()

    async def _serve_catch_ups(self) -> None:
        """Serve the catch-ups asked for, one at a time, the parties in the order they asked."""
        while True:
            await self._catch_up_asked.wait()
            self._catch_up_asked.clear()
            while self._catch_ups:
                party = next(iter(self._catch_ups))
                await self._serve_catch_up(party, self._catch_ups.pop(party))

    async def _serve_catch_up(self, party: str, after: int) -> None:
        chunker = Chunker(count=CATCH_UP_CHUNK)
        async for event in self.store.read(after + 1, self.head or None):
            who = audience(event)
            if self.router.may_see(party, who) and (full := chunker.add(to_json_line(event))):
                await self._send_catch_up(party, full)
        # Sent even when empty: it tells the party the head, so it stops asking.
        await self._send_catch_up(party, chunker.rest())
        self.catch_ups_served += 1
        self.log.info("catch_up_served", party=party, after=after, head=self.head)

    async def _send_catch_up(self, party: str, lines: list[str]) -> None:
        partition = self.settings.partition
        head = (
            b'{"kind":"catch_up","head":%d,"events":[' % self.head
            if partition is None
            else b'{"kind":"catch_up","partition":%d,"head":%d,"events":[' % (partition, self.head)
        )
        payload = head + ",".join(lines).encode() + b"]}"
        await self.bus.publish(self.topics.inbox(party), payload)

    def stop(self, reason: str) -> None:
        """End the run as soon as the driver wakes (the caller's own end, not a controller's)."""
        self.stop_requested = reason
        self._changed.set()

    def wake(self) -> None:
        """Have the driver look again now (something came due for it from elsewhere)."""
        self._changed.set()

    async def _take_control(self, payload: bytes) -> None:
        try:
            command = decode_control(payload)
        except WireError as exc:
            self.log.warning("control_ignored", reason=str(exc))
            return
        try:
            ok, detail = self.apply_control(command)
        except Exception as exc:
            # A command the umpire fails on is the controller's to hear of, not the end of
            # receiving: every party's submissions come in on this same task.
            self.log.exception("control_failed", command=command.command)
            ok, detail = False, f"the umpire could not carry out {command.command!r}: {exc}"
        if command.id is not None:
            answer = ControlAnswer(
                id=command.id,
                command=command.command,
                ok=ok,
                detail=detail,
                status=self.status() if command.command == "status" else None,
            )
            await self.bus.publish(self.topics.answers, encode(answer))

    def apply_control(self, command: Control) -> tuple[bool, str]:
        """Carry out a controller's command; whether it was, and what the umpire says of it.

        Every command carried out (a status question aside) is recorded in the log
        as what the controller did, at the simulated time it was done.
        """
        clock = self.clock
        realtime = isinstance(clock, ScaledClock)
        self.log.info("control_received", command=command.command)
        # Read before the command acts: a jump is done at the time it was asked for,
        # not at the time it jumped to. Never past the end: a realtime clock runs on
        # while the run waits there for a party, and what the controller does then is
        # done at the end (an inject timed past it had never been sent).
        at = min(clock.now(), self.end)
        ok, detail = self._control(command, clock, at)
        if ok and command.command not in ("note", "status"):
            self._controls += 1
            arguments = {
                k: v
                for k, v in (("speed", command.speed), ("inject", command.inject))
                if v is not None
            }
            self._record(
                at,
                partial(
                    record_control,
                    command.command,
                    arguments,
                    detail,
                    event_id=f"control-{self._controls}",
                    exercise=self.topics.exercise,
                    wallclock=self.sequencer.wallclock(),
                ),
            )
        if not ok:
            self.log.warning("control_refused", command=command.command, reason=detail)
        if realtime and ok and command.command in ("pause", "resume", "speed", "jump"):
            # The clock changed: parties hear of it at once, not at the next tick.
            self.tick_now.set()
            if self.group is not None:
                self.group.clock_changed()
        self._changed.set()
        return ok, detail

    def _record(self, at: datetime, make: Callable[..., NewEvent]) -> None:
        """Stage what the controller did at `at` (`make(at=...)` builds its event)."""
        if self.driver.orders_controls:
            self.held_controls.append((at, make))
        else:
            self.sequencer.stage(make(at=at))

    def stage_control(self, at: datetime) -> None:
        """Stage the first of `held_controls` at `at`: its place in time, which the driver
        found (never before its own time)."""
        _, make = self.held_controls.pop(0)
        self.sequencer.stage(make(at=at))

    def _control(
        self, command: Control, clock: VirtualClock | ScaledClock, at: datetime
    ) -> tuple[bool, str]:
        name = command.command
        scaled = clock if isinstance(clock, ScaledClock) else None
        if name == "pause":
            if self.paused:
                return False, "the exercise is paused already"
            self.paused = True
            if scaled is not None:
                scaled.pause()
            return True, f"paused at {_when(at)}"
        if name == "resume":
            if not self.paused:
                return False, "the exercise is not paused"
            self.paused = False
            if scaled is not None:
                scaled.resume()
            return True, f"resumed at {_when(at)}"
        if name == "speed":
            if scaled is None:
                return False, "the simulated clock has no speed: it runs as fast as it can"
            if not command.speed:
                return False, "speed needs a value (simulated seconds per second)"
            scaled.set_speed(command.speed)
            return True, f"speed x{command.speed:g}"
        if name == "jump":
            if scaled is None:
                return False, "the simulated clock jumps by itself: nothing to do"
            upcoming = self.next_timer()
            if upcoming is None:
                return False, "nothing is scheduled to jump to"
            if upcoming <= at:
                return False, (
                    f"the next thing is due already ({_when(upcoming)}): nothing to jump over"
                )
            scaled.jump_to(upcoming)
            return True, f"jumped to {_when(clock.now())}"
        if name == "inject":
            known = self.agenda.injects()
            if not command.inject:
                return False, f"inject needs an id; the scenario's injects: {_listed(known)}"
            if command.inject not in known:
                return False, (
                    f"no inject {command.inject!r} in this exercise; "
                    f"the scenario's injects: {_listed(known)}"
                )
            if not self.agenda.fire_now(command.inject, at):
                return False, f"inject {command.inject!r} was sent already"
            return True, f"inject {command.inject!r} sent at {_when(at)}"
        if name == "note":
            if not command.text or not command.text.strip():
                return False, "a note needs text"
            # Through the sequencer like everything else: the log stays the single truth.
            # Counted apart from `_seq`, so a note shifts no other event's id.
            self._notes += 1
            self._record(
                at,
                partial(
                    record_note,
                    command.text.strip(),
                    event_id=f"control-note-{self._notes}",
                    exercise=self.topics.exercise,
                    wallclock=self.sequencer.wallclock(),
                ),
            )
            return True, f"note recorded at {_when(at)}"
        if name == "stop":
            if self.stop_requested:
                return False, "the exercise is ending already"
            self.stop_requested = "stopped by the controller"
            return True, f"stopping at {_when(at)}"
        return True, "status"

    def status(self) -> dict[str, object]:
        """Where the exercise stands, for `simulator control status`."""
        clock = self.clock
        states: dict[str, int] = defaultdict(int)
        umpires = self.group.umpires if self.group is not None else (self,)
        for umpire in umpires:
            for case in umpire.sequencer.cases.values():
                states[case.state.value] += 1
        now = asyncio.get_running_loop().time()
        return {
            "exercise": self.topics.exercise,
            "clock": "realtime" if isinstance(clock, ScaledClock) else "simulated",
            "time": min(clock.now(), self.end).isoformat(),
            "end": self.end.isoformat(),
            "speed": clock.speed if isinstance(clock, ScaledClock) else None,
            "paused": self.paused,
            # Partitions: the events of every partition's log, each counted apart below.
            "head": sum(u.head for u in umpires),
            **(
                {"partition_heads": {str(u.settings.partition): u.head for u in umpires}}
                if self.group is not None
                else {}
            ),
            "rejections": sum(u.rejections for u in umpires),
            "cases": dict(sorted(states.items())),
            "connected": sorted(
                p for p in self.parties if now - self.heard.get(p, -1e9) <= CONNECTED_WITHIN_S
            ),
            "parties": list(self.parties),
        }


def _numbered(event_id: str) -> tuple[str, int] | None:
    """Which of the umpire's counters numbered `event_id`, and the number it gave."""
    head, _, tail = event_id.rpartition("-")
    if not tail.isdigit():
        return None
    if head.startswith(("umpire-ended", "umpire-elapsed-")):
        return "seq", int(tail)
    if head == "control-note":
        return "note", int(tail)
    if head == "control":
        return "control", int(tail)
    return None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none)"


__all__ = [
    "Agenda",
    "EmptyAgenda",
    "PartySilent",
    "Umpire",
    "UmpireResult",
    "UmpireSettings",
]
