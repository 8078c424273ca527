"""Tamper evidence: verify a log's rows, hash chain, case versions and signed checkpoints.

The checks, in order: the database's own integrity check; positions contiguous
from 1; every stored text hashes to the hash it carries (on the bytes as
stored), parses, is canonical and agrees with its indexed columns; each
prevhash is the hash before it; each case's versions count up from 1; then
every signed checkpoint verifies with the log's key, names this log, and
vouches for a position the log still has with the hash it still has. The
first problem found is reported, naming its position where it has one.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from simulator.eventlog.checkpoints import CheckpointEntry
from simulator.eventlog.envelope import GENESIS_HASH, from_json_line, stored_hash, to_json_line
from simulator.eventlog.errors import CorruptLogError
from simulator.eventlog.sqlite import SqliteEventStore
from simulator.eventlog.store import InspectableStore, StoredRow


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict on one log: ``ok``, or the first problem and where it is."""

    ok: bool
    checked: int
    """Events that passed every per-event check."""
    first_bad_position: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0


class _Found(Exception):
    """The first problem; ends the scan."""

    def __init__(self, position: int | None, problem: str) -> None:
        super().__init__(problem)
        self.position = position
        self.problem = problem


async def verify(
    store_or_path: InspectableStore | str | os.PathLike[str], *, public_key: str | None = None
) -> VerifyReport:
    """Verify a store, or the SQLite log at a path (opened read-only, never modified).

    ``public_key`` (hex) pins the checkpoint key; without it the key recorded
    in the log's metadata is trusted, which proves consistency but not
    authorship, since whoever can rewrite the log can rewrite its metadata.
    A path that is not an event log raises NotALogError.
    """
    if isinstance(store_or_path, str | os.PathLike):
        try:
            async with SqliteEventStore(Path(store_or_path), read_only=True) as store:
                return await _verify(store, public_key)
        except CorruptLogError as exc:
            return VerifyReport(False, 0, exc.position, str(exc))
    try:
        return await _verify(store_or_path, public_key)
    except CorruptLogError as exc:
        return VerifyReport(False, 0, exc.position, str(exc))


async def _verify(store: InspectableStore, public_key: str | None) -> VerifyReport:
    scan = _Scan()
    try:
        integrity = await store.integrity_problem()
        if integrity is not None:
            raise _Found(None, f"the database's integrity check failed: {integrity}")
        metadata = await store.metadata()
        entries = await store.checkpoint_entries()
        scan.wanted = {e.record.checkpoint.position for e in entries if e.record is not None}
        async for row in store.stored_rows():
            scan.row(row)
        checked = _check_checkpoints(
            entries,
            scan,
            log_id=metadata.get("eventlog.log_id"),
            recorded_key=metadata.get("eventlog.checkpoint_key"),
            public_key=public_key,
        )
    except _Found as found:
        return VerifyReport(
            False,
            scan.checked,
            found.position,
            f"{store.location}: {found.problem}",
            scan.checkpoints_checked,
        )
    return VerifyReport(True, scan.checked, checkpoints_checked=checked)


class _Scan:
    """Walks the rows in position order, remembering what the checkpoints need."""

    def __init__(self) -> None:
        self.expected = 1
        self.prevhash = GENESIS_HASH
        self.versions: dict[str, int] = {}
        self.checked = 0
        self.checkpoints_checked = 0
        self.wanted: set[int] = set()
        self.hash_at: dict[int, str] = {0: GENESIS_HASH}

    @property
    def head(self) -> int:
        return self.expected - 1

    def row(self, row: StoredRow) -> None:
        position = row.position
        if position != self.expected:
            raise _Found(
                self.expected,
                f"position {self.expected} is missing (the next stored row is {position})",
            )
        found = stored_hash(row.body)
        if found is None:
            raise _Found(position, f"position {position}: the stored text carries no hash")
        if found[0] != found[1]:
            raise _Found(
                position,
                f"position {position}: the stored bytes do not match their hash "
                "(the event was changed after it was written)",
            )
        try:
            event = from_json_line(row.body)
        except ValidationError as exc:
            raise _Found(
                position, f"position {position}: not a valid event ({exc.errors()[0]['msg']})"
            ) from exc
        if to_json_line(event) != row.body:
            raise _Found(position, f"position {position}: the stored text is not canonical")
        columns = {
            "position": (row.position, event.position),
            "id": (row.id, event.id),
            "subject": (row.subject, event.subject),
            "caseversion": (row.caseversion, event.caseversion),
            "type": (row.type, event.type),
            "hash": (row.hash, event.hash),
        }
        disagreeing = [name for name, (column, stored) in columns.items() if column != stored]
        if disagreeing:
            raise _Found(
                position,
                f"position {position}: the row's {', '.join(disagreeing)} disagree with "
                f"its stored event (the stored event says position {event.position})",
            )
        if event.prevhash != self.prevhash:
            raise _Found(
                position,
                f"position {position}: prevhash is not the hash of position {position - 1} "
                "(an event was removed, inserted or moved before it)",
            )
        if event.subject is not None:
            version = self.versions.get(event.subject, 0)
            if event.caseversion != version + 1:
                raise _Found(
                    position,
                    f"position {position}: case {event.subject!r} goes from version {version} "
                    f"to {event.caseversion}",
                )
            self.versions[event.subject] = event.caseversion
        if position in self.wanted:
            self.hash_at[position] = row.hash
        self.prevhash = row.hash
        self.expected += 1
        self.checked += 1


def _check_checkpoints(
    entries: list[CheckpointEntry],
    scan: _Scan,
    *,
    log_id: str | None,
    recorded_key: str | None,
    public_key: str | None,
) -> int:
    if recorded_key is None:
        raise _Found(None, "the log records no checkpoint key")
    if public_key is not None and public_key != recorded_key:
        raise _Found(
            None,
            f"the log names checkpoint key {recorded_key[:16]}..., not the trusted "
            f"{public_key[:16]}...: its metadata was replaced",
        )
    if not entries:
        if scan.head == 0:
            return 0
        raise _Found(
            None, "the log has events but no signed checkpoints: its checkpoint record is missing"
        )
    for entry in entries:
        record = entry.record
        if record is None:
            raise _Found(None, f"{entry.where}: {entry.problem}")
        checkpoint = record.checkpoint
        if not record.verifies_with(recorded_key):
            raise _Found(
                checkpoint.position,
                f"{entry.where}: the signature does not verify as a checkpoint signed by the "
                "log's key; a forged or damaged checkpoint is refused",
            )
        if checkpoint.log != log_id:
            raise _Found(
                checkpoint.position,
                f"{entry.where}: signed for log {checkpoint.log!r}, not this log ({log_id!r})",
            )
        if checkpoint.position > scan.head:
            raise _Found(
                scan.head + 1,
                f"the log ends at position {scan.head}, but {entry.where} vouches for position "
                f"{checkpoint.position}: the tail was cut off or the log rolled back to an "
                "older copy",
            )
        if scan.hash_at.get(checkpoint.position) != checkpoint.hash:
            raise _Found(
                checkpoint.position,
                f"position {checkpoint.position}: the hash differs from the one signed in "
                f"{entry.where}: the log was rewritten or replaced by another copy",
            )
        scan.checkpoints_checked += 1
    if all(entry.record is None or entry.record.checkpoint.position != 0 for entry in entries):
        raise _Found(
            None,
            "the checkpoints do not start at the log's creation (position 0): "
            "the checkpoint record was replaced or truncated",
        )
    return scan.checkpoints_checked
