"""One party's side of the wire: what it may see, its outbox, resends, catch-up and clock.

Used by every party that is not the umpire: a simulated agency (`runtime`),
a trainee's seat in the web console (`simulator.web.player`). It takes the
umpire's messages, keeps the committed events the party may see (its
audience, `records.audience`) until its owner folds them in position order,
keeps every submission in its `Outbox` until it sees it committed or rejected
(resending on evidence of loss: the broker may lose it, and the umpire appends
idempotently; the same outbox serves a load generator's parties), and asks
the umpire to catch up when a clock marker says the party holds fewer events
than it may see. It runs the party's own clock from
the umpire's last marker, and states the party's plan (`PlanStated`) when it
changes and every `plan_restate_s`.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from simulator.eventlog import Event
from simulator.messaging.bus import Bus
from simulator.messaging.topics import Topics
from simulator.messaging.wire import (
    CatchUp,
    Ended,
    Events,
    PlanStated,
    Rejected,
    Round,
    Tick,
    WireError,
    decode_from_umpire,
    encode,
)
from simulator.party.codec import CheckedCodec, Codec
from simulator.party.outbox import Outbox, Outgoing, ResendPolicy
from simulator.records import REJECTION, audience, is_message_event, message_payload, read_rejection

log = structlog.get_logger("simulator.party")


@dataclass
class PartySettings:
    # How long to wait for events published before a clock marker to arrive
    # (they travel on other topics, so may come after it) before asking to catch up.
    catch_up_grace_s: float = 0.25
    # Also how often a catch-up ask is repeated until the catch-up comes.
    resend_after_s: float = 1.0
    resend_max_s: float = 8.0
    # Real time: the plan is restated this often even unchanged (a lost statement
    # heals, and the controller's status sees the party as connected).
    plan_restate_s: float = 5.0
    codec: Codec = field(default_factory=CheckedCodec)

    @property
    def resend(self) -> ResendPolicy:
        return ResendPolicy(self.resend_after_s, self.resend_max_s)


class PartySession:
    def __init__(
        self, party: str, bus: Bus, topics: Topics, settings: PartySettings | None = None
    ) -> None:
        self.party = party
        self.bus = bus
        self.topics = topics
        self.settings = settings or PartySettings()
        self.codec = self.settings.codec
        self.log = log.bind(exercise=topics.exercise, party=party)
        # Committed events received and not yet handed to the owner, by position.
        self.waiting: dict[int, Event] = {}
        # What the owner has been handed: how many events, up to which position.
        self.folded = 0
        self.position = 0
        self.outbox = Outbox(self.settings.resend)
        self.marker: Round | Tick | None = None
        self.marker_at = 0.0
        self.ended: Ended | None = None
        # When the umpire was last heard from (loop time): a seat left alone takes its
        # exercise for gone after a while (`simulator.run.seat`).
        self.heard_at: float | None = None
        self._short_since: float | None = None
        self._stated: PlanStated | None = None
        self._stated_at = 0.0

    async def open(self) -> None:
        """Subscribe to what the party may read (its events, its inbox, the clock)."""
        await self.bus.subscribe(*self.topics.party_filters(self.party))

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    # -- taking the umpire's messages ----------------------------------------------------

    def take(self, payload: bytes) -> Events | Round | Tick | Ended | Rejected | CatchUp | None:
        """Take one message from the umpire; what it was, or None if it was not one."""
        try:
            message = decode_from_umpire(payload)
        except WireError as exc:
            self.log.warning("umpire_message_ignored", reason=str(exc))
            return None
        self.heard_at = self._loop_time()
        if isinstance(message, Events | CatchUp):
            for raw in message.events:
                event = Event.model_validate(raw)
                who = audience(event)
                if (who is None or self.party in who) and event.position > self.position:
                    self.waiting.setdefault(event.position, event)
                    self._settle(event)
        elif isinstance(message, Round | Tick):
            self.marker = message
            self.marker_at = self._loop_time()
        elif isinstance(message, Ended):
            self.ended = message
        return message

    def _settle(self, event: Event) -> None:
        """A committed event of ours, or a rejection of one, empties its outbox slot."""
        if event.type == REJECTION and event.recipient == self.party:
            seq = read_rejection(event).seq
            if seq is not None:
                self.outbox.rejected(seq, self._loop_time())
        elif is_message_event(event.type) and event.sender == self.party:
            self.outbox.committed(message_payload(event)["message_id"], self._loop_time())

    def held(self, head: int) -> int:
        """Events up to `head` this party has: handed over already, or waiting to be."""
        return self.folded + sum(1 for p in self.waiting if self.position < p <= head)

    def complete(self) -> bool:
        """Whether the party holds every event the last marker says it may see."""
        marker = self.marker
        return marker is None or self.held(marker.head) >= marker.visible.get(self.party, 0)

    def ready(self, head: int) -> list[Event]:
        """Hand over the waiting events up to `head`, in position order."""
        events = [self.waiting.pop(p) for p in sorted(p for p in self.waiting if p <= head)]
        for event in events:
            self.folded += 1
            self.position = event.position
        return events

    def now(self) -> datetime | None:
        """Simulated time now: the umpire's last clock, run on at its speed until the next."""
        marker = self.marker
        if marker is None:
            return None
        if marker.paused or not marker.speed or isinstance(marker, Round):
            return marker.time
        elapsed = self._loop_time() - self.marker_at
        return marker.time + timedelta(seconds=elapsed * marker.speed)

    # -- asking for what is missing --------------------------------------------------------

    async def catch_up_if_short(self) -> bool:
        """Ask the umpire to catch us up if the last marker says we miss events; whether we do.

        Events travel on other topics than the marker, so a gap is given
        `catch_up_grace_s` to fill by itself; then the ask is repeated every
        `resend_after_s` until the catch-up comes.
        """
        if self.complete():
            self._short_since = None
            return False
        now = self._loop_time()
        if self._short_since is None:
            self._short_since = now
            return True
        if now - self._short_since < self.settings.catch_up_grace_s:
            return True
        self._short_since = now + self.settings.resend_after_s - self.settings.catch_up_grace_s
        self.log.info("catch_up_requested", after=self.position)
        request = self.codec.catch_up_request(self.party, self.position)
        await self.bus.publish(self.topics.report(self.party), request)
        return True

    # -- the outbox --------------------------------------------------------------------------

    async def send(self, seq: int, message: dict[str, Any]) -> None:
        """Submit `message` as this party's submission `seq`; kept until committed."""
        payload = self.codec.submission(self.party, seq, message)
        item = Outgoing(seq, message["message_id"], message["type"], message["case_id"], payload)
        self.outbox.add(item)
        self.outbox.sent(item, self._loop_time())
        await self.bus.publish(self.topics.submit(self.party), payload)
        self.log.debug("submission_sent", seq=seq, type=message["type"], case=message["case_id"])

    async def resend(self) -> None:
        """Send again what the outbox finds lost (`Outbox.due`)."""
        now = self._loop_time()
        for item in self.outbox.due(now):
            self.outbox.sent(item, now)
            self.log.info("submission_resent", seq=item.seq, attempts=item.attempts)
            await self.bus.publish(self.topics.submit(self.party), item.payload)

    # -- the plan (real time) ----------------------------------------------------------------

    async def state(self, next_due: datetime | None) -> None:
        """Tell the umpire what the party holds and plans, when that changed or went stale."""
        plan = PlanStated(
            party=self.party,
            seen=self.folded,
            next_due=next_due,
            seqs=tuple(sorted(self.outbox.items)),
        )
        now = self._loop_time()
        if plan != self._stated or now - self._stated_at >= self.settings.plan_restate_s:
            self._stated, self._stated_at = plan, now
            await self.bus.publish(self.topics.report(self.party), encode(plan))

    def wakeup(self, next_due: datetime | None) -> float:
        """Seconds until the session must look again of itself (real time)."""
        waits = [self._stated_at + self.settings.plan_restate_s - self._loop_time()]
        if self.outbox:
            waits.append(self.settings.resend_after_s / 2)
        if self._short_since is not None:
            waits.append(self.settings.catch_up_grace_s)
        marker, now = self.marker, self.now()
        if next_due is not None and isinstance(marker, Tick) and not marker.paused and now:
            waits.append((next_due - now).total_seconds() / marker.speed)
        return max(min(waits), 0.0)


__all__ = ["Outgoing", "PartySession", "PartySettings"]
