"""A trainee's seat: one party's own connection to the broker, its events and its outbox.

The seat connects with the party's credentials, so the broker's ACL shows
it only what that party may see, exactly as a simulated agency in another
process would see it. Its wire side is the same party session as a
simulated agency's (`simulator.party.session`): the outbox and resends, the
audience, catch-up and the clock. On top of it the seat folds its events into
its cases for the trainee and sends what the trainee writes with the next
sequence number.
"""

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from simulator.eventlog import Event
from simulator.messaging.bus import Bus
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Ended, Round, Tick
from simulator.party.outbox import Outgoing
from simulator.party.policy import message_id
from simulator.party.session import PartySession, PartySettings
from simulator.protocol import Agreement, Case, Party, apply, parse_message
from simulator.records import is_message_event, message_payload
from simulator.web.board import Signal

# A person's pace: resends and catch-up asks are less eager than a simulated agency's.
SEAT_SETTINGS = PartySettings(catch_up_grace_s=0.5, resend_after_s=2.0, resend_max_s=8.0)
# How often the seat looks at its outbox and its clock without news.
PULSE_S = 0.25


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
        self.session = PartySession(party.id, bus, topics, SEAT_SETTINGS)
        self.generation = generation
        self.events: dict[int, Event] = {}
        self.cases: dict[str, Case] = {}
        self.last_message: dict[str, str] = {}
        self.next_seq = 1
        self.changed = Signal()
        self.ready = asyncio.Event()

    @property
    def round(self) -> Round | Tick | None:
        """The umpire's last clock marker."""
        return self.session.marker

    @property
    def ended(self) -> Ended | None:
        return self.session.ended

    @property
    def outbox(self) -> dict[int, Outgoing]:
        return self.session.outbox.items

    # -- running ---------------------------------------------------------------------

    async def run(self) -> None:
        await self.session.open()
        self.ready.set()
        pulse = asyncio.create_task(self._pulse(), name=f"seat[{self.party.id}].pulse")
        try:
            async for incoming in self.session.bus.messages():
                self.session.take(bytes(incoming.payload))
                self._fold_new()
                self.changed.fire()
        finally:
            pulse.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pulse

    async def _pulse(self) -> None:
        while True:
            await asyncio.sleep(PULSE_S)
            await self.session.resend()
            await self.session.catch_up_if_short()
            # A seat plans nothing of itself; stating so tells the umpire it is here.
            await self.session.state(None)

    def _fold_new(self) -> None:
        """Take what the last marker says the seat holds; fold every case again if any came."""
        if self.session.marker is None or not self.session.complete():
            return
        fresh = self.session.ready()
        if not fresh:
            return
        self.events.update((e.position, e) for e in fresh)
        cases: dict[str, Case] = {}
        last: dict[str, str] = {}
        # Every case folded again from its events (few, for a person).
        for position in sorted(self.events):
            event = self.events[position]
            if is_message_event(event.type) and event.subject:
                message = parse_message(message_payload(event))
                case, _ = apply(cases.get(event.subject), message, event.time, self.agreement)
                if case is not None:
                    cases[event.subject] = case
                    last[event.subject] = message.message_id
        self.cases = cases
        self.last_message = last

    # -- sending ------------------------------------------------------------------------

    def new_message_id(self) -> tuple[int, str]:
        seq = self.next_seq
        self.next_seq += 1
        return seq, message_id(self.party.id, seq, self.generation)

    async def submit(self, seq: int, message: dict[str, Any]) -> None:
        await self.session.send(seq, message)
        self.session.log.info(
            "submission_sent", seq=seq, type=message["type"], case=message["case_id"]
        )
        self.changed.fire()

    def now(self) -> datetime | None:
        """Simulated time now: the umpire's last clock, run on at its speed until the next."""
        return self.session.now()
