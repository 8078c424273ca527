"""What a hostile tester does to a log with sqlite3 or psql: plain SQL and file edits.

The attacker holds what the log's writer holds: the SQLite file and its
side file, or the PostgreSQL role that owns the log's schema. It has the
project's source code too, so it can re-chain hashes (the hash is public)
and sign with a key of its own, but not with the writer's key, and it can
neither rewrite a witness file in another directory nor do more than INSERT
into a witness table.
"""

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql

from simulator.eventlog import compute_hash, from_json_line, public_key_hex, to_json_line
from simulator.eventlog.checkpoints import Checkpoint, sign_checkpoint
from simulator.eventlog.envelope import GENESIS_HASH

Edit = Callable[[dict[str, Any]], dict[str, Any]]


class Attacker:
    """The moves, on either backend; subclasses say how each is done in SQL."""

    def rows(self) -> list[tuple[int, str, str]]:
        """(position, hash, body) of every stored event, in order."""
        raise NotImplementedError

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        raise NotImplementedError

    def checkpoint_lines(self) -> list[str]:
        raise NotImplementedError

    def write_checkpoint_lines(self, lines: list[str]) -> None:
        """Replace the log's own checkpoint record with these lines."""
        raise NotImplementedError

    def log_id(self) -> str:
        raise NotImplementedError

    def snapshot(self) -> None:
        """Keep a copy of the log and its checkpoints, to put back later."""
        raise NotImplementedError

    def roll_back(self) -> None:
        """Put the copy back: log and checkpoints together."""
        raise NotImplementedError

    def rechain(self, position: int, edit: Edit) -> None:
        """Change one event's data and re-hash it and every later event, so the chain holds."""
        prevhash = GENESIS_HASH
        for stored, digest, body in self.rows():
            if stored < position:
                prevhash = digest
                continue
            event = from_json_line(body)
            update: dict[str, Any] = {"prevhash": prevhash}
            if stored == position:
                update["data"] = edit(dict(event.data))
            changed = event.model_copy(update=update)
            changed = changed.model_copy(update={"hash": compute_hash(changed)})
            self.execute(
                "UPDATE events SET hash = ?, body = ? WHERE position = ?",
                (changed.hash, to_json_line(changed), stored),
            )
            prevhash = changed.hash

    def resign(self, key: Ed25519PrivateKey, every: int) -> None:
        """Replace the log's checkpoint key with ``key`` and its checkpoints with new ones."""
        self.execute(
            "UPDATE meta SET value = ? WHERE key = 'eventlog.checkpoint_key'",
            (public_key_hex(key),),
        )
        hashes = {0: GENESIS_HASH} | {position: digest for position, digest, _ in self.rows()}
        head = max(hashes)
        log_id = self.log_id()
        lines = []
        for position in [*range(0, head + 1, every), head]:
            final = position == head
            checkpoint = Checkpoint(
                log_id, position, hashes[position], "2026-11-22T10:00:00.000000Z", final
            )
            lines.append(sign_checkpoint(checkpoint, key).to_line())
        self.write_checkpoint_lines(lines)

    def cut_tail(self, after: int) -> None:
        """Delete every event after ``after``."""
        self.execute("DELETE FROM events WHERE position > ?", (after,))

    def cut_checkpoints(self, after: int) -> None:
        """Delete the log's own checkpoints of positions after ``after``."""
        kept = [line for line in self.checkpoint_lines() if json.loads(line)["position"] <= after]
        self.write_checkpoint_lines(kept)


class SqliteAttacker(Attacker):
    """The log file and its side file, edited with sqlite3 and by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.side = path.with_name(path.name + ".checkpoints")
        self.aside = path.with_name(path.name + ".aside")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def rows(self) -> list[tuple[int, str, str]]:
        conn = self._connect()
        try:
            return list(conn.execute("SELECT position, hash, body FROM events ORDER BY position"))
        finally:
            conn.close()

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        conn = self._connect()
        try:
            conn.execute(statement, params)
        finally:
            conn.close()

    def checkpoint_lines(self) -> list[str]:
        return self.side.read_text(encoding="utf-8").splitlines()

    def write_checkpoint_lines(self, lines: list[str]) -> None:
        self.side.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    def log_id(self) -> str:
        conn = self._connect()
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'eventlog.log_id'").fetchone()
        finally:
            conn.close()
        return str(row[0])

    def snapshot(self) -> None:
        self.aside.mkdir()
        shutil.copy(self.path, self.aside / "log.db")
        shutil.copy(self.side, self.aside / "log.db.checkpoints")

    def roll_back(self) -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copy(self.aside / "log.db", self.path)
        shutil.copy(self.aside / "log.db.checkpoints", self.side)


class PostgresAttacker(Attacker):
    """The log's schema, edited with SQL as the role that writes it (psql would do the same)."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.schema = schema

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    def rows(self) -> list[tuple[int, str, str]]:
        with self._connect() as conn:
            return list(conn.execute("SELECT position, hash, body FROM events ORDER BY position"))

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        with self._connect() as conn:
            conn.execute(statement.replace("?", "%s").encode(), params)

    def checkpoint_lines(self) -> list[str]:
        with self._connect() as conn:
            return [row[0] for row in conn.execute("SELECT record FROM checkpoints ORDER BY seq")]

    def write_checkpoint_lines(self, lines: list[str]) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM checkpoints")
            for line in lines:
                conn.execute("INSERT INTO checkpoints (record) VALUES (%s)", (line,))

    def log_id(self) -> str:
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'eventlog.log_id'").fetchone()
        assert row is not None
        return str(row[0])

    def snapshot(self) -> None:
        with self._connect() as conn:
            for table in ("events", "meta", "checkpoints"):
                conn.execute(
                    sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                        sql.Identifier(f"aside_{table}"), sql.Identifier(table)
                    )
                )

    def roll_back(self) -> None:
        with self._connect() as conn, conn.transaction():
            for table in ("events", "meta", "checkpoints"):
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
                conn.execute(
                    sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                        sql.Identifier(table), sql.Identifier(f"aside_{table}")
                    )
                )
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"aside_{table}")))
