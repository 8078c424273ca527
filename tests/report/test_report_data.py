"""report.json: every section, with the figures of logs whose content is known."""

import asyncio
import json
from collections import Counter
from pathlib import Path

from simulator.logfiles import open_log
from simulator.report import ReportData, read_report, render_json, save_report
from simulator.report.model import Answer
from simulator.scenario import load_scenario
from tests.logs import WALL
from tests.protocol.builders import TWO_AGREEMENTS
from tests.report.conftest import SCENARIOS, ScenarioRun
from tests.report.drill import SEED, TITLE, _step, drill_events, write_drill, write_empty

SECTIONS = {
    "format",
    "summary",
    "cases",
    "response_times",
    "violations",
    "expectations",
    "parties",
    "rejections",
    "controller",
    "timeline",
}


def test_report_json_holds_every_section(drill_report: ReportData, tmp_path: Path) -> None:
    """report.json holds every section and reads back as the same ReportData."""
    files = save_report(drill_report, tmp_path / "out")
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert set(data) == SECTIONS
    assert data["format"] == 2
    assert ReportData.model_validate(data) == drill_report


def test_summary_counts_the_drill(drill_report: ReportData) -> None:
    """The summary gives the drill's exercise, seed, span, events, messages, cases, rejections."""
    s = drill_report.summary
    assert (s.exercise, s.title, s.seed) == ("drill", TITLE, SEED)
    assert s.simulated_seconds == 150 * 3600
    assert (s.events, s.messages, s.deadline_events, s.rejections) == (12, 8, 1, 1)
    assert s.cases == 3
    assert s.cases_by_state == {"completed": 1, "lapsed": 1, "refused": 1}
    assert s.unopened_cases == ["case-9"]
    assert s.violations == 5
    assert s.violations_by_severity == {"error": 3, "warning": 1, "info": 1}
    assert s.ended_because == "the drill is over"
    assert s.agreement is not None
    assert s.agreement.written_confirmation_seconds == 3 * 86400
    assert s.agreement.as_soon_as_possible_seconds == 10 * 86400
    assert [p.id for p in s.parties] == ["alpha", "beta", "gamma"]
    assert s.divergences == []


def test_cases_list_every_step_in_log_order(drill_report: ReportData) -> None:
    """Each case id has its messages and deadlines as steps, lanes requesting first."""
    cases = {c.case_id: c for c in drill_report.cases}
    assert list(cases) == ["case-1", "case-2", "case-3", "case-9"]
    one = cases["case-1"]
    assert one.state == "completed"
    assert one.lanes == ["alpha", "beta"]
    assert [(s.position, s.type) for s in one.steps] == [
        (2, "written_request"),
        (3, "acknowledgement"),
        (4, "acceptance"),
        (10, "results"),
    ]
    lapsed = cases["case-2"]
    assert [(s.kind, s.rule_ids) for s in lapsed.steps] == [
        ("message", []),
        ("deadline", ["oral-request-not-confirmed"]),
    ]
    assert cases["case-3"].lanes == ["gamma", "alpha"]
    assert cases["case-3"].violations == 3
    assert cases["case-9"].state == "never_opened"


def test_response_times_per_case_and_per_kind(drill_report: ReportData) -> None:
    """Acknowledgement, decision and results times are measured per case and summed up per kind.

    An answer the case never called for is "not owed", not "never answered": case-3 was
    refused straight away (no acknowledgement owed) and case-2 lapsed (no decision owed);
    only case-2's written confirmation was owed when the case closed.
    """
    times = {c.case_id: c.times for c in drill_report.cases}
    one = times["case-1"]
    assert (one.acknowledgement, one.decision, one.results) == (
        Answer(status="answered", after=4 * 3600),
        Answer(status="answered", after=22 * 3600),
        Answer(status="answered", after=4 * 86400),
    )
    assert one.decision_kind == "executed"
    assert one.written_confirmation is None
    three = times["case-3"]
    assert three.decision == Answer(status="answered", after=4 * 3600)
    assert three.decision_kind == "refused"
    assert three.acknowledgement == Answer(
        status="not_owed", after=None, note="went straight to refusal"
    )
    two = times["case-2"]
    assert two.written_confirmation == Answer(
        status="unanswered", after=None, note="the case lapsed"
    )
    assert (
        two.acknowledgement
        == two.decision
        == Answer(status="not_owed", after=None, note="the case lapsed first")
    )
    measures = {m.name: m for m in drill_report.response_times.measures}
    assert measures["written_confirmation"].reference_seconds == 3 * 86400
    assert measures["written_confirmation"].unanswered == ["case-2"]
    assert measures["acknowledgement"].samples == 1
    assert measures["acknowledgement"].unanswered == []
    assert measures["acknowledgement"].owed == []
    assert measures["acknowledgement"].not_owed == ["case-2", "case-3"]
    assert measures["decision"].not_owed == ["case-2"]
    assert measures["decision"].samples == 2
    assert measures["decision"].median_seconds == (22 + 4) * 3600 // 2
    assert measures["results"].reference_seconds == 10 * 86400
    assert measures["results"].max_seconds == 4 * 86400
    assert measures["results"].over_reference == []


def test_violations_are_grouped_by_article_with_their_events(drill_report: ReportData) -> None:
    """Articles come in the agreement's order, procedure last; each finding names its event."""
    groups = drill_report.violations
    assert [g.article for g in groups] == ["4.2", "5.2", "5.3", "9", "—"]
    assert [g.count for g in groups] == [1, 1, 1, 1, 1]
    found = {
        r.rule_id: [(f.position, f.event_type, f.case, f.party) for f in r.findings]
        for g in groups
        for r in g.rules
    }
    assert found == {
        "oral-request-not-confirmed": [(9, "coop.clock.elapsed", "case-2", "alpha")],
        "refusal-without-consultation": [(7, "refusal", "case-3", "alpha")],
        "refusal-without-reasons": [(7, "refusal", "case-3", "alpha")],
        "not-working-language": [(6, "written_request", "case-3", "gamma")],
        "unknown-case": [(11, "results", "case-9", "beta")],
    }
    assert groups[0].rules[0].summary.startswith("An oral request must be confirmed")


def test_party_statistics(drill_report: ReportData) -> None:
    """Each party's messages sent and received, violations caused, rejections and responses."""
    stats = {p.party: p for p in drill_report.parties}
    assert [(p.sent, p.received) for p in stats.values()] == [(3, 5), (4, 2), (1, 1)]
    assert [p.violations_caused for p in stats.values()] == [3, 1, 1]
    assert [p.rejections for p in stats.values()] == [0, 1, 0]
    assert (stats["alpha"].cases_requesting, stats["alpha"].cases_requested) == (2, 1)
    assert stats["beta"].median_response_seconds == 4 * 3600
    assert stats["gamma"].median_response_seconds is None


def test_timeline_and_rejections(drill_report: ReportData) -> None:
    """The timeline has one row per event with its findings; rejections give party and reason."""
    rows = drill_report.timeline
    assert [r.position for r in rows] == list(range(1, 13))
    assert rows[6].findings == ["refusal-without-reasons", "refusal-without-consultation"]
    assert rows[7].type == "coop.rejection"
    assert rows[8].gist.startswith(
        "deadline passed; the oral request of 2026-03-03 10:00 was not confirmed"
    )
    assert [(r.position, r.party) for r in drill_report.rejections] == [(8, "beta")]
    assert "not JSON" in drill_report.rejections[0].reason


def test_log_without_scenario_says_expectations_were_not_scored(
    drill_report: ReportData,
) -> None:
    """Without a scenario in the log's metadata the expectations section says why it is empty."""
    assert not drill_report.expectations.scored
    assert drill_report.expectations.results == []
    assert "no scenario" in drill_report.expectations.note


async def test_unreadable_scenario_is_reported_not_raised(tmp_path: Path) -> None:
    """A scenario in the metadata that no longer validates leaves the expectations unscored."""
    path = tmp_path / "odd.db"
    await write_drill(path, metadata={"scenario": '{"version": 99}'})
    report = await read_report(path)
    assert not report.expectations.scored
    assert "could not be read" in report.expectations.note


async def test_partial_results_are_explained_by_the_partial_refusal(tmp_path: Path) -> None:
    """Conditions accepted, then part refused (Art. 5.1): the refusal is a step, not a breach."""
    path = tmp_path / "partial.db"
    steps = [
        _step(1, "written_request", "alpha", "beta", "case-1"),
        _step(2, "consultation", "beta", "alpha", "case-1"),
        _step(3, "conditions_accepted", "alpha", "beta", "case-1"),
        _step(
            4,
            "refusal",
            "beta",
            "alpha",
            "case-1",
            scope="partial",
            refused_parts=["liaison officer"],
        ),
        _step(30, "results", "beta", "alpha", "case-1", partial=True),
    ]
    await write_drill(path, steps, with_extras=False)
    report = await read_report(path)
    (case,) = report.cases
    assert case.state == "completed"
    assert [(s.type, s.rule_ids) for s in case.steps] == [
        ("written_request", []),
        ("consultation", []),
        ("conditions_accepted", []),
        ("refusal", []),
        ("results", []),
    ]
    assert report.violations == []
    assert case.times.decision_kind == "executed"


async def test_empty_log_gives_an_empty_report(tmp_path: Path) -> None:
    """A log with no events gives zero counts and empty sections, and all three files."""
    path = tmp_path / "empty.db"
    await write_empty(path)
    report = await read_report(path)
    assert report.summary.events == 0
    assert report.summary.simulated_start is None
    assert report.summary.agreement is None
    assert (report.cases, report.violations, report.timeline, report.parties) == ([], [], [], [])
    assert all(m.samples == 0 for m in report.response_times.measures)
    files = save_report(report, tmp_path / "out")
    assert "The log holds no events." in files.markdown.read_text(encoding="utf-8")
    assert "No case was opened." in files.html.read_text(encoding="utf-8")


def test_scenario_run_agrees_with_the_run_summary(scenario_run: ScenarioRun) -> None:
    """On a real run the report's figures equal those `simulator run` printed, expectations too."""
    report = asyncio.run(read_report(scenario_run.log))
    run = scenario_run.summary
    s = report.summary
    assert (s.exercise, s.seed) == (run.exercise, run.seed)
    assert (s.events, s.messages, s.rejections) == (run.events, run.messages, run.rejections)
    assert (s.simulated_start, s.simulated_end) == (run.simulated_start, run.simulated_end)
    assert s.cases_by_state == dict(sorted(run.cases.items(), key=lambda kv: (-kv[1], kv[0])))
    assert s.violations == len(run.violations) > 0
    by_article = {g.article: g.count for g in report.violations}
    assert by_article == dict(Counter(v.article for v in run.violations))
    positions = sorted(f.position for g in report.violations for r in g.rules for f in r.findings)
    assert positions == sorted(v.position for v in run.violations)
    assert report.expectations.scored
    assert [(e.id, e.met, e.missed) for e in report.expectations.results] == [
        (e.id, e.met, e.missed) for e in run.expectations
    ]
    assert len(report.timeline) == run.events


def test_scenario_metadata_gives_title_and_expectation_targets(scenario_run: ScenarioRun) -> None:
    """With the scenario in the metadata, the title and each expectation's target come from it."""
    report = asyncio.run(read_report(scenario_run.log))
    scenario = load_scenario(SCENARIOS / "registry-mixups.yaml")
    assert report.summary.title == scenario.title
    targets = [
        f"message {e.message}" if e.message else f"state {e.state}" for e in scenario.expectations
    ]
    assert [e.target for e in report.expectations.results] == targets
    data = json.loads(render_json(report))
    assert data["expectations"]["results"][0]["id"] == scenario.expectations[0].id


def test_each_case_is_timed_by_its_own_agreement(tmp_path: Path) -> None:
    """Two agreements, two windows: a confirmation 36 hours late by one is in time by the other."""
    customs = {"language": "en", "area": "customs_offences"}
    steps = [
        _step(1, "oral_request", "gamma", "beta", "case-c", **customs),
        _step(2, "oral_request", "alpha", "beta", "case-d"),
        _step(37, "written_confirmation", "gamma", "beta", "case-c", confirms="gamma.1", **customs),
        _step(38, "written_confirmation", "alpha", "beta", "case-d", confirms="alpha.2"),
    ]
    path = tmp_path / "two.db"

    async def write() -> None:
        async with open_log(path, create=True, now=lambda: WALL) as store:
            await store.append(drill_events(steps, TWO_AGREEMENTS, with_extras=False))

    asyncio.run(write())
    report = asyncio.run(read_report(path))
    by_case = {c.case_id: c.times.written_confirmation for c in report.cases}
    assert by_case["case-c"] == Answer(status="answered", after=36 * 3600, late=True)
    assert by_case["case-d"] == Answer(status="answered", after=36 * 3600, late=False)
    measure = next(m for m in report.response_times.measures if m.name == "written_confirmation")
    assert measure.over_reference == ["case-c"]
    assert measure.reference_label is not None
    assert "Art. 4.2 (MIA Belarus - Rosgvardia cooperation agreement): 3 days" in (
        measure.reference_label
    )
    assert "Art. 6.1 (customs mutual administrative assistance agreement): 1 day" in (
        measure.reference_label
    )
