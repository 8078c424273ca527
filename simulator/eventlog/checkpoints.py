"""Signed checkpoints: Ed25519 signatures over (log id, position, hash, time), kept outside the log.

A checkpoint vouches that the log ``log`` had hash ``hash`` at ``position``.
Because it is kept outside the events table (a side file next to a SQLite
log, a separate table in PostgreSQL, and optionally a witness the writer can
only append to), a log whose tail was cut or that was rolled back to an
older copy no longer matches its last checkpoint.

Two record versions exist. Version 1 (``CHECKPOINT_DOMAIN``) signs log,
position, hash and time. Version 2 (``CHECKPOINT_DOMAIN_V2``, what is written
now) also signs ``final``: whether the writer wrote it as it closed the log,
so a log whose last checkpoint is not a closing one shows that its writer
died (or that its tail was cut together with its last checkpoints). Both
verify; a record's members say which it is.

Version 3 (``CHECKPOINT_DOMAIN_V3``, written since 2026-12-07) also signs
``meta``: the SHA-256 of each value of the log's metadata (the scenario's
text, the seed, the clock, a fork's lineage, the store's own keys) as it was
when the checkpoint was made. The metadata is outside the hash chain, so this
is what makes an edit of it evident: verify holds the metadata to the last
checkpoint's digests and names the keys that differ. The log's events and
their bytes are unchanged by it.

Signatures are made over ``domain + canonical bytes``, so a signature the
same key made for any other purpose (or over the other version) never
verifies as a checkpoint.
"""

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from simulator.eventlog.envelope import canonical_bytes, canonical_text
from simulator.eventlog.keys import public_key_hex

CHECKPOINT_DOMAIN = b"coop-sim/checkpoint/v1\x00"
CHECKPOINT_DOMAIN_V2 = b"coop-sim/checkpoint/v2\x00"
CHECKPOINT_DOMAIN_V3 = b"coop-sim/checkpoint/v3\x00"

_RECORD_KEYS = frozenset({"log", "position", "hash", "time", "key", "signature"})
_RECORD_KEYS_V2 = _RECORD_KEYS | {"final"}
_RECORD_KEYS_V3 = _RECORD_KEYS_V2 | {"meta"}
_DIGEST = re.compile(r"[0-9a-f]{64}")


def metadata_digests(metadata: Mapping[str, str]) -> dict[str, str]:
    """What a version-3 checkpoint signs of a log's metadata: each key's value's SHA-256."""
    return {
        key: hashlib.sha256(value.encode("utf-8")).hexdigest()
        for key, value in sorted(metadata.items())
    }


def metadata_changes(signed: Mapping[str, str], metadata: Mapping[str, str]) -> list[str]:
    """The keys whose values differ from the digests ``signed`` (added and removed ones too)."""
    now = metadata_digests(metadata)
    return sorted(key for key in signed.keys() | now.keys() if signed.get(key) != now.get(key))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The claim a checkpoint signs: log ``log`` had hash ``hash`` at ``position``.

    ``final`` is None for a version-1 record (which does not say), else
    whether the writer wrote it while closing the log. ``meta`` is None for
    a record of version 1 or 2, else the digests of the log's metadata
    (``metadata_digests``) when it was made.
    """

    log: str
    position: int
    hash: str
    time: str
    final: bool | None = None
    meta: Mapping[str, str] | None = None

    def _claim(self) -> dict[str, Any]:
        claim: dict[str, Any] = {
            "log": self.log,
            "position": self.position,
            "hash": self.hash,
            "time": self.time,
        }
        if self.final is not None:
            claim["final"] = self.final
        if self.meta is not None:
            claim["meta"] = dict(self.meta)
        return claim

    def payload(self) -> bytes:
        """The exact bytes that are signed, domain prefix included."""
        if self.meta is not None:
            domain = CHECKPOINT_DOMAIN_V3
        elif self.final is not None:
            domain = CHECKPOINT_DOMAIN_V2
        else:
            domain = CHECKPOINT_DOMAIN
        return domain + canonical_bytes(self._claim())


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with the signer's public key (hex) and the signature (hex)."""

    checkpoint: Checkpoint
    key: str
    signature: str

    def to_line(self) -> str:
        """One line of canonical JSON, no newline."""
        return canonical_text(
            {**self.checkpoint._claim(), "key": self.key, "signature": self.signature}
        )

    @classmethod
    def from_record(cls, record: Any) -> "SignedCheckpoint":
        """Read a record back; raises ValueError naming what is wrong with it."""
        if not isinstance(record, dict) or set(record) not in (
            _RECORD_KEYS,
            _RECORD_KEYS_V2,
            _RECORD_KEYS_V3,
        ):
            raise ValueError(
                f"a checkpoint has exactly the members {sorted(_RECORD_KEYS)}, or those and "
                "'final', or those, 'final' and 'meta'"
            )
        position = record["position"]
        if type(position) is not int or position < 0:
            raise ValueError("position is not a non-negative integer")
        texts = [record[key] for key in ("log", "hash", "time", "key", "signature")]
        if not all(isinstance(text, str) for text in texts):
            raise ValueError("log, hash, time, key and signature must be strings")
        final = record.get("final")
        if "final" in record and not isinstance(final, bool):
            raise ValueError("final must be true or false")
        meta = record.get("meta")
        if "meta" in record and not (
            isinstance(meta, dict)
            and all(
                isinstance(key, str) and isinstance(digest, str) and _DIGEST.fullmatch(digest)
                for key, digest in meta.items()
            )
        ):
            raise ValueError("meta must map each metadata key to a SHA-256 digest in hex")
        return cls(
            Checkpoint(record["log"], position, record["hash"], record["time"], final, meta),
            record["key"],
            record["signature"],
        )

    @classmethod
    def from_line(cls, line: str) -> "SignedCheckpoint":
        """Parse one stored line; ValueError (with the reason) if it is not a checkpoint."""
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc})") from exc
        return cls.from_record(record)

    def verifies_with(self, public_key: str) -> bool:
        """Whether this checkpoint was signed, as a checkpoint, by ``public_key`` (hex)."""
        if self.key != public_key:
            return False
        return self.signed_by_its_key()

    def signed_by_its_key(self) -> bool:
        """Whether the signature is genuine for the key the record names (trusted or not)."""
        try:
            verifier = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.key))
            verifier.verify(bytes.fromhex(self.signature), self.checkpoint.payload())
        except (InvalidSignature, ValueError):
            return False
        return True


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> SignedCheckpoint:
    """Sign a checkpoint with the log's key."""
    return SignedCheckpoint(checkpoint, public_key_hex(key), key.sign(checkpoint.payload()).hex())


@dataclass(frozen=True, slots=True)
class CheckpointEntry:
    """One stored checkpoint record, or why it could not be read; ``where`` names it."""

    where: str
    record: SignedCheckpoint | None
    problem: str | None = None


def checkpoint_path(log_path: Path) -> Path:
    """Where a SQLite log keeps its checkpoints: ``<log path>.checkpoints``."""
    return log_path.with_name(log_path.name + ".checkpoints")


class CheckpointFile:
    """A JSON Lines side file of signed checkpoints, appended one whole line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        """Whether the side file is there at all."""
        return self.path.exists()

    def _complete_text(self) -> str:
        # A final line without its newline was torn by a crash mid-write; it
        # was never a finished checkpoint, so it is not one now.
        text = self.path.read_text(encoding="utf-8")
        return text[: text.rfind("\n") + 1]

    def entries(self) -> list[CheckpointEntry]:
        """Every complete line, parsed; an unreadable line becomes an entry with a problem."""
        if not self.path.exists():
            return []
        entries = []
        for number, line in enumerate(self._complete_text().split("\n")[:-1], start=1):
            where = f"{self.path} line {number}"
            try:
                record = SignedCheckpoint.from_line(line)
            except ValueError as exc:
                entries.append(CheckpointEntry(where, None, f"unreadable checkpoint ({exc})"))
            else:
                entries.append(CheckpointEntry(where, record))
        return entries

    def last_position(self) -> int:
        """The highest position any readable line checkpoints, -1 if none."""
        positions = [e.record.checkpoint.position for e in self.entries() if e.record is not None]
        return max(positions, default=-1)

    def drop_torn_tail(self) -> None:
        """Cut off a final line that a crash left without its newline."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        complete = len(self._complete_text().encode("utf-8"))
        if complete != size:
            os.truncate(self.path, complete)

    def append(self, signed: SignedCheckpoint, *, durable: bool) -> None:
        """Add one line with a single write(), so a killed writer leaves whole lines only."""
        self.append_lines([signed.to_line()], durable=durable)

    def append_lines(self, lines: list[str], *, durable: bool) -> None:
        """Add whole lines with one write() (O_APPEND: never over someone else's line)."""
        if not lines:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, "".join(line + "\n" for line in lines).encode("utf-8"))
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)


def latest_valid(entries: list[CheckpointEntry], log_id: str, key: str) -> Checkpoint | None:
    """The checkpoint with the highest position among those genuinely signed for this log.

    Of several at that position, the last written: a change of the metadata
    alone is checkpointed again at the same position.
    """
    valid = [
        entry.record.checkpoint
        for entry in entries
        if entry.record is not None
        and entry.record.checkpoint.log == log_id
        and entry.record.verifies_with(key)
    ]
    last = last_made(valid)
    return None if last is None else valid[last]


def last_made(checkpoints: Sequence[Checkpoint]) -> int | None:
    """The index of the last checkpoint made: the highest position, then the latest time.

    Of several at one position (the metadata alone changed in between) the
    later one, and of those made at the same instant the later in the list.
    """
    if not checkpoints:
        return None
    return max(
        range(len(checkpoints)),
        key=lambda i: (checkpoints[i].position, checkpoints[i].time, i),
    )


def behind_checkpoint(checkpoint: Checkpoint, head: int, hash_there: str | None) -> str | None:
    """Why a log with this head (and this hash at the checkpoint's position) betrays it, if it does.

    A writer must not continue such a log: whatever it appended would sit on
    top of a history the checkpoint says is not the real one.
    """
    if checkpoint.position > head:
        return (
            f"the log ends at position {head}, but its last checkpoint vouches for position "
            f"{checkpoint.position}: its tail was lost or it was rolled back to an older copy"
        )
    if hash_there != checkpoint.hash:
        return (
            f"position {checkpoint.position} differs from its signed checkpoint: "
            "the log was rewritten or replaced by another copy"
        )
    return None


def unvouched_log(record: str) -> str:
    """Why a writer does not go on with a log that has events but no checkpoint of its own.

    Whatever it appended would sit on a history nothing vouches for (and, in a side file
    copied from another run, among that run's checkpoints); verify fails such a log.
    """
    return (
        f"no checkpoint in {record} vouches for this log (the record is missing, empty, or "
        "holds another log's checkpoints only); refusing to append to it (run verify)"
    )
