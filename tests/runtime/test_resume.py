"""`simulator run` killed outright leaves nothing running and is resumed from its log.

Before: after SIGKILL its private Mosquitto ran on, its directory under /tmp
(password hashes, ACL) stayed, and nothing resumed the exercise: the same
`--log` was refused and `fork` took simulated runs only, under new ids.
"""

import asyncio
import os
import signal
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest

from simulator.lifetime import OWNER_FILE
from simulator.logfiles import open_log
from simulator.report import build_report, render_markdown
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from tests.runtime.seats import SIMULATOR, until
from tests.runtime.test_exercise import EXAMPLE, exported

# The example's 30 days in about 12 s of wall time.
SPEED = 30 * 86_400 / 12


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def _head(log: Path) -> int:
    try:
        with sqlite3.connect(f"file:{log}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _workdirs(pid: int) -> list[Path]:
    """The run's working directories: those whose owner file names its pid."""
    return [
        d
        for d in Path(tempfile.gettempdir()).glob("simulator-*")
        if (d / OWNER_FILE).is_file() and (d / OWNER_FILE).read_text().split()[0] == str(pid)
    ]


def without_rounds(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # How many rounds it took is the run process's count, like its wall clock.
    for event in events:
        if event["type"] == "coop.exercise.ended":
            event["data"].pop("rounds")
    return events


# Realtime on one broker: the clock is the broker's business no more than resuming is
# (realtime resumes of the embedded broker's and of partitioned runs are tested too:
# test_partitioned_exercise.py).
@pytest.mark.parametrize(
    ("broker", "clock"),
    [("embedded", "simulated"), ("mosquitto", "simulated"), ("mosquitto", "realtime")],
)
async def test_a_killed_run_leaves_nothing_running_and_resumes(
    broker: str, clock: str, tmp_path: Path
) -> None:
    scenario = load_scenario(EXAMPLE)
    timing = ["--clock", "realtime", "--speed", str(SPEED)] if clock == "realtime" else []
    calm = tmp_path / "calm.db"
    await run_exercise(
        scenario,
        RunOptions(broker=broker, log=str(calm), clock=clock, speed=SPEED),  # type: ignore[arg-type]
    )
    rough = tmp_path / "rough.db"
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--log", str(rough), "--broker", broker, *timing,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Simulated, the whole run takes a fraction of a second and is appended once a
        # round, so its tenth event may come with its last: a kill then found it finished
        # (CI). Its second event comes with its first round.
        await until(lambda: _head(rough) >= (10 if clock == "realtime" else 2), 60)
        children, workdirs = _children(run.pid), _workdirs(run.pid)
    finally:
        os.kill(run.pid, signal.SIGKILL)
        await run.wait()
    killed_at = _head(rough)
    assert killed_at < len(await exported(calm)), "the run ended before it was killed"
    assert workdirs, "the run's working directory was not found"
    if broker == "mosquitto":
        assert children, "the run's Mosquitto was not found"
    # Its broker died with it, at once (the kernel's parent-death signal).
    await until(lambda: not any(Path(f"/proc/{c}").exists() for c in children), 10)

    resumed = await asyncio.create_subprocess_exec(
        *SIMULATOR, "resume", str(rough), "--broker", broker,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(resumed.communicate(), 120)
    assert resumed.returncode == 0, err.decode()[-2000:]
    # Its summary, and its after-action report, say the run was interrupted and where.
    resumption = f"interrupted and resumed once (after event {killed_at})"
    assert resumption in " ".join(out.decode().split())
    async with open_log(rough, read_only=True) as store:
        report = await build_report(store)
    assert report.summary.resumed_at == [killed_at]
    assert resumption in render_markdown(report)
    # The dead run's directory went when the next run swept for stale ones.
    assert not any(d.exists() for d in workdirs)

    after, before = await exported(rough), await exported(calm)
    if clock == "simulated":
        # Exactly the log of the run that was never interrupted.
        assert without_rounds(after) == without_rounds(before)
    else:
        # Every event of the interrupted part kept once, and the exercise completed.
        ids = [e["id"] for e in after]
        assert len(ids) == len(set(ids))
        assert after[-1]["type"] == "coop.exercise.ended"
        assert after[-1]["data"]["reason"] == before[-1]["data"]["reason"]
        assert len(after) > killed_at


async def test_a_finished_run_is_not_resumed(tmp_path: Path) -> None:
    """A log whose exercise ended says so and is left as it was."""
    log = tmp_path / "run.db"
    await run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(log)))
    before = await exported(log)
    resumed = await asyncio.create_subprocess_exec(
        *SIMULATOR, "resume", str(log),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(resumed.communicate(), 60)
    assert resumed.returncode == 2
    assert "nothing to resume" in " ".join(err.decode().split())
    assert await exported(log) == before
