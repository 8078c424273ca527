"""Crash safety: a writer process SIGKILLed at random moments never loses or splits a batch."""

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from simulator.eventlog import SqliteEventStore, verify

from .crash_writer import batch_for
from .helpers import now

KILLS = 15
WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(path: Path, run: int, delay: float) -> list[tuple[int, int]]:
    """Start writer ``run``, SIGKILL it ``delay`` seconds after its first ack; return its acks."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(run)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    acks: list[tuple[int, int]] = []
    first = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            _, _, number, size = line.split()
            acks.append((int(number), int(size)))
            first.set()

    reader = threading.Thread(target=read, name=f"test.writer[{run}].stdout")
    reader.start()
    try:
        assert first.wait(30), f"writer {run} never acknowledged a batch"
        time.sleep(delay)
    finally:
        process.kill()
        process.wait()
        reader.join()
    return acks


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def stored_ids(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM events ORDER BY position")]
    finally:
        conn.close()


@pytest.mark.slow
async def test_sigkilled_writers_lose_no_acknowledged_batch_and_split_none(
    tmp_path: Path,
) -> None:
    """After each of 15 SIGKILLs the log is intact, complete and unsplit, and a resend is safe."""
    path = tmp_path / "log.db"
    rng = random.Random(20261122)
    resent = Counter[str]()

    for run in range(KILLS):
        acks = run_and_kill(path, run, delay=rng.uniform(0.0, 0.2))

        assert integrity(path) == "ok"
        report = await verify(path)
        assert report.ok, f"after kill {run}: {report.problem}"
        ids = stored_ids(path)
        assert len(ids) == len(set(ids))
        present = set(ids)
        for number, size in acks:
            acknowledged = {f"r{run}-b{number}-{index}of{size}" for index in range(size)}
            assert acknowledged <= present, f"run {run} lost acknowledged batch {number}"
        per_batch = Counter(event_id.rsplit("-", 1)[0] for event_id in ids)
        sizes = {event_id.rsplit("-", 1)[0]: int(event_id.rsplit("of", 1)[1]) for event_id in ids}
        partial = {prefix for prefix, count in per_batch.items() if count != sizes[prefix]}
        assert not partial, f"run {run}: batches stored in part: {sorted(partial)}"

        in_flight = batch_for(run, len(acks))
        async with SqliteEventStore(path, now=now) as store:
            results = await store.append(in_flight)
        outcome = {r.duplicate for r in results}
        assert len(outcome) == 1, f"run {run}: the in-flight batch was split"
        resent["committed before the kill" if outcome == {True} else "appended whole"] += 1

    final = await verify(path)
    assert final.ok, final.problem
    assert sum(resent.values()) == KILLS
    print(f"{final.checked} events; in-flight batches on resend: {dict(resent)}")
