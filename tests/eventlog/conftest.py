"""Event log test fixtures: a private key directory, PostgreSQL, and stores of both kinds."""

import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from simulator.eventlog import (
    InspectableStore,
    PostgresEventStore,
    SqliteEventStore,
    create_witness,
)
from tests.pgcluster import ClusterError, start_private_cluster

from .helpers import now

PG_URL = os.environ.get("EVENTLOG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_ADMIN_URL = os.environ.get(
    "EVENTLOG_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

StoreFactory = Callable[..., InspectableStore]
RawSql = Callable[[str], None]


@pytest.fixture(autouse=True)
def key_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Signing keys go to a directory of this test session, never to the user's home."""
    directory = tmp_path_factory.getbasetemp() / "keys"
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(directory))
    return directory


def _can_connect(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return str(exc)


def _start_cluster() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        return "no cluster under /etc/postgresql to start"
    result = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"pg_ctlcluster exited {result.returncode}: {result.stderr.strip()}"


def _system_server() -> tuple[str, str] | str:
    """The configured server, started if it is down: (admin URL, test URL), or why not."""
    if _can_connect(PG_ADMIN_URL) is None:
        return PG_ADMIN_URL, PG_URL
    started = _start_cluster()
    deadline = time.monotonic() + 15
    while (problem := _can_connect(PG_ADMIN_URL)) is not None:
        if time.monotonic() > deadline:
            return f"{PG_ADMIN_URL} unreachable and not startable ({started}); {problem}"
        time.sleep(0.5)
    return PG_ADMIN_URL, PG_URL


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test database, started (and created) if need be; fails loudly if impossible.

    A machine whose own server is missing, down for good or not in trust mode
    gets a private cluster from the installed PostgreSQL binaries instead.
    """
    found = _system_server()
    if isinstance(found, str):
        try:
            admin = start_private_cluster()
        except ClusterError as exc:
            pytest.fail(f"PostgreSQL: {found}; and no private cluster either: {exc}")
        found = admin, admin.rsplit("/", 1)[0] + "/test"
    admin_url, test_url = found
    if _can_connect(test_url) is not None:
        database = psycopg.conninfo.conninfo_to_dict(test_url)["dbname"]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(database))))
    if (problem := _can_connect(test_url)) is not None:
        pytest.fail(f"PostgreSQL test database {test_url} is unusable: {problem}")
    return test_url


@pytest.fixture
def run_schema(pg_url: str) -> Iterator[str]:
    """A partitioned run's name no other test uses; its partitions' schemas are dropped after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for partition in range(4):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(f"{name}_p{partition}")
                )
            )


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema name no other test uses; the schema is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:20]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@dataclass(frozen=True)
class PgWriter:
    """A role that writes logs but may only INSERT into the witness table, and that witness."""

    role: str
    url: str
    """The test database, as this role."""
    witness: str
    """The witness as this role uses it (INSERT only)."""
    audit_witness: str
    """The same witness as the administrator reads it."""


def as_role(url: str, role: str) -> str:
    """The same server and database, connecting as ``role`` (trust authentication)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture(scope="session")
def pg_writer(pg_url: str) -> Iterator[PgWriter]:
    """A role like the umpire's: it owns its logs, and may only INSERT into a witness table.

    The witness is created by the administrator (the owner of a table may do
    anything to it), which grants the role INSERT and revokes UPDATE, DELETE
    and TRUNCATE.
    """
    suffix = uuid.uuid4().hex[:10]
    role, schema = f"coop_umpire_{suffix}", f"witness_{suffix}"
    database = str(psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )
    create_witness(pg_url, schema=schema, writers=[role])
    writer_url = as_role(pg_url, role)
    yield PgWriter(role, writer_url, f"{writer_url}?schema={schema}", f"{pg_url}?schema={schema}")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which implementation of the EventStore interface a contract test runs against."""
    return str(request.param)


@pytest.fixture
def open_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes (unopened) stores on one and the same log, so tests can close and reopen it."""
    if backend == "sqlite":
        path = tmp_path / "log.db"

        def sqlite_store(**options: Any) -> InspectableStore:
            options.setdefault("now", now)
            return SqliteEventStore(path, **options)

        return sqlite_store
    url: str = request.getfixturevalue("pg_url")
    schema: str = request.getfixturevalue("pg_schema")

    def postgres_store(**options: Any) -> InspectableStore:
        options.setdefault("now", now)
        return PostgresEventStore(url, schema=schema, **options)

    return postgres_store


@pytest.fixture
async def store(open_store: StoreFactory) -> AsyncIterator[InspectableStore]:
    """An open, empty store."""
    async with open_store() as opened:
        yield opened


@pytest.fixture
def raw_sql(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> RawSql:
    """Runs one statement straight against the log's tables, behind the store's back."""
    if backend == "sqlite":

        def on_sqlite(statement: str) -> None:
            conn = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
            try:
                conn.execute(statement)
            finally:
                conn.close()

        return on_sqlite
    url: str = request.getfixturevalue("pg_url")
    schema: str = request.getfixturevalue("pg_schema")

    def on_postgres(statement: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(statement.encode())

    return on_postgres
