"""The PostgreSQL event store: one schema per log, psycopg 3 async, writers serialised.

Why writers take ``LOCK TABLE events IN EXCLUSIVE MODE`` inside the append
transaction: positions are assigned as head + 1, and a reader that has seen
position n must never later discover an n - 1 that committed after it.
Holding the lock until commit makes commit order equal position order (the
next writer cannot even read the head before the previous one committed), so
the committed rows are always a prefix with no holes. The lock does not
conflict with plain SELECTs, so readers never wait for writers.

Signed checkpoints live in the schema's ``checkpoints`` table, outside the
events table, one canonical JSON record per row. Whoever may write the log
may write that table too; a witness (``simulator.eventlog.witness``: a table
the writer's role may only INSERT into) keeps a copy it cannot rewrite.
"""

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql

from simulator.context import secret_hex
from simulator.eventlog.batch import Existing, plan_batch
from simulator.eventlog.checkpoints import (
    Checkpoint,
    CheckpointEntry,
    SignedCheckpoint,
    behind_checkpoint,
    latest_valid,
    metadata_digests,
    sign_checkpoint,
    unvouched_log,
)
from simulator.eventlog.envelope import GENESIS_HASH, Event, NewEvent, format_time
from simulator.eventlog.errors import (
    CorruptLogError,
    FencedError,
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

FORMAT = "coop-sim-eventlog/1"
# The metadata key of the log's fencing token (`PostgresEventStore.claim`).
OWNER_KEY = RESERVED_METADATA_PREFIX + "owner"

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TABLES = frozenset({"events", "meta", "checkpoints"})

_CREATE = (
    """CREATE TABLE {events} (
        position bigint PRIMARY KEY,
        id text NOT NULL UNIQUE,
        subject text,
        caseversion bigint NOT NULL,
        type text NOT NULL,
        hash text NOT NULL,
        body text NOT NULL
    )""",
    # Unique, so that two events can never claim the same version of a case.
    """CREATE UNIQUE INDEX ON {events} (subject, caseversion) WHERE subject IS NOT NULL""",
    "CREATE TABLE {meta} (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE {checkpoints} (seq bigserial PRIMARY KEY, record text NOT NULL)",
)


class PostgresEventStore:
    """An EventStore in one PostgreSQL schema; see the module docstring for the guarantees.

    ``url`` is a libpq connection string or URI. ``schema`` must be a plain
    lower-case identifier; an absent or empty schema becomes a new log when
    ``create`` allows it, a schema holding anything else is refused. ``now``
    times the checkpoints and is required unless ``read_only``. Checkpoints
    (``checkpoint_every``, ``checkpoint_seconds``, ``witness``) work as in
    SqliteEventStore.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "eventlog",
        now: Callable[[], datetime] | None = None,
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
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r} is not a plain lower-case identifier")
        if now is None and not read_only:
            raise ValueError("a writable store needs now= to time its checkpoints")
        self._url = url
        self._schema = schema
        self._now = now
        every, seconds, witness_at = resolve_checkpointing(
            read_only, checkpoint_every, checkpoint_seconds, witness
        )
        self._checkpoint_every = every
        self._timer = CheckpointTimer(
            seconds, self._timed_checkpoint, name=f"eventlog[{schema}].checkpoints"
        )
        self._witness = WitnessCopy(witness_at)
        self._genesis: SignedCheckpoint | None = None
        self._create = create
        self._read_only = read_only
        self._signing_key = signing_key
        self._key_path = key_path
        self._upgrades = upgrades
        self._log_id_for_creation = log_id
        self._wakeup = Wakeup(poll_interval)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        # One statement at a time on the one connection; a transaction must
        # not interleave with another task's statements.
        self._lock = asyncio.Lock()
        self._location = f"postgresql schema {schema}"
        self._log_id = ""
        self._checkpointed = -1
        self._appended = False
        # Set when this store changes the metadata, cleared by the checkpoint that signs it.
        self._metadata_changed = False
        # The fencing token this store's appends carry (`claim`), or None: not fenced.
        self._owner: str | None = None
        self._q = {name: sql.Identifier(schema, name) for name in ("events", "meta", "checkpoints")}

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(**self._q)

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
        """Connect, and create the log if the schema is absent or empty and creation is allowed."""
        if self._conn is not None:
            raise LogError(f"{self._location}: store is already open")
        # The witness first: a log is not created when its witness is unusable.
        await self._witness.open()
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            await self._witness.close()
            raise StorageError(self._location, f"cannot connect ({exc})") from exc
        info = conn.info
        self._location = (
            f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname} schema {self._schema}"
        )
        self._conn = conn
        try:
            async with self._lock:
                await self._open_locked(conn)
            if self._genesis is not None:
                await self._witness.record(self._genesis)
                self._genesis = None
        except BaseException:
            self._conn = None
            await conn.close()
            await self._witness.close()
            raise
        if not self._read_only:
            self._timer.start()

    async def _open_locked(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.transaction():
            # Serialises concurrent creators of the same schema.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"coop-sim-eventlog:{self._schema}",)
            )
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (self._schema,)
            )
            schema_exists = (await _one(cursor))[0] == 1
            cursor = await conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s",
                (self._schema,),
            )
            relations = {name for (name,) in await cursor.fetchall()}
            if not relations:
                if self._read_only or not self._create:
                    raise LogNotFoundError(self._location)
                await self._create_locked(conn, schema_exists)
            elif not relations >= _TABLES:
                raise NotALogError(self._location, "the schema holds other tables")
            cursor = await conn.execute(self._sql("SELECT key, value FROM {meta}"))
            meta = dict(await cursor.fetchall())
            if meta.get("eventlog.format") != FORMAT:
                raise NotALogError(
                    self._location, format_problem(meta.get("eventlog.format"), FORMAT)
                )
            self._log_id = meta.get("eventlog.log_id", "")
        if not self._read_only:
            await self._prepare_checkpoints(conn, meta.get("eventlog.checkpoint_key"))

    async def _create_locked(self, conn: psycopg.AsyncConnection[Any], schema_exists: bool) -> None:
        key = await self._key()
        if not schema_exists:
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self._schema)))
        for statement in _CREATE:
            await conn.execute(self._sql(statement))
        async with conn.cursor() as cursor:
            await cursor.executemany(
                self._sql("INSERT INTO {meta} (key, value) VALUES (%s, %s)"),
                [
                    ("eventlog.format", FORMAT),
                    ("eventlog.log_id", self._log_id_for_creation or secret_hex(16)),
                    ("eventlog.checkpoint_key", public_key_hex(key)),
                    ("eventlog.created", format_time(self._clock())),
                ],
            )

    async def _key(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            self._signing_key = await asyncio.to_thread(load_or_create_signing_key, self._key_path)
        return self._signing_key

    def _clock(self) -> datetime:
        if self._now is None:
            raise LogError(f"{self._location}: opened read-only, it has no clock to write with")
        return self._now()

    async def _prepare_checkpoints(
        self, conn: psycopg.AsyncConnection[Any], recorded: str | None
    ) -> None:
        key = await self._key()
        if recorded != public_key_hex(key):
            raise SigningKeyError(
                str(self._key_path or default_key_path()),
                f"this key ({public_key_hex(key)[:16]}...) is not the checkpoint key of "
                f"{self._location} ({(recorded or 'none')[:16]}...); open the log read-only, "
                "or use the key it was created with",
            )
        async with conn.transaction():
            entries = await self._entries(conn)
            head, _ = await self._tip(conn)
            if not entries and head == 0:
                # The genesis checkpoint makes a wiped checkpoint table detectable.
                self._genesis = await self._insert_checkpoint(conn, 0, GENESIS_HASH)
                entries = await self._entries(conn)
            latest = latest_valid(entries, self._log_id, public_key_hex(key))
            if latest is None and head > 0:
                raise CorruptLogError(self._location, unvouched_log("its checkpoints table"))
            self._checkpointed = -1 if latest is None else latest.position
            if latest is not None:
                cursor = await conn.execute(
                    self._sql("SELECT hash FROM {events} WHERE position = %s"), (latest.position,)
                )
                row = await cursor.fetchone()
                there = GENESIS_HASH if latest.position == 0 else (row[0] if row else None)
                problem = behind_checkpoint(latest, head, there)
                if problem is not None:
                    raise CorruptLogError(
                        self._location,
                        f"{problem}; refusing to append to it (run verify)",
                        min(latest.position, head + 1),
                    )

    async def close(self) -> None:
        """Write a closing checkpoint if this store appended, then close the connection."""
        conn = self._conn
        if conn is None:
            return
        try:
            await self._timer.stop()
            if (self._appended or self._metadata_changed) and not conn.closed:
                # Always, even at a position already checkpointed: a closing
                # checkpoint at the head is how verify tells a log closed
                # cleanly from one whose writer died or whose tail was cut,
                # and it signs the metadata as the writer left it.
                async with self._lock, conn.transaction():
                    head, last_hash = await self._tip(conn)
                    final = await self._insert_checkpoint(conn, head, last_hash, final=True)
                await self._witness.record(final)
        finally:
            self._conn = None
            await conn.close()
            await self._witness.close()

    async def _timed_checkpoint(self) -> None:
        conn = self._connection()
        try:
            async with self._lock, conn.transaction():
                head, last_hash = await self._tip(conn)
                signed = (
                    await self._insert_checkpoint(conn, head, last_hash)
                    if head > self._checkpointed or self._metadata_changed
                    else None
                )
        except psycopg.Error as exc:
            raise StorageError(self._location, f"checkpoint failed ({exc})") from exc
        if signed is not None:
            await self._witness.record(signed)

    async def adopt_checkpoints(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        """Keep the checkpoints an import's source signed over these same events, as they are."""
        # Not copied to this log's witness: they name the source log, and vouch for it
        # wherever the source kept them.
        conn = self._connection()
        async with self._lock, conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(
                self._sql("INSERT INTO {checkpoints} (record) VALUES (%s)"),
                [(c.to_line(),) for c in checkpoints],
            )

    async def record_import(self, note: str) -> None:
        """Record how this log was imported (the store's own metadata: who re-signed what)."""
        conn = self._connection()
        async with self._lock:
            await conn.execute(
                self._sql(
                    "INSERT INTO {meta} (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (IMPORT_METADATA, note),
            )
        self._metadata_changed_now()

    @property
    def location(self) -> str:
        """The database and schema, as text for messages (no password)."""
        return self._location

    @property
    def schema(self) -> str:
        """The schema that holds this log."""
        return self._schema

    @property
    def log_id(self) -> str:
        """The id this log was given at creation; checkpoints name it."""
        return self._log_id

    def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise LogError(f"{self._location}: store is not open")
        return self._conn

    # -- helpers (call with the lock held) ---------------------------------

    async def _tip(self, conn: psycopg.AsyncConnection[Any]) -> tuple[int, str]:
        cursor = await conn.execute(
            self._sql("SELECT position, hash FROM {events} ORDER BY position DESC LIMIT 1")
        )
        row = await cursor.fetchone()
        return (0, GENESIS_HASH) if row is None else (row[0], row[1])

    async def _insert_checkpoint(
        self,
        conn: psycopg.AsyncConnection[Any],
        position: int,
        digest: str,
        *,
        final: bool = False,
    ) -> SignedCheckpoint:
        cursor = await conn.execute(self._sql("SELECT key, value FROM {meta}"))
        meta = metadata_digests(dict(await cursor.fetchall()))
        checkpoint = Checkpoint(
            self._log_id, position, digest, format_time(self._clock()), final, meta
        )
        signed = sign_checkpoint(checkpoint, await self._key())
        await conn.execute(
            self._sql("INSERT INTO {checkpoints} (record) VALUES (%s)"), (signed.to_line(),)
        )
        self._checkpointed = position
        self._metadata_changed = False
        return signed

    async def _entries(self, conn: psycopg.AsyncConnection[Any]) -> list[CheckpointEntry]:
        cursor = await conn.execute(self._sql("SELECT seq, record FROM {checkpoints} ORDER BY seq"))
        entries = []
        for seq, record in await cursor.fetchall():
            where = f"{self._location} checkpoint {seq}"
            try:
                signed = SignedCheckpoint.from_record(json.loads(record))
            except ValueError as exc:
                entries.append(CheckpointEntry(where, None, f"unreadable checkpoint ({exc})"))
            else:
                entries.append(CheckpointEntry(where, signed))
        return entries

    async def claim(self, owner: str) -> None:
        """Make `owner` the only writer of this log from now on (a fencing token).

        Partitioned umpires (`simulator.eventlog.lease`) hold a partition by a
        PostgreSQL advisory lock; a previous owner that lost its lock without
        knowing it (its connection dropped, the process paused) may still try to
        append. Under the same EXCLUSIVE table lock every append takes, the owner's
        name goes into the log's metadata; each append of a claimed store checks it
        in its own transaction and writes nothing if someone else has claimed the
        log since (`FencedError`). Taking that lock also waits out any append the
        previous owner had in flight, so what the new owner reads next is complete.
        """
        if self._read_only:
            raise LogError(f"{self._location}: opened read-only")
        conn = self._connection()
        async with self._lock, conn.transaction():
            await conn.execute(self._sql("LOCK TABLE {events} IN EXCLUSIVE MODE"))
            await conn.execute(
                self._sql(
                    "INSERT INTO {meta} (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (OWNER_KEY, owner),
            )
        self._owner = owner
        self._metadata_changed_now()

    async def _owned_tip(self, conn: psycopg.AsyncConnection[Any]) -> tuple[int, str]:
        """The tip, within an append's transaction; for a claimed store, the claim checked too.

        One round trip for both: the check is on every append of a partition's umpire.
        """
        if self._owner is None:
            return await self._tip(conn)
        cursor = await conn.execute(
            self._sql(
                "SELECT (SELECT value FROM {meta} WHERE key = %s), tip.position, tip.hash"
                " FROM (SELECT 1) AS one LEFT JOIN LATERAL"
                " (SELECT position, hash FROM {events} ORDER BY position DESC LIMIT 1) AS tip"
                " ON true"
            ),
            (OWNER_KEY,),
        )
        row = await cursor.fetchone()
        assert row is not None  # one row, whatever the log holds
        current = None if row[0] is None else str(row[0])
        if current != self._owner:
            raise FencedError(self._location, self._owner, current)
        return (0, GENESIS_HASH) if row[1] is None else (int(row[1]), str(row[2]))

    # -- the EventStore interface ------------------------------------------

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        """See EventStore.append."""
        if not batch:
            return []
        if self._read_only:
            raise LogError(f"{self._location}: opened read-only")
        conn = self._connection()
        signed = None
        try:
            async with self._lock, conn.transaction():
                await conn.execute(self._sql("LOCK TABLE {events} IN EXCLUSIVE MODE"))
                head, last_hash = await self._owned_tip(conn)
                ids = [proposal.id for proposal in batch]
                cursor = await conn.execute(
                    self._sql(
                        "SELECT id, position, caseversion, hash, body FROM {events}"
                        " WHERE id = ANY(%s)"
                    ),
                    (ids,),
                )
                existing = {
                    row[0]: Existing(row[1], row[2], row[3], row[4])
                    for row in await cursor.fetchall()
                }
                subjects = sorted({p.subject for p in batch if p.subject is not None})
                cursor = await conn.execute(
                    self._sql(
                        "SELECT subject, max(caseversion) FROM {events}"
                        " WHERE subject = ANY(%s) GROUP BY subject"
                    ),
                    (subjects,),
                )
                versions = dict(await cursor.fetchall())
                plan = plan_batch(
                    batch,
                    head=head,
                    last_hash=last_hash,
                    existing=existing,
                    versions=versions,
                )
                if plan.rows:
                    async with conn.cursor() as insert:
                        await insert.executemany(
                            self._sql(
                                "INSERT INTO {events}"
                                " (position, id, subject, caseversion, type, hash, body)"
                                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                            ),
                            plan.rows,
                        )
                    self._appended = True
                    # Inside the transaction: the checkpoint commits with the
                    # events it vouches for, or not at all.
                    if plan.head - self._checkpointed >= self._checkpoint_every:
                        signed = await self._insert_checkpoint(conn, plan.head, plan.last_hash)
        except psycopg.Error as exc:
            raise StorageError(self._location, f"append failed, nothing written ({exc})") from exc
        self._wakeup.notify()
        self._timer.appended()
        if signed is not None:
            # After the commit: a witness must never vouch for events that were rolled back.
            await self._witness.record(signed)
        return plan.results

    async def _fetch(self, from_position: int, until: int | None, limit: int) -> list[ReadRow]:
        conn = self._connection()
        async with self._lock:
            cursor = await conn.execute(
                self._sql(
                    f"SELECT {READ_COLUMNS} FROM {{events}}"
                    " WHERE position >= %s AND position <= %s ORDER BY position LIMIT %s"
                ),
                (from_position, until if until is not None else 2**63 - 1, limit),
            )
            rows: list[ReadRow] = await cursor.fetchall()
        return rows

    def read(
        self, from_position: int = 1, until: int | None = None, *, upgrade: bool = True
    ) -> AsyncIterator[Event]:
        """See EventStore.read."""
        # chained() itself, not an async generator wrapped around it: one
        # await less per event.
        upgrades = self._upgrades if upgrade else None
        return chained(self._location, self._fetch, from_position, until, upgrades)

    def follow(self, from_position: int = 1, *, upgrade: bool = True) -> AsyncIterator[Event]:
        """See EventStore.follow; polls every poll_interval, wakes at once on local appends."""
        upgrades = self._upgrades if upgrade else None
        wait = self._wakeup.waiter()
        return chained(self._location, self._fetch, from_position, None, upgrades, wait)

    async def read_case(self, case_id: str, *, upgrade: bool = True) -> list[Event]:
        """See EventStore.read_case."""
        conn = self._connection()
        async with self._lock:
            cursor = await conn.execute(
                self._sql(
                    f"SELECT {READ_COLUMNS} FROM {{events}} WHERE subject = %s ORDER BY caseversion"
                ),
                (case_id,),
            )
            rows = await cursor.fetchall()
        upgrades = self._upgrades if upgrade else None
        return [decode_row(self._location, row, upgrades) for row in rows]

    async def head(self) -> int:
        """See EventStore.head."""
        conn = self._connection()
        async with self._lock:
            return (await self._tip(conn))[0]

    async def get_metadata(self, key: str) -> str | None:
        """See EventStore.get_metadata."""
        conn = self._connection()
        async with self._lock:
            cursor = await conn.execute(
                self._sql("SELECT value FROM {meta} WHERE key = %s"), (key,)
            )
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def set_metadata(self, key: str, value: str) -> None:
        """See EventStore.set_metadata; ``eventlog.*`` keys belong to the store."""
        if key.startswith(RESERVED_METADATA_PREFIX):
            raise ValueError(
                f"metadata keys starting with {RESERVED_METADATA_PREFIX!r} are reserved"
            )
        if self._read_only:
            raise LogError(f"{self._location}: opened read-only")
        conn = self._connection()
        async with self._lock:
            await conn.execute(
                self._sql(
                    "INSERT INTO {meta} (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (key, value),
            )
        self._metadata_changed_now()

    def _metadata_changed_now(self) -> None:
        # Signed by a checkpoint within the timer's window, as an append is.
        self._metadata_changed = True
        self._timer.appended()

    async def metadata(self) -> dict[str, str]:
        """See EventStore.metadata."""
        conn = self._connection()
        async with self._lock:
            cursor = await conn.execute(self._sql("SELECT key, value FROM {meta} ORDER BY key"))
            return dict(await cursor.fetchall())

    # -- the InspectableStore interface ------------------------------------

    async def stored_rows(self, from_position: int = 1) -> AsyncIterator[StoredRow]:
        """Rows exactly as stored, in position order, without any check."""
        conn = self._connection()
        while True:
            async with self._lock:
                cursor = await conn.execute(
                    self._sql(
                        "SELECT position, id, subject, caseversion, type, hash, body FROM {events}"
                        " WHERE position >= %s ORDER BY position LIMIT %s"
                    ),
                    (from_position, PAGE_SIZE),
                )
                rows = [StoredRow(*row) for row in await cursor.fetchall()]
            for row in rows:
                yield row
            if len(rows) < PAGE_SIZE:
                return
            from_position = rows[-1].position + 1

    async def integrity_problem(self) -> str | None:
        """None: PostgreSQL checks its pages itself and has no cheap whole-database check."""
        return None

    async def checkpoint_entries(self) -> list[CheckpointEntry]:
        """The records of the schema's checkpoints table, in the order they were written."""
        conn = self._connection()
        async with self._lock:
            return await self._entries(conn)


async def _one(cursor: psycopg.AsyncCursor[Any]) -> tuple[Any, ...]:
    row = await cursor.fetchone()
    if row is None:
        raise CorruptLogError("postgresql", "a query that always returns a row returned none")
    return tuple(row)


async def _connect(
    url: str, schema: str, *, autocommit: bool = False
) -> psycopg.AsyncConnection[Any]:
    """A connection for a look at the schemas; a server that cannot be reached is a
    StorageError naming the schema, as the store's own connection is (it had been
    psycopg's traceback from every command reading a PostgreSQL log)."""
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=autocommit)
    except psycopg.Error as exc:
        raise StorageError(f"postgresql schema {schema}", f"cannot connect ({exc})") from exc


async def partition_schemas(url: str, schema: str) -> list[int]:
    """The partitions `n` of the schemas `{schema}_p{n}`, if `schema` itself is none; else [].

    A partitioned run keeps a log per partition (`simulator.logfiles.partition_location`)
    and names the run by the schema they share as a prefix, which holds no log itself.
    """
    async with await _connect(url, schema) as conn:
        cursor = await conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s",
            # LIKE's `_` is any character: the run's own are taken literally.
            (schema, schema.replace("_", "\\_") + "\\_p%"),
        )
        names = {str(row[0]) for row in await cursor.fetchall()}
    if schema in names:
        return []
    return sorted(
        int(suffix)
        for name in names
        if (suffix := name[len(schema) + 2 :]).isdigit() and suffix.isascii()
    )


async def schema_exists(url: str, schema: str) -> bool:
    async with await _connect(url, schema) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        )
        return bool((await _one(cursor))[0])


async def drop_schema(url: str, schema: str) -> None:
    """Remove a schema and all it holds (a log made by a command that then failed)."""
    async with await _connect(url, schema, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
