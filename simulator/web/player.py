"""A trainee's seat: one party's own connection to the broker, its events and its outbox.

The seat connects with the party's credentials, so the broker's ACL shows
it only what that party may see, exactly as a simulated agency in another
process would see it. It folds its own events into its cases, sends what
the trainee writes as submissions with the next sequence number, keeps each
in an outbox until it sees it committed or rejected (resending meanwhile:
the broker may lose it, and the umpire appends idempotently), and asks the
umpire to catch up when a round marker says it has missed events.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from simulator.context import monotonic
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
    Submission,
    Tick,
    WireError,
    decode_from_umpire,
    encode,
)
from simulator.party.policy import message_id
from simulator.protocol import Agreement, Case, Party, apply, parse_message
from simulator.records import REJECTION, audience, is_message_event
from simulator.web.board import Signal

log = structlog.get_logger("simulator.web.seat")

RESEND_AFTER_S = 2.0
CATCH_UP_GRACE_S = 0.5
# A seat says it is there this often (the controller's status lists it as connected).
PRESENT_EVERY_S = 5.0


@dataclass
class Pending:
    seq: int
    message_id: str
    kind: str
    case_id: str
    payload: bytes
    sent_at: float
    attempts: int = 1


class PlayerSeat:
    def __init__(
        self,
        party: Party,
        parties: dict[str, Party],
        agreement: Agreement,
        bus: Bus,
        topics: Topics,
        *,
        generation: int = 0,
    ) -> None:
        self.party = party
        self.parties = parties
        self.agreement = agreement
        self.bus = bus
        self.topics = topics
        self.generation = generation
        self.events: dict[int, Event] = {}
        self.cases: dict[str, Case] = {}
        self.last_message: dict[str, str] = {}
        self.round: Round | Tick | None = None
        self._round_at = 0.0
        self.ended: Ended | None = None
        self.outbox: dict[int, Pending] = {}
        self.next_seq = 1
        self.changed = Signal()
        self.ready = asyncio.Event()
        self._short_since: float | None = None
        self.log = log.bind(exercise=topics.exercise, party=party.id)

    # -- running ---------------------------------------------------------------------

    async def run(self) -> None:
        await self.bus.subscribe(*self.topics.party_filters(self.party.id))
        self.ready.set()
        ticker = asyncio.create_task(self._tick(), name=f"seat[{self.party.id}].tick")
        try:
            async for incoming in self.bus.messages():
                self._take(bytes(incoming.payload))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick(self) -> None:
        present_at = -PRESENT_EVERY_S
        while True:
            await asyncio.sleep(0.25)
            await self._resend()
            await self._maybe_catch_up()
            if monotonic() - present_at >= PRESENT_EVERY_S:
                present_at = monotonic()
                await self._present()

    async def _present(self) -> None:
        """Tell the umpire the seat is here; a seat plans nothing of itself."""
        plan = PlanStated(party=self.party.id, seen=len(self.events), seqs=tuple(self.outbox))
        await self.bus.publish(self.topics.report(self.party.id), encode(plan))

    def _take(self, payload: bytes) -> None:
        try:
            message = decode_from_umpire(payload)
        except WireError as exc:
            self.log.warning("umpire_message_ignored", reason=str(exc))
            return
        if isinstance(message, Events | CatchUp):
            fresh = False
            for raw in message.events:
                event = Event.model_validate(raw)
                who = audience(event)
                if (who is None or self.party.id in who) and event.position not in self.events:
                    self.events[event.position] = event
                    fresh = True
            if fresh:
                self._fold()
        elif isinstance(message, Round | Tick):
            self.round = message
            self._round_at = monotonic()
        elif isinstance(message, Ended):
            self.ended = message
        self.changed.fire()

    def _fold(self) -> None:
        """Every case of this seat, folded again from its events (few, for a person)."""
        cases: dict[str, Case] = {}
        last: dict[str, str] = {}
        for position in sorted(self.events):
            event = self.events[position]
            if is_message_event(event.type) and event.subject:
                message = parse_message(event.data["message"])
                case, _ = apply(cases.get(event.subject), message, event.time, self.agreement)
                if case is not None:
                    cases[event.subject] = case
                    last[event.subject] = message.message_id
            if event.type == REJECTION or is_message_event(event.type):
                self._settle(event)
        self.cases = cases
        self.last_message = last

    def _settle(self, event: Event) -> None:
        if event.type == REJECTION:
            seq = event.data.get("seq")
            if isinstance(seq, int):
                self.outbox.pop(seq, None)
            return
        committed_id = event.data["message"]["message_id"]
        for seq, item in list(self.outbox.items()):
            if item.message_id == committed_id:
                del self.outbox[seq]

    async def _resend(self) -> None:
        now = monotonic()
        for item in self.outbox.values():
            if now - item.sent_at >= RESEND_AFTER_S * min(item.attempts, 4):
                item.attempts += 1
                item.sent_at = now
                self.log.info("submission_resent", seq=item.seq, attempts=item.attempts)
                await self.bus.publish(self.topics.submit(self.party.id), item.payload)

    async def _maybe_catch_up(self) -> None:
        marker = self.round
        if marker is None:
            return
        held = sum(1 for p in self.events if p <= marker.head)
        if held >= marker.visible.get(self.party.id, 0):
            self._short_since = None
            return
        now = monotonic()
        if self._short_since is None:
            # Events travel on other topics than the marker: give them a moment.
            self._short_since = now
            return
        if now - self._short_since < CATCH_UP_GRACE_S:
            return
        self._short_since = now + RESEND_AFTER_S
        request = CatchUpRequest(party=self.party.id, after=0)
        await self.bus.publish(self.topics.report(self.party.id), encode(request))

    # -- sending ------------------------------------------------------------------------

    def new_message_id(self) -> tuple[int, str]:
        seq = self.next_seq
        self.next_seq += 1
        return seq, message_id(self.party.id, seq, self.generation)

    async def submit(self, seq: int, message: dict[str, Any]) -> None:
        payload = encode(Submission(party=self.party.id, seq=seq, message=message))
        self.outbox[seq] = Pending(
            seq, message["message_id"], message["type"], message["case_id"], payload, monotonic()
        )
        await self.bus.publish(self.topics.submit(self.party.id), payload)
        self.log.info("submission_sent", seq=seq, type=message["type"], case=message["case_id"])
        self.changed.fire()

    def now(self) -> datetime | None:
        """Simulated time now: the umpire's last clock, run on at its speed until the next."""
        marker = self.round
        if marker is None:
            return None
        if marker.paused or not marker.speed:
            return marker.time
        return marker.time + timedelta(seconds=(monotonic() - self._round_at) * marker.speed)
