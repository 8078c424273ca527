"""JSON Lines export and import: one structured-mode CloudEvent per line, byte for byte.

Export writes each event's canonical text exactly as stored (never upgraded),
so export -> import into a new log -> export gives identical bytes. Import
checks the whole file first (each line parses, hashes to its own hash, and
links to the line before), and only then appends; every appended event must
land with the position and hash the file says, so hashes are preserved.

The log's signed checkpoints travel beside the events, as a second JSON
Lines file (export_checkpoints, read_checkpoints). An import holds the file
to them before it writes anything, so an export edited and re-chained after
it was checkpointed is refused, naming the positions where the change lies;
afterwards record_provenance() keeps them in the new log and records that
this machine's key re-signed the events (see provenance).
"""

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from pydantic import ValidationError

from simulator.eventlog.checkpoints import SignedCheckpoint
from simulator.eventlog.envelope import (
    GENESIS_HASH,
    Event,
    NewEvent,
    compute_hash,
    format_time,
    from_json_line,
    to_json_line,
)
from simulator.eventlog.errors import JsonlImportError
from simulator.eventlog.keys import key_fingerprint
from simulator.eventlog.provenance import ImportNote
from simulator.eventlog.store import EventStore, InspectableStore

_SPOOL_IN_MEMORY = 64 * 1024 * 1024


async def export_jsonl(store: EventStore, out: TextIO) -> int:
    """Write every event of ``store`` to ``out``, one line each; returns the count."""
    count = 0
    async for event in store.read(upgrade=False):
        out.write(to_json_line(event) + "\n")
        count += 1
    return count


def _events(lines: Iterable[str]) -> Iterator[tuple[int, Event]]:
    for number, (_, event) in _lines(lines):
        yield number, event


def _lines(lines: Iterable[str]) -> Iterator[tuple[int, tuple[str, Event]]]:
    """Each line's number, its text (without the newline) and the event it is."""
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\n")
        if not text.strip():
            raise JsonlImportError(number, "empty line; every line must be one event")
        try:
            yield number, (text, from_json_line(text))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise JsonlImportError(
                number, f"not an event ({where}: {error['msg']})" if where else error["msg"]
            ) from exc


def split_chains(lines: Iterable[str]) -> list[list[str]]:
    """The lines of a file, by the hash chain each belongs to (in order of their first line).

    One log's export is one chain. A partitioned run's merged export
    interleaves its partitions' chains, each line as its own log stored it:
    a line begins a chain when it is a log's first (position 1, on genesis)
    and otherwise continues the chain whose last line's hash it names. A line
    that continues no chain is an error naming it; the hashes themselves are
    checked by the import of each chain.
    """
    chains: list[list[str]] = []
    tips: dict[str, int] = {}
    for number, (text, event) in _lines(lines):
        if event.position == 1 and event.prevhash == GENESIS_HASH:
            chains.append([text])
            tips[event.hash] = len(chains) - 1
            continue
        index = tips.pop(event.prevhash, None)
        if index is None:
            raise JsonlImportError(
                number, "broken chain: prevhash is not the hash of any log's line before"
            )
        chains[index].append(text)
        tips[event.hash] = index
    return chains


async def export_checkpoints(store: InspectableStore, out: TextIO) -> int:
    """Write the log's signed checkpoints, one canonical line each; returns the count.

    Lines the store could not read are left out: they vouch for nothing.
    """
    count = 0
    for entry in await store.checkpoint_entries():
        if entry.record is not None:
            out.write(entry.record.to_line() + "\n")
            count += 1
    return count


def read_checkpoints(source: TextIO) -> list[SignedCheckpoint]:
    """Parse a checkpoints file from export_checkpoints; JsonlImportError naming a bad line."""
    checkpoints = []
    for number, line in enumerate(source, start=1):
        text = line.rstrip("\n")
        if not text.strip():
            continue
        try:
            checkpoints.append(SignedCheckpoint.from_line(text))
        except ValueError as exc:
            raise JsonlImportError(number, f"checkpoints file: not a checkpoint ({exc})") from exc
    return checkpoints


@dataclass(frozen=True, slots=True)
class _Chain:
    """What the checked file holds: its first and last position and some hashes."""

    first: int
    first_prevhash: str | None
    """None for an empty file."""
    last: int
    hashes: dict[int, str]
    """The hashes at the positions asked for; at ``first - 1``, the prevhash the file starts on."""


def _check_chain(lines: Iterable[str], wanted: set[int] | None = None) -> _Chain:
    """Check every line, keeping the hashes at the ``wanted`` positions."""
    first_position = 0
    first_prevhash: str | None = None
    previous: Event | None = None
    hashes: dict[int, str] = {}
    for number, event in _events(lines):
        if compute_hash(event) != event.hash:
            raise JsonlImportError(
                number, f"event {event.id!r} does not match its hash (changed after export)"
            )
        if previous is None:
            first_position, first_prevhash = event.position, event.prevhash
            if event.position == 1 and event.prevhash != GENESIS_HASH:
                raise JsonlImportError(number, "the first event of a log must chain to genesis")
        else:
            if event.position != previous.position + 1:
                raise JsonlImportError(
                    number,
                    f"position {event.position} does not follow position {previous.position}",
                )
            if event.prevhash != previous.hash:
                raise JsonlImportError(
                    number, "broken chain: prevhash is not the hash of the line before"
                )
        previous = event
        if wanted is not None and event.position in wanted:
            hashes[event.position] = event.hash
    if first_prevhash is not None:
        hashes[first_position - 1] = first_prevhash
    last = previous.position if previous is not None else 0
    return _Chain(first_position, first_prevhash, last, hashes)


def _check_checkpoints(checkpoints: Sequence[SignedCheckpoint], chain: _Chain) -> None:
    """Hold the file to the checkpoints that came with it; JsonlImportError at the first problem.

    Errors name the line of the first event that may be wrong.
    """
    first, last, hashes = chain.first, chain.last, chain.hashes
    matching = [first - 1]
    for number, signed in sorted(
        enumerate(checkpoints, start=1), key=lambda item: item[1].checkpoint.position
    ):
        checkpoint = signed.checkpoint
        where = f"checkpoint {number} (key {key_fingerprint(signed.key)})"
        if not signed.signed_by_its_key():
            raise JsonlImportError(
                1, f"{where}: the signature does not verify; a forged checkpoint is refused"
            )
        position = checkpoint.position
        if position < first - 1:
            continue  # vouches for events the target log already holds
        if position > last:
            raise JsonlImportError(
                last - first + 2,
                f"the file ends at position {last}, but {where} vouches for position "
                f"{position}: the export's tail was cut off",
            )
        if hashes.get(position) != checkpoint.hash:
            good = max(p for p in matching if p < position)
            span = (
                f"position {position}"
                if good + 1 == position
                else f"positions {good + 1}–{position}"
            )
            raise JsonlImportError(
                good + 1 - first + 1,
                f"{span} differ from what {where} signed (at position {position}): the export "
                "was changed after it was checkpointed; nothing was imported",
            )
        matching.append(position)


def check_lines(lines: Sequence[str], checkpoints: Sequence[SignedCheckpoint] = ()) -> None:
    """Check one log's lines as an import would (hashes, chain, checkpoints), writing nothing."""
    _check_checkpoints(
        checkpoints, _check_chain(lines, {c.checkpoint.position for c in checkpoints})
    )


async def import_jsonl(
    source: TextIO,
    store: EventStore,
    *,
    batch_size: int = 1000,
    checkpoints: Sequence[SignedCheckpoint] = (),
) -> int:
    """Append the events of a JSON Lines file to ``store``, preserving positions and hashes.

    The file must continue the store exactly (normally: an empty store and a
    file from position 1), and agree with every one of ``checkpoints`` (the
    source's, from read_checkpoints). Returns the number of events imported;
    raises JsonlImportError naming the line otherwise, before anything is
    written.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with tempfile.SpooledTemporaryFile(
        max_size=_SPOOL_IN_MEMORY, mode="w+", encoding="utf-8", newline="\n"
    ) as spool:
        # Two passes need a seekable copy; the spool stays in memory unless large.
        for chunk in iter(lambda: source.read(1 << 20), ""):
            spool.write(chunk)
        spool.seek(0)
        chain = _check_chain(spool, {c.checkpoint.position for c in checkpoints})
        first_position, first_prevhash = chain.first, chain.first_prevhash
        if first_prevhash is None:
            return 0
        _check_checkpoints(checkpoints, chain)
        head = await store.head()
        tip = GENESIS_HASH
        if head > 0:
            async for event in store.read(head, head, upgrade=False):
                tip = event.hash
        if first_position != head + 1 or first_prevhash != tip:
            raise JsonlImportError(
                1,
                f"the file starts at position {first_position} but the target log's head is "
                f"{head}; import into an empty log, or the log the file continues",
            )
        spool.seek(0)
        count = 0
        pending: list[tuple[int, Event]] = []
        for item in _events(spool):
            pending.append(item)
            if len(pending) == batch_size:
                count += await _append(store, pending)
                pending = []
        if pending:
            count += await _append(store, pending)
        return count


async def _append(store: EventStore, pending: list[tuple[int, Event]]) -> int:
    results = await store.append([NewEvent.from_event(event) for _, event in pending])
    for (number, event), result in zip(pending, results, strict=True):
        if result.duplicate or result.position != event.position or result.hash != event.hash:
            raise JsonlImportError(
                number,
                f"event {event.id!r} landed at position {result.position} with another hash "
                "than in the file; the target log changed during the import",
            )
    return len(pending)


async def record_provenance(
    store: InspectableStore,
    *,
    source: str,
    first_position: int,
    checkpoints: Sequence[SignedCheckpoint],
    now: datetime,
) -> ImportNote:
    """After an import: keep the source's checkpoints and record who re-signed what.

    The new log's own checkpoints are signed by this machine's key; the note
    says so, and which positions the source's keys vouch for, so that `log
    verify` and `log show` can tell the two apart.
    """
    metadata = await store.metadata()
    note = ImportNote(
        source=source,
        imported_at=format_time(now),
        resigned_by=metadata.get("eventlog.checkpoint_key", ""),
        first_position=first_position,
        last_position=await store.head(),
        source_logs=tuple(sorted({c.checkpoint.log for c in checkpoints})),
        source_keys=tuple(sorted({c.key for c in checkpoints})),
        source_checkpoints=len(checkpoints),
        source_vouched_until=max((c.checkpoint.position for c in checkpoints), default=None),
    )
    if checkpoints:
        await store.adopt_checkpoints(checkpoints)
    await store.record_import(note.to_json())
    return note
