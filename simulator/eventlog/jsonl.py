"""JSON Lines export and import: one structured-mode CloudEvent per line, byte for byte.

Export writes each event's canonical text exactly as stored (never upgraded),
so export -> import into a new log -> export gives identical bytes. Import
checks the whole file first (each line parses, hashes to its own hash, and
links to the line before), and only then appends; every appended event must
land with the position and hash the file says, so hashes are preserved.
"""

import tempfile
from collections.abc import Iterable, Iterator
from typing import TextIO

from pydantic import ValidationError

from simulator.eventlog.envelope import (
    GENESIS_HASH,
    Event,
    NewEvent,
    compute_hash,
    from_json_line,
    to_json_line,
)
from simulator.eventlog.errors import JsonlImportError
from simulator.eventlog.store import EventStore

_SPOOL_IN_MEMORY = 64 * 1024 * 1024


async def export_jsonl(store: EventStore, out: TextIO) -> int:
    """Write every event of ``store`` to ``out``, one line each; returns the count."""
    count = 0
    async for event in store.read(upgrade=False):
        out.write(to_json_line(event) + "\n")
        count += 1
    return count


def _events(lines: Iterable[str]) -> Iterator[tuple[int, Event]]:
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\n")
        if not text.strip():
            raise JsonlImportError(number, "empty line; every line must be one event")
        try:
            yield number, from_json_line(text)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise JsonlImportError(
                number, f"not an event ({where}: {error['msg']})" if where else error["msg"]
            ) from exc


def _check_chain(lines: Iterable[str]) -> tuple[int, str | None]:
    """Check every line; return the first position and the prevhash the file starts from."""
    first_position = 0
    first_prevhash: str | None = None
    previous: Event | None = None
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
    return first_position, first_prevhash


async def import_jsonl(source: TextIO, store: EventStore, *, batch_size: int = 1000) -> int:
    """Append the events of a JSON Lines file to ``store``, preserving positions and hashes.

    The file must continue the store exactly (normally: an empty store and a
    file from position 1). Returns the number of events imported; raises
    JsonlImportError naming the line otherwise, before anything is written.
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
        first_position, first_prevhash = _check_chain(spool)
        if first_prevhash is None:
            return 0
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
