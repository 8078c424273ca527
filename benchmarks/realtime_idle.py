"""CPU that a realtime exercise uses while idle and while paused (issue: realtime that holds).

Starts `simulator run scenarios/example.yaml --clock realtime --speed 1` (at x1
its first messages are hours away, so the run is idle), measures the run's CPU
(its own process: umpire, parties and the embedded broker) over a window, pauses
it with `simulator control pause`, measures again, then stops it. Prints the
share of one core used in each window.

    .venv/bin/python benchmarks/realtime_idle.py [--window 20]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = [sys.executable, "-m", "simulator"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def window(pid: int, seconds: float) -> float:
    before, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "idle.db"
        run = subprocess.Popen(
            [*SIMULATOR, "run", "scenarios/example.yaml", "--clock", "realtime", "--speed", "1",
             "--log", str(log)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            control = Path(f"{log}.control.json")
            while not control.exists():
                time.sleep(0.1)
            time.sleep(2)  # past start-up
            idle = window(run.pid, args.window)
            subprocess.run([*SIMULATOR, "control", "pause", "--log", str(log)], check=True,
                           cwd=ROOT, capture_output=True)  # fmt: skip
            paused = window(run.pid, args.window)
            subprocess.run([*SIMULATOR, "control", "stop", "--log", str(log)], check=True,
                           cwd=ROOT, capture_output=True)  # fmt: skip
            run.wait(60)
        finally:
            run.kill()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"idle realtime run:   {idle * 100:.2f}% of one core over {args.window:g} s")
    print(f"paused realtime run: {paused * 100:.2f}% of one core over {args.window:g} s")


if __name__ == "__main__":
    main()
