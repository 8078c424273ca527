"""The SQLite event store: one file in WAL mode, one connection on one dedicated thread.

Durability: ``synchronous="FULL"`` (the default) syncs the WAL at every
commit, so an acknowledged append survives a power loss. ``"NORMAL"`` is
faster but may lose the last transactions on power loss (never on a process
crash); the database is never corrupted either way. Losing committed events
that way shows up in verify() as a log behind its last checkpoint.

Safety of other people's files: a path that exists is opened only if its
SQLite header carries this project's application id; anything else is refused
before SQLite touches it (SQLite would otherwise happily switch a foreign
database to WAL mode, or roll back its journal). A new log is built under a
temporary name and linked into place, so a crash never leaves half a log
behind and an existing file is never overwritten.
"""

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.context import secret_hex
from simulator.eventlog.batch import Existing, Plan, plan_batch
from simulator.eventlog.checkpoints import (
    Checkpoint,
    CheckpointEntry,
    CheckpointFile,
    SignedCheckpoint,
    behind_checkpoint,
    checkpoint_path,
    latest_valid,
    metadata_digests,
    sign_checkpoint,
    unvouched_log,
)
from simulator.eventlog.envelope import GENESIS_HASH, Event, NewEvent, format_time
from simulator.eventlog.errors import (
    CorruptLogError,
    LogError,
    LogNotFoundError,
    NotALogError,
    SigningKeyError,
    StorageError,
    format_problem,
)
from simulator.eventlog.keys import default_key_path, load_or_create_signing_key, public_key_hex
from simulator.eventlog.settings import resolve_checkpointing
from simulator.eventlog.store import (
    IMPORT_METADATA,
    RESERVED_METADATA_PREFIX,
    Appended,
    StoredRow,
)
from simulator.eventlog.stored import (
    PAGE_SIZE,
    READ_COLUMNS,
    ReadRow,
    Wakeup,
    chained,
    decode_row,
)
from simulator.eventlog.timer import CheckpointTimer
from simulator.eventlog.upgrade import UpgradeRegistry
from simulator.eventlog.witness import Witness, WitnessCopy

APPLICATION_ID = 0x436F536D
"""``PRAGMA application_id`` of every log ("CoSm"): how a log is told from other SQLite files."""

FORMAT = "coop-sim-eventlog/1"
SCHEMA_VERSION = 1

SCHEMA_SQL = (
    """CREATE TABLE events (
        position INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        subject TEXT,
        caseversion INTEGER NOT NULL,
        type TEXT NOT NULL,
        hash TEXT NOT NULL,
        body TEXT NOT NULL
    ) STRICT""",
    # Unique, so that two events can never claim the same version of a case.
    """CREATE UNIQUE INDEX events_case ON events (subject, caseversion)
        WHERE subject IS NOT NULL""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
)
"""The tables of a log; the benchmark's raw baseline uses the same ones."""

INSERT_SQL = (
    "INSERT INTO events (position, id, subject, caseversion, type, hash, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ID_CHUNK = 500
# Case versions cached between appends (a lookup per case per batch otherwise
# costs more than sealing the events); cleared past this many cases.
_VERSION_CACHE_LIMIT = 100_000
_ROW_COLUMNS = "position, id, subject, caseversion, type, hash, body"
# The body as the bytes SQLite holds, UTF-8 in every log this module makes:
# the hash is checked on them and the parser takes them as they are, so
# decoding to str and encoding back is skipped. (A database in UTF-16, which
# only someone else could have made, is read as text; see _check_schema_sync.)
_READ_BYTES_COLUMNS = "position, id, subject, caseversion, type, hash, CAST(body AS BLOB)"

T = TypeVar("T")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_header(path: Path) -> None:
    """Refuse, without opening it as a database, a file that is not one of our logs."""
    if path.is_dir():
        raise NotALogError(str(path), "a directory, not a log file")
    with path.open("rb") as file:
        header = file.read(100)
    if not header:
        raise NotALogError(str(path), "the file is empty")
    if not header.startswith(_SQLITE_MAGIC):
        raise NotALogError(str(path), "not a SQLite database")
    if len(header) < 100:
        raise NotALogError(str(path), "a SQLite header cut short")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id != APPLICATION_ID:
        raise NotALogError(
            str(path),
            f"a SQLite database of another application (application_id {application_id:#x})",
        )


class SqliteEventStore:
    """An EventStore in one SQLite file; see the module docstring for the guarantees.

    ``now`` supplies the wall-clock time of checkpoints and is required unless
    ``read_only``. A signed checkpoint is written once ``checkpoint_every``
    events were appended since the last one, ``checkpoint_seconds`` after an
    append no checkpoint covers yet (0: no timer), and as the store closes
    (a closing one, ``final``). ``witness`` (a path, a URL or a Witness) gets
    a copy of each. Left as None, the three come from CheckpointSettings
    (the environment, then its defaults). ``create`` allows creating the log
    when ``path`` does not exist.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        now: Callable[[], datetime] | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_ms: int = 5000,
        busy_retries: int = 3,
        checkpoint_every: int | None = None,
        checkpoint_seconds: float | None = None,
        witness: str | os.PathLike[str] | Witness | None = None,
        create: bool = True,
        read_only: bool = False,
        signing_key: Ed25519PrivateKey | None = None,
        key_path: Path | None = None,
        upgrades: UpgradeRegistry | None = None,
        poll_interval: float = 0.2,
        log_id: str | None = None,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError('synchronous must be "FULL" or "NORMAL"')
        if busy_timeout_ms < 0 or busy_retries < 0:
            raise ValueError("busy_timeout_ms >= 0, busy_retries >= 0")
        if now is None and not read_only:
            raise ValueError("a writable store needs now= to time its checkpoints")
        self._path = Path(path)
        self._now = now
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._busy_retries = busy_retries
        every, seconds, witness_at = resolve_checkpointing(
            read_only, checkpoint_every, checkpoint_seconds, witness
        )
        self._checkpoint_every = every
        self._timer = CheckpointTimer(
            seconds, self._timed_checkpoint, name=f"eventlog[{self._path.name}].checkpoints"
        )
        self._witness = WitnessCopy(witness_at)
        self._create = create
        self._read_only = read_only
        self._signing_key = signing_key
        self._key_path = key_path
        self._upgrades = upgrades
        self._log_id_for_creation = log_id
        self._wakeup = Wakeup(poll_interval)
        self._executor: ThreadPoolExecutor | None = None
        self._checkpoints = CheckpointFile(checkpoint_path(self._path))
        # Owned by the store's thread once open.
        self._conn: sqlite3.Connection | None = None
        self._log_id = ""
        self._head = 0
        self._last_hash = GENESIS_HASH
        self._checkpointed = -1
        self._appended = False
        # Set when the metadata changes, cleared by the checkpoint that signs its digests.
        self._metadata_changed = False
        self._genesis: SignedCheckpoint | None = None
        self._versions: dict[str, int] = {}
        self._read_columns = _READ_BYTES_COLUMNS

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open (or create) the log; raises NotALogError/CorruptLogError for anything else."""
        if self._executor is not None:
            raise LogError(f"{self._path}: store is already open")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="eventlog-sqlite")
        try:
            # The witness first: a log is not created when its witness is unusable.
            await self._witness.open()
            await self._run(self._open_sync)
            if not self._read_only:
                await self._start_checkpointing()
        except BaseException:
            if self._conn is not None:
                await self._run(self._release_sync)
            self._executor.shutdown(wait=True)
            self._executor = None
            await self._witness.close()
            raise

    async def _start_checkpointing(self) -> None:
        """Start the timer; a new log's genesis checkpoint goes to the witness too."""
        if self._genesis is not None:
            await self._witness.record(self._genesis)
            self._genesis = None
        self._timer.start()

    async def close(self) -> None:
        """Write a closing checkpoint if this store appended, then close the database."""
        if self._executor is None:
            return
        try:
            await self._timer.stop()
            final = await self._run(self._close_sync)
            if final is not None:
                await self._witness.record(final)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None
            await self._witness.close()

    async def _timed_checkpoint(self) -> None:
        signed = await self._run(self._checkpoint_if_behind_sync)
        if signed is not None:
            await self._witness.record(signed)

    async def adopt_checkpoints(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        """Keep the checkpoints an import's source signed over these same events, as they are."""
        # Not copied to this log's witness: they name the source log, and vouch for it
        # wherever the source kept them.
        durable = self._synchronous == "FULL"
        lines = [c.to_line() for c in checkpoints]
        await self._run(lambda: self._checkpoints.append_lines(lines, durable=durable))

    async def record_import(self, note: str) -> None:
        """Record how this log was imported (the store's own metadata: who re-signed what)."""
        await self._run(self._set_metadata_sync, IMPORT_METADATA, note)
        self._timer.appended()

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def location(self) -> str:
        """The log file, as text for messages."""
        return str(self._path)

    @property
    def log_id(self) -> str:
        """The id this log was given at creation; checkpoints name it."""
        return self._log_id

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise LogError(f"{self._path}: store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        except sqlite3.OperationalError as exc:
            raise StorageError(str(self._path), f"database operation failed ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptLogError(str(self._path), f"the database is damaged ({exc})") from exc

    # -- on the store's thread ---------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LogError(f"{self._path}: store is not open")
        return self._conn

    def _open_sync(self) -> None:
        if not self._path.exists():
            if self._read_only or not self._create:
                raise LogNotFoundError(str(self._path))
            self._create_sync()
        check_header(self._path)
        mode = "ro" if self._read_only else "rw"
        uri = f"{self._path.resolve().as_uri()}?mode={mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, cached_statements=64)
        except sqlite3.Error as exc:
            raise StorageError(str(self._path), f"cannot open ({exc})") from exc
        try:
            self._conn = conn
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")
            self._check_schema_sync()
            if not self._read_only:
                # Already WAL since creation; asking again is a no-op that
                # repairs a log someone switched to another journal mode.
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._head, self._last_hash = self._tip_sync()
            if not self._read_only:
                self._prepare_checkpoints_sync()
        except sqlite3.OperationalError as exc:
            conn.close()
            self._conn = None
            raise StorageError(str(self._path), f"cannot open ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._conn = None
            raise CorruptLogError(str(self._path), f"cannot read the log ({exc})") from exc
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _check_schema_sync(self) -> None:
        conn = self._db()
        (user_version,) = conn.execute("PRAGMA user_version").fetchone()
        if user_version > SCHEMA_VERSION:
            raise LogError(
                f"{self._path}: written by a newer version of the simulator "
                f"(schema {user_version}, this one reads {SCHEMA_VERSION})"
            )
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}
        if not {"events", "meta"} <= tables:
            raise CorruptLogError(
                str(self._path), "marked as an event log but its tables are missing"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("eventlog.format") != FORMAT:
            raise CorruptLogError(
                str(self._path), format_problem(meta.get("eventlog.format"), FORMAT)
            )
        self._log_id = meta.get("eventlog.log_id", "")
        (encoding,) = conn.execute("PRAGMA encoding").fetchone()
        self._read_columns = _READ_BYTES_COLUMNS if encoding == "UTF-8" else READ_COLUMNS

    def _clock(self) -> datetime:
        if self._now is None:
            raise LogError(f"{self._path}: opened read-only, it has no clock to write with")
        return self._now()

    def _create_sync(self) -> None:
        key = self._key_sync()
        log_id = self._log_id_for_creation or secret_hex(16)
        temporary = self._path.with_name(f"{self._path.name}.creating-{os.getpid()}")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)
        try:
            self._build_sync(temporary, key, log_id)
            _fsync(temporary)
            self._link_into_place(temporary)
        except sqlite3.Error as exc:
            raise StorageError(str(self._path), f"cannot create the log ({exc})") from exc
        finally:
            temporary.unlink(missing_ok=True)
        _fsync(self._path.parent)

    def _link_into_place(self, temporary: Path) -> None:
        try:
            # link() never replaces: if someone created the log meanwhile, theirs wins.
            os.link(temporary, self._path)
        except FileExistsError:
            pass
        except OSError:
            # A filesystem without hard links: rename is atomic as well but
            # would replace a file created since we looked, so look again first.
            if not self._path.exists():
                os.replace(temporary, self._path)

    def _build_sync(self, temporary: Path, key: Ed25519PrivateKey, log_id: str) -> None:
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA_SQL:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("eventlog.format", FORMAT),
                    ("eventlog.log_id", log_id),
                    ("eventlog.checkpoint_key", public_key_hex(key)),
                    ("eventlog.created", format_time(self._clock())),
                ],
            )
            conn.execute("COMMIT")
        finally:
            # Closing the last connection folds the WAL into the main file, so
            # the file linked into place is complete on its own.
            conn.close()

    def _key_sync(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            self._signing_key = load_or_create_signing_key(self._key_path)
        return self._signing_key

    def _prepare_checkpoints_sync(self) -> None:
        key = self._key_sync()
        recorded = self._get_metadata_sync("eventlog.checkpoint_key")
        if recorded != public_key_hex(key):
            raise SigningKeyError(
                str(self._key_path or default_key_path()),
                f"this key ({public_key_hex(key)[:16]}...) is not the checkpoint key of "
                f"{self._path} ({(recorded or 'none')[:16]}...); open the log read-only, "
                "or use the key it was created with",
            )
        self._checkpoints.drop_torn_tail()
        if not self._checkpoints.exists() and self._head == 0:
            # A new log (or one whose creator died before this line): the
            # genesis checkpoint makes a missing side file detectable later.
            self._genesis = self._write_checkpoint_sync()
        latest = latest_valid(self._checkpoints.entries(), self._log_id, public_key_hex(key))
        if latest is None and self._head > 0:
            raise CorruptLogError(
                str(self._path),
                unvouched_log(str(self._checkpoints.path)),
            )
        self._checkpointed = -1 if latest is None else latest.position
        if latest is not None:
            problem = behind_checkpoint(latest, self._head, self._hash_at_sync(latest.position))
            if problem is not None:
                raise CorruptLogError(
                    str(self._path),
                    f"{problem}; refusing to append to it (run verify)",
                    min(latest.position, self._head + 1),
                )

    def _hash_at_sync(self, position: int) -> str | None:
        if position == 0:
            return GENESIS_HASH
        row = (
            self._db().execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchone()
        )
        return None if row is None else str(row[0])

    def _write_checkpoint_sync(self, *, final: bool = False) -> SignedCheckpoint:
        meta = metadata_digests(self._metadata_sync())
        checkpoint = Checkpoint(
            self._log_id, self._head, self._last_hash, format_time(self._clock()), final, meta
        )
        signed = sign_checkpoint(checkpoint, self._key_sync())
        self._checkpoints.append(signed, durable=self._synchronous == "FULL")
        self._checkpointed = self._head
        self._metadata_changed = False
        return signed

    def _checkpoint_if_behind_sync(self) -> SignedCheckpoint | None:
        if self._conn is None or (self._head <= self._checkpointed and not self._metadata_changed):
            return None
        return self._write_checkpoint_sync()

    def _close_sync(self) -> SignedCheckpoint | None:
        conn = self._conn
        if conn is None:
            return None
        try:
            if self._appended or self._metadata_changed:
                # Always, even at a position already checkpointed: a closing
                # checkpoint at the head is how verify tells a log closed
                # cleanly from one whose writer died or whose tail was cut,
                # and it signs the metadata as the writer left it.
                self._head, self._last_hash = self._tip_sync()
                return self._write_checkpoint_sync(final=True)
            return None
        finally:
            self._conn = None
            conn.close()

    def _release_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _tip_sync(self) -> tuple[int, str]:
        row = (
            self._db()
            .execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .fetchone()
        )
        return (0, GENESIS_HASH) if row is None else (row[0], row[1])

    def _begin_sync(self) -> None:
        conn = self._db()
        for attempt in range(self._busy_retries + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == self._busy_retries:
                    raise StorageError(
                        str(self._path),
                        f"database busy: another writer held it through {attempt + 1} waits "
                        f"of {self._busy_timeout_ms} ms",
                    ) from exc
                # busy_timeout already waited; back off a little more before retrying.
                time.sleep(0.05 * (attempt + 1))
            else:
                return

    def _append_sync(
        self, batch: Sequence[NewEvent]
    ) -> tuple[list[Appended], SignedCheckpoint | None]:
        if self._read_only:
            raise LogError(f"{self._path}: opened read-only")
        plan = None
        for optimistic in (True, False):
            try:
                plan = self._write_sync(batch, optimistic=optimistic)
            except sqlite3.IntegrityError as exc:
                self._rollback_sync()
                if optimistic:
                    # An id or a case version the guess missed: planned again from
                    # what is stored (and refused there, if it is a real conflict).
                    continue
                raise StorageError(
                    str(self._path), f"append failed, nothing written ({exc})"
                ) from exc
            except sqlite3.Error as exc:
                self._rollback_sync()
                raise StorageError(
                    str(self._path), f"append failed, nothing written ({exc})"
                ) from exc
            except BaseException:
                self._rollback_sync()
                raise
            break
        assert plan is not None
        self._head, self._last_hash = plan.head, plan.last_hash
        if len(self._versions) + len(plan.versions) > _VERSION_CACHE_LIMIT:
            self._versions.clear()
        self._versions.update(plan.versions)
        signed = None
        if plan.rows:
            self._appended = True
            if self._head - self._checkpointed >= self._checkpoint_every:
                signed = self._write_checkpoint_sync()
        return plan.results, signed

    def _write_sync(self, batch: Sequence[NewEvent], *, optimistic: bool) -> Plan:
        """Plan the batch on the stored tip and write it, in one transaction.

        ``optimistic``: guess that none of the batch's ids is stored yet and that a
        case missing from the version cache has no events (true of nearly every append
        of a run: the umpire decides each message id once, and opens most cases
        itself), instead of looking them up. The unique indexes on ids and on case
        versions refuse a wrong guess (a stored case has a version 1): the caller
        then rolls back and writes the batch again, looking everything up, so the
        result is the same either way. Conditional appends are always looked up.
        """
        conn = self._db()
        self._begin_sync()
        head, last_hash = self._tip_sync()
        if (head, last_hash) != (self._head, self._last_hash):
            # Someone else appended since our last look: cached versions are stale.
            self._versions.clear()
        subjects = {p.subject for p in batch if p.subject is not None}
        if optimistic and all(p.expected_version is None for p in batch):
            existing: dict[str, Existing] = {}
            versions: Mapping[str, int] = self._cached_versions(subjects)
        else:
            existing = self._existing_sync([proposal.id for proposal in batch])
            versions = self._versions_sync(subjects)
        plan = plan_batch(
            batch, head=head, last_hash=last_hash, existing=existing, versions=versions
        )
        if plan.rows:
            conn.executemany(INSERT_SQL, plan.rows)
        conn.execute("COMMIT")
        return plan

    def _cached_versions(self, subjects: set[str]) -> Mapping[str, int]:
        """The cached versions of these cases, and 0 (no events) for those not cached."""
        versions = self._versions
        return {subject: versions.get(subject, 0) for subject in subjects}

    def _rollback_sync(self) -> None:
        conn = self._db()
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _existing_sync(self, ids: list[str]) -> dict[str, Existing]:
        conn = self._db()
        found: dict[str, Existing] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            for event_id, position, caseversion, digest, body in conn.execute(
                f"SELECT id, position, caseversion, hash, body FROM events WHERE id IN ({marks})",
                chunk,
            ):
                found[event_id] = Existing(position, caseversion, digest, body)
        return found

    def _versions_sync(self, subjects: set[str]) -> dict[str, int]:
        """The versions of these cases, from the cache where it has them."""
        versions = self._versions
        # Not `subjects - versions.keys()`: with a dict view on the right that walks the
        # whole cache (every case of the run) on each append.
        missing = {subject for subject in subjects if subject not in versions}
        if len(versions) + len(missing) > _VERSION_CACHE_LIMIT:
            versions.clear()
            missing = subjects
        conn = self._db()
        # One query per chunk, not per case: in a load run most cases of a batch are new,
        # and a query each cost more than sealing their events.
        wanted = list(missing)
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            found = dict(
                conn.execute(
                    "SELECT subject, max(caseversion) FROM events"
                    f" WHERE subject IN ({marks}) GROUP BY subject",
                    chunk,
                ).fetchall()
            )
            for subject in chunk:
                versions[subject] = found.get(subject, 0)
        return versions

    def _page_sync(self, from_position: int, until: int | None, limit: int) -> list[ReadRow]:
        rows: list[ReadRow] = (
            self._db()
            .execute(
                f"SELECT {self._read_columns} FROM events WHERE position >= ? AND position <= ?"
                " ORDER BY position LIMIT ?",
                (from_position, until if until is not None else 2**63 - 1, limit),
            )
            .fetchall()
        )
        return rows

    def _case_sync(self, case_id: str, upgrade: bool) -> list[Event]:
        rows = (
            self._db()
            .execute(
                f"SELECT {self._read_columns} FROM events WHERE subject = ? ORDER BY caseversion",
                (case_id,),
            )
            .fetchall()
        )
        upgrades = self._upgrades if upgrade else None
        location = self.location
        return [decode_row(location, row, upgrades) for row in rows]

    def _stored_rows_sync(self, from_position: int, limit: int) -> list[StoredRow]:
        rows = (
            self._db()
            .execute(
                f"SELECT {_ROW_COLUMNS} FROM events WHERE position >= ? ORDER BY position LIMIT ?",
                (from_position, limit),
            )
            .fetchall()
        )
        return [StoredRow(*row) for row in rows]

    def _get_metadata_sync(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_metadata_sync(self, key: str, value: str) -> None:
        if self._read_only:
            raise LogError(f"{self._path}: opened read-only")
        conn = self._db()
        self._begin_sync()
        try:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback_sync()
            raise
        self._metadata_changed = True

    def _metadata_sync(self) -> dict[str, str]:
        return dict(self._db().execute("SELECT key, value FROM meta ORDER BY key").fetchall())

    def _integrity_sync(self) -> str | None:
        problems = [row[0] for row in self._db().execute("PRAGMA integrity_check")]
        return None if problems == ["ok"] else "; ".join(problems)

    # -- the EventStore interface ------------------------------------------

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        """See EventStore.append."""
        if not batch:
            return []
        results, signed = await self._run(self._append_sync, batch)
        self._wakeup.notify()
        self._timer.appended()
        if signed is not None:
            await self._witness.record(signed)
        return results

    async def _fetch(self, from_position: int, until: int | None, limit: int) -> list[ReadRow]:
        return await self._run(self._page_sync, from_position, until, limit)

    def read(
        self, from_position: int = 1, until: int | None = None, *, upgrade: bool = True
    ) -> AsyncIterator[Event]:
        """See EventStore.read."""
        # chained() itself, not an async generator wrapped around it: one
        # await less per event.
        upgrades = self._upgrades if upgrade else None
        return chained(self.location, self._fetch, from_position, until, upgrades)

    def follow(self, from_position: int = 1, *, upgrade: bool = True) -> AsyncIterator[Event]:
        """See EventStore.follow; polls every poll_interval, wakes at once on local appends."""
        upgrades = self._upgrades if upgrade else None
        wait = self._wakeup.waiter()
        return chained(self.location, self._fetch, from_position, None, upgrades, wait)

    async def read_case(self, case_id: str, *, upgrade: bool = True) -> list[Event]:
        """See EventStore.read_case."""
        return await self._run(self._case_sync, case_id, upgrade)

    async def head(self) -> int:
        """See EventStore.head."""
        tip = await self._run(self._tip_sync)
        return tip[0]

    async def get_metadata(self, key: str) -> str | None:
        """See EventStore.get_metadata."""
        return await self._run(self._get_metadata_sync, key)

    async def set_metadata(self, key: str, value: str) -> None:
        """See EventStore.set_metadata; ``eventlog.*`` keys belong to the store."""
        if key.startswith(RESERVED_METADATA_PREFIX):
            raise ValueError(
                f"metadata keys starting with {RESERVED_METADATA_PREFIX!r} are reserved"
            )
        await self._run(self._set_metadata_sync, key, value)
        # Signed by a checkpoint within the timer's window, as an append is.
        self._timer.appended()

    async def metadata(self) -> dict[str, str]:
        """See EventStore.metadata."""
        return await self._run(self._metadata_sync)

    # -- the InspectableStore interface ------------------------------------

    async def stored_rows(self, from_position: int = 1) -> AsyncIterator[StoredRow]:
        """Rows exactly as stored, in position order, without any check."""
        while True:
            rows = await self._run(self._stored_rows_sync, from_position, PAGE_SIZE)
            for row in rows:
                yield row
            if len(rows) < PAGE_SIZE:
                return
            from_position = rows[-1].position + 1

    async def integrity_problem(self) -> str | None:
        """What ``PRAGMA integrity_check`` found, None if it says ok."""
        return await self._run(self._integrity_sync)

    async def checkpoint_entries(self) -> list[CheckpointEntry]:
        """The records of the ``<path>.checkpoints`` side file."""
        return await self._run(self._checkpoints.entries)
