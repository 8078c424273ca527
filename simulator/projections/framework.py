"""Projections: read models folded from the log in position order, each event once.

A projection remembers the position of the last event it applied, so it
can be resumed (catch up from there), fed overlapping reads (events at or
below its position are skipped), and it refuses a gap rather than silently
building a wrong view.
"""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable

from simulator.errors import InternalError
from simulator.eventlog import Event, EventStore


class ProjectionGap(InternalError):
    def __init__(self, projection: str, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"{projection}: expected event {expected}, got {got}; events are missing")


class Projection(ABC):
    """Base of every read model; subclasses implement `handle`."""

    def __init__(self) -> None:
        self.position = 0

    def apply(self, event: Event) -> bool:
        """Apply one event; False when it was applied before (nothing changes)."""
        if event.position <= self.position:
            return False
        if event.position != self.position + 1:
            raise ProjectionGap(type(self).__name__, self.position + 1, event.position)
        self.handle(event)
        self.position = event.position
        return True

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    @abstractmethod
    def handle(self, event: Event) -> None:
        """Fold one new event into the read model."""


async def catch_up(store: EventStore, *projections: Projection, until: int | None = None) -> int:
    """Bring the projections up to `until` (default: the head); returns the position reached."""
    start = min(p.position for p in projections) + 1
    async for event in store.read(start, until):
        for projection in projections:
            projection.apply(event)
    return min(p.position for p in projections)


async def follow(store: EventStore, *projections: Projection) -> AsyncIterator[Event]:
    """Apply events as they are committed, yielding each; the caller stops by breaking out."""
    start = min(p.position for p in projections) + 1
    async for event in store.follow(start):
        for projection in projections:
            projection.apply(event)
        yield event
