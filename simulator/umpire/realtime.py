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
        while True:
            if umpire.stop_requested:
                return await umpire.finish(umpire.stop_requested)
            now = clock.now()
            if now >= umpire.end:
                return await umpire.finish("the scenario's duration was reached", at=umpire.end)
            umpire.stage_timers(now)
            umpire.stage_arrivals(now)
            committed = bool(umpire.sequencer.pending.events)
            await umpire.commit()
            if committed or umpire.tick_now.is_set() or loop.time() >= next_tick:
                # After a commit, so parties know what to hold; on the tick; on a change.
                umpire.tick_now.clear()
                await umpire.announce()
                next_tick = loop.time() + umpire.settings.clock_tick_s
            if self._idle():
                return await umpire.finish("nothing left to happen")
            await umpire.wait_changed(self._sleep_for(next_tick - loop.time()))

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


def nothing_left(umpire: Umpire) -> bool:
    """Nothing is left to happen for `umpire`, judged from every party's current plan."""
    if umpire.reporting != umpire.parties or umpire.paused:
        # People may act at any moment; paused time is not idleness either.
        return False
    if umpire.intake.waiting() or umpire.sequencer.pending.events:
        return False
    if umpire.agenda.next_time() is not None or umpire.sequencer.next_deadline() is not None:
        return False
    for party in umpire.reporting:
        plan = umpire.plans.get(party)
        if plan is None or plan.seen != umpire.visible[party]:
            # Not stated, or stated before events it has not folded yet: not current.
            return False
        if plan.next_due is not None or plan.seqs:
            return False
    return True
