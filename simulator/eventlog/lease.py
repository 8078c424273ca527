"""Who writes a partition of an exercise's log: one owner at a time, held by PostgreSQL.

An exercise's cases can be split into partitions (`simulator.protocol.ids.partition_of`),
each with one writing umpire at a time and its own log (one PostgreSQL schema, its own
hash chain and checkpoints). Ownership is a PostgreSQL *session* advisory lock, not an election
of our own: the server grants it to one session, and releases it the moment that
session ends, so an owner that dies, or whose connection the server drops, frees
its partition for a standby at once, with no timeout to tune.

A lock held by a dead session is never the problem; a live owner that lost its
connection and does not know it yet is. Two guards close that window:

- the owner asks `held()` (a round trip on the lease's own session) now and then,
  and stops when the answer is no;
- a new owner, once it holds the lease, claims the partition's log
  (`PostgresEventStore.claim`: a fencing token written under the same ``LOCK
  TABLE … IN EXCLUSIVE MODE`` every append takes). Any append the previous owner
  had in flight has committed or failed by then, so what the new owner reads
  next is complete; and every later append of the previous owner checks the
  token in its own transaction and writes nothing. (`fence(schema)` is the lock
  without the token, for a reader that only needs the log settled.)

A log that is not partitioned has one writer for its whole life the same way
(`LogLease`, keyed by its schema): a `resume`, `fork` or second `run` on a log
that a live run writes is refused rather than interleaved with it.
"""

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql

from simulator.eventlog.errors import LogBusyError, StorageError

# The first key of the two-key advisory lock: the simulator's leases, apart from any
# other advisory lock in the database (the log's own creation lock uses the one-key form).
_NAMESPACE = 0x636F6F70  # "coop"


# The server's TCP keepalive on a lease's session (see `PartitionLease.__aenter__`).
KEEPALIVE = (
    ("tcp_keepalives_idle", 5),
    ("tcp_keepalives_interval", 2),
    ("tcp_keepalives_count", 3),
)


def _lock_key(*names: object) -> int:
    """The second key: an exercise and partition (or a log), as a signed 32-bit integer."""
    digest = hashlib.blake2b("\x00".join(map(str, names)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease:
    """One session advisory lock, keyed by `key` (see the module docstring).

    Use as ``async with SomeLease(...) as lease:`` then ``await lease.acquire()``
    (a standby waits there) or ``await lease.try_acquire()``.
    """

    def __init__(self, url: str, key: int, description: str) -> None:
        self.url = url
        self._key = key
        self._description = description
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held = False

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def _connect(self) -> None:
        # autocommit: a session lock outlives transactions; an idle transaction would not.
        self._conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name=self.application_name()
        )
        # A dead process's socket is closed by its kernel and the server ends the session
        # at once; a host that dies (power, network) sends nothing, and the server would
        # hold its lock until TCP keepalive gives up: two hours by default. Probed after
        # 5 s idle, every 2 s, 3 times, the lease of a vanished host frees in about 11 s.
        # (Over a Unix socket these settings do nothing, and no host can vanish.)
        for setting, value in KEEPALIVE:
            await self._conn.execute(
                sql.SQL("SET {} = {}").format(sql.Identifier(setting), sql.Literal(value))
            )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def describe(self) -> str:
        return self._description

    def application_name(self) -> str:
        """How the lease's session names itself to the server (pg_stat_activity)."""
        return f"coop-sim lease {self.describe()}"

    def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise RuntimeError("the lease is not open: use `async with PartitionLease(...)`")
        return self._conn

    async def try_acquire(self) -> bool:
        """Take the partition if no one holds it; True when this lease holds it now."""
        if self._held:
            return True
        conn = self._connection()
        if conn.closed or conn.broken:
            # A standby's session was cut (the server restarted, the network dropped):
            # it held nothing, so it simply asks again on a new one.
            await self._connect()
            conn = self._connection()
        try:
            cursor = await conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (_NAMESPACE, self._key)
            )
        except psycopg.OperationalError:
            return False  # the session is gone; the next try opens another
        row = await cursor.fetchone()
        self._held = bool(row and row[0])
        return self._held

    async def acquire(self, *, poll_seconds: float = 0.5) -> None:
        """Wait until this lease holds the partition (a standby waits here for the owner to go).

        Polled rather than blocking in `pg_advisory_lock`, so that cancelling the wait
        (a standby told to stop) never leaves a lock request queued on the server.
        """
        # The server holds the condition; there is no local event to wait on.
        while not await self.try_acquire():  # noqa: ASYNC110
            await asyncio.sleep(poll_seconds)

    async def held(self) -> bool:
        """Whether this lease still holds the partition, asked of the server on its session.

        False once the session is gone (killed, or the connection lost): the server has
        released the lock then, and a standby may already own the partition.
        """
        if not self._held or self._conn is None or self._conn.closed:
            return False
        try:
            cursor = await self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s::oid "
                "AND objid = (%s::bigint & 4294967295)::oid AND objsubid = 2 AND granted",
                (_NAMESPACE, self._key),
            )
            row = await cursor.fetchone()
        except psycopg.Error:
            self._held = False
            return False
        self._held = bool(row and row[0])
        return self._held

    async def backend_pid(self) -> int:
        """The server process of the lease's session (for logs and for tests that kill it)."""
        cursor = await self._connection().execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def fence(self, schema: str) -> None:
        """Wait out any append a previous owner had in flight on the partition's log.

        Every append holds the log's events table in EXCLUSIVE mode until it commits;
        taking and releasing that lock once means all earlier appends are settled, so
        what the new owner reads next is every event the previous owner wrote.
        """
        if not await self.held():
            raise RuntimeError(f"{self.describe()}: fence() without holding the lease")
        conn = self._connection()
        async with conn.transaction():
            await conn.execute(
                sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(schema, "events"))
            )

    async def release(self) -> None:
        """Give the partition up (a clean hand-over); closing the lease does it too."""
        if self._held and self._conn is not None and not self._conn.closed:
            # A session already gone took its lock with it: nothing left to give up.
            with contextlib.suppress(psycopg.Error):
                await self._conn.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (_NAMESPACE, self._key)
                )
        self._held = False

    async def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            await self.release()
            await self._conn.close()
        self._conn = None
        self._held = False


class PartitionLease(Lease):
    """The ownership of one partition of one exercise."""

    def __init__(self, url: str, exercise: str, partition: int) -> None:
        if partition < 0:
            raise ValueError(f"a partition is numbered from 0, not {partition}")
        super().__init__(url, _lock_key(exercise, partition), f"{exercise} partition {partition}")
        self.exercise = exercise
        self.partition = partition


class LogLease(Lease):
    """The writer's claim on a whole log (one that is not partitioned): its schema's."""

    def __init__(self, url: str, schema: str) -> None:
        # "log" where a partition has its number: never the key of a partition's lease.
        super().__init__(url, _lock_key(schema, "log"), f"log {schema}")
        self.schema = schema

    def application_name(self) -> str:
        # The pid names the holder to a writer that is refused (`holder`).
        return f"coop-sim writer pid {os.getpid()}"[:63]

    async def holder(self) -> str:
        """Who holds the log, as its session named itself to the server; "" if unknown."""
        try:
            cursor = await self._connection().execute(
                "SELECT a.application_name, host(a.client_addr) FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid = %s::oid"
                " AND l.objid = (%s::bigint & 4294967295)::oid AND l.objsubid = 2"
                " AND l.granted AND a.datname = current_database()",
                (_NAMESPACE, self._key),
            )
            row = await cursor.fetchone()
        except psycopg.Error:
            return ""
        if row is None:
            return ""
        name = str(row[0] or "").removeprefix("coop-sim writer ")
        return f"{name} on {row[1]}" if row[1] else name


@contextlib.asynccontextmanager
async def holding_log(url: str, schema: str, location: str) -> AsyncIterator[LogLease]:
    """Hold the log in `schema` as its one writer while the block runs (`LogLease`).

    LogBusyError at once when another session holds it; `location` names the log.
    """
    lease = LogLease(url, schema)
    try:
        try:
            await lease.__aenter__()
            held = await lease.try_acquire()
        except psycopg.Error as exc:
            raise StorageError(location, f"cannot connect ({exc})") from exc
        if not held:
            raise LogBusyError(location, await lease.holder() or "held by another session")
        yield lease
    finally:
        await lease.close()
