"""Exercises under agreements other than the default: one log on both brokers, its articles."""

from pathlib import Path
from typing import Any

import pytest

from simulator.logfiles import open_log
from simulator.report import build_report, render_markdown
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from tests.runtime.test_exercise import exported

SCENARIOS = Path(__file__).parents[2] / "scenarios"
CUSTOMS = SCENARIOS / "customs-transit.yaml"


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def _violations(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (v["rule_id"], v["article"])
        for e in events
        for v in (e["data"].get("violations") or [])
        if isinstance(e["data"], dict)
    ]


async def test_the_customs_scenario_gives_the_same_log_on_both_brokers(tmp_path: Path) -> None:
    """customs-transit runs on the embedded broker and on Mosquitto to the same log."""
    scenario = load_scenario(CUSTOMS)
    logs = []
    for name, broker in (("a", "embedded"), ("b", "mosquitto")):
        await run_exercise(scenario, RunOptions(broker=broker, log=str(tmp_path / f"{name}.db")))
        logs.append(await exported(tmp_path / f"{name}.db"))
    assert logs[0] == logs[1]
    started = logs[0][0]
    assert started["type"] == "coop.exercise.started"
    assert started["data"]["agreement"]["profile"] == "customs-maa"
    # The rules fire in this agreement's articles: Art. 6.1 for the late confirmation
    # (one day, not the default's 3), Art. 2 for a request outside customs matters.
    found = _violations(logs[0])
    assert ("oral-request-not-confirmed", "6.1") in found
    assert ("area-outside-agreement", "2") in found
    # A commercial secret is a ground of Art. 9.1 here: the refusal is not a violation.
    assert not any(rule == "refusal-ground-outside-5-1" for rule, _ in found)


async def test_the_customs_report_cites_the_customs_agreement(tmp_path: Path) -> None:
    """The after-action report of a customs run names the agreement and cites its articles."""
    await run_exercise(load_scenario(CUSTOMS), RunOptions(log=str(tmp_path / "run.db")))
    async with open_log(tmp_path / "run.db", read_only=True) as store:
        report = await build_report(store)
    terms = report.summary.agreement
    assert terms is not None
    assert terms.profile == "customs-maa"
    assert [g.label for g in report.violations] == ["Art. 2", "Art. 6.1", "no article (procedure)"]
    text = render_markdown(report)
    assert "| agreement | customs mutual administrative assistance agreement |" in text
    assert "written confirmation 1d (Art. 6.1); working language en (Art. 6.3)" in text
    assert "Art. 4.2" not in text
    assert "Art. 6.1: 1 day" in text
