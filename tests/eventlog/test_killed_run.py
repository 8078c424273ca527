"""A `simulator run` SIGKILLed mid-run: what it loses is bounded, and a deeper cut is caught.

The run writes its log with timed checkpoints (every 0.2 s of wall time
here, by SIMULATOR_CHECKPOINT_SECONDS) and copies each to a witness the
attacker cannot rewrite (SIMULATOR_CHECKPOINT_WITNESS): a file in another
directory, or a PostgreSQL table its role may only INSERT into.
"""

import asyncio
import json
import os
import signal
from pathlib import Path

import psycopg
import pytest

from simulator.eventlog import (
    PostgresEventStore,
    VerifyReport,
    load_or_create_signing_key,
    public_key_hex,
    verify,
)
from simulator.eventlog.witness import WITNESS_FILE_NAME, split_witness_url
from tests.runtime.seats import SIMULATOR, until

from .attacker import Attacker, PostgresAttacker, SqliteAttacker
from .conftest import PgWriter

EXAMPLE = Path(__file__).parents[2] / "scenarios" / "example.yaml"
WINDOW_S = 0.2


def witness_positions(witness: str) -> list[int]:
    """The positions the witness holds checkpoints of (any log), read as the administrator."""
    if witness.startswith("postgresql://"):
        url, schema = split_witness_url(witness)
        try:
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    psycopg.sql.SQL("SELECT record FROM {}").format(
                        psycopg.sql.Identifier(schema, "checkpoints")
                    )
                ).fetchall()
        except psycopg.Error:
            return []
        lines = [row[0] for row in rows]
    else:
        path = Path(witness) / WITNESS_FILE_NAME
        lines = path.read_text().splitlines() if path.exists() else []
    positions = []
    for line in lines:
        try:
            positions.append(int(json.loads(line)["position"]))
        except (ValueError, KeyError):
            continue
    return positions


async def test_a_killed_run_loses_at_most_its_window_and_a_deeper_cut_is_caught(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """SIGKILL `simulator run` mid-run; cutting within the last window passes, deeper is caught."""
    attacker: Attacker
    if backend == "sqlite":
        (tmp_path / "witness").mkdir()
        log = str(tmp_path / "run.db")
        witness = writer_witness = str(tmp_path / "witness")
        attacker = SqliteAttacker(Path(log))
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        schema: str = request.getfixturevalue("pg_schema")
        writer: PgWriter = request.getfixturevalue("pg_writer")
        # A witness shared by the session's tests: count only what this run adds.
        log = f"{writer.url}?schema={schema}"
        witness, writer_witness = writer.audit_witness, writer.witness
        attacker = PostgresAttacker(writer.url, schema)
    before = len(witness_positions(witness))
    env = os.environ | {
        "SIMULATOR_CHECKPOINT_SECONDS": str(WINDOW_S),
        "SIMULATOR_CHECKPOINT_WITNESS": writer_witness,
    }
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--log", log, "--clock", "realtime", "--speed", "200000",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        # Under way: the witness holds a timed checkpoint beyond position 10.
        await until(lambda: max(witness_positions(witness)[before:], default=0) >= 10, 90)
        assert run.returncode is None, "the run ended before it could be killed"
        os.kill(run.pid, signal.SIGKILL)
        await run.wait()
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
    assert run.returncode == -signal.SIGKILL

    async def check(*, witnessed: bool) -> VerifyReport:
        keys = [public_key_hex(load_or_create_signing_key())]
        seen = witness if witnessed else None
        if backend == "sqlite":
            return await verify(log, pinned=keys, witness=seen)
        async with PostgresEventStore(pg_url, schema=schema, read_only=True) as store:
            return await verify(store, pinned=keys, witness=seen)

    killed = await check(witnessed=True)

    assert killed.ok, killed.problem
    assert killed.closed is False  # no closing checkpoint: the writer died
    assert killed.witness_until is not None
    assert killed.witness_until >= 10
    # Timed checkpoints, not counted ones (the count is the default 10,000).
    assert killed.witness_checkpoints >= 2
    assert killed.vouched_until is not None
    vouched, witnessed_until = killed.vouched_until, killed.witness_until

    # The documented loss: a cut of what no checkpoint covers yet goes unnoticed.
    attacker.cut_tail(vouched)
    within = await check(witnessed=True)
    assert within.ok, within.problem

    # A cut below the witness's last checkpoint, the log's own checkpoints cut with it.
    attacker.cut_tail(witnessed_until - 2)
    attacker.cut_checkpoints(witnessed_until - 2)
    alone = await check(witnessed=False)
    deeper = await check(witnessed=True)

    assert alone.ok  # the log by itself cannot tell
    assert not deeper.ok
    assert deeper.first_bad_position == witnessed_until - 1
    assert deeper.problem is not None
    assert f"the log ends at position {witnessed_until - 2}" in deeper.problem
