"""RELIABILITY item 20: a full disk makes an append fail loudly, with nothing partial stored."""

import asyncio
import os
import sys
from pathlib import Path

from simulator.eventlog import verify
from tests.eventlog.test_crash import integrity, stored_ids

WRITER = Path(__file__).with_name("disk_full_writer.py")
ROOT = Path(__file__).parents[2]


async def test_item20_disk_full_fails_the_append_loudly_and_keeps_every_acknowledged_batch(
    tmp_path: Path,
) -> None:
    """Under a 1 MiB file-size limit the writer's append fails with a StorageError naming the
    log; afterwards the log verifies, holds every acknowledged batch, and no batch in part."""
    path = tmp_path / "full.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), str(1024 * 1024),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    lines = out.decode().splitlines()
    acks = [tuple(map(int, line.split()[1:])) for line in lines if line.startswith("ACK ")]
    failures = [line for line in lines if line.startswith("FAILED ")]
    assert process.returncode == 3, err.decode()[-2000:]
    assert acks, "the limit left no room for a single batch"
    [failure] = failures
    assert failure.startswith("FAILED StorageError:"), failure
    assert str(path) in failure
    assert integrity(path) == "ok"
    report = await verify(path)
    assert report.ok, report.problem
    ids = stored_ids(path)
    acknowledged = [f"r0-b{n}-{i}of{size}" for n, size in acks for i in range(size)]
    # Every acknowledged event, in order, and nothing of the batch that failed.
    assert ids == acknowledged
