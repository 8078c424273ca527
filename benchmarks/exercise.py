"""A simulated exercise end to end: `simulator run` of the long season, on both brokers.

    python benchmarks/exercise.py [--scenario FILE] [--brokers embedded,mosquitto]
                                  [--baseline REV | --no-baseline] [--repeat N]

Runs `simulator run SCENARIO --log …` as a user would (a new interpreter: imports,
broker start, the run, the summary) and prints, per broker, the wall seconds,
the rounds the umpire held (the log's end event records them), the appends
(batches appended to the log, counted in the child process), the events in the log and the
machine's load average. The baseline is the same scenario run by the code at
`--baseline` (default: where this branch left main, `git merge-base HEAD main`),
unpacked with `git archive` into a temporary directory and run with the same
interpreter in the same session, alternating with today's code; the ratio is
baseline wall / today's wall (above 1: faster now). With `--repeat N` each figure
is the best of N.

Figures vary about 2x with the machine's load; the ratio measured in one run
is the stable part. The logs of both codes are compared too (wall-clock fields
and the end event's round count aside): "same log" means the change left every
event as it was.

Measured here (2 cores, nothing else running; load average 0.1-0.9), the season
(981 events), best of 3, two runs of the benchmark, today's code (rounds by each
party's lookahead, round reports carrying the submissions) against ce59f8e (the
code before that) and once against d0c1874 (before issue 16's round changes):

                  wall s today   wall s ce59f8e   ratio     rounds today/before   commits
    embedded      4.05, 4.39     7.84, 8.36       1.9x      174/1017                980
    mosquitto     3.06, 2.77     5.08, 4.70       1.7x      174/1017                980

                  wall s today   wall s d0c1874   ratio     rounds today/before
    embedded      3.74           10.68            2.9x      174/1731
    mosquitto     2.99            8.64            2.9x      174/1731

Appending once a round rather than at every decided instant (deff62b), the
season, best of 3, load average 0.5-0.8, two runs against fd8546c (the code
before it) and one against d0c1874:

                  wall s today   wall s fd8546c   ratio        appends today/before
    embedded      2.80, 2.79     3.10, 3.16       1.11-1.13x   174/980
    mosquitto     2.04, 2.03     2.36, 2.34       1.15x        174/980

                  wall s today   wall s d0c1874   ratio     rounds today/before
    embedded      2.79           9.73             3.5x      174/1731
    mosquitto     2.04           7.50             3.7x      174/1731

The same log in every pair. What bounds it now: the process is CPU-bound on one
core. About a second is the interpreter starting and importing; on the embedded
broker, amqtt (a broker in Python, in the same process) handles each of the run's
~1,800 publishes and ~3,600 deliveries, and with the event loop's work for its
tasks that is close to half the CPU; Mosquitto does the same work in C in a
process of its own.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "four-rivers-season.yaml"

# Run in the child: count the umpire's appends (`Committer.append`; in code from
# before the committer, each `after_commit` was one), then the real CLI, as
# `simulator run` would.
CHILD = """
import atexit, json, sys
from simulator.umpire.core import Umpire
commits = [0]
try:
    from simulator.umpire.committer import Committer
except ImportError:
    original = Umpire.after_commit
    async def counted(self, committed):
        commits[0] += 1
        await original(self, committed)
    Umpire.after_commit = counted
else:
    appended = Committer.append
    async def append(self, batch):
        commits[0] += 1
        return await appended(self, batch)
    Committer.append = append
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps({"commits": commits[0]})))
sys.argv = ["simulator", *sys.argv[2:]]
from simulator.cli.app import main
main()
"""


@dataclass
class Figures:
    wall: float
    rounds: int
    commits: int
    events: int
    load: str
    log: Path


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_once(code: Path | None, scenario: Path, broker: str, workdir: Path, tag: str) -> Figures:
    log = workdir / f"{tag}.db"
    counts = workdir / f"{tag}.json"
    env = dict(os.environ)
    # As a user's run finds the package after its first: compiled (`compiled` did it
    # for both codes). A session that keeps Python from writing bytecode would
    # otherwise have every run compile the package again, a fifth of a second.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if code is not None:
        # The baseline's package ahead of the installed (editable) one.
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-c", CHILD, str(counts), "run", str(scenario)]
    command += ["--broker", broker, "--log", str(log)]
    load = load_average()
    began = time.perf_counter()
    done = subprocess.run(
        command, check=False, env=env, cwd=workdir, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"{tag}: simulator run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    with sqlite3.connect(log) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        (body,) = db.execute(
            "SELECT body FROM events WHERE type = 'coop.exercise.ended'"
        ).fetchone()
    rounds = json.loads(body)["data"]["rounds"]
    commits = json.loads(counts.read_text())["commits"]
    return Figures(wall, rounds, commits, events, load, log)


def comparable(log: Path) -> list[dict[str, object]]:
    """The log's events minus what differs from run to run (wall clock, the round count)."""
    out = []
    with sqlite3.connect(log) as db:
        for (body,) in db.execute("SELECT body FROM events ORDER BY position"):
            event = json.loads(body)
            for key in ("wallclock", "hash", "prevhash"):
                event.pop(key, None)
            if event["type"] == "coop.exercise.ended":
                event["data"].pop("rounds", None)
            out.append(event)
    return out


def unpack(revision: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "simulator", "brokers"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def compiled(*trees: Path) -> None:
    """Write the bytecode of each tree's packages, as their first run would."""
    for tree in trees:
        for package in ("simulator", "brokers"):
            if (tree / package).is_dir():
                subprocess.run(
                    [sys.executable, "-m", "compileall", "-q", str(tree / package)],
                    check=True,
                    capture_output=True,
                )


def best(runs: list[Figures]) -> Figures:
    return min(runs, key=lambda f: f.wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--brokers", default="embedded,mosquitto")
    parser.add_argument("--baseline", default=None, help="git revision (default: merge-base)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    args.scenario = args.scenario.resolve()
    revision = None
    if not args.no_baseline:
        revision = (
            args.baseline
            or subprocess.run(
                ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    with tempfile.TemporaryDirectory(prefix="bench-exercise-") as directory:
        workdir = Path(directory)
        baseline_code = None
        if revision is not None:
            baseline_code = unpack(revision, workdir / "baseline")
            print(f"baseline: {revision[:12]} (git archive, same interpreter)")
        compiled(ROOT, *([baseline_code] if baseline_code is not None else []))
        print(f"scenario: {args.scenario.name}")
        header = f"{'broker':<10} {'code':<9} {'wall s':>7} {'rounds':>7} {'appends':>8}"
        print(f"{header} {'events':>7}  load average (1, 5, 15 min)")
        for broker in args.brokers.split(","):
            today: list[Figures] = []
            before: list[Figures] = []
            for attempt in range(args.repeat):
                today.append(run_once(None, args.scenario, broker, workdir, f"{broker}-{attempt}"))
                if baseline_code is not None:
                    tag = f"{broker}-base-{attempt}"
                    before.append(run_once(baseline_code, args.scenario, broker, workdir, tag))
            rows = [("today", best(today))] + ([("baseline", best(before))] if before else [])
            for code, f in rows:
                line = f"{broker:<10} {code:<9} {f.wall:7.2f} {f.rounds:7d} {f.commits:8d}"
                print(f"{line} {f.events:7d}  {f.load}")
            if before:
                ratio = best(before).wall / best(today).wall
                same = comparable(best(before).log) == comparable(best(today).log)
                print(
                    f"{broker:<10} ratio baseline/today: {ratio:.2f}x; "
                    f"{'same log' if same else 'the logs differ'} (wall-clock fields, rounds aside)"
                )


if __name__ == "__main__":
    main()
