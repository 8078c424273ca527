"""An exercise's umpires when its cases are split among partitions, in one process.

Each partition's umpire is the single writer of its own log (its own positions,
hash chain and checkpoints), decides only its own cases' submissions, and
announces its own clock marker (`Tick.partition`) with what each party may see
of its log; parties keep a lane per partition (`simulator.party.session`). What
is exercise-wide is partition 0's, as in a partitioned load run: the control
topic, the run's start and its end. The umpires of one process share:

- one clock (`ScaledClock`): a pause, a speed or a jump that partition 0's
  umpire carries out holds for every partition at the same instant, and every
  partition is told to announce it at once;
- one agenda (`SharedAgenda`): the scenario's injects and generated cases come
  due once, and each goes to the partition of its case; conditions are judged
  on every partition's committed events, as with one umpire;
- one judgement of the end: the run is idle only when every partition is, and
  partition 0 records the end only after the others have committed their last.

Simulated time stays with one umpire (its rounds are one barrier for all parties).
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from simulator.eventlog import Event, NewEvent
from simulator.protocol import Message
from simulator.protocol.ids import partition_of
from simulator.umpire.realtime import nothing_left
from simulator.umpire.sequencer import Sequencer

if TYPE_CHECKING:
    import asyncio

    from simulator.umpire.core import Agenda, Umpire


class SharedAgenda:
    """One agenda for every partition: each due item goes to the partition of its case."""

    def __init__(self, agenda: "Agenda", partitions: int) -> None:
        self.agenda = agenda
        self.partitions = partitions
        # Due items taken from the agenda for a partition that has not staged them yet,
        # with the time they were found due.
        self.held: dict[int, list[tuple[datetime, Message, str]]] = defaultdict(list)
        # How to wake a partition's umpire when something came due for it.
        self.wake: Callable[[int], None] = lambda partition: None

    def view(self, partition: int) -> "PartitionAgenda":
        return PartitionAgenda(self, partition)

    def take_due(self, partition: int, at: datetime) -> list[tuple[Message, str]]:
        """What is due by `at` for `partition`; what is due for the others is held for them.

        Each item is held with its own due time, and handed out only by then: the
        partitions' umpires go at their own pace (each waits for its parties before
        it takes what is due), and one that was behind took what another had found
        due for it later, before its time.
        """
        agenda = self.agenda
        while (moment := agenda.next_time()) is not None and moment <= at:
            for message, source in agenda.due(moment):
                owner = partition_of(message.case_id, self.partitions)
                self.held[owner].append((moment, message, source))
                if owner != partition:
                    self.wake(owner)
            if agenda.next_time() == moment:
                break  # nothing was taken at that moment: do not spin on it
        held = self.held.pop(partition, [])
        if rest := [item for item in held if item[0] > at]:
            self.held[partition] = rest
        return [(message, source) for when, message, source in held if when <= at]


class PartitionAgenda:
    """One partition's view of the shared agenda (the umpire's `Agenda`)."""

    def __init__(self, shared: SharedAgenda, partition: int) -> None:
        self.shared = shared
        self.partition = partition

    def next_time(self) -> datetime | None:
        # What another partition's umpire found due for this one, at its own time.
        times = [when for when, _, _ in self.shared.held.get(self.partition, ())]
        shared = self.shared.agenda.next_time()
        if shared is not None:
            times.append(shared)
        return min(times, default=None)

    def due(self, at: datetime) -> list[tuple[Message, str]]:
        return self.shared.take_due(self.partition, at)

    def observe(self, events: Sequence[Event | NewEvent], sequencer: Sequencer) -> None:
        self.shared.agenda.observe(events, sequencer)

    def fire_now(self, inject_id: str, at: datetime) -> bool:
        return self.shared.agenda.fire_now(inject_id, at)

    def injects(self) -> list[str]:
        return self.shared.agenda.injects()

    def opens_case(self, case_id: str) -> bool:
        return self.shared.agenda.opens_case(case_id)

    def rest_of_instant(self, at: datetime) -> list[tuple[Message, str]] | None:
        # Partitioned runs are realtime: they go on from their logs' last time as it comes.
        return None


class PartitionGroup:
    """The umpires of one exercise's partitions, in one process: partition 0's speaks for all."""

    def __init__(self, umpires: Sequence["Umpire"], agenda: SharedAgenda) -> None:
        self.umpires = tuple(umpires)
        self.agenda = agenda
        self.tasks: dict[int, asyncio.Task[object]] = {}
        agenda.wake = self.wake
        for umpire in self.umpires:
            umpire.group = self

    @property
    def others(self) -> tuple["Umpire", ...]:
        return self.umpires[1:]

    def wake(self, partition: int) -> None:
        self.umpires[partition].wake()

    def clock_changed(self) -> None:
        """Partition 0's umpire changed the shared clock: every partition announces it now."""
        paused = self.umpires[0].paused
        for umpire in self.others:
            umpire.paused = paused
            umpire.tick_now.set()
            umpire.wake()

    def idle(self) -> bool:
        """Nothing is left to happen in any partition (judged by partition 0's driver)."""
        return all(nothing_left(umpire) for umpire in self.umpires)

    def next_timer(self) -> datetime | None:
        times = [t for u in self.umpires if (t := u.own_next_timer()) is not None]
        return min(times) if times else None

    async def stop_others(self, reason: str) -> None:
        """End the other partitions (each commits what it decided) before the run's end."""
        for umpire in self.others:
            umpire.stop(reason)
        for task in self.tasks.values():
            await task


__all__ = ["PartitionAgenda", "PartitionGroup", "SharedAgenda"]
