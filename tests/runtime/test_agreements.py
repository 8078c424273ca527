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
    # The late confirmation's lateness is the one finding (Art. 6.1 here): none for a
    # message into the lapsed case besides.
    assert [g.label for g in report.violations] == ["Art. 2", "Art. 6.1"]
    text = render_markdown(report)
    assert "| agreement | customs mutual administrative assistance agreement |" in text
    assert "written confirmation 1d (Art. 6.1); working language en (Art. 6.3)" in text
    assert "Art. 4.2" not in text
    assert "Art. 6.1: 1 day" in text


FIVE = SCENARIOS / "two-agreements.yaml"


def _messages(events: list[dict[str, Any]], case: str) -> list[dict[str, Any]]:
    return [
        e["data"]["message"]
        for e in events
        if e["type"].startswith("coop.msg.") and e["data"]["message"]["case_id"] == case
    ]


async def test_five_parties_under_two_agreements(tmp_path: Path) -> None:
    """Requests across the agreements breach Art. 1; southmere answers each agreement its way."""
    scenario = load_scenario(FIVE)
    await run_exercise(scenario, RunOptions(log=str(tmp_path / "a.db")))
    await run_exercise(scenario, RunOptions(log=str(tmp_path / "b.db")))
    events = await exported(tmp_path / "a.db")
    # Same scenario, same seed: the same log.
    assert events == await exported(tmp_path / "b.db")
    assert len(scenario.parties) == 5
    recorded = events[0]["data"]["agreement"]["agreements"]
    assert [(a["id"], a["profile"], a["parties"]) for a in recorded] == [
        ("north-south", "default", ["northmark", "southmere"]),
        ("south-east-customs", "customs-maa", ["southmere", "eastvale"]),
    ]
    by_case = {
        e["data"]["message"]["case_id"]: [
            (v["rule_id"], v["article"]) for v in e["data"]["violations"]
        ]
        for e in events
        if e["type"].startswith("coop.msg.") and e["data"]["violations"]
    }
    # Northmark to Eastvale, and Westmoor (bound by neither) to Southmere: recorded, and
    # each with the scope violation citing Art. 1 of the agreement; Eastvale to Lakeland,
    # citing the scope of Eastvale's customs agreement, Art. 2.
    assert by_case == {
        "x-1": [("no-common-agreement", "1")],
        "x-2": [("no-common-agreement", "1")],
        "x-3": [("no-common-agreement", "2")],
        "a-2": [("area-outside-agreement", "2")],
    }
    assert [m["type"] for m in _messages(events, "x-1")] == ["written_request"]
    # b-1 names its agreement; a-1 names none and is under the only one its parties share.
    assert _messages(events, "b-1")[0]["agreement"] == "south-east-customs"
    assert "agreement" not in _messages(events, "a-1")[0]
    # The same party, southmere, under each agreement: it accepts Northmark's request at
    # once, in Russian; it proposes conditions on Eastvale's first, in English.
    north = [
        (m["type"], m["language"]) for m in _messages(events, "a-1") if m["sender"] == "southmere"
    ]
    east = [
        (m["type"], m["language"]) for m in _messages(events, "b-1") if m["sender"] == "southmere"
    ]
    assert north == [("acknowledgement", "ru"), ("acceptance", "ru"), ("results", "ru")]
    assert east == [("acknowledgement", "en"), ("consultation", "en"), ("results", "en")]
    # Southmere answers nothing that no agreement of its own covers.
    assert [m["sender"] for m in _messages(events, "x-2")] == ["westmoor"]
    # The report words each finding as its own agreement does: Art. 2 holds the customs
    # agreement's scope (x-3) and the default agreement's areas (a-2).
    async with open_log(tmp_path / "a.db", read_only=True) as store:
        report = await build_report(store)
    art_2 = next(g for g in report.violations if g.label == "Art. 2")
    summaries = {r.rule_id: r.summary for r in art_2.rules}
    assert summaries["no-common-agreement"].startswith("Assistance is given between the customs")
    assert "customs" not in summaries["area-outside-agreement"]
