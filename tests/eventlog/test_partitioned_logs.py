"""A partitioned run's logs: found by the run's name, merged for readers, checked one by one."""

import asyncio
import json
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from simulator.cli import app
from simulator.errors import InputError
from simulator.eventlog import MergedLog, SqliteEventStore
from simulator.logfiles import open_log, partition_location, partition_locations, reading

from .helpers import now, proposal


async def _partitioned_run(location: str, seconds: list[list[int]]) -> None:
    """A run of len(seconds) partitions; partition n holds events at seconds[n]."""
    for number, times in enumerate(seconds):
        async with open_log(partition_location(location, number), create=True, now=now) as store:
            await store.set_metadata("partitions", str(len(seconds)))
            await store.set_metadata("exercise", "split")
            await store.append(
                [
                    proposal(f"p{number}-{i}", subject=f"case-{number}-{i}", second=second)
                    for i, second in enumerate(times)
                ]
            )


async def test_partitions_merge_by_time_then_partition_then_position(tmp_path: Path) -> None:
    stores = []
    for number, times in enumerate([[0, 2, 2, 5], [1, 2, 9]]):
        store = SqliteEventStore(tmp_path / f"p{number}.db", now=now)
        async with store:
            await store.append(
                [proposal(f"p{number}-{i}", subject=None, second=s) for i, s in enumerate(times)]
            )
        stores.append(SqliteEventStore(tmp_path / f"p{number}.db", read_only=True))
    async with MergedLog(stores, "the run") as merged:
        events = [e async for e in merged.read()]
        assert [e.id for e in events] == ["p0-0", "p1-0", "p0-1", "p0-2", "p1-1", "p0-3", "p1-2"]
        assert [e.position for e in events] == list(range(1, 8))
        assert await merged.head() == 7
        # A window of merged positions, as a projection catching up asks for one.
        assert [e.id async for e in merged.read(3, 5)] == ["p0-1", "p0-2", "p1-1"]


async def test_a_run_is_found_by_its_name_and_read_as_one(pg_url: str, run_schema: str) -> None:
    location = f"{pg_url}?schema={run_schema}"
    await _partitioned_run(location, [[0, 3], [1, 2]])
    found = await partition_locations(location)
    assert found == [partition_location(location, 0), partition_location(location, 1)]
    # Any other log is not a partitioned run.
    assert await partition_locations(found[0]) == []
    assert await partition_locations(str(Path("/nonexistent.db"))) == []
    async with reading(location) as merged:
        assert [e.id async for e in merged.read()] == ["p0-0", "p1-0", "p1-1", "p0-1"]
        assert (await merged.metadata())["partitions"] == "2"


async def test_a_missing_partition_is_named(pg_url: str, run_schema: str) -> None:
    location = f"{pg_url}?schema={run_schema}"
    await _partitioned_run(location, [[0], [1], [2]])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(f"{run_schema}_p1")))
    with pytest.raises(InputError, match=r"run of 3 partitions.*partition 1 is not there"):
        await partition_locations(location)


def test_log_verify_checks_each_partition_and_names_a_tampered_one(
    pg_url: str, run_schema: str
) -> None:
    """`simulator log verify RUN` (a CLI test: its own event loops, so a plain function)."""
    location = f"{pg_url}?schema={run_schema}"
    asyncio.run(_partitioned_run(location, [[0, 3], [1, 2]]))
    runner = CliRunner()
    sound = runner.invoke(app, ["log", "verify", location])
    assert sound.exit_code == 0, sound.output
    assert "a run of 2 partitions" in sound.output
    assert sound.output.count(": sound — 2 events, chain intact") == 2
    as_json = runner.invoke(app, ["log", "verify", location, "--json"])
    verdict = json.loads(as_json.stdout)
    assert verdict["ok"] is True
    assert [row["log"] for row in verdict["partitions"]] == asyncio.run(
        partition_locations(location)
    )
    # A rewrite of one event of partition 1: that partition is named, the run fails.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET body = replace(body, 'event', 'EVENT') WHERE position = 2"
            ).format(sql.Identifier(f"{run_schema}_p1", "events"))
        )
    broken = runner.invoke(app, ["log", "verify", location])
    assert broken.exit_code == 1
    assert f"schema={run_schema}_p1" in broken.output
    assert "position 2" in broken.output or "hash" in broken.output
    exported = runner.invoke(app, ["log", "export", location])
    assert exported.exit_code == 2
    assert "export them one by one" in exported.output
