"""A simulated agency at run time: it follows its committed events and acts on its policy.

The party sees the events it may see (its messages, rejections of its own
submissions, deadlines in its cases, the exercise's own events) and folds
them in position order. Each round marker (or, in real time, clock tick)
says how many it should have; if it has fewer, it asks the umpire to catch
up. It keeps every submission in an outbox until it sees it committed (or
rejected), resending with backoff, because the broker may lose a message and
the umpire appends idempotently.

Simulated time: the party acts when a round marker asks it (it has events it
has not reported on, or a plan due) and reports the round; a round that does
not ask it passes it by. It sends every plan whose message is settled at once,
saying when it is due (`RoundDone.ahead`): the umpire holds it until then,
unless the party takes it back as its case is withdrawn (`RoundDone.retracted`).
Real time: it runs its own clock from the umpire's last tick, acts when its
plans come due, and states its plan (`PlanStated`) when it changes and every
PLAN_RESTATE_S, so the umpire can tell when nothing is left to do.
"""

import asyncio
import contextlib
from datetime import datetime

import structlog

from simulator.messaging.bus import Bus
from simulator.messaging.topics import Topics
from simulator.messaging.wire import (
    MAX_PAYLOAD_BYTES,
    Ended,
    Round,
    RoundDone,
    Submission,
    Tick,
    encode,
)
from simulator.party.policy import Plan, PolicyEngine, message_id
from simulator.party.session import PartySession, PartySettings

# A round report carries the round's submissions (one message, not one each) up to
# this much together; the rest go on their own. Half the wire's limit leaves the
# report's own fields ample room.
CARRIED_BYTES = MAX_PAYLOAD_BYTES // 2

log = structlog.get_logger("simulator.party")


class PartyRuntime:
    """A simulated agency: its policy engine over one party session."""

    def __init__(
        self,
        *,
        engine: PolicyEngine,
        bus: Bus,
        topics: Topics,
        settings: PartySettings | None = None,
    ) -> None:
        self.engine = engine
        self.party = engine.party.id
        self.session = PartySession(self.party, bus, topics, settings)
        self.settings = self.session.settings
        self.log = log.bind(exercise=topics.exercise, party=self.party)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
        # Rounds: the marker not answered yet, and our report for the last one answered.
        self._round: Round | None = None
        self._report: RoundDone | None = None
        # Rounds: submissions sent ahead of their time (seq -> when due), until settled.
        self._ahead: dict[int, datetime] = {}
        # Set once subscribed, so the umpire can start without the party missing round 0.
        self.ready = asyncio.Event()

    @property
    def ended(self) -> Ended | None:
        return self.session.ended

    async def run(self) -> Ended:
        """Take part until the umpire ends the exercise."""
        await self.session.open()
        self.ready.set()
        reader = asyncio.create_task(self._read(), name=f"party[{self.party}].inbox")
        try:
            while (ended := self.session.ended) is None:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancel that lands as a message arrives (restart_party waits on it).
                payloads: list[bytes] = []
                try:
                    async with asyncio.timeout(self._next_wakeup()):
                        payloads.append(await self._queue.get())
                except TimeoutError:
                    pass
                # Everything already here is taken before acting: a plan that came due
                # while a withdrawal of its case waited in the queue is not sent.
                while not self._queue.empty():
                    payloads.append(self._queue.get_nowait())
                for payload in payloads:
                    self._take(payload)
                await self._progress()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self.log.info("party_finished", reason=ended.reason, head=ended.head)
        return ended

    def _take(self, payload: bytes) -> None:
        message = self.session.take(payload)
        if isinstance(message, Round):
            self._round = message
            report = self._report
            if report is not None and message.round > report.round:
                # The umpire closes a round only with every submission its reports
                # name: what we sent ahead it holds until its time. Not lost.
                for seq, _ in report.ahead:
                    self.session.outbox.hold(seq)

    async def _read(self) -> None:
        async for incoming in self.session.bus.messages():
            # Bounded: a party that falls behind pushes back on its reader.
            await self._queue.put(bytes(incoming.payload))

    def _next_wakeup(self) -> float | None:
        """Seconds until the party must look again without news."""
        if isinstance(self.session.marker, Tick):
            return self.session.wakeup(self.engine.next_due())
        # Rounds: the umpire repeats its marker, but resends and catch-up need a pulse.
        return min(self.settings.catch_up_grace_s, self.settings.resend_after_s / 2)

    def _fold(self) -> None:
        for event in self.session.ready():
            self.engine.observe(event)

    async def _progress(self) -> None:
        await self.session.resend()
        if isinstance(self.session.marker, Tick):
            await self._act(self.session.marker)
        elif self._round is not None:
            await self._answer(self._round)

    async def _answer(self, marker: Round) -> None:
        """Rounds: fold the round's events, send what is due at its time, report the round."""
        session = self.session
        if marker.ask is not None and self.party not in marker.ask:
            # Nothing new for us and nothing due: the umpire holds our last report.
            self._round = None
            return
        report = self._report
        if report is not None and report.round == marker.round:
            # A repeated marker: the umpire did not get our report, or wants it again.
            if self._queue.empty():
                await session.bus.publish(session.topics.report(self.party), encode(report))
                self._round = None
            return
        if await session.catch_up_if_short():
            return
        self._fold()
        # Plans dropped as their case was withdrawn: what of them went ahead is taken
        # back (the umpire releases it on this report), and not waited for. Every one
        # is named, sent or not: one sent before a restart is still held.
        retracted = self.engine.take_retracted()
        for seq in retracted:
            self._ahead.pop(seq, None)
            session.outbox.retract(seq)
        due = self.engine.due(marker.time)
        # What is settled goes now, with when it is due: the umpire decides each at its
        # time, and needs no round to ask for it then.
        settled = self.engine.settled(marker.time)
        self._ahead.update((plan.seq, plan.due) for plan in settled)
        carried: list[Submission] = []
        room = CARRIED_BYTES
        for plan in [*due, *settled]:
            plan.submitted = True
            message = self.engine.message(plan)
            if (taken := session.carry(plan.seq, message, room)) is not None:
                carried.append(taken[0])
                room -= taken[1]
            else:
                await session.send(plan.seq, message)
        outstanding = session.outbox.items
        self._ahead = {seq: due for seq, due in self._ahead.items() if seq in outstanding}
        report = RoundDone(
            party=self.party,
            round=marker.round,
            seqs=tuple(sorted(seq for seq in outstanding if seq not in self._ahead)),
            next_due=self.engine.next_due(),
            ahead=tuple(sorted(self._ahead.items())),
            retracted=tuple(sorted(retracted)),
            lookahead=self.engine.lookahead(),
            submissions=tuple(carried),
        )
        self._report = report
        self._round = None
        await session.bus.publish(session.topics.report(self.party), encode(report))

    async def _act(self, tick: Tick) -> None:
        """Real time: fold what the last tick says we hold, act on what is due, state the plan."""
        session = self.session
        if await session.catch_up_if_short():
            return
        self._fold()
        # A dropped plan already sent is taken back: the umpire waits for a plan stated
        # since the withdrawal before it takes what is due after it (`Realtime._held`),
        # so one sent in ignorance of it (the withdrawing party ran late) is not taken.
        for seq in self.engine.take_retracted():
            if seq in session.outbox.items:
                session.outbox.retract(seq)
                session.retracted.add(seq)
        now = session.now()
        if not tick.paused and now is not None:
            # Nothing due after the exercise's end is part of it (as in simulated time),
            # though the umpire may still take what was due by then when this runs.
            for plan in self.engine.due(min(now, self.engine.scenario.end)):
                await self._submit(plan)
        await session.state(self.engine.next_due())

    async def _submit(self, plan: Plan) -> None:
        plan.submitted = True
        # Said when it was due: the umpire records it then, not when it arrives.
        await self.session.send(plan.seq, self.engine.message(plan), due=plan.due)


__all__ = ["PartyRuntime", "PartySettings", "message_id"]
