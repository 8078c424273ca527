"""Resident memory of a long load run and of a replay of its log (issue 16, target 4).

    python benchmarks/load_memory.py [--events 1000000] [--rate 1000] [--processes 2]
                                     [--broker mosquitto] [--keep DIR]

Runs `simulator load` for about --events committed events (duration = events /
(rate x messages per case)), keeping its log, then reads the log back:
`simulator replay` onto an embedded broker (which refuses a load log, having
no scenario to name its parties, but reads it first), and `simulator log
verify` (every event read and its chain checked). Every process of each (the
CLI with the umpire, the load generators, a private Mosquitto) is sampled
with psutil twice a second; it prints each role's peak resident set and the
peak of their sum, against the target of 1 GiB. The load run may end saturated (exit 3) on
a busy machine: its memory is what is measured, and the events it committed
are printed beside it. Every run is bounded in time and stops by itself.

Measured here (2 cores shared with other sessions, load average 5-8,
2026-12-06), `--events 1000000 --rate 400` (1,000,387 events, exit 0):
peak total 974 MiB: the CLI with the umpire 746, the two generators 220
together, Mosquitto 10; the commit before this work, in the same session:
1,591 MiB (umpire 1,114, generators 545). What still grows is the umpire's
sequencer (every case's state and every message id with its digest, about
390 bytes a message: `simulator/umpire/sequencer.py`). Reading the log back:
`replay` 3,103 MiB (it reads every event into a list before it looks at the
log's scenario: `simulator/run/replay.py` read_range), `log verify` 110 MiB.

Measured again 2026-12-07 (2 cores, nothing else running, load average
1.3-1.8): 1,049 MiB at c348019 (the commit of the figures above) and 1,047 at
0428bbe's parent, the CLI with the umpire 831 and 872 MiB: the same code
measured 974 the day before, so about 7 % moves with the machine. Then with the
sequencer keeping one 49-byte claim a message id instead of a tuple of two
strings (129 bytes): 933 MiB, the CLI with the umpire 710. Reading back:
`replay` 58 MiB (it refuses a load log before reading it), `log verify` 102 MiB.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil

from simulator.load import Mix

GIB = 1024**3
TARGET = 1 * GIB


def _role(process: psutil.Process, root: int) -> str:
    try:
        argv = process.cmdline()
    except psutil.Error:
        return "gone"
    if process.pid == root:
        # python -m simulator <command> ...: the CLI (and, for `load`, the umpire).
        return "cli+umpire" if argv[3:4] == ["load"] else "cli"
    line = " ".join(argv)
    if "simulator.load.worker" in line:
        return "generator"
    if "mosquitto" in line:
        return "mosquitto"
    return "other"


async def sampled(command: list[str], limit_s: float) -> tuple[int, dict[str, int], int, float]:
    """(exit code, each role's peak RSS (summed over its processes), the peak total, seconds)."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL)
    peaks: dict[str, int] = defaultdict(int)
    peak_total = 0
    deadline = started + limit_s
    while process.poll() is None:
        if time.perf_counter() > deadline:
            process.kill()
            break
        by_role: dict[str, int] = defaultdict(int)
        try:
            tree = [process, *process.children(recursive=True)]
        except psutil.Error:
            tree = [process]
        for member in tree:
            try:
                by_role[_role(member, process.pid)] += member.memory_info().rss
            except psutil.Error:
                continue
        for role, rss in by_role.items():
            peaks[role] = max(peaks[role], rss)
        peak_total = max(peak_total, sum(by_role.values()))
        await asyncio.sleep(0.5)
    return process.wait(), dict(peaks), peak_total, time.perf_counter() - started


def _mib(n: int) -> str:
    return f"{n / 1024**2:,.0f} MiB"


def _show(label: str, peaks: dict[str, int], total: int) -> None:
    roles = ", ".join(f"{role} {_mib(rss)}" for role, rss in sorted(peaks.items()))
    verdict = "met" if total < TARGET else "NOT met"
    print(f"{label}: peak total {_mib(total)} (target < 1 GiB: {verdict}); {roles}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=1000, help="cases per second")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--parties", type=int, default=20)
    parser.add_argument("--broker", default="mosquitto")
    parser.add_argument("--keep", type=Path, help="keep the log and figures in this directory")
    args = parser.parse_args()
    duration = round(args.events / (args.rate * Mix().messages_per_case()), 1)
    simulator = [sys.executable, "-m", "simulator"]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        log, figures = directory / "load.db", directory / "load.json"
        log.unlink(missing_ok=True)
        print(f"load: {args.rate:g} cases/s for {duration:g} s, {args.processes} processes, "
              f"{args.broker}; load average {os.getloadavg()}", flush=True)  # fmt: skip
        code, peaks, total, took = await sampled(
            [*simulator, "load", "--rate", str(args.rate), "--duration", str(duration),
             "--processes", str(args.processes), "--parties", str(args.parties),
             "--broker", args.broker, "--log", str(log), "--json", str(figures), "--quiet"],
            limit_s=duration * 3 + 300,
        )  # fmt: skip
        data = json.loads(figures.read_text()) if figures.exists() else {}
        print(
            f"load run: exit {code}, {took:.0f} s, {data.get('events', '?')} events, verdict "
            f"{data.get('verdict', '?')}, committed {data.get('committed_events_per_s', '?')} "
            f"events/s; load average {os.getloadavg()}",
            flush=True,
        )
        _show("load run", peaks, total)
        for label, reading in (
            ("replay", ["replay", str(log), "--broker", "embedded", "--wait", "0"]),
            ("log verify", ["log", "verify", str(log)]),
        ):
            code, peaks, total, took = await sampled([*simulator, *reading], limit_s=1800)
            print(f"{label}: exit {code}, {took:.0f} s; load average {os.getloadavg()}")
            _show(label, peaks, total)


if __name__ == "__main__":
    asyncio.run(main())
