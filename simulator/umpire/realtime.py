"""Real time: the umpire's driver for exercises with people in them.

Submissions are decided as they arrive (the umpire's receiver stages them)
and committed as soon as the driver wakes, in arrival order; the clock is the
wall clock times a speed factor, with pause, resume, speed and jump. There are
no rounds: the clock is announced on a steady tick, at once on a control
change, and after every commit (so parties know what they should hold);
parties act on their own timers and state their plan when it changes. A
message arriving never makes the umpire do more than handle that message.
The run ends at its duration, when it is stopped, or when nothing is left to
happen, judged from every party's current plan: a statement counts only
while it covers every event the party may see.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from simulator.context import ScaledClock

if TYPE_CHECKING:
    from simulator.umpire.core import Umpire, UmpireResult


class Realtime:
    """Drives an umpire on a `ScaledClock`."""

    decides_on_arrival = True
    announces = True

    def __init__(self, umpire: Umpire) -> None:
        self.umpire = umpire

    async def run(self) -> UmpireResult:
        umpire = self.umpire
        clock = umpire.clock
        assert isinstance(clock, ScaledClock)
        clock.start_now()
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        # When (loop time) the clock reached the scenario's end.
        ended: float | None = None
        # The latest time anything was staged at: nothing is stamped before it.
        floor = clock.now()
        while True:
            if umpire.stop_requested:
                return await umpire.finish(umpire.stop_requested)
            now = clock.now()
            if now >= umpire.end:
                # What is due at the end itself is part of the run, as in simulated time:
                # the umpire's timers and the parties' plans due then, taken at the end.
                now = umpire.end
                ended = loop.time() if ended is None else ended
            committed = await self._timers_until(now, floor)
            umpire.stage_arrivals(now)
            floor = now
            committed = committed or bool(umpire.sequencer.pending.events)
            await umpire.commit()
            if committed or umpire.tick_now.is_set() or loop.time() >= next_tick:
                # After a commit, so parties know what to hold; on the tick; on a change.
                umpire.tick_now.clear()
                await umpire.announce()
                next_tick = loop.time() + umpire.settings.clock_tick_s
            if ended is not None:
                if self._settled_at_end(loop.time() - ended):
                    # As in simulated time: nothing after the end was waiting, or something was.
                    reason = (
                        "nothing left to happen"
                        if self._idle()
                        else "the scenario's duration was reached"
                    )
                    return await umpire.finish(reason, at=umpire.end)
                await umpire.wait_changed(max(min(next_tick - loop.time(), 1.0), 0.0))
                continue
            if self._idle():
                return await umpire.finish("nothing left to happen")
            await umpire.wait_changed(self._sleep_for(next_tick - loop.time()))

    async def _timers_until(self, now: datetime, floor: datetime) -> bool:
        """Each timer instant due by `now` at its own time, one after another, as simulated
        time has them; whether anything was committed.

        The umpire wakes a little after a timer (more at a high speed: a millisecond
        is minutes at x100,000). Stamped at the wake-up, an inject's replies and a
        deadline's elapse came that much later than in simulated time, and one due
        at the end fell after it. Never before `floor`, what the log holds already
        (an inject whose condition held on an event of that time, with no delay).
        """
        umpire = self.umpire
        committed = False
        last: datetime | None = None
        while True:
            timers = (umpire.agenda.next_time(), umpire.sequencer.next_deadline())
            moment = min((t for t in timers if t is not None), default=None)
            if moment is None or moment > now or moment == last:
                return committed
            last = moment
            umpire.stage_timers(max(moment, floor))
            committed = committed or bool(umpire.sequencer.pending.events)
            # Committed before the next instant: its deadlines follow from this one's.
            await umpire.commit()

    def _settled_at_end(self, waited: float) -> bool:
        """At the end: whether what was due by then is in, or waiting for it is over.

        Every party's plan must be current (stated after it folded all it may see)
        and have nothing due by the end, in every partition: partition 0's umpire
        waits for the others and then ends them. A party that never settles (gone,
        or too slow) is waited for `party_timeout_s`, then named in a warning.
        """
        umpire = self.umpire
        if umpire.group is not None and umpire.settings.partition != 0:
            return False
        umpires = umpire.group.umpires if umpire.group is not None else (umpire,)
        unsettled = sorted({p for u in umpires for p in unsettled_by(u, umpire.end)})
        if unsettled and waited > umpire.settings.party_timeout_s:
            umpire.log.warning(
                "ended_without", parties=unsettled, waited_s=round(waited, 1), at=umpire.end
            )
            return True
        return not unsettled

    def _sleep_for(self, until_tick: float) -> float:
        """Wall seconds until the next thing the umpire must do of itself: a tick or a timer."""
        umpire = self.umpire
        clock = umpire.clock
        assert isinstance(clock, ScaledClock)
        wait = max(until_tick, 0.0)
        if clock.paused:
            return wait
        now = clock.now()
        for moment in (umpire.agenda.next_time(), umpire.sequencer.next_deadline(), umpire.end):
            if moment is not None:
                wait = min(wait, max((moment - now).total_seconds() / clock.speed, 0.0))
        return wait

    def _idle(self) -> bool:
        """Nothing is left to happen: in every partition, where the cases are split."""
        umpire = self.umpire
        if umpire.group is not None:
            # Partition 0's umpire judges for all; the others end when it ends them.
            return umpire.settings.partition == 0 and umpire.group.idle()
        return nothing_left(umpire)


def unsettled_by(umpire: Umpire, at: datetime | None) -> list[str]:
    """Who may yet send something due by `at` (None: at all): "umpire" for what it holds
    itself undecided, and each party whose plan is not current (not stated, or stated
    before events it has not folded yet), has something due by then, or sent something
    that is not in yet."""
    unsettled = []
    if umpire.intake.waiting() or umpire.sequencer.pending.events:
        unsettled.append("umpire")
    for party in umpire.reporting:
        plan = umpire.plans.get(party)
        if (
            plan is None
            or plan.seen != umpire.visible[party]
            or plan.seqs
            or (plan.next_due is not None and (at is None or plan.next_due <= at))
        ):
            unsettled.append(party)
    return unsettled


def nothing_left(umpire: Umpire) -> bool:
    """Nothing is left to happen for `umpire`, judged from every party's current plan."""
    if umpire.reporting != umpire.parties or umpire.paused:
        # People may act at any moment; paused time is not idleness either.
        return False
    if umpire.agenda.next_time() is not None or umpire.sequencer.next_deadline() is not None:
        return False
    return not unsettled_by(umpire, None)
