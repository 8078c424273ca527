"""The EventStore interface that every storage backend implements, and what it returns."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple, Protocol, Self

from simulator.eventlog.checkpoints import CheckpointEntry, SignedCheckpoint
from simulator.eventlog.envelope import Event, NewEvent

RESERVED_METADATA_PREFIX = "eventlog."
"""Metadata keys the store keeps for itself (format, log id, checkpoint key)."""

IMPORT_METADATA = "eventlog.import"
"""How an imported log came to be: from where, and which key re-signed what (see provenance)."""


class Appended(NamedTuple):
    """Where an appended event landed; ``duplicate`` says it was already in the log.

    For a duplicate, position, caseversion and hash are those of the original.
    (A NamedTuple: a batch makes a thousand of these inside the write transaction.)
    """

    id: str
    position: int
    caseversion: int
    hash: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row exactly as stored, before any check: what verification inspects."""

    position: int
    id: str
    subject: str | None
    caseversion: int
    type: str
    hash: str
    body: str


class EventStore(Protocol):
    """An append-only event log with one writer, idempotent appends and a hash chain.

    Stores are async context managers; ``close()`` writes a final signed
    checkpoint if anything was appended.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        """Append a batch in one transaction; one result per proposal, in order.

        A proposal whose id is already in the log (or earlier in the batch)
        writes nothing and returns the original position with duplicate=True;
        if its content differs, DuplicateIdMismatch. A proposal whose
        expected_version is not the case's version raises VersionConflict. Any
        error rolls back the whole batch.
        """
        ...

    def read(
        self, from_position: int = 1, until: int | None = None, *, upgrade: bool = True
    ) -> AsyncIterator[Event]:
        """Events from ``from_position`` up to and including ``until`` (default: the head).

        With upgrade (the default) events come out at their type's current
        schema version; hashes are checked on the stored bytes first.
        """
        ...

    async def read_case(self, case_id: str, *, upgrade: bool = True) -> list[Event]:
        """Every event of one case, in case-version order."""
        ...

    async def head(self) -> int:
        """The last position, 0 for an empty log."""
        ...

    def follow(self, from_position: int = 1, *, upgrade: bool = True) -> AsyncIterator[Event]:
        """Events from ``from_position`` on, then each new one as it is committed; never ends."""
        ...

    async def get_metadata(self, key: str) -> str | None:
        """One metadata value, None if unset."""
        ...

    async def set_metadata(self, key: str, value: str) -> None:
        """Set one metadata value (exercise id, scenario, seed, parent log, ...)."""
        ...

    async def metadata(self) -> dict[str, str]:
        """All metadata, including the store's own ``eventlog.*`` keys."""
        ...

    async def close(self) -> None:
        """Write a final checkpoint if this store appended, then release the database."""
        ...


class InspectableStore(EventStore, Protocol):
    """A store that exposes its raw rows and checkpoints, so that it can be verified."""

    @property
    def location(self) -> str:
        """Where the log lives, for messages (a path, or schema and database)."""
        ...

    @property
    def log_id(self) -> str:
        """The id the log was given at creation; its checkpoints name it."""
        ...

    def stored_rows(self, from_position: int = 1) -> AsyncIterator[StoredRow]:
        """Rows exactly as stored, in position order, without any check."""
        ...

    async def integrity_problem(self) -> str | None:
        """What the database's own consistency check found, None if all is well."""
        ...

    async def checkpoint_entries(self) -> list[CheckpointEntry]:
        """Every signed checkpoint kept for this log, in the order they were written."""
        ...

    async def adopt_checkpoints(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        """Keep checkpoints another writer signed over these same events, as they are.

        For an import: the source's checkpoints keep vouching for the events
        they covered, under the source's key, beside this store's own.
        """
        ...

    async def record_import(self, note: str) -> None:
        """Record, in the store's own metadata, how the log was imported and re-signed."""
        ...
