"""A simulated agency at run time: it follows its committed events and acts on its policy.

The party sees the events it may see (its messages, rejections of its own
submissions, deadlines in its cases, the exercise's own events) and folds
them in position order. Each round marker (or, in real time, clock tick)
says how many it should have; if it has fewer, it asks the umpire to catch
up. It keeps every submission in an outbox until it sees it committed (or
rejected), resending with backoff, because the broker may lose a message and
the umpire appends idempotently.

Simulated time: the party acts when a round marker comes and reports the
round. Real time: it runs its own clock from the umpire's last tick, acts
when its plans come due, and states its plan (`PlanStated`) when it changes
and every PLAN_RESTATE_S, so the umpire can tell when nothing is left to do.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from simulator.eventlog import Event
from simulator.messaging.bus import Bus
from simulator.messaging.topics import Topics
from simulator.messaging.wire import (
    CatchUp,
    CatchUpRequest,
    Ended,
    Events,
    PlanStated,
    Round,
    RoundDone,
    Submission,
    Tick,
    WireError,
    decode_from_umpire,
    encode,
)
from simulator.party.policy import Plan, PolicyEngine, message_id
from simulator.records import audience

log = structlog.get_logger("simulator.party")


@dataclass
class PartySettings:
    # How long to wait for events published before a round marker to arrive
    # (they travel on other topics, so may come after it) before asking to catch up.
    catch_up_grace_s: float = 0.25
    resend_after_s: float = 1.0
    resend_max_s: float = 8.0
    # Real time: the plan is restated this often even unchanged (a lost statement
    # heals, and the controller's status sees the party as connected).
    plan_restate_s: float = 5.0


@dataclass
class Outgoing:
    seq: int
    message_id: str
    payload: bytes
    sent_at: float
    attempts: int = 1


@dataclass
class PartyState:
    events: dict[int, Event] = field(default_factory=dict)
    processed: int = 0
    last_round: Round | None = None
    last_report: RoundDone | None = None
    catch_up_asked_at: float | None = None
    # Real time: the last clock tick and the loop time it came.
    tick: Tick | None = None
    tick_at: float = 0.0
    stated: PlanStated | None = None
    stated_at: float = 0.0


class PartyRuntime:
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
        self.bus = bus
        self.topics = topics
        self.settings = settings or PartySettings()
        self.state = PartyState()
        self.outbox: dict[int, Outgoing] = {}
        self.ended: Ended | None = None
        self.log = log.bind(exercise=topics.exercise, party=self.party)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
        # Set once subscribed, so the umpire can start without the party missing round 0.
        self.ready = asyncio.Event()

    async def run(self) -> Ended:
        """Take part until the umpire ends the exercise."""
        await self.bus.subscribe(*self.topics.party_filters(self.party))
        self.ready.set()
        reader = asyncio.create_task(self._read(), name=f"party[{self.party}].inbox")
        try:
            while self.ended is None:
                try:
                    payload = await asyncio.wait_for(self._queue.get(), self._next_wakeup())
                except TimeoutError:
                    payload = None
                if payload is not None:
                    self._take(payload)
                await self._progress()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self.log.info("party_finished", reason=self.ended.reason, head=self.ended.head)
        return self.ended

    async def _read(self) -> None:
        async for incoming in self.bus.messages():
            # Bounded: a party that falls behind pushes back on its reader.
            await self._queue.put(bytes(incoming.payload))

    def _next_wakeup(self) -> float | None:
        """Seconds until the party must look again without news: None when only news matters."""
        if self.state.tick is None:
            # Rounds: the umpire repeats its marker, but resends and catch-up need a pulse.
            return min(self.settings.catch_up_grace_s, self.settings.resend_after_s / 2)
        loop = asyncio.get_running_loop()
        waits = [self.state.stated_at + self.settings.plan_restate_s - loop.time()]
        if self.outbox:
            waits.append(self.settings.resend_after_s / 2)
        if self.state.catch_up_asked_at is not None:
            waits.append(self.settings.catch_up_grace_s)
        due = self.engine.next_due()
        tick = self.state.tick
        if due is not None and not tick.paused:
            waits.append((due - self._now()).total_seconds() / tick.speed)
        return max(min(waits), 0.0)

    def _now(self) -> datetime:
        """Simulated time now, by the party's own clock from the umpire's last tick."""
        tick = self.state.tick
        assert tick is not None
        if tick.paused:
            return tick.time
        elapsed = asyncio.get_running_loop().time() - self.state.tick_at
        return tick.time + timedelta(seconds=elapsed * tick.speed)

    def _take(self, payload: bytes) -> None:
        try:
            message = decode_from_umpire(payload)
        except WireError as exc:
            self.log.warning("umpire_message_ignored", reason=str(exc))
            return
        if isinstance(message, Events | CatchUp):
            for raw in message.events:
                event = Event.model_validate(raw)
                who = audience(event)
                if who is None or self.party in who:
                    self.state.events.setdefault(event.position, event)
            if isinstance(message, CatchUp):
                self.state.catch_up_asked_at = None
        elif isinstance(message, Round):
            self.state.last_round = message
        elif isinstance(message, Tick):
            self.state.tick = message
            self.state.tick_at = asyncio.get_running_loop().time()
        elif isinstance(message, Ended):
            self.ended = message

    # -- the round -------------------------------------------------------------------

    def _held(self, head: int) -> int:
        """Events up to `head` this party has: folded already, or waiting to be."""
        waiting = sum(1 for p in self.state.events if self.engine.position < p <= head)
        return self.state.processed + waiting

    async def _progress(self) -> None:
        await self._resend()
        if self.state.tick is not None:
            await self._act()
            return
        marker = self.state.last_round
        if marker is None:
            return
        report = self.state.last_report
        if report is not None and report.round == marker.round:
            # A repeated marker: the umpire did not get our report, or wants it again.
            if self._queue.empty():
                await self.bus.publish(self.topics.report(self.party), encode(report))
                self.state.last_round = None
            return
        expected = marker.visible.get(self.party, 0)
        if self._held(marker.head) < expected:
            await self._maybe_catch_up()
            return
        for position in sorted(p for p in self.state.events if p <= marker.head):
            event = self.state.events.pop(position)
            if position > self.engine.position:
                self.engine.observe(event)
                self.state.processed += 1
        self._settle_outbox()
        sent = []
        for plan in self.engine.due(marker.time):
            await self._submit(plan)
            sent.append(plan.seq)
        outstanding = tuple(sorted(self.outbox))
        report = RoundDone(
            party=self.party,
            round=marker.round,
            seqs=outstanding,
            next_due=self.engine.next_due(),
        )
        self.state.last_report = report
        self.state.last_round = None
        await self.bus.publish(self.topics.report(self.party), encode(report))

    async def _act(self) -> None:
        """Real time: fold what the last tick says we should hold, act on what is due, state it."""
        tick = self.state.tick
        assert tick is not None
        if self._held(tick.head) < tick.visible.get(self.party, 0):
            await self._maybe_catch_up()
            return
        self.state.catch_up_asked_at = None
        for position in sorted(p for p in self.state.events if p <= tick.head):
            event = self.state.events.pop(position)
            if position > self.engine.position:
                self.engine.observe(event)
                self.state.processed += 1
        self._settle_outbox()
        if not tick.paused:
            for plan in self.engine.due(self._now()):
                await self._submit(plan)
        await self._state_plan()

    async def _state_plan(self) -> None:
        plan = PlanStated(
            party=self.party,
            seen=self.state.processed,
            next_due=self.engine.next_due(),
            seqs=tuple(sorted(self.outbox)),
        )
        loop = asyncio.get_running_loop()
        stale = loop.time() - self.state.stated_at >= self.settings.plan_restate_s
        if plan != self.state.stated or stale:
            self.state.stated = plan
            self.state.stated_at = loop.time()
            await self.bus.publish(self.topics.report(self.party), encode(plan))

    async def _maybe_catch_up(self) -> None:
        loop = asyncio.get_running_loop()
        asked = self.state.catch_up_asked_at
        if asked is None:
            # First notice of a gap: give late events on other topics a moment.
            self.state.catch_up_asked_at = (
                loop.time() - self.settings.resend_after_s + (self.settings.catch_up_grace_s)
            )
            return
        if loop.time() - asked < self.settings.resend_after_s:
            return
        self.state.catch_up_asked_at = loop.time()
        request = CatchUpRequest(party=self.party, after=self.engine.position)
        self.log.info("catch_up_requested", after=self.engine.position)
        await self.bus.publish(self.topics.report(self.party), encode(request))

    # -- the outbox -------------------------------------------------------------------

    async def _submit(self, plan: Plan) -> None:
        message = self.engine.message(plan)
        payload = encode(Submission(party=self.party, seq=plan.seq, message=message))
        plan.submitted = True
        loop = asyncio.get_running_loop()
        self.outbox[plan.seq] = Outgoing(plan.seq, message["message_id"], payload, loop.time())
        await self.bus.publish(self.topics.submit(self.party), payload)
        self.log.debug("submission_sent", seq=plan.seq, type=plan.kind, case=plan.case_id)

    def _settle_outbox(self) -> None:
        for seq in list(self.outbox):
            plan = self.engine.plans.get(seq)
            if plan is not None and plan.done:
                del self.outbox[seq]

    async def _resend(self) -> None:
        self._settle_outbox()
        loop = asyncio.get_running_loop()
        for item in self.outbox.values():
            backoff = min(
                self.settings.resend_after_s * 2 ** (item.attempts - 1), self.settings.resend_max_s
            )
            if loop.time() - item.sent_at >= backoff:
                item.attempts += 1
                item.sent_at = loop.time()
                self.log.info("submission_resent", seq=item.seq, attempts=item.attempts)
                await self.bus.publish(self.topics.submit(self.party), item.payload)


__all__ = ["PartyRuntime", "PartySettings", "message_id"]
