"""The committer: the only caller of the store's append; batches in, committed events out.

It keeps the chain tip of what it appended, so it can build the committed
events from the proposals and where the store put them instead of reading
them back; when someone else appended meanwhile, it reads them back.
"""

from collections.abc import Sequence

from simulator.eventlog import (
    GENESIS_HASH,
    Appended,
    Event,
    EventStore,
    NewEvent,
    committed_event,
)
from simulator.umpire.sequencer import Pending


class Committer:
    def __init__(self, store: EventStore, *, max_batch: int) -> None:
        self.store = store
        self.max_batch = max_batch
        # (position, hash) of the last event appended or resumed from.
        self._tip: tuple[int, str] = (0, GENESIS_HASH)

    def resume(self, last: Event) -> None:
        """Carry on after `last`, an event already in the log (a forked run)."""
        self._tip = (last.position, last.hash)

    async def append(self, batch: Pending) -> list[Event]:
        """Append a decided batch (in store-sized chunks); the events it added to the log.

        Built from the proposals and where the store put them, or read back when
        that cannot be done here; a repeat the store already held adds nothing.
        """
        results: list[Appended] = []
        size = self.max_batch
        for i in range(0, len(batch.events), size):
            results.extend(await self.store.append(batch.events[i : i + size]))
        fresh = [r.position for r in results if not r.duplicate]
        if not fresh:
            return []
        committed = self._built(batch.events, results, fresh[0])
        if committed is None:
            committed = [e async for e in self.store.read(fresh[0], fresh[-1])]
        self._tip = (committed[-1].position, committed[-1].hash)
        return committed

    def _built(
        self, proposals: Sequence[NewEvent], results: Sequence[Appended], first: int
    ) -> list[Event] | None:
        """The committed events, from the proposals and where the store put them.

        None when the batch does not follow on the tip or the positions are not the
        expected run (someone else appended): the caller then reads it back.
        """
        position, prevhash = self._tip
        if position != first - 1:
            return None
        events: list[Event] = []
        append = events.append
        for proposal, (_, at, caseversion, digest, duplicate) in zip(
            proposals, results, strict=True
        ):
            if duplicate:
                continue
            if at != position + 1:
                return None
            append(committed_event(proposal, at, caseversion, prevhash, digest))
            position, prevhash = at, digest
        return events
