"""Real time: the umpire's driver for exercises with people in them.

The clock is the wall clock times a speed factor, with pause, resume, speed
and jump. There are no rounds: the clock is announced on a steady tick, at
once on a control change, and after every commit (so parties know what they
should hold); parties act on their own timers and state their plan when it
changes. The run ends at its duration, when it is stopped, or when nothing is
left to happen, judged from every party's current plan: a statement counts
only while it covers every event the party may see.

What is due is taken in simulated time's order, each at its own time, as the
rounds driver takes it: the umpire's timers (injects, generated cases, passed
deadlines) at their instant before the parties' submissions of that instant,
and a simulated party's submission at the time its plan came due
(`Submission.due`), not when it arrived: a millisecond is minutes at x100,000,
and a confirmation due at its deadline arrived after it. Before it takes
something due at a time, the umpire waits for the simulated parties that may
still send something due before then (a plan not stated since the events they
may see, a submission not in yet, a plan due earlier), at most `hold_s` a
party; a person's submission is taken when it arrives.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from simulator.context import ScaledClock
from simulator.umpire.intake import Queued

if TYPE_CHECKING:
    from simulator.messaging.wire import PlanStated
    from simulator.umpire.core import Umpire, UmpireResult


class Realtime:
    """Drives an umpire on a `ScaledClock`."""

    announces = True
    orders_controls = True

    def __init__(self, umpire: Umpire) -> None:
        self.umpire = umpire
        # Nothing is stamped before this: what was taken already, or the clock when
        # nothing more could come due before it.
        self.floor = umpire.clock.now()
        # The latest time of anything taken: a run with nothing left to happen ended
        # then, as its simulated twin does, not when the umpire noticed.
        self.latest = self.floor
        # Simulated parties the umpire waits for, since when (loop time).
        self._waiting_since: dict[str, float] = {}
        # Parties waited for `hold_s` in vain, with the plan they had then and the time
        # it was waited for: not waited for again until they state another (a party that
        # is gone, or stuck).
        self._given_up: dict[str, tuple[PlanStated | None, datetime]] = {}

    async def run(self) -> UmpireResult:
        umpire = self.umpire
        clock = umpire.clock
        assert isinstance(clock, ScaledClock)
        self.floor = self.latest = clock.start_now()
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        # When (loop time) the clock reached the scenario's end.
        ended: float | None = None
        while True:
            if umpire.stop_requested:
                return await umpire.finish(umpire.stop_requested)
            now = clock.now()
            if now >= umpire.end:
                # What is due at the end itself is part of the run, as in simulated time:
                # the umpire's timers and the parties' plans due then, taken at the end.
                now = umpire.end
                # Paused time does not count against the parties waited for there.
                ended = loop.time() if ended is None or clock.paused else ended
            committed, held = await self._take_due(now)
            if committed or umpire.tick_now.is_set() or loop.time() >= next_tick:
                # After a commit, so parties know what to hold; on the tick; on a change.
                umpire.tick_now.clear()
                await umpire.announce()
                next_tick = loop.time() + umpire.settings.clock_tick_s
            until_tick = next_tick - loop.time()
            if ended is not None:
                if held is None and self._settled_at_end(loop.time() - ended):
                    # As in simulated time: nothing after the end was waiting, or something
                    # was. Nothing: the run ended with the last thing taken, as its twin did,
                    # though the clock passed the end before the umpire could tell.
                    if self._idle():
                        return await umpire.finish(
                            "nothing left to happen", at=self._latest_of_all()
                        )
                    return await umpire.finish("the scenario's duration was reached", at=umpire.end)
                await umpire.wait_changed(max(min(until_tick, 1.0), 0.0))
                continue
            if held is None and self._idle():
                return await umpire.finish("nothing left to happen", at=self._latest_of_all())
            # Held: what comes next waits for a party's word, which wakes us; else the
            # next timer or tick.
            wait = min(until_tick, held) if held is not None else self._sleep_for(until_tick)
            await umpire.wait_changed(max(wait, 0.0))

    async def _take_due(self, now: datetime) -> tuple[bool, float | None]:
        """Take what is due by `now`, in time order, each at its own time, and commit it.

        Whether anything was committed, and, if something due waits for a simulated
        party (`_held`), how many wall seconds to wait at most before looking again.
        Timers at an instant go before submissions of that instant; at one time,
        submissions go by party, then sequence number, as in a round. Each instant
        is committed before the next: its deadlines follow from it.
        """
        umpire = self.umpire
        intake = umpire.intake
        assert isinstance(intake, Queued), f"{type(intake).__name__} cannot say what waits"
        sequencer = umpire.sequencer
        committed = False
        held: float | None = None
        last_timer: datetime | None = None
        while True:
            committed = await self._commit() or committed
            timers = (umpire.agenda.next_time(), sequencer.next_deadline())
            moment = min((t for t in timers if t is not None), default=None)
            if moment is not None and (moment > now or moment == last_timer):
                moment = None
            arrivals = sorted(
                (self._stamp(party, due, now), party, seq) for party, seq, due in intake.queued()
            )
            first = arrivals[0][0] if arrivals else None
            # What the controller did, at the time it did it, after the timers of that
            # instant and before its submissions (a person's, like the controller's, are
            # taken when they arrive). Never stamped past what is due before it: a note or
            # a jump stamped at once had made a confirmation due then seem late.
            control = umpire.held_controls[0][0] if umpire.held_controls else None
            if control is not None and control > now:
                control = None
            if (
                control is not None
                and (moment is None or control < moment)
                and (first is None or control <= first)
            ):
                if (held := self._held(control, inclusive=False)) is not None:
                    break
                at = max(control, self.floor)
                umpire.stage_control(at)
            elif moment is not None and (first is None or moment <= first):
                if (held := self._held(moment, inclusive=False)) is not None:
                    break
                at = max(moment, self.floor)
                last_timer = moment
                umpire.stage_timers(at)
            elif first is not None:
                if (held := self._held(first, inclusive=True)) is not None:
                    break
                at = max(first, self.floor)
                for stamp, party, seq in arrivals:
                    if stamp != first:
                        break
                    if (decision := intake.decide(party, seq, at)) is not None:
                        umpire.count_decision(decision)
            else:
                break
            self.floor = at
            committed = await self._commit() or committed
        # What did not decode, or was refused, at the latest time taken.
        for decision in intake.stage_malformed(self.floor):
            umpire.count_decision(decision)
        if held is None and self._held(now, inclusive=True) is None:
            # Nothing may come due before now any more: nothing is stamped before it.
            self.floor = max(self.floor, now)
        committed = await self._commit() or committed
        return committed, held

    async def _commit(self) -> bool:
        """Commit what is staged; whether there was anything. Nothing is stamped before it."""
        pending = self.umpire.sequencer.pending.events
        if not pending:
            return False
        self.latest = max(self.latest, *(event.time for event in pending))
        self.floor = max(self.floor, self.latest)
        await self.umpire.commit()
        return True

    def _stamp(self, party: str, due: datetime | None, now: datetime) -> datetime:
        """When `party`'s submission is recorded: when its plan came due, for a simulated
        party that says so, within what is recorded already and the clock; else now."""
        if due is None or party not in self.umpire.reporting:
            return now
        return min(max(due, self.floor), now)

    def _held(self, at: datetime, *, inclusive: bool) -> float | None:
        """None if nothing a simulated party may still send is due before `at` (or at it,
        `inclusive`); else the wall seconds left to wait for it at most.

        A party is waited for while its plan is not current (not stated since the
        events it may see: folding them may bring something due at once), while a
        submission it has sent is not in, or while its plan is due by `at`; for
        `hold_s` at most (paused time does not count), then it is named in a warning
        and not waited for until it states another plan.
        """
        umpire = self.umpire
        loop_time = asyncio.get_running_loop().time()
        clock = umpire.clock
        assert isinstance(clock, ScaledClock)
        waiting = []
        for party in umpire.reporting:
            plan = umpire.plans.get(party)
            given_up = self._given_up.get(party)
            if given_up is not None:
                if _same_plan(*given_up, plan):
                    continue
                del self._given_up[party]
            if self._holds_back(party, plan, at, inclusive=inclusive):
                waiting.append(party)
        for party in set(self._waiting_since).difference(waiting):
            del self._waiting_since[party]
        left: float | None = None
        limit = umpire.settings.hold_s
        for party in waiting:
            since = self._waiting_since.setdefault(party, loop_time)
            if clock.paused:
                self._waiting_since[party] = since = loop_time
            if loop_time - since >= limit:
                plan = umpire.plans.get(party)
                self._given_up[party] = (plan, at)
                del self._waiting_since[party]
                umpire.log.warning(
                    "party_not_waited_for",
                    party=party,
                    waited_s=round(loop_time - since, 1),
                    at=at,
                    plan=None if plan is None else plan.model_dump(mode="json"),
                )
                continue
            remaining = since + limit - loop_time
            left = remaining if left is None else min(left, remaining)
        return left

    def _holds_back(
        self, party: str, plan: PlanStated | None, at: datetime, *, inclusive: bool
    ) -> bool:
        umpire = self.umpire
        if plan is None or plan.seen != umpire.visible.get(party, 0):
            return True
        if any(not umpire.intake.has(party, seq) for seq in plan.seqs):
            return True
        due = plan.next_due
        return due is not None and (due <= at if inclusive else due < at)

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

    def _latest_of_all(self) -> datetime:
        """The latest time of anything taken, in every partition where the cases are split:
        the run ended then, as its simulated twin does. Partition 0's own latest had
        stamped the end before events the other partitions had recorded later."""
        umpire = self.umpire
        if umpire.group is None:
            return self.latest
        return max(
            (u.driver.latest for u in umpire.group.umpires if isinstance(u.driver, Realtime)),
            default=self.latest,
        )

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


def _same_plan(given_up: PlanStated | None, at: datetime, plan: PlanStated | None) -> bool:
    """Whether `plan` is the one a party was given up on at `at`, stated again.

    A party states its plan after every commit it may see, so a statement of
    the same plan comes again and again with more events seen: one still due
    by `at` (past due when waited for in vain), with the same submissions
    outstanding, is the same stuck plan, and waiting for it again would hold
    every later item `hold_s`. Any other plan (a new due time, other
    submissions, or a plan that had not come due) is waited for afresh.
    """
    if plan is given_up:
        return True
    if plan is None or given_up is None:
        return False
    due = given_up.next_due
    return due is not None and due <= at and plan.next_due == due and plan.seqs == given_up.seqs
