"""A load run stopped by Ctrl-C or SIGTERM writes its figures, and still proves nothing lost.

It had died with its processes and written nothing: an engineer who stopped a long
run (or a CI job whose timeout sent SIGTERM) learned nothing from it.
"""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

# Long enough to be stopped well before its end on a busy machine.
DURATION_S = 120
WITHIN_S = 120


async def _progress_rows(stream: asyncio.StreamReader, rows: int, said: list[str]) -> None:
    """Read the live progress until `rows` rows with cases started have gone by."""
    seen = 0
    while seen < rows:
        line = (await stream.readline()).decode()
        assert line, f"the run ended before it was stopped: {said}"
        said.append(line.rstrip())
        fields = line.split()
        if len(fields) >= 3 and fields[0].replace(".", "").isdigit() and int(fields[2]) > 0:
            seen += 1


@pytest.mark.parametrize(
    ("how", "times"),
    [("SIGTERM to the run", 1), ("Ctrl-C to its terminal's group", 1), ("Ctrl-C twice", 2)],
)
async def test_a_stopped_load_run_drains_and_writes_its_figures(
    tmp_path: Path, how: str, times: int
) -> None:
    """No new cases from the first signal, the open ones drain (a second signal ends the
    drain), and the JSON says `interrupted` with exit 130; nothing lost or duplicated."""
    figures = tmp_path / "run.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "load",
        "--rate",
        "20",
        "--duration",
        str(DURATION_S),
        "--drain",
        "30",
        "--broker",
        "mosquitto",
        "--json",
        str(figures),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        # Its own process group, as a shell's foreground job: Ctrl-C goes to the group.
        start_new_session=True,
    )
    assert process.stderr is not None
    said: list[str] = []
    try:
        await asyncio.wait_for(_progress_rows(process.stderr, 2, said), WITHIN_S)
        for _ in range(times):
            if how.startswith("SIGTERM"):
                process.send_signal(signal.SIGTERM)
            else:
                os.killpg(process.pid, signal.SIGINT)
            await asyncio.wait_for(_said(process.stderr, "interrupted", said), WITHIN_S)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    code = await _ended(process, said)
    assert code == 130, said
    data = json.loads(figures.read_text())
    assert data["verdict"] == "interrupted"
    assert data["interrupted"] is True
    assert (data["lost"], data["duplicated"], data["undelivered"]) == (0, 0, 0)
    cases = data["cases"]
    assert 0 < cases["started"] < cases["scheduled"]
    assert cases["not_started"] == cases["scheduled"] - cases["started"]
    assert cases["completed"] + cases["incomplete"] == cases["started"]
    if times == 1:
        # A drain of 30 s is plenty for 20 cases a second: every started case finished.
        assert cases["incomplete"] == 0
    else:
        assert any("interrupted again" in line for line in said), said


async def _ended(process: asyncio.subprocess.Process, said: list[str]) -> int:
    """The stopped run's exit code, once it has said the rest; killed if it never ends."""
    assert process.stderr is not None
    try:
        rest = await asyncio.wait_for(process.stderr.read(), WITHIN_S)
        said.extend(rest.decode().splitlines())
        return await asyncio.wait_for(process.wait(), WITHIN_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _said(stream: asyncio.StreamReader, text: str, said: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        assert line, f"the run ended without saying {text!r}: {said}"
        said.append(line.rstrip())
        if text in line:
            return


async def test_a_stopped_ramp_ends_with_the_step_under_way_and_writes_its_figures(
    tmp_path: Path,
) -> None:
    """`--find-max` stopped during a step: that step drains and ends the ramp, no step
    starts after it, and the JSON holds the ramp so far with verdict interrupted (130)."""
    figures = tmp_path / "ramp.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "load", "--find-max", "--rate", "20",
        "--duration", str(DURATION_S), "--steps", "3", "--broker", "mosquitto",
        "--json", str(figures),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    assert process.stderr is not None
    said: list[str] = []
    try:
        # A step says nothing until it ends: stop it once it has a generator.
        await asyncio.wait_for(_until_a_generator_runs(process.pid), WITHIN_S)
        process.send_signal(signal.SIGTERM)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    code = await _ended(process, said)
    assert code == 130, said
    data = json.loads(figures.read_text())
    ramp = data["find_max"]
    assert ramp["verdict"] == "interrupted"
    (step,) = ramp["steps"]
    assert step["verdict"] == "interrupted"
    assert step["held"] is False
    assert (data["lost"], data["duplicated"]) == (0, 0)


async def _until_a_generator_runs(parent: int) -> None:
    """Until `parent` has a load generator process (whether it hears signals yet or not:
    the run holds its word until it does)."""
    while True:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == parent and b"simulator.load.worker" in cmdline:
                return
        await asyncio.sleep(0.1)
