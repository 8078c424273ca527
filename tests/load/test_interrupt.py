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
        rest = await asyncio.wait_for(process.stderr.read(), WITHIN_S)
        said.extend(rest.decode().splitlines())
        code = await asyncio.wait_for(process.wait(), WITHIN_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
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


async def _said(stream: asyncio.StreamReader, text: str, said: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        assert line, f"the run ended without saying {text!r}: {said}"
        said.append(line.rstrip())
        if text in line:
            return
