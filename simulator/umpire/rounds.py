"""Simulated time in rounds (DESIGN invariant 6): the umpire's driver for deterministic runs.

The umpire announces round k (its time, the log's head, and how many events
each party may see), waits until every party reports it has handled the
round and which submissions it sent, then appends those submissions in
canonical order (party, then sequence number) as the next round. When a round
brings nothing new, the clock jumps to the next timer: an inject, a case
deadline, or a party's next planned action. The same scenario and seed
therefore give the same log on any broker.

A round is held only when a party could act on what it asks about. Each
party promises in its report how long after an event it is yet to see it
will act at the soonest, by the event's kind (`RoundDone.lookahead`); until
the next thing due is as late as the soonest it may act on the events it has
not reported on (`RoundState.soonest`), the umpire commits on without asking
it. The party is asked later, sees the same
events, and plans the same actions for the same times: a plan's time is its
trigger's plus a delay, whenever the party folds the trigger. So the log is
the one a round after every commit gives, held in fewer rounds.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from simulator.context import VirtualClock
from simulator.errors import InternalError, SimulatorError
from simulator.messaging.wire import encode
from simulator.records import CONTROLLER_RECORDS, MESSAGE_PREFIX
from simulator.umpire.intake import Holding

if TYPE_CHECKING:
    from simulator.eventlog import NewEvent
    from simulator.umpire.core import Umpire, UmpireResult

# Rounds in a row at one simulated instant with nothing committed before we call it a bug.
STALL_LIMIT = 5
# Rounds at one simulated instant that each committed something, before the run is ended:
# only parties replying to each other at once, without end, get there (two policies that
# answer results with results `after: 0s` had run for ever, time never moving, the log
# growing by megabytes a minute). A chain of immediate replies in a case is a few rounds.
INSTANT_LIMIT = 1000


class PartySilent(SimulatorError):
    """Parties that did not answer a round in time: no report, or not what it names.

    `refused`: for a party whose reports the umpire refused, why (it was running).
    `unsent`: for a party whose report came, the submissions it names as sent in the
    round that never did (a party of ours sends a lost one again).
    """

    def __init__(
        self,
        parties: Sequence[str],
        round_: int,
        seconds: float,
        refused: Mapping[str, str] | None = None,
        unsent: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self.parties = tuple(parties)
        refused = refused or {}
        unsent = unsent or {}
        said = [
            f"{party} reported round {round_} with submissions "
            f"{', '.join(map(str, seqs))} that never came"
            for party, seqs in sorted(unsent.items())
        ]
        unreported = [p for p in parties if p not in unsent]
        if unreported:
            said.insert(0, f"no report for round {round_} from {', '.join(unreported)}")
        why = [f"{p}'s reports were refused: {refused[p]}" for p in unreported if p in refused]
        silent = [p for p in parties if p not in unsent and p not in refused]
        if silent:
            running = "is the party running and connected to the broker?"
            why.append(f"{', '.join(silent)}: {running}" if why else running)
        super().__init__(
            f"{'; '.join(said)} within {seconds:.0f} s" + "".join(f"; {w}" for w in why)
        )


class PartyStuck(SimulatorError):
    """Parties whose round reports keep saying a plan of theirs is due, and never send it."""

    def __init__(self, due: dict[str, datetime], at: datetime, rounds: int) -> None:
        self.parties = tuple(sorted(due))
        said = "; ".join(
            f"{party}'s round reports say a plan of its was due at {due[party]:%Y-%m-%d %H:%M}"
            for party in self.parties
        )
        super().__init__(
            f"{said}, yet it sent nothing for it in {rounds} rounds at {at:%Y-%m-%d %H:%M}, "
            "and simulated time cannot pass a plan that is due; is the party's client one "
            "that keeps to the protocol (`simulator party`)?"
        )


class Rounds:
    """Drives an umpire on a `VirtualClock`, one round at a time."""

    announces = True
    orders_controls = False  # a round's controls are staged as they come, between rounds

    def __init__(self, umpire: Umpire) -> None:
        self.umpire = umpire
        # Submissions sent ahead of their time ((party, seq) -> when due), held until then.
        self.held: dict[tuple[str, int], datetime] = {}

    async def run(self) -> UmpireResult:
        umpire = self.umpire
        clock = umpire.clock
        assert isinstance(clock, VirtualClock)
        # A person at a seat is sent each event as it is committed; parties that report
        # rounds are sent them with the next round's marker.
        umpire.publish_later = umpire.reporting == umpire.parties
        # And appended once a round, before its marker (`Umpire.write_later`); not where
        # the cases are split among umpires, whose group orders their commits in time.
        umpire.write_later = (
            umpire.publish_later and umpire.group is None and umpire.settings.partition is None
        )
        # A fork cut among its last instant's timers: their rest goes first, as it went.
        umpire.stage_rest_of_instant(clock.now())
        stalled = 0
        # Rounds that committed something at this instant, and the last few's events
        # (only read if the instant never ends: `_without_end`).
        busy = 0
        recent: deque[Sequence[NewEvent]] = deque(maxlen=20)
        while True:
            if umpire.stop_requested:
                return await umpire.finish(umpire.stop_requested)
            if umpire.paused:
                # What was decided before the pause is in the log while it lasts.
                await umpire.write()
            while umpire.paused and not umpire.stop_requested:
                if not await umpire.wait_changed(umpire.settings.heartbeat_s):
                    # Paused, not gone: a party that hears nothing for long takes the
                    # exercise for dead (`run.seat`). Parties answer a repeated marker
                    # with the same report.
                    await self._say_again()
            # What the controller did while the parties waited: its own record, no round.
            await umpire.commit()
            asked = self._asked(clock.now())
            if asked:
                await self._hold_round(asked)
                if umpire.stop_requested:
                    # Stopped while waiting: a silent party's report never came; end now.
                    continue
            self._stage_due(clock.now(), asked)
            # Anything else that arrived (a malformed payload, a stranger's) follows.
            umpire.stage_arrivals(clock.now())
            if umpire.sequencer.pending.events:
                staged = umpire.sequencer.pending.events
                moved = any(e.type not in CONTROLLER_RECORDS for e in staged)
                await umpire.commit()
                if moved:
                    busy += 1
                    recent.append(staged)
                    if busy > INSTANT_LIMIT:
                        return await umpire.finish(_without_end(clock.now(), busy, recent))
                    # Those who see what was committed say what they plan now, at this instant.
                    continue
            upcoming = self._upcoming()
            if upcoming is None:
                return await umpire.finish("nothing left to happen")
            moment = max(upcoming, clock.now())
            if moment > umpire.end:
                clock.advance_to(umpire.end)
                return await umpire.finish("the scenario's duration was reached")
            if moment == clock.now():
                # Nothing came of the last round at this instant either; a timer that
                # stays due without ever producing anything would spin here forever.
                stalled += 1
                if stalled > STALL_LIMIT:
                    raise self._stuck(moment, stalled)
            else:
                stalled = 0
                busy = 0
                recent.clear()
            clock.advance_to(moment)
            umpire.stage_timers(moment)
            if umpire.sequencer.pending.events:
                await umpire.commit()

    def _stuck(self, moment: datetime, rounds: int) -> SimulatorError:
        """Why simulated time cannot leave `moment`: a party's plan said due and never sent
        (it was asked in every one of those rounds: a client playing a seat that is not
        ours, which send a plan when it is due), or else a bug."""
        due = {
            party: report.next_due
            for party, report in self.umpire.round.reports.items()
            if report.next_due is not None and report.next_due <= moment
        }
        if due:
            return PartyStuck(due, moment, rounds)
        return InternalError(f"simulated time is stuck at {moment}: nothing happens")

    def _upcoming(self) -> datetime | None:
        """The next moment something is due: a timer, a party's plan, a held submission."""
        return min(
            (t for t in (self.umpire.next_timer(), *self.held.values()) if t is not None),
            default=None,
        )

    def _asked(self, at: datetime) -> tuple[str, ...]:
        """Who must report at `at`: whoever has a plan due, or events it may act on by then.

        A party's latest report stands until then: its plan changes only when it
        folds new events or acts on a plan that came due, so asking anyone else
        would only hear the same report again. A party with events it has not
        reported on must be asked once the next thing due is as late as the
        soonest it may act on them (`RoundState.soonest`, by its lookahead):
        before that, nothing it would plan is due yet. When a round is held,
        every party with such events is asked in it, so that their waits start
        afresh together and the next round comes as late as it can. With a human
        at a seat, everyone is asked after every commit: a person's submission
        may come at any moment and be anything.
        """
        umpire = self.umpire
        rounds = umpire.round
        upcoming = self._upcoming()
        may_wait = (
            umpire.reporting == umpire.parties and upcoming is not None and upcoming <= umpire.end
        )
        must = False
        news = []
        for party in umpire.reporting:
            report = rounds.reports.get(party)
            if report is None or (report.next_due is not None and report.next_due <= at):
                must = True
                news.append(party)
            elif rounds.covered.get(party) != umpire.visible.get(party, 0):
                news.append(party)
                soonest = rounds.soonest.get(party)
                if not may_wait or (
                    soonest is not None and upcoming is not None and upcoming >= soonest
                ):
                    must = True
        return tuple(news) if must else ()

    async def _hold_round(self, asked: tuple[str, ...]) -> None:
        """Announce a round to the parties `asked` and wait for their reports."""
        umpire = self.umpire
        rounds = umpire.round
        rounds.ask = asked
        for party in asked:
            # What they are about to be shown, they will have reported on.
            rounds.soonest.pop(party, None)
        await umpire.announce()
        shown = dict(umpire.visible)
        await self._await_reports()
        if umpire.stop_requested:
            return
        intake = umpire.intake
        for party in asked:
            rounds.covered[party] = shown.get(party, 0)
            report = rounds.reports[party]
            for seq in report.retracted:
                # Its case was withdrawn: the plan is dropped, and what went ahead of it
                # is not decided (as in real time, where it would never have been sent).
                self.held.pop((party, seq), None)
                if isinstance(intake, Holding):
                    intake.retract(party, seq)
            for seq, due in report.ahead:
                if (party, seq) in self.held or not intake.has(party, seq):
                    continue
                if not isinstance(intake, Holding):
                    raise InternalError(f"{type(intake).__name__} cannot hold submissions")
                intake.hold(party, seq)
                self.held[(party, seq)] = due
        rounds.number += 1

    async def _say_again(self) -> None:
        """Repeat the last round marker (now saying whether the run is paused)."""
        umpire = self.umpire
        last = umpire.round.last
        if last is not None:
            marker = last.model_copy(update={"paused": umpire.paused})
            await umpire.bus.publish(umpire.topics.clock, encode(marker))

    def _missing(self) -> list[str]:
        umpire = self.umpire
        missing = []
        for party in umpire.round.ask:
            report = umpire.round.reports.get(party)
            if report is None or report.round != umpire.round.number:
                missing.append(party)
                continue
            if not all(umpire.intake.has(party, seq) for seq in report.named()):
                missing.append(party)
        return missing

    def _unsent(self, parties: Iterable[str]) -> dict[str, list[int]]:
        """For each of `parties` that did report this round: the submissions it names that
        never came."""
        umpire = self.umpire
        unsent = {}
        for party in parties:
            report = umpire.round.reports.get(party)
            if report is None or report.round != umpire.round.number:
                continue
            unsent[party] = sorted(
                {seq for seq in report.named() if not umpire.intake.has(party, seq)}
            )
        return unsent

    async def _await_reports(self) -> None:
        umpire = self.umpire
        loop = asyncio.get_running_loop()
        give_up = loop.time() + umpire.settings.party_timeout_s
        while missing := self._missing():
            if umpire.stop_requested:
                return
            if umpire.paused:
                # Paused time does not count, as in realtime (`Realtime._held`): a controller
                # pauses to start a party's process again, which has the whole wait once the
                # run resumes. (The run failed while paused, the party not yet back.)
                give_up = max(give_up, loop.time() + umpire.settings.party_timeout_s)
            elif loop.time() > give_up:
                raise PartySilent(
                    missing,
                    umpire.round.number,
                    umpire.settings.party_timeout_s,
                    umpire.refused,
                    self._unsent(missing),
                )
            if not await umpire.wait_changed(umpire.settings.heartbeat_s):
                # A party may have missed the marker (or restarted): say it again.
                await umpire.announce()

    def _stage_due(self, at: datetime, asked: tuple[str, ...]) -> None:
        """Decide what is due at `at`: what the round's reports name, and what is held till now.

        Canonical order: by party, then by the party's sequence number, whether a
        submission came in this round or ahead of its time, so the log is the same
        either way.
        """
        umpire = self.umpire
        due: dict[str, set[int]] = {party: set(umpire.round.reports[party].seqs) for party in asked}
        for (party, seq), when in list(self.held.items()):
            if when <= at:
                due.setdefault(party, set()).add(seq)
                del self.held[(party, seq)]
        for party in sorted(due):
            for seq in sorted(due[party]):
                decision = umpire.intake.decide(party, seq, at)
                if decision is not None:
                    umpire.count_decision(decision)


def _without_end(at: datetime, rounds: int, recent: Iterable[Sequence[NewEvent]]) -> str:
    """Why a run whose parties answered each other at one instant without end was ended:
    the messages of its last rounds, the most frequent first."""
    said = (
        ", ".join(
            sorted(
                {f"{e.sender} {e.type.removeprefix(MESSAGE_PREFIX)}" for e in events if e.sender}
            )
        )
        for events in recent
    )
    last = Counter(said).most_common(3)
    return (
        f"time stood still at {at:%Y-%m-%d %H:%M}: {rounds} rounds at that instant "
        f"each brought new messages (parties answering each other at once, without end: "
        f"{'; '.join(said for said, _ in last)}); check the policies' `after: 0s` replies"
    )
