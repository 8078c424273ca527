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
from simulator.protocol.ids import partition_of

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


def _case_of(partition: int, count: int, n: int) -> str:
    """The n-th case id (of `case-0`, `case-1`, …) that falls in `partition` of `count`."""
    return [f"case-{i}" for i in range(200) if partition_of(f"case-{i}", count) == partition][n]


def test_a_partitioned_runs_export_is_merged_and_imports_as_its_partitions(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """`log export RUN`: every partition's lines, merged by time, each as stored; `log import`
    takes the chains apart, puts each in its partition and holds it to its checkpoints."""
    location = f"{pg_url}?schema={run_schema}"

    async def record() -> None:
        for number, seconds in enumerate([[0, 2, 5], [1, 3]]):
            target = partition_location(location, number)
            async with open_log(target, create=True, now=now) as store:
                await store.append(
                    [
                        proposal(f"p{number}-{i}", subject=_case_of(number, 2, i), second=second)
                        for i, second in enumerate(seconds)
                    ]
                )

    asyncio.run(record())
    runner = CliRunner()
    exported_file = tmp_path / "run.jsonl"
    exported = runner.invoke(app, ["log", "export", location, "-o", str(exported_file)])
    assert exported.exit_code == 0, exported.output
    lines = exported_file.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["p0-0", "p1-0", "p0-1", "p1-1", "p0-2"]
    # Each line as its partition stores it: positions repeat, chains interleave.
    assert [json.loads(line)["position"] for line in lines] == [1, 1, 2, 2, 3]

    copy = f"{pg_url}?schema={run_schema}x"
    try:
        imported = runner.invoke(app, ["log", "import", str(exported_file), "-o", copy])
        assert imported.exit_code == 0, imported.output
        assert imported.output.count("imported 3 events into") == 1
        assert imported.output.count("imported 2 events into") == 1
        assert asyncio.run(_hashes(copy)) == asyncio.run(_hashes(location))
        assert runner.invoke(app, ["log", "verify", copy]).exit_code == 0

        # One changed line: refused, naming it; no partition of the new run is written.
        tampered = tmp_path / "tampered.jsonl"
        tampered.write_text(
            "\n".join([*lines[:3], lines[3].replace("p1-1", "p1-X"), lines[4]]) + "\n",
            encoding="utf-8",
        )
        (tmp_path / "tampered.jsonl.checkpoints").write_bytes(
            (tmp_path / "run.jsonl.checkpoints").read_bytes()
        )
        other = f"{pg_url}?schema={run_schema}y"
        refused = runner.invoke(app, ["log", "import", str(tampered), "-o", other])
        assert refused.exit_code == 2
        assert "does not match its hash" in " ".join(refused.output.split())
        assert asyncio.run(partition_locations(other)) == []
        # A file of two logs cannot go into one SQLite file.
        into_file = runner.invoke(
            app, ["log", "import", str(exported_file), "-o", str(tmp_path / "one.db")]
        )
        assert into_file.exit_code == 2
        assert "holds 2 logs, a partitioned run's" in " ".join(into_file.output.split())
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for suffix in ("x", "y"):
                for number in range(2):
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                            sql.Identifier(f"{run_schema}{suffix}_p{number}")
                        )
                    )


async def _hashes(location: str) -> list[list[str]]:
    """Each partition's event hashes, in partition order."""
    found = []
    for part in await partition_locations(location):
        async with open_log(part, read_only=True) as store:
            found.append([e.hash async for e in store.read()])
    return found
