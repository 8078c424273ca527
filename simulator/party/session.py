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

Where an exercise's cases are split among partitioned umpires
(`Topics.partitions`), each partition numbers its own positions and announces
its own marker: the session keeps a `Lane` per partition (what it was handed
and holds of that partition's log, its last marker, its catch-up), sends each
submission to the partition of its case, asks each partition's umpire for what
that one's marker says is missing, and states its plan to every partition with
what it has seen of that one. It hands its owner the events of all lanes in one
order, that of a merged log: time, then partition, then position.
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
    Submission,
    Tick,
    WireError,
    decode_from_umpire,
    encode,
)
from simulator.party.codec import CheckedCodec, Codec
from simulator.party.outbox import Outbox, Outgoing, ResendPolicy
from simulator.protocol.ids import partition_of
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


@dataclass
class Lane:
    """What the party holds of one umpire's log (the only one, or one partition's)."""

    partition: int | None
    # Committed events received and not yet handed to the owner, by position.
    waiting: dict[int, Event] = field(default_factory=dict)
    # What the owner has been handed: how many events, up to which position.
    folded: int = 0
    position: int = 0
    # This umpire's last clock marker: its head, and what each party may see up to it.
    marker: Round | Tick | None = None
    short_since: float | None = None

    def held(self, head: int) -> int:
        """Events up to `head` this party has: handed over already, or waiting to be."""
        return self.folded + sum(1 for p in self.waiting if self.position < p <= head)

    def complete(self, party: str) -> bool:
        """Whether the party holds every event this lane's last marker says it may see."""
        marker = self.marker
        return marker is None or self.held(marker.head) >= marker.visible.get(party, 0)


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
        # One lane for the one umpire, or one per partition.
        self.partitions = topics.partitions
        self.lanes: dict[int | None, Lane] = (
            {n: Lane(n) for n in range(topics.partitions)}
            if topics.partitions
            else {None: Lane(None)}
        )
        self.outbox = Outbox(self.settings.resend)
        # Submissions sent and taken back as their case was withdrawn (real time), said
        # with every plan stated from then on (`PlanStated.retracted`).
        self.retracted: set[int] = set()
        # The last clock marker of any lane: the time, speed and pause the party runs on.
        self.marker: Round | Tick | None = None
        self.marker_at = 0.0
        self.ended: Ended | None = None
        # When the umpire was last heard from (loop time): a seat left alone takes its
        # exercise for gone after a while (`simulator.run.seat`).
        self.heard_at: float | None = None
        self._stated: dict[int | None, PlanStated] = {}
        self._stated_at = 0.0

    @property
    def folded(self) -> int:
        """How many events the owner has been handed, from every lane."""
        return sum(lane.folded for lane in self.lanes.values())

    def _lane(self, partition: int | None) -> Lane | None:
        """The lane a message from the umpire of `partition` belongs to, if any."""
        return self.lanes.get(partition if self.partitions else None)

    def lane_of(self, case_id: str) -> int | None:
        """The partition that decides `case_id`'s submissions (None: the one umpire)."""
        return partition_of(case_id, self.partitions) if self.partitions else None

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
            lane = self._lane(message.partition)
            if lane is None:
                self.log.warning("umpire_message_ignored", reason="from no partition of this run")
                return None
            for raw in message.events:
                event = Event.model_validate(raw)
                who = audience(event)
                if (who is None or self.party in who) and event.position > lane.position:
                    lane.waiting.setdefault(event.position, event)
                    self._settle(event)
        elif isinstance(message, Round | Tick):
            lane = self._lane(message.partition if isinstance(message, Tick) else None)
            if lane is None:
                self.log.warning("umpire_message_ignored", reason="from no partition of this run")
                return None
            lane.marker = message
            if self._runs_on(message):
                self.marker = message
                self.marker_at = self._loop_time()
        elif isinstance(message, Ended):
            self.ended = message
        return message

    def _runs_on(self, marker: Round | Tick) -> bool:
        """Whether the party's clock is to run on from `marker` from now on.

        With one umpire, always: its markers come in the order it made them. With
        partitions, every umpire announces the one shared clock, and a marker made
        before another's may arrive after it; taken, it would set the party's clock
        back by its delay times the speed (at x300000, 1 ms is five simulated
        minutes: planned actions ran late, and lost ties at their deadlines). So a
        marker is taken only if it is not behind where the clock already is; and a
        pause, resume or new speed (a control change) only from partition 0's
        umpire, which carries the controller's commands out.
        """
        current = self.marker
        if not self.partitions or not isinstance(current, Tick) or not isinstance(marker, Tick):
            return True
        if (marker.paused, marker.speed) != (current.paused, current.speed):
            return marker.partition == 0
        now = self.now()
        return now is None or marker.time >= now

    def _settle(self, event: Event) -> None:
        """A committed event of ours, or a rejection of one, empties its outbox slot."""
        if event.type == REJECTION and event.recipient == self.party:
            seq = read_rejection(event).seq
            if seq is not None:
                self.outbox.rejected(seq, event.id, self._loop_time())
        elif is_message_event(event.type) and event.sender == self.party:
            self.outbox.committed(message_payload(event)["message_id"], self._loop_time())

    def complete(self) -> bool:
        """Whether the party holds every event the last markers say it may see (every lane)."""
        return all(lane.complete(self.party) for lane in self.lanes.values())

    def ready(self) -> list[Event]:
        """Hand over the waiting events up to each lane's marker head, in merged-log order.

        One umpire: position order. Partitions: time, then partition, then
        position, the order of a merged log (`simulator.eventlog.merged`), and
        numbered 1, 2, … in that order (see below); each partition's own events
        stay in their position order, as times in one log never go back.
        """
        handed: list[tuple[datetime, int, int, Event]] = []
        for lane in self.lanes.values():
            marker = lane.marker
            if marker is None:
                continue
            head = marker.head
            for p in sorted(p for p in lane.waiting if p <= head):
                event = lane.waiting.pop(p)
                lane.folded += 1
                lane.position = event.position
                handed.append((event.time, lane.partition or 0, event.position, event))
        if not self.partitions:
            return [item[3] for item in handed]
        handed.sort(key=lambda item: item[:3])
        # Each partition numbers its own log, so positions repeat across lanes: the owner
        # (a policy that folds in position order, a seat's pages) gets them numbered in
        # the order handed over, as a merged log numbers them.
        first = self.folded - len(handed) + 1
        return [item[3].model_copy(update={"position": first + n}) for n, item in enumerate(handed)]

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
        """Ask the umpire to catch us up if a last marker says we miss events; whether we do.

        Events travel on other topics than the marker, so a gap is given
        `catch_up_grace_s` to fill by itself; then the ask is repeated every
        `resend_after_s` until the catch-up comes. Each lane asks its own umpire.
        """
        short = False
        for lane in self.lanes.values():
            short = await self._catch_up_lane(lane) or short
        return short

    async def _catch_up_lane(self, lane: Lane) -> bool:
        if lane.complete(self.party):
            lane.short_since = None
            return False
        now = self._loop_time()
        if lane.short_since is None:
            lane.short_since = now
            return True
        if now - lane.short_since < self.settings.catch_up_grace_s:
            return True
        lane.short_since = now + self.settings.resend_after_s - self.settings.catch_up_grace_s
        self.log.info("catch_up_requested", after=lane.position, partition=lane.partition)
        request = self.codec.catch_up_request(self.party, lane.position)
        await self.bus.publish(self.topics.report(self.party, lane.partition), request)
        return True

    # -- the outbox --------------------------------------------------------------------------

    async def send(self, seq: int, message: dict[str, Any], *, due: datetime | None = None) -> None:
        """Submit `message` as this party's submission `seq`; kept until committed.

        `due`: when a simulated party's plan came due, in a realtime run
        (`Submission.due`)."""
        payload = self.codec.submission(self.party, seq, message, due)
        partition = self.lane_of(message["case_id"])
        self._keep(seq, message, payload, partition)
        await self.bus.publish(self.topics.submit(self.party, partition), payload)

    def carry(self, seq: int, message: dict[str, Any], room: int) -> tuple[Submission, int] | None:
        """Submission `seq` for the caller's round report, if it fits in `room` bytes; its size.

        Kept until committed, and sent again on its own if it seems lost
        (`resend`), as any submission is. None: too big to carry; `send` it.
        """
        submission = Submission(party=self.party, seq=seq, message=message)
        payload = encode(submission)
        if len(payload) > room:
            return None
        self._keep(seq, message, payload, self.lane_of(message["case_id"]))
        return submission, len(payload)

    def _keep(
        self, seq: int, message: dict[str, Any], payload: bytes, partition: int | None
    ) -> None:
        item = Outgoing(
            seq,
            message["message_id"],
            message["type"],
            message["case_id"],
            payload,
            lane=partition or 0,
        )
        self.outbox.add(item)
        self.outbox.sent(item, self._loop_time())
        self.log.debug("submission_sent", seq=seq, type=message["type"], case=message["case_id"])

    async def resend(self) -> None:
        """Send again what the outbox finds lost (`Outbox.due`)."""
        now = self._loop_time()
        for item in self.outbox.due(now):
            self.outbox.sent(item, now)
            self.log.info("submission_resent", seq=item.seq, attempts=item.attempts)
            partition = item.lane if self.partitions else None
            await self.bus.publish(self.topics.submit(self.party, partition), item.payload)

    # -- the plan (real time) ----------------------------------------------------------------

    async def state(self, next_due: datetime | None) -> None:
        """Tell the umpire what the party holds and plans, when that changed or went stale.

        Partitions: each partition's umpire is told what the party has seen of its
        log and which of its outstanding submissions are that partition's to decide
        (it waits for those: `simulator.umpire.realtime`); the plan is the party's,
        said to all.
        """
        outstanding = self.outbox.items.values()
        plans = {
            lane.partition: PlanStated(
                party=self.party,
                seen=lane.folded,
                next_due=next_due,
                seqs=tuple(sorted(o.seq for o in outstanding if o.lane == (lane.partition or 0))),
                retracted=tuple(sorted(self.retracted)),
            )
            for lane in self.lanes.values()
        }
        now = self._loop_time()
        if plans != self._stated or now - self._stated_at >= self.settings.plan_restate_s:
            self._stated, self._stated_at = plans, now
            for partition, plan in plans.items():
                await self.bus.publish(self.topics.report(self.party, partition), encode(plan))

    def wakeup(self, next_due: datetime | None) -> float:
        """Seconds until the session must look again of itself (real time)."""
        waits = [self._stated_at + self.settings.plan_restate_s - self._loop_time()]
        if self.outbox:
            waits.append(self.settings.resend_after_s / 2)
        if any(lane.short_since is not None for lane in self.lanes.values()):
            waits.append(self.settings.catch_up_grace_s)
        marker, now = self.marker, self.now()
        if next_due is not None and isinstance(marker, Tick) and not marker.paused and now:
            waits.append((next_due - now).total_seconds() / marker.speed)
        return max(min(waits), 0.0)


__all__ = ["Lane", "Outgoing", "PartySession", "PartySettings"]
