"""A log has one writer for the writer's whole life (DESIGN invariant 2).

Before: `simulator resume` of a run still going checked the log's head once,
then ran on beside the live run; its umpire, not seeing the live run's later
commits, appended a results-overdue event into the live run's log, and it hung.
"""

import asyncio
import os
import signal
from pathlib import Path

import pytest

from simulator.eventlog import LogError
from simulator.logfiles import open_log
from tests.eventlog.conftest import pg_schema, pg_url
from tests.runtime.seats import SIMULATOR
from tests.runtime.test_exercise import EXAMPLE

__all__ = ["pg_schema", "pg_url"]

# The example's 30 days: in two minutes for the live run (killed long before its end),
# in a few seconds for the resumed one.
LIVE_SPEED = 30 * 86_400 / 120
RESUMED_SPEED = 30 * 86_400 / 4


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


async def _head(location: str) -> int:
    try:
        async with open_log(location, read_only=True) as store:
            return await store.head()
    except LogError:
        return 0  # not made yet


async def _ids(location: str) -> list[str]:
    async with open_log(location, read_only=True) as store:
        return [event.id async for event in store.read()]


async def _simulator(*args: str, within: float) -> tuple[int, str]:
    # Wide: a message is folded at the terminal's width, and a temporary path long enough
    # was folded inside a word ("live.db : a run"), failing the test on some machines.
    process = await asyncio.create_subprocess_exec(
        *SIMULATOR,
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "1000"},
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), within)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, " ".join(err.decode().split())


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_second_writer_on_a_live_log_is_refused_and_a_killed_ones_log_resumes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`resume` of a run still going exits 2 at once naming the log; once it is killed, it runs."""
    if kind == "sqlite":
        log = str(tmp_path / "live.db")
    else:
        url = request.getfixturevalue("pg_url")
        log = f"{url}?schema={request.getfixturevalue('pg_schema')}"
    live = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--log", log, "--seed", "7",
        "--clock", "realtime", "--speed", str(LIVE_SPEED),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            # Another process writes the log: there is no event to await.
            while await _head(log) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        code, err = await _simulator("resume", log, within=60)
        assert live.returncode is None, "the live run ended before the resume was tried"
        assert code == 2, err
        assert f"{log}: a run is still writing this log (pid {live.pid}" in err
        assert "Traceback" not in err
        # A fork's output or a new run on the live log is refused alike.
        code, err = await _simulator("run", str(EXAMPLE), "--log", log, within=60)
        assert code == 2
        assert "a run is still writing this log" in err
    finally:
        os.kill(live.pid, signal.SIGKILL)
        await live.wait()
    killed_at = await _head(log)

    # The kernel (SQLite) or the server (PostgreSQL) let go of the dead run's claim.
    code, err = await _simulator("resume", log, "--speed", str(RESUMED_SPEED), within=120)
    assert code == 0, err[-2000:]
    ids = await _ids(log)
    assert len(ids) > killed_at
    assert len(ids) == len(set(ids))
    assert ids[-1].startswith("umpire-ended-")
    if kind == "sqlite":
        assert not Path(log + ".writer.lock").exists(), "a writer that ended left its lock"
