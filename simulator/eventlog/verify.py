"""Tamper evidence: verify a log's rows, hash chain, case versions and signed checkpoints.

The checks, in order: the database's own integrity check; positions contiguous
from 1; every stored text hashes to the hash it carries (on the bytes as
stored), parses, is canonical and agrees with its indexed columns; each
prevhash is the hash before it; each case's versions count up from 1. Then
the checkpoints, the log's own and a witness's: each must be signed by a
trusted key and name this log, and vouch for a position the log still has
with the hash it still has. Last, the metadata (the scenario, the seed, the
clock, a fork's lineage), which is outside the chain: the last checkpoint
signs each value's digest (version-3 records), and a value that differs from
it is named; after a closing checkpoint that is a failure.

Which keys are trusted: the pinned ones (``pinned=``, ``log verify --key``),
or, without a pin, the key the log's metadata names (and, for an imported
log, the source's keys its import record names). A key read from the log
proves only that the log agrees with itself: whoever can rewrite the log can
rewrite its metadata and re-sign it. The report says which it was.

Where the chain is intact but a trusted checkpoint disagrees, the log was
rewritten and re-chained: the change lies after the last checkpoint that
still matches and at or before the first that does not, and that segment is
what is reported. The first problem found is reported, naming its position
(or segment) where it has one; notes say what was trusted and what is
vouched for.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from simulator.eventlog.checkpoints import (
    CheckpointEntry,
    SignedCheckpoint,
    last_made,
    metadata_changes,
)
from simulator.eventlog.envelope import GENESIS_HASH, from_json_line, stored_hash, to_json_line
from simulator.eventlog.errors import CorruptLogError
from simulator.eventlog.keys import key_fingerprint
from simulator.eventlog.provenance import ImportNote
from simulator.eventlog.sqlite import SqliteEventStore
from simulator.eventlog.store import IMPORT_METADATA, InspectableStore, StoredRow
from simulator.eventlog.stored import columns_apart
from simulator.eventlog.witness import Witness, WitnessEntries, open_witness


@dataclass(frozen=True, slots=True)
class KeyUse:
    """One trusted key: where the trust came from and what its checkpoints vouch for."""

    key: str
    fingerprint: str
    origin: str
    """"pinned", "log" (the log's metadata names it) or "import source" (its import record)."""
    checkpoints: int = 0
    lowest: int | None = None
    highest: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict on one log: ``ok``, or the first problem and where it is."""

    ok: bool
    checked: int
    """Events that passed every per-event check."""
    first_bad_position: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0
    segment: tuple[int, int] | None = None
    """For a rewrite found by a checkpoint: the first and last position it may lie in."""
    head: int = 0
    pinned: bool = False
    keys: tuple[KeyUse, ...] = ()
    vouched_until: int | None = None
    """The highest position a trusted checkpoint vouches for."""
    closed: bool | None = None
    """A closing checkpoint vouches for the head (None: version-1 checkpoints do not say)."""
    witness: str | None = None
    witness_checkpoints: int = 0
    witness_until: int | None = None
    imported: ImportNote | None = None
    metadata_vouched: bool | None = None
    """The last checkpoint signs the metadata as it is (None: its version signs none)."""
    metadata_changed: tuple[str, ...] = ()
    """Metadata keys whose values differ from what the last checkpoint signs."""
    notes: tuple[str, ...] = field(default=())
    """What was trusted and what is vouched for, in sentences for people."""


class _Found(Exception):
    """The first problem; ends the scan."""

    def __init__(
        self, position: int | None, problem: str, segment: tuple[int, int] | None = None
    ) -> None:
        super().__init__(problem)
        self.position = position
        self.problem = problem
        self.segment = segment


async def verify(
    store_or_path: InspectableStore | str | os.PathLike[str],
    *,
    public_key: str | None = None,
    pinned: Sequence[str] = (),
    witness: Witness | str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Verify a store, or the SQLite log at a path (opened read-only, never modified).

    ``pinned`` (and ``public_key``, the older spelling of one pin) are the
    trusted checkpoint keys in hex; without them the keys the log names are
    trusted, which proves consistency but not authorship. ``witness`` (a
    Witness, a path or a URL) is a second place whose checkpoints of this log
    must all hold too. A path that is not an event log raises NotALogError;
    an unusable witness raises StorageError.
    """
    keys = [*pinned, *([public_key] if public_key else [])]
    opened: Witness | None = None
    if isinstance(witness, str | os.PathLike):
        opened = witness = open_witness(witness)
        await opened.open()
    try:
        if isinstance(store_or_path, str | os.PathLike):
            try:
                async with SqliteEventStore(Path(store_or_path), read_only=True) as store:
                    return await _verify(store, keys, witness)
            except CorruptLogError as exc:
                return VerifyReport(False, 0, exc.position, str(exc))
        try:
            return await _verify(store_or_path, keys, witness)
        except CorruptLogError as exc:
            return VerifyReport(False, 0, exc.position, str(exc))
    finally:
        if opened is not None:
            await opened.close()


async def _verify(
    store: InspectableStore, pinned: list[str], witness: Witness | None
) -> VerifyReport:
    scan = _Scan()
    judge: _Judge | None = None
    try:
        integrity = await store.integrity_problem()
        if integrity is not None:
            raise _Found(None, f"the database's integrity check failed: {integrity}")
        metadata = await store.metadata()
        log_id = metadata.get("eventlog.log_id", "")
        note = _import_note(metadata.get(IMPORT_METADATA))
        local = await store.checkpoint_entries()
        held = await witness.entries(log_id) if witness is not None else None
        judge = _Judge(
            log_id=log_id,
            metadata=metadata,
            recorded_key=metadata.get("eventlog.checkpoint_key"),
            pinned=pinned,
            note=note,
            local=local,
            witness=witness,
            held=held,
        )
        scan.wanted = judge.positions()
        async for row in store.stored_rows():
            scan.row(row)
        return judge.verdict(scan)
    except _Found as found:
        return VerifyReport(
            False,
            scan.checked,
            found.position,
            f"{store.location}: {found.problem}",
            scan.checkpoints_checked,
            segment=found.segment,
            head=scan.head,
            pinned=bool(pinned),
            keys=judge.key_uses() if judge is not None else (),
            witness=witness.location if witness is not None else None,
            imported=judge.note if judge is not None else None,
            notes=judge.trust_notes() if judge is not None else (),
        )


def _import_note(text: str | None) -> ImportNote | None:
    if text is None:
        return None
    try:
        return ImportNote.from_json(text)
    except ValueError as exc:
        raise _Found(None, f"the log's import record is unreadable: {exc}") from exc


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
        if any(column != stored for column, stored in columns.values()):
            raise _Found(position, f"position {position}: {columns_apart(columns)}")
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


@dataclass(frozen=True, slots=True)
class _Valid:
    """A checkpoint signed by a trusted key for this log, and where it was kept."""

    where: str
    record: SignedCheckpoint
    in_witness: bool

    @property
    def position(self) -> int:
        return self.record.checkpoint.position


def _keys(keys: Sequence[str]) -> str:
    named = ", ".join(repr(key) for key in keys)
    return f"the metadata key {named}" if len(keys) == 1 else f"the metadata keys {named}"


def _span(first: int, last: int) -> str:
    return f"position {first}" if first == last else f"positions {first}–{last}"


class _Judge:
    """Holds a log's checkpoints (its own and a witness's) against what the scan found."""

    def __init__(
        self,
        *,
        log_id: str,
        metadata: dict[str, str],
        recorded_key: str | None,
        pinned: list[str],
        note: ImportNote | None,
        local: list[CheckpointEntry],
        witness: Witness | None,
        held: WitnessEntries | None,
    ) -> None:
        self.log_id = log_id
        self.metadata = metadata
        self.recorded_key = recorded_key
        self.pinned = pinned
        self.note = note
        self.local = local
        self.witness = witness
        self.held = held
        self.trusted: dict[str, str] = {}
        if pinned:
            self.trusted = dict.fromkeys(pinned, "pinned")
        elif recorded_key is not None:
            self.trusted[recorded_key] = "log"
            for key in note.source_keys if note is not None else ():
                self.trusted.setdefault(key, "import source")
        self.valid: list[_Valid] = []
        self.refused: list[tuple[int | None, str]] = []
        entries = [(e, False) for e in local]
        entries += [(e, True) for e in (held.entries if held is not None else [])]
        for entry, in_witness in entries:
            self._sort(entry, in_witness)

    def _describe(self, key: str) -> str:
        origin = self.trusted.get(key)
        if origin == "pinned":
            return f"the pinned key {key_fingerprint(key)}"
        if origin == "import source":
            return f"the import source's key {key_fingerprint(key)}"
        return f"the log's key {key_fingerprint(key)}"

    def _sort(self, entry: CheckpointEntry, in_witness: bool) -> None:
        record = entry.record
        if record is None:
            self.refused.append((None, f"{entry.where}: {entry.problem}"))
            return
        checkpoint = record.checkpoint
        if record.key in self.trusted:
            if not record.signed_by_its_key():
                self.refused.append(
                    (
                        checkpoint.position,
                        f"{entry.where}: the signature does not verify as a checkpoint signed "
                        f"by {self._describe(record.key)}; a forged or damaged checkpoint is "
                        "refused",
                    )
                )
                return
        else:
            whom = (
                "a pinned key"
                if self.pinned
                else "the log's key nor that of a source it was imported from"
            )
            genuine = "" if record.signed_by_its_key() else " (and its signature does not verify)"
            source = (
                "; it is the key of the source this log was imported from: pin it too if you "
                "trust it"
                if self.note is not None and record.key in self.note.source_keys
                else ""
            )
            self.refused.append(
                (
                    checkpoint.position,
                    f"{entry.where}: the checkpoint of position {checkpoint.position} is signed "
                    f"by key {key_fingerprint(record.key)}{genuine}, which is not {whom}{source}",
                )
            )
            return
        # An imported log keeps its source's checkpoints, which name the source log.
        sources = self.note.source_logs if self.note is not None else ()
        if checkpoint.log != self.log_id and checkpoint.log not in sources:
            self.refused.append(
                (
                    checkpoint.position,
                    f"{entry.where}: signed for log {checkpoint.log!r}, not this log "
                    f"({self.log_id!r})",
                )
            )
            return
        self.valid.append(_Valid(entry.where, record, in_witness))

    def positions(self) -> set[int]:
        """The positions whose hashes the scan must keep."""
        return {v.position for v in self.valid}

    def key_uses(self) -> tuple[KeyUse, ...]:
        uses = []
        for key, origin in self.trusted.items():
            positions = [v.position for v in self.valid if v.record.key == key]
            uses.append(
                KeyUse(
                    key,
                    key_fingerprint(key),
                    origin,
                    len(positions),
                    min(positions, default=None),
                    max(positions, default=None),
                )
            )
        return tuple(uses)

    def trust_notes(self) -> tuple[str, ...]:
        notes = []
        if self.pinned:
            pins = ", ".join(key_fingerprint(key) for key in self.pinned)
            notes.append(f"trusted checkpoint keys: {pins} (pinned)")
        elif self.recorded_key is not None:
            notes.append(
                f"trusted checkpoint key {key_fingerprint(self.recorded_key)}, read from the log "
                "itself and not pinned: this shows the log agrees with itself, not who wrote it "
                "(pin the key with --key)"
            )
            for key, origin in self.trusted.items():
                if origin == "import source":
                    notes.append(
                        f"also trusted: {key_fingerprint(key)}, the import source's key, read "
                        "from the log's import record"
                    )
        if self.note is not None:
            notes.append(self.note.describe())
        return tuple(notes)

    def verdict(self, scan: _Scan) -> VerifyReport:
        """The report when every event checked out; raises _Found for the first problem."""
        head = scan.head
        self._check_positions(scan)
        self._check_keys(head)
        if self.refused:
            position, problem = min(
                self.refused, key=lambda item: -1 if item[0] is None else item[0]
            )
            raise _Found(position, problem)
        local = [v for v in self.valid if not v.in_witness]
        if not self.local:
            if head == 0:
                return self._report(scan, *self._metadata_check())
            raise _Found(
                None,
                "the log has events but no signed checkpoints: its checkpoint record is missing",
            )
        if not any(v.position == 0 for v in local):
            raise _Found(
                None,
                "the checkpoints do not start at the log's creation (position 0): "
                "the checkpoint record was replaced or truncated",
            )
        if self.witness is not None and not any(v.in_witness for v in self.valid):
            raise _Found(
                None,
                f"the witness {self.witness.location} holds no checkpoint of this log "
                f"({self.log_id!r}): it never got them, or the log's id was changed",
            )
        signer, changed = self._metadata_check()
        if changed and signer is not None and signer.record.checkpoint.final:
            raise _Found(
                None,
                f"the metadata was changed after the log was closed: {_keys(changed)} "
                f"{'differs' if len(changed) == 1 else 'differ'} from what the closing "
                f"checkpoint in {signer.where} signs (key "
                f"{key_fingerprint(signer.record.key)}); the events themselves are intact",
            )
        return self._report(scan, signer, changed)

    def _metadata_check(self) -> tuple[_Valid | None, list[str]]:
        """The checkpoint that last signed this log's metadata, and the keys that differ.

        (None, []) when no checkpoint of this log's own signs metadata (version 1
        and 2 records, or only an import source's, which sign the source's).
        """
        own = [v for v in self.valid if v.record.checkpoint.log == self.log_id]
        index = last_made([v.record.checkpoint for v in own])
        if index is None:
            return None, []
        last = own[index]
        signed = last.record.checkpoint.meta
        if signed is None:
            return None, []
        return last, metadata_changes(signed, self.metadata)

    def _check_positions(self, scan: _Scan) -> None:
        head = scan.head
        matching: list[int] = []
        first_wrong: _Valid | None = None
        first_beyond: _Valid | None = None
        for valid in sorted(self.valid, key=lambda v: v.position):
            position = valid.position
            if position > head:
                if first_beyond is None:
                    first_beyond = valid
            elif scan.hash_at.get(position) != valid.record.checkpoint.hash:
                if first_wrong is None:
                    first_wrong = valid
            else:
                matching.append(position)
            scan.checkpoints_checked += 1
        if first_wrong is not None:
            bad = first_wrong.position
            good = max((p for p in matching if p < bad), default=0)
            fingerprint = key_fingerprint(first_wrong.record.key)
            raise _Found(
                good + 1,
                f"{_span(good + 1, bad)} were rewritten: the hash at position {bad} differs "
                f"from the one signed in {first_wrong.where} (key {fingerprint}), while "
                f"{'the checkpoint at position ' + str(good) if good else 'the log start'} "
                f"still matches; the log was rewritten (and re-chained) in that segment, or "
                "replaced by another copy",
                (good + 1, bad),
            )
        if first_beyond is not None:
            raise _Found(
                head + 1,
                f"the log ends at position {head}, but {first_beyond.where} vouches for "
                f"position {first_beyond.position}: {_span(head + 1, first_beyond.position)} "
                "are missing; the tail was cut off or the log rolled back to an older copy",
                (head + 1, first_beyond.position),
            )

    def _check_keys(self, head: int) -> None:
        if not self.trusted:
            raise _Found(None, "the log records no checkpoint key")
        recorded = self.recorded_key
        if not self.pinned or recorded in self.trusted:
            return
        named = key_fingerprint(recorded) if recorded is not None else "no key"
        if not any(not v.in_witness for v in self.valid) and head > 0:
            why = (
                f"the log was imported without its source's checkpoints and re-signed by key "
                f"{named} ({self.note.describe()})"
                if self.note is not None and self.note.resigned_by == recorded
                else f"the log's metadata names key {named}; its metadata was replaced and the "
                "log re-signed with another key, or the wrong key is pinned"
            )
            raise _Found(
                1,
                f"no checkpoint of the log is signed by a pinned key, so nothing vouches for "
                f"{_span(1, head)}: {why}",
                (1, head),
            )
        if self.note is not None and self.note.resigned_by == recorded:
            raise _Found(
                None,
                f"the log's own key {named} re-signed it when it was imported "
                f"({self.note.imported_at}, from {self.note.source}) and is not pinned; pin it "
                "too if you trust the machine that imported it",
            )
        raise _Found(
            None,
            f"the log's metadata names checkpoint key {named}, not a pinned key: its metadata "
            "was replaced, or the wrong key is pinned",
        )

    def _report(self, scan: _Scan, signer: _Valid | None, changed: list[str]) -> VerifyReport:
        """The report of a sound log; `signer` and `changed` as `_metadata_check` gives them."""
        head = scan.head
        vouched = max((v.position for v in self.valid), default=None)
        at_top = [v for v in self.valid if v.position == vouched]
        closed: bool | None
        if vouched is None or vouched < head:
            closed = False
        elif any(v.record.checkpoint.final for v in at_top):
            closed = True
        elif all(v.record.checkpoint.final is None for v in at_top):
            closed = None
        else:
            closed = False
        in_witness = [v.position for v in self.valid if v.in_witness]
        notes = list(self.trust_notes())
        notes.extend(
            f"{use.fingerprint}: {use.checkpoints} checkpoints, {_span(use.lowest, use.highest)}"
            for use in self.key_uses()
            if use.lowest is not None and use.highest is not None
        )
        if head == 0:
            pass
        elif closed:
            notes.append(f"closed cleanly: a closing checkpoint vouches for the head, {head}")
        elif closed is None:
            notes.append(
                f"checkpoints of an earlier version vouch up to the head, {head}; they do not "
                "say whether the log was closed"
            )
        elif vouched is not None and vouched < head:
            notes.append(
                f"{_span(vouched + 1, head)} come after the last checkpoint, so nothing vouches "
                "for them and a cut there would not show: the writer was killed or is still "
                f"writing, or checkpoints after position {vouched} were removed (a witness tells)"
            )
        else:
            notes.append(
                f"the last checkpoint, at the head ({head}), is not a closing one: the writer "
                "was killed or is still writing, or the tail was cut together with the log's "
                "last checkpoints (a witness tells)"
            )
        if self.witness is not None and self.held is not None:
            skipped = (
                f"; {self.held.unreadable} unreadable lines skipped" if self.held.unreadable else ""
            )
            notes.append(
                f"witness {self.witness.location}: {len(in_witness)} checkpoints of this log, "
                f"up to position {max(in_witness, default=0)}{skipped}"
            )
        elif head > 0:
            notes.append(
                "no witness given: a tail cut or a rollback made together with the log's own "
                "checkpoints cannot be told from a shorter log (verify with --witness)"
            )
        if signer is None:
            if self.valid:
                notes.append(
                    "its checkpoints are of an earlier version and do not sign its metadata "
                    "(scenario, seed, clock, lineage): an edit of it would not show"
                )
        elif changed:
            notes.append(
                f"{_keys(changed)} changed after the last checkpoint, which is not a closing "
                "one: the writer was killed before it signed them, or they were edited"
            )
        else:
            notes.append(
                f"the metadata ({len(self.metadata)} keys) is as the last checkpoint signs it"
            )
        return VerifyReport(
            True,
            scan.checked,
            checkpoints_checked=scan.checkpoints_checked,
            head=head,
            pinned=bool(self.pinned),
            keys=self.key_uses(),
            vouched_until=vouched,
            closed=closed,
            witness=self.witness.location if self.witness is not None else None,
            witness_checkpoints=len(in_witness),
            witness_until=max(in_witness, default=None),
            imported=self.note,
            metadata_vouched=None if signer is None else not changed,
            metadata_changed=tuple(changed),
            notes=tuple(notes),
        )
