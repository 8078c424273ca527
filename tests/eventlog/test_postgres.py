"""The PostgreSQL store in particular: concurrent writers, foreign schemas, checkpoint rows."""

import asyncio

import psycopg
import pytest
from psycopg import sql

from simulator.eventlog import (
    LogNotFoundError,
    NotALogError,
    PostgresEventStore,
    VersionConflict,
    verify,
)

from .helpers import now, proposal, proposals

WRITERS = 2
BATCHES = 40
BATCH_SIZE = 10


async def test_concurrent_writers_never_let_a_reader_skip_a_position(
    pg_url: str, pg_schema: str
) -> None:
    """Two writers on their own connections and a polling reader: the reader sees 1..N, no gaps."""
    total = WRITERS * BATCHES * BATCH_SIZE
    async with PostgresEventStore(pg_url, schema=pg_schema, now=now) as first:
        await first.append(proposals("warmup", 1))

    async def write(writer: int) -> list[list[int]]:
        positions = []
        async with PostgresEventStore(pg_url, schema=pg_schema, now=now) as store:
            for number in range(BATCHES):
                batch = proposals(f"w{writer}-b{number}", BATCH_SIZE, cases=5)
                positions.append([r.position for r in await store.append(batch)])
                await asyncio.sleep(0)
        return positions

    async def read() -> list[int]:
        seen: list[int] = []
        async with PostgresEventStore(pg_url, schema=pg_schema, read_only=True) as store:
            while len(seen) < total + 1:
                # Each read starts right after the last position seen; a reader
                # that could skip would find a later position first.
                async for event in store.read(len(seen) + 1):
                    seen.append(event.position)
                await asyncio.sleep(0.001)
        return seen

    async with asyncio.TaskGroup() as group:
        writers = [group.create_task(write(n), name=f"test.writer[{n}]") for n in range(WRITERS)]
        reader = group.create_task(read(), name="test.reader")

    seen = reader.result()
    assert seen == list(range(1, total + 2))
    batches = [task.result() for task in writers]
    for positions in (p for writer in batches for p in writer):
        assert positions == list(range(positions[0], positions[0] + BATCH_SIZE))
    # The writers really did take turns, rather than one finishing first.
    assert batches[0][-1][0] > batches[1][0][0]
    assert batches[1][-1][0] > batches[0][0][0]
    async with PostgresEventStore(pg_url, schema=pg_schema, read_only=True) as store:
        report = await verify(store)
    assert report.ok, report.problem
    assert report.checked == total + 1


async def test_concurrent_expected_versions_let_exactly_one_writer_win(
    pg_url: str, pg_schema: str
) -> None:
    """Two writers expecting the same case version: one appends, the other gets VersionConflict."""
    async with (
        PostgresEventStore(pg_url, schema=pg_schema, now=now) as one,
        PostgresEventStore(pg_url, schema=pg_schema, now=now) as two,
    ):
        await one.append([proposal("start", subject="case-9")])
        outcomes = await asyncio.gather(
            one.append([proposal("from-one", subject="case-9", expected_version=1)]),
            two.append([proposal("from-two", subject="case-9", expected_version=1)]),
            return_exceptions=True,
        )

    conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert len(conflicts) == 1
    assert conflicts[0].actual == 2


async def test_a_schema_holding_other_tables_is_refused_and_left_alone(
    pg_url: str, pg_schema: str
) -> None:
    """A schema with someone else's tables is not a log; nothing in it is created or dropped."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg_schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (name text)").format(sql.Identifier(pg_schema, "contacts"))
        )

    with pytest.raises(NotALogError, match="other tables") as caught:
        async with PostgresEventStore(pg_url, schema=pg_schema, now=now):
            pass

    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (pg_schema,),
        ).fetchall()
    assert pg_schema in str(caught.value)
    assert tables == [("contacts",)]


async def test_a_missing_schema_is_not_created_when_creation_is_off(
    pg_url: str, pg_schema: str
) -> None:
    """create=False refuses a schema that does not exist, and creates nothing."""
    with pytest.raises(LogNotFoundError):
        async with PostgresEventStore(pg_url, schema=pg_schema, now=now, create=False):
            pass

    with psycopg.connect(pg_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg_schema,)
        ).fetchone()
    assert found == (0,)


def test_schema_names_must_be_plain_identifiers() -> None:
    """A schema name that would need quoting (or inject SQL) is refused up front."""
    with pytest.raises(ValueError, match="identifier"):
        PostgresEventStore("postgresql://x", schema='x"; DROP TABLE y; --', now=now)


async def test_a_forged_checkpoint_row_is_refused(pg_url: str, pg_schema: str) -> None:
    """A checkpoint row whose signature does not verify makes verify() fail with a clear text."""
    async with PostgresEventStore(pg_url, schema=pg_schema, now=now) as store:
        await store.append(proposals("e", 5))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        (record,) = conn.execute(  # type: ignore[misc]
            sql.SQL("SELECT record FROM {} ORDER BY seq DESC LIMIT 1").format(
                sql.Identifier(pg_schema, "checkpoints")
            )
        ).fetchone()
        forged = record.replace('"position":5', '"position":4')
        conn.execute(
            sql.SQL("INSERT INTO {} (record) VALUES (%s)").format(
                sql.Identifier(pg_schema, "checkpoints")
            ),
            (forged,),
        )

    async with PostgresEventStore(pg_url, schema=pg_schema, read_only=True) as reader:
        report = await verify(reader)

    assert not report.ok
    assert report.problem is not None
    assert "forged" in report.problem
    assert report.first_bad_position == 4
