"""Partition ownership held by PostgreSQL: one owner, a standby that takes over, a fence."""

import asyncio
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from simulator.eventlog import FencedError, PostgresEventStore
from simulator.eventlog.lease import KEEPALIVE, PartitionLease
from simulator.protocol.ids import partition_of

from .helpers import now, proposals

# Generous: the machine may be busy; every wait below ends as soon as its condition holds.
WITHIN = 60.0


def test_a_case_has_the_same_partition_in_every_process() -> None:
    """partition_of is stable across processes (Python's own str hash is not) and in range."""
    ids = [f"case-{n}" for n in range(200)]
    here = [partition_of(case, 4) for case in ids]
    script = (
        "from simulator.protocol.ids import partition_of;"
        f"print([partition_of(c, 4) for c in {ids!r}])"
    )
    there = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout
    assert str(here) == there.strip()
    assert set(here) == {0, 1, 2, 3}
    assert partition_of("case-1", 1) == 0


async def test_one_owner_per_partition_and_partitions_apart(pg_url: str) -> None:
    async with (
        PartitionLease(pg_url, "ex", 0) as owner,
        PartitionLease(pg_url, "ex", 0) as standby,
        PartitionLease(pg_url, "ex", 1) as other,
        PartitionLease(pg_url, "another", 0) as elsewhere,
    ):
        assert await owner.try_acquire()
        assert not await standby.try_acquire()
        assert await other.try_acquire()
        assert await elsewhere.try_acquire()
        assert await owner.held()
        assert not await standby.held()
        # A clean hand-over: the owner lets go, the standby takes the partition.
        await owner.release()
        assert not await owner.held()
        await asyncio.wait_for(standby.acquire(poll_seconds=0.05), WITHIN)
        assert await standby.held()


async def test_a_standby_takes_over_when_the_owners_session_dies(pg_url: str) -> None:
    """The server ends the owner's session (as if its process died): the standby owns it."""
    async with (
        PartitionLease(pg_url, "ex-kill", 0) as owner,
        PartitionLease(pg_url, "ex-kill", 0) as standby,
    ):
        assert await owner.try_acquire()
        waiting = asyncio.create_task(standby.acquire(poll_seconds=0.05))
        pid = await owner.backend_pid()
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.wait_for(waiting, WITHIN)
        assert await standby.held()
        # The old owner learns it on its next question, and stops writing.
        assert not await owner.held()


async def test_the_new_owner_waits_out_an_append_in_flight(pg_url: str, pg_schema: str) -> None:
    """fence() returns only once an append holding the log's write lock has committed."""
    async with PostgresEventStore(pg_url, schema=pg_schema, now=now) as store:
        await store.append(proposals("e", 1))
    async with await psycopg.AsyncConnection.connect(pg_url) as old_owner:
        # The previous owner's append, caught between taking the write lock and committing.
        await old_owner.execute(f"LOCK TABLE {pg_schema}.events IN EXCLUSIVE MODE")
        async with PartitionLease(pg_url, "ex-fence", 0) as lease:
            assert await lease.try_acquire()
            pid = await lease.backend_pid()
            fencing = asyncio.create_task(lease.fence(pg_schema))
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
                # The condition, not a sleep: the lease's session is queued on the lock.
                async def queued() -> None:
                    while True:
                        cursor = await admin.execute(
                            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
                        )
                        row = await cursor.fetchone()
                        if row and row[0]:
                            return
                        await asyncio.sleep(0.02)

                await asyncio.wait_for(queued(), WITHIN)
            assert not fencing.done()
            await old_owner.commit()
            await asyncio.wait_for(fencing, WITHIN)


async def test_a_claimed_log_refuses_the_appends_of_its_previous_owner(
    pg_url: str, pg_schema: str
) -> None:
    """The fencing token: once a new owner claims the log, the old one writes nothing more."""
    async with (
        PostgresEventStore(pg_url, schema=pg_schema, now=now) as old,
        PostgresEventStore(pg_url, schema=pg_schema, now=now) as new,
    ):
        await old.claim("umpire-0:1")
        await old.append(proposals("a", 2))
        await new.claim("umpire-2:7")
        # The old owner does not know it was replaced (its lease session lingered, say).
        with pytest.raises(FencedError, match=r"umpire-0:1.*umpire-2:7 claimed it"):
            await old.append(proposals("b", 1))
        assert await new.head() == 2
        appended = await new.append(proposals("c", 1))
        assert [a.position for a in appended] == [3]
        assert [e.id async for e in new.read()] == ["a-0000", "a-0001", "c-0000"]


async def test_the_server_probes_a_lease_session_so_a_vanished_host_frees_it(pg_url: str) -> None:
    """TCP keepalive of the lease's session is seconds, not the server's default two hours."""
    async with PartitionLease(pg_url, "ex-keepalive", 0) as lease:
        # The lease's own session: what the server applies to it (a test may look inside).
        conn = lease._connection()
        for setting, value in KEEPALIVE:
            cursor = await conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting)))
            row = await cursor.fetchone()
            assert row is not None
            assert int(row[0]) == value, setting


async def test_a_standby_whose_session_was_cut_asks_again_on_a_new_one(pg_url: str) -> None:
    """A standby's session ends (a server restart, a dropped link): it still takes over."""
    async with (
        PartitionLease(pg_url, "ex-recut", 0) as owner,
        PartitionLease(pg_url, "ex-recut", 0) as standby,
    ):
        assert await owner.try_acquire()
        assert not await standby.try_acquire()
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (await standby.backend_pid(),))
        await owner.release()
        await asyncio.wait_for(standby.acquire(poll_seconds=0.05), WITHIN)
        assert await standby.held()
