"""Fixtures of the report tests: a drill log of known figures and a real scenario run."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.projections.summary import RunSummary
from simulator.report import ReportData, read_report
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from tests.report.drill import write_drill

SCENARIOS = Path(__file__).parents[2] / "scenarios"


@dataclass(frozen=True)
class ScenarioRun:
    log: Path
    summary: RunSummary


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


@pytest.fixture
def drill_log(tmp_path: Path) -> Path:
    path = tmp_path / "drill.db"
    asyncio.run(write_drill(path))
    return path


@pytest.fixture
def drill_report(drill_log: Path) -> ReportData:
    return asyncio.run(read_report(drill_log))


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioRun]:
    """One run of registry-mixups (planted out-of-turn, unknown-case and closed-case messages)."""
    workdir = tmp_path_factory.mktemp("scenario-run")
    log = workdir / "run.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMULATOR_KEY_DIR", str(workdir / "keys"))
        scenario = load_scenario(SCENARIOS / "registry-mixups.yaml")
        outcome = asyncio.run(run_exercise(scenario, RunOptions(log=str(log))))
        yield ScenarioRun(log=log, summary=outcome.summary)
