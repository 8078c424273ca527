"""A witness: a second place for a log's signed checkpoints, one its writer cannot rewrite.

The log's own checkpoints sit beside it (a side file, a table in its
schema), so whoever can rewrite the log can rewrite them too: cut the tail
and the last checkpoint lines with it, or put back an older copy of both.
A witness keeps a copy of every checkpoint somewhere the writer may only
append to, and verify(witness=...) holds the log to those copies as well.

- **A file** (``--witness PATH``; a directory means ``PATH/checkpoints.jsonl``):
  JSON Lines, one signed checkpoint per line, appended with O_APPEND and
  fsynced. Many logs may share one (each line names its log). That the
  writer cannot rewrite it is the operator's part: another user's
  directory the writer may only append to (``chattr +a``), another
  machine's mount, a copy shipped off the machine.
- **A PostgreSQL table** (``postgresql://…?schema=NAME``, default schema
  ``witness``): ``NAME.checkpoints (seq, log, record, written)``, created by
  an administrator with create_witness(); the writer's role is granted
  INSERT only (UPDATE, DELETE and TRUNCATE revoked), so it can add
  checkpoints but never change or remove one. ``written`` is the server's
  clock, which the writer does not control.

Unreadable lines (a torn write, garbage someone appended) are skipped and
counted: anyone who may append could add them, and they can hide nothing.
"""

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from simulator.eventlog.checkpoints import CheckpointEntry, SignedCheckpoint
from simulator.eventlog.errors import StorageError

WITNESS_FILE_NAME = "checkpoints.jsonl"
DEFAULT_WITNESS_SCHEMA = "witness"

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WitnessEntries:
    """What a witness holds for one log, and how many of its lines it could not read."""

    entries: list[CheckpointEntry]
    unreadable: int


class Witness(Protocol):
    """Somewhere checkpoints are copied to and read back from."""

    @property
    def location(self) -> str:
        """Where, for messages (no password)."""
        ...

    async def open(self) -> None:
        """Get ready to read; StorageError naming the witness if it cannot be used."""
        ...

    async def open_for_writing(self) -> None:
        """Get ready to record, checking now that it can; StorageError if it cannot."""
        ...

    async def close(self) -> None:
        """Let go of the witness."""
        ...

    async def record(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        """Add these checkpoints, durably, in order; StorageError if that failed."""
        ...

    async def entries(self, log_id: str) -> WitnessEntries:
        """Every checkpoint this witness holds for ``log_id``, in the order it got them."""
        ...


def is_postgres_witness(location: str) -> bool:
    return location.startswith(_POSTGRES_SCHEMES)


def split_witness_url(url: str) -> tuple[str, str]:
    """The libpq URL without the ``schema`` parameter, and the witness schema it names."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_WITNESS_SCHEMA)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def open_witness(location: str | os.PathLike[str]) -> Witness:
    """A witness for a location (not yet opened): a path, or a ``postgresql://`` URL."""
    text = str(location)
    if is_postgres_witness(text):
        # Imported here: psycopg costs a tenth of a second a file witness never needs.
        from simulator.eventlog.witness_postgres import PostgresWitness  # noqa: PLC0415

        url, schema = split_witness_url(text)
        return PostgresWitness(url, schema=schema)
    return FileWitness(Path(text))


class FileWitness:
    """Checkpoints appended to a JSON Lines file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self._given = path
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    async def open(self) -> None:
        """Resolve a directory to its file; the file itself is created on first record."""
        if self._given.is_dir():
            self.path = self._given / WITNESS_FILE_NAME

    async def open_for_writing(self) -> None:
        """As open(), and make sure now that a line can be appended."""
        await self.open()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(
                self.location, f"cannot append to the witness ({exc.strerror or exc})"
            ) from exc
        os.close(fd)

    async def close(self) -> None:
        return None

    async def record(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        if checkpoints:
            await asyncio.to_thread(self._append, [c.to_line() for c in checkpoints])

    def _append(self, lines: list[str]) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(
                self.location, f"cannot append to the witness ({exc.strerror or exc})"
            ) from exc
        try:
            text = "".join(line + "\n" for line in lines)
            size = os.fstat(fd).st_size
            # A line torn by a writer killed mid-write would swallow ours; start
            # afresh so that only the torn line is unreadable. (The witness may
            # not be truncated: it is append-only.)
            if size and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        except OSError as exc:
            raise StorageError(
                self.location, f"cannot append to the witness ({exc.strerror or exc})"
            ) from exc
        finally:
            os.close(fd)

    async def entries(self, log_id: str) -> WitnessEntries:
        return await asyncio.to_thread(self._entries, log_id)

    def _entries(self, log_id: str) -> WitnessEntries:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return WitnessEntries([], 0)
        except OSError as exc:
            raise StorageError(
                self.location, f"cannot read the witness ({exc.strerror or exc})"
            ) from exc
        entries = []
        unreadable = 0
        # A final line without its newline is a write still under way or torn.
        for number, line in enumerate(text[: text.rfind("\n") + 1].split("\n")[:-1], start=1):
            if not line:
                continue
            try:
                record = SignedCheckpoint.from_line(line)
            except ValueError:
                unreadable += 1
                continue
            if record.checkpoint.log == log_id:
                entries.append(CheckpointEntry(f"witness {self.path} line {number}", record))
        return WitnessEntries(entries, unreadable)


class WitnessCopy:
    """A writer's link to its witness, if it has one: copies in order, a failed one sent again.

    A witness that cannot be used when the store opens stops the store from
    opening (StorageError). Once running, a failed copy is kept and sent
    again with the next checkpoint, and logged as a warning: the log itself
    is fine, and stopping an exercise because its second copy of the
    checkpoints lags would lose more than it protects. verify() shows how
    far the witness got.
    """

    def __init__(self, witness: Witness | None) -> None:
        self.witness = witness
        self._pending: list[SignedCheckpoint] = []
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self.witness is not None:
            await self.witness.open_for_writing()

    async def record(self, *checkpoints: SignedCheckpoint) -> None:
        if self.witness is None or not checkpoints:
            return
        async with self._lock:
            self._pending.extend(checkpoints)
            try:
                await self.witness.record(self._pending)
            except StorageError as exc:
                log.warning(
                    "witness_copy_failed",
                    witness=self.witness.location,
                    waiting=len(self._pending),
                    error=str(exc),
                )
            else:
                self._pending = []

    async def close(self) -> None:
        if self.witness is not None:
            if self._pending:
                log.warning(
                    "witness_copies_lost",
                    witness=self.witness.location,
                    checkpoints=[c.checkpoint.position for c in self._pending],
                )
            await self.witness.close()
