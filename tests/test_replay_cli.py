"""`simulator replay` on a broker it starts: a known port, and time for a subscriber first."""

import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario

SIMULATOR = [sys.executable, "-m", "simulator"]
SCENARIO = Path(__file__).parents[1] / "scenarios" / "registry-mixups.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_replay_waits_for_enter_so_a_subscriber_sees_every_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On --port P with --wait enter, the printed mosquitto_sub command gets the whole run."""
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))
    log = tmp_path / "run.db"
    outcome = asyncio.run(run_exercise(load_scenario(SCENARIO), RunOptions(log=str(log))))
    port = _free_port()
    replay = subprocess.Popen(
        [*SIMULATOR, "replay", str(log), "--port", str(port), "--wait", "enter"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    subscriber = None
    try:
        assert replay.stderr is not None
        assert replay.stdin is not None
        command = ""
        for line in replay.stderr:
            if line.startswith("subscribe with: "):
                command = line.removeprefix("subscribe with: ").strip()
            if line.startswith("press Enter"):
                break
        assert f"-p {port} " in command, command
        # Debug output says when the broker has acknowledged the subscription; stdbuf
        # makes mosquitto_sub write each line as it comes, not when its buffer fills.
        subscriber = subprocess.Popen(
            # -W: it gives up after 60 s, so a lost message fails the test, not hangs it.
            ["stdbuf", "-oL", *shlex.split(command), "-d", "-W", "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert subscriber.stdout is not None
        for line in subscriber.stdout:
            if "SUBACK" in line:
                break
        replay.stdin.write("\n")
        replay.stdin.flush()
        seen: set[str] = set()
        for line in subscriber.stdout:
            _, _, payload = line.partition(" ")
            if not payload.startswith("{"):
                continue
            seen.update(e["id"] for e in json.loads(payload).get("events", ()))
            if len(seen) == outcome.summary.events:
                break
        assert replay.wait(timeout=60) == 0
    finally:
        for process in (subscriber, replay):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert len(seen) == outcome.summary.events


@pytest.mark.parametrize("wait", ["soon", "-1"])
def test_a_bad_wait_is_refused(tmp_path: Path, wait: str) -> None:
    """--wait takes seconds or 'enter'; anything else is exit 2 before anything starts."""
    result = subprocess.run(
        [*SIMULATOR, "replay", str(tmp_path / "x.db"), "--wait", wait],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--wait" in result.stderr
