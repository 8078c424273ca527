"""The logs of a partitioned run, read as one log (for reports, `log show` and the like).

A run whose cases were split among umpires (`simulator.load.partitioned`) has one
log per partition, each with its own positions, hash chain and checkpoints. A
reader that wants the run (an after-action report, a listing) gets them merged in
one deterministic order: by time, then by partition, then by position; and
numbered again from 1 in that order, since the partitions' positions overlap.
For one partition that order is the log's own (its times never go back), so a
report of a run is the same whether it had one partition or several.

The merged view is for reading: it appends nothing, and it checks nothing
either (`log verify` checks each partition's chain and checkpoints on its own,
where the hashes mean something; renumbered events are no longer the stored ones).
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from simulator.eventlog.envelope import Event, NewEvent
from simulator.eventlog.errors import LogError
from simulator.eventlog.store import Appended, InspectableStore


class MergedLog:
    """Several partitions' logs, read as one (see the module docstring)."""

    def __init__(self, partitions: Sequence[InspectableStore], location: str) -> None:
        if not partitions:
            raise ValueError("a merged log needs at least one partition")
        self.partitions = tuple(partitions)
        self._location = location
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        for store in self.partitions:
            await self._stack.enter_async_context(store)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stack.aclose()

    @property
    def location(self) -> str:
        return f"{self._location} ({len(self.partitions)} partitions)"

    async def _merged(self, *, upgrade: bool) -> AsyncIterator[Event]:
        """Every partition's events in (time, partition, position) order, renumbered."""
        position = 0
        async for _, event in self.stored(upgrade=upgrade):
            position += 1
            if len(self.partitions) == 1:
                yield event
            else:
                yield event.model_copy(update={"position": position})

    async def stored(self, *, upgrade: bool = False) -> AsyncIterator[tuple[int, Event]]:
        """Each partition's events as its own log holds them (its own positions and chain),
        with the partition's number, in the merged order: time, partition, position."""
        streams = [store.read(upgrade=upgrade) for store in self.partitions]
        heads: list[Event | None] = [await anext(stream, None) for stream in streams]
        while True:
            # Partition index breaks ties of time; position is each stream's own order.
            live = [(e.time, index) for index, e in enumerate(heads) if e is not None]
            if not live:
                return
            chosen = min(live)[1]
            event = heads[chosen]
            assert event is not None
            heads[chosen] = await anext(streams[chosen], None)
            yield chosen, event

    async def read(
        self, from_position: int = 1, until: int | None = None, *, upgrade: bool = True
    ) -> AsyncIterator[Event]:
        """The merged events from `from_position` to `until` (merged positions)."""
        async for event in self._merged(upgrade=upgrade):
            if until is not None and event.position > until:
                return
            if event.position >= from_position:
                yield event

    async def read_case(self, case_id: str, *, upgrade: bool = True) -> list[Event]:
        return [e async for e in self.read(upgrade=upgrade) if e.subject == case_id]

    async def head(self) -> int:
        return sum([await store.head() for store in self.partitions])

    def follow(self, from_position: int = 1, *, upgrade: bool = True) -> AsyncIterator[Event]:
        raise LogError(f"{self.location}: a partitioned run's logs are followed one by one")

    async def get_metadata(self, key: str) -> str | None:
        return await self.partitions[0].get_metadata(key)

    async def metadata(self) -> dict[str, str]:
        """Partition 0's metadata: the run's description (what every partition shares)."""
        return await self.partitions[0].metadata()

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        raise LogError(f"{self.location}: a merged view of a partitioned run is read-only")

    async def set_metadata(self, key: str, value: str) -> None:
        raise LogError(f"{self.location}: a merged view of a partitioned run is read-only")


__all__ = ["MergedLog"]
