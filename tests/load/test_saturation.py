"""A load run past its capacity is a result: bounded in time, figures written, nothing called lost.

Saturation is made deterministic with a slow log: the umpire's store appends
at most a few events a second (a disk far slower than what is offered), so
the run falls behind on any machine, however idle or busy.
"""

import asyncio
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.eventlog import InspectableStore, NewEvent, verify
from simulator.eventlog.store import Appended
from simulator.load import LoadOptions, command, find_max, run_load
from simulator.load.report import climbing_from


class SlowLog:
    """A store that appends at most `per_s` events a second; everything else as the store does."""

    def __init__(self, store: InspectableStore, per_s: float) -> None:
        self.store = store
        self.per_s = per_s

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        await asyncio.sleep(len(batch) / self.per_s)
        return await self.store.append(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def slow_log(per_s: float) -> Any:
    return lambda store: cast(InspectableStore, SlowLog(store, per_s))


def test_a_saturated_run_writes_its_figures_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offered far more than its log takes: exit 3, JSON and HTML written, unfinished not lost."""
    monkeypatch.setattr(command, "run_load", functools.partial(run_load, log_through=slow_log(30)))
    out, page, log = tmp_path / "load.json", tmp_path / "load.html", tmp_path / "load.db"
    result = CliRunner().invoke(
        app,
        ["load", "--parties", "4", "--rate", "40", "--duration", "3", "--drain", "2",
         "--broker", "mosquitto", "--processes", "1", "--log", str(log),
         "--json", str(out), "--html", str(page), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["verdict"] == "saturated"
    assert data["saturated"] is True
    assert data["failure"] is None
    # Nothing reported lost: what the drain did not see through is counted apart.
    assert (data["lost"], data["duplicated"], data["undelivered"]) == (0, 0, 0)
    unfinished = data["unfinished"]
    assert unfinished["cases"] == data["cases"]["incomplete"] > 0
    assert data["cases"]["completed"] + unfinished["cases"] == data["cases"]["started"]
    assert data["submitted"] == data["committed_messages"] + unfinished["submissions_in_flight"]
    # What it sustained, and when the backlog started to pile up.
    assert data["committed_events_per_s"] > 0
    assert data["saturation"]["offered_events_per_s"] > 100
    assert data["saturation"]["backlog_climbing_from_s"] is not None
    assert "saturated" in page.read_text(encoding="utf-8")
    # A slow disk, not CPU, held it back: no process is named as having run out of CPU.
    assert data["cpu_use"]["bound"] is None
    assert "ran out of CPU first: nothing" in " ".join(result.output.split())
    assert "not lost" in result.output
    assert asyncio.run(verify(log)).ok


def test_find_max_reports_the_highest_rate_held(tmp_path: Path) -> None:
    """A ramp over a log that takes 10 events/s: the first step holds, the second does not."""
    steps: list[Any] = []
    ceiling = asyncio.run(
        find_max(
            LoadOptions(parties=4, rate=1, duration_s=2, processes=1, drain_s=1),
            p99_bound_ms=5000,
            factor=8,
            steps=3,
            on_step=steps.append,
            run=functools.partial(run_load, log_through=slow_log(10)),
        )
    )
    assert [s.held for s in ceiling.steps] == [True, False]
    assert steps == ceiling.steps
    assert ceiling.best is ceiling.steps[0]
    assert ceiling.steps[1].offered_cases_per_s == 8
    assert ceiling.steps[1].verdict == "saturated"
    # Each step says how busy the CPU was; the log, not the CPU, was the limit here.
    assert all(s.cores_busy is not None and s.cpu_why for s in ceiling.steps)
    assert ceiling.steps[1].cpu_bound is None
    assert ceiling.verdict == "ok"
    data = ceiling.as_json()
    assert data["max_offered_cases_per_s"] == 1
    assert data["held"] is True
    assert ceiling.figures is not None
    assert ceiling.figures["offered_cases_per_s"] == 1


def test_find_max_from_the_command_line(tmp_path: Path) -> None:
    """`--find-max` ramps from --rate; JSON holds each step and the highest rate held."""
    out = tmp_path / "max.json"
    result = CliRunner().invoke(
        app,
        ["load", "--find-max", "--parties", "4", "--rate", "4", "--duration", "1",
         "--steps", "2", "--p99-bound", "60000", "--processes", "1", "--json", str(out),
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))["find_max"]
    assert [s["offered_cases_per_s"] for s in data["steps"]] == [4, 5.2]
    assert all(s["held"] for s in data["steps"])
    assert data["max_offered_cases_per_s"] == 5.2
    assert "highest rate held" in result.output
    assert all(s["cores_busy"] is not None for s in data["steps"])
    assert "ran out first:" in " ".join(result.output.split())


def test_find_max_refuses_a_log_file(tmp_path: Path) -> None:
    """Each step is a run with its own log, so one --log file cannot hold them."""
    result = CliRunner().invoke(
        app, ["load", "--find-max", "--log", str(tmp_path / "x.db"), "--duration", "1"]
    )
    assert result.exit_code == 2
    assert "--find-max" in result.output


def test_a_climb_starts_where_the_series_never_comes_back() -> None:
    """The last point at the low level the series stays above, once it has grown by the
    threshold: a backlog at 0 at the run's start had made every climb start there."""
    assert climbing_from([(0, 5), (1, 50), (2, 40), (3, 90), (4, 80), (5, 130)], 40) == 0
    assert climbing_from([(0, 5), (1, 6), (2, 4), (3, 50), (4, 90)], 40) == 2
    assert climbing_from([(0, 5), (1, 9), (2, 4), (3, 7)], 40) is None
    assert climbing_from([], 1) is None
    # A broker killed at about 4 s: the open cases steady at 4-5 from the start, then piling.
    backlog: list[tuple[float, float]] = [
        (0, 0), (1, 5), (2, 4), (3, 5), (4, 4), (5, 5), (6, 60), (7, 120), (8, 180)
    ]  # fmt: skip
    assert climbing_from(backlog, 50) == 5
    latency: list[tuple[float, float]] = [
        (1, 20), (2, 22), (3, 21), (4, 22), (5, 21), (6, 300), (7, 900), (8, 1500)
    ]  # fmt: skip
    assert climbing_from(latency, 50) == 5


def test_a_ramp_whose_every_step_held_says_the_ceiling_was_not_found() -> None:
    """Every step held: it had said "highest rate held" as if that were the ceiling."""
    from simulator.load.ceiling import Ceiling, RampStep  # noqa: PLC0415 - this test only
    from simulator.load.command import ceiling_summary  # noqa: PLC0415

    steps = [
        RampStep(rate, rate * 3.8, rate * 3.8, rate * 3.8, 9.0, 10, 10, "ok", True, "held")
        for rate in (10.0, 13.0)
    ]
    said = ceiling_summary(Ceiling(25.0, steps))
    assert said.startswith("highest rate held with p99 under 25 ms: 49 events/s offered")
    assert "every one of the 2 steps held: the ceiling is higher" in said
