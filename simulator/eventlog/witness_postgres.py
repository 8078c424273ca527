"""A witness in PostgreSQL: a table the log's writer may only insert into (`witness`).

Apart from `witness.py` so that psycopg is imported only by whoever uses one.
"""

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import psycopg
import structlog
from psycopg import sql

from simulator.eventlog.checkpoints import CheckpointEntry, SignedCheckpoint
from simulator.eventlog.errors import StorageError
from simulator.eventlog.witness import DEFAULT_WITNESS_SCHEMA, WitnessEntries

log = structlog.get_logger("simulator.eventlog.witness")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_CREATE_WITNESS = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    """CREATE TABLE IF NOT EXISTS {table} (
        seq bigserial PRIMARY KEY,
        log text NOT NULL,
        record text NOT NULL,
        written timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX IF NOT EXISTS {index} ON {table} (log, seq)",
    # Nobody gets anything by default; each role is granted what it needs below.
    "REVOKE ALL ON {table} FROM PUBLIC",
)


def create_witness(
    admin_url: str,
    *,
    schema: str = DEFAULT_WITNESS_SCHEMA,
    writers: Sequence[str] = (),
    readers: Sequence[str] = (),
) -> str:
    """Create a witness table as an administrator; writers may only INSERT, readers only SELECT.

    Run it as a role other than the writers' (the owner of a table may do
    anything to it). Returns the table's qualified name.
    """
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema {schema!r} is not a plain lower-case identifier")
    names = {
        "schema": sql.Identifier(schema),
        "table": sql.Identifier(schema, "checkpoints"),
        "sequence": sql.Identifier(schema, "checkpoints_seq_seq"),
        "index": sql.Identifier("checkpoints_log_seq"),
    }
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn, conn.transaction():
            for statement in _CREATE_WITNESS:
                conn.execute(sql.SQL(statement).format(**names))
            for role in writers:
                grants = (
                    "GRANT USAGE ON SCHEMA {schema} TO {role}",
                    "GRANT INSERT ON {table} TO {role}",
                    # bigserial: INSERT draws the next seq from the sequence.
                    "GRANT USAGE ON SEQUENCE {sequence} TO {role}",
                    "REVOKE SELECT, UPDATE, DELETE, TRUNCATE ON {table} FROM {role}",
                    "REVOKE UPDATE ON SEQUENCE {sequence} FROM {role}",
                )
                for statement in grants:
                    conn.execute(sql.SQL(statement).format(role=sql.Identifier(role), **names))
            for role in readers:
                for statement in (
                    "GRANT USAGE ON SCHEMA {schema} TO {role}",
                    "GRANT SELECT ON {table} TO {role}",
                ):
                    conn.execute(sql.SQL(statement).format(role=sql.Identifier(role), **names))
    except psycopg.Error as exc:
        raise StorageError(
            f"postgresql schema {schema}", f"cannot create the witness ({exc})"
        ) from exc
    return f"{schema}.checkpoints"


class PostgresWitness:
    """Checkpoints inserted into ``<schema>.checkpoints`` (see the module docstring)."""

    def __init__(self, url: str, *, schema: str = DEFAULT_WITNESS_SCHEMA) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"witness schema {schema!r} is not a plain lower-case identifier")
        self._url = url
        self._schema = schema
        self._table = sql.Identifier(schema, "checkpoints")
        self._location = f"postgresql witness {schema}.checkpoints"
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def location(self) -> str:
        return self._location

    async def open(self) -> None:
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise StorageError(self._location, f"cannot connect to the witness ({exc})") from exc
        info = conn.info
        self._location = (
            f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname} "
            f"witness {self._schema}.checkpoints"
        )
        self._conn = conn

    async def open_for_writing(self) -> None:
        """As open(), and check now that this role may insert (and say if it may do more)."""
        await self.open()
        conn = self._connection()
        qualified = f"{self._schema}.checkpoints"
        try:
            # The schema name is a plain identifier (checked), so it needs no quoting here.
            cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,))
            row = await cursor.fetchone()
            if row is None or not row[0]:
                raise StorageError(
                    self._location,
                    f"no witness table {qualified}: an administrator creates it with "
                    "`simulator log witness-init`",
                )
            privileges = {}
            for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                cursor = await conn.execute(
                    "SELECT has_table_privilege(%s, %s)", (qualified, privilege)
                )
                found = await cursor.fetchone()
                privileges[privilege] = bool(found and found[0])
        except psycopg.Error as exc:
            await self.close()
            raise StorageError(self._location, f"cannot use the witness ({exc})") from exc
        except StorageError:
            await self.close()
            raise
        if not privileges["INSERT"]:
            await self.close()
            raise StorageError(self._location, f"this role may not insert into {qualified}")
        rewriting = [name for name in ("UPDATE", "DELETE", "TRUNCATE") if privileges[name]]
        if rewriting:
            # Still written (a copy elsewhere is worth having), but it is not a
            # witness the writer cannot rewrite, and the operator should know.
            log.warning(
                "witness_rewritable_by_writer",
                witness=self._location,
                privileges=rewriting,
            )

    def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise StorageError(self._location, "the witness is not open")
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def record(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        if not checkpoints:
            return
        conn = self._connection()
        try:
            async with self._lock, conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(
                    sql.SQL("INSERT INTO {} (log, record) VALUES (%s, %s)").format(self._table),
                    [(c.checkpoint.log, c.to_line()) for c in checkpoints],
                )
        except psycopg.Error as exc:
            raise StorageError(self._location, f"cannot write to the witness ({exc})") from exc

    async def entries(self, log_id: str) -> WitnessEntries:
        conn = self._connection()
        try:
            async with self._lock:
                cursor = await conn.execute(
                    sql.SQL("SELECT seq, record FROM {} WHERE log = %s ORDER BY seq").format(
                        self._table
                    ),
                    (log_id,),
                )
                rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise StorageError(self._location, f"cannot read the witness ({exc})") from exc
        entries = []
        unreadable = 0
        for seq, line in rows:
            try:
                record = SignedCheckpoint.from_line(line)
            except ValueError:
                unreadable += 1
                continue
            entries.append(CheckpointEntry(f"{self._location} row {seq}", record))
        return WitnessEntries(entries, unreadable)
