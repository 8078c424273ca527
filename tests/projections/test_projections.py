"""Projections over real SQLite logs: case states, findings, timeline, resumption."""

from pathlib import Path

import pytest

from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.projections import (
    CaseProjection,
    ProjectionGap,
    TimelineProjection,
    catch_up,
)
from tests.logs import DRILL, write_log


async def _events(path: Path) -> list[Event]:
    async with open_log(path, read_only=True) as store:
        return [e async for e in store.read()]


async def test_case_projection_folds_the_whole_log(tmp_path: Path) -> None:
    """Every case reaches the state the procedure gives it, with its violations."""
    path = tmp_path / "drill.db"
    await write_log(path)
    cases = CaseProjection()
    async with open_log(path, read_only=True) as store:
        await catch_up(store, cases)
    assert {k: v.state.value for k, v in cases.cases.items()} == {
        "case-1": "refused",
        "case-2": "in_execution",
        "case-3": "completed",
    }
    rules = sorted(f.violation.rule_id for f in cases.findings)
    assert rules == [
        "not-working-language",
        "refusal-without-consultation",
        "refusal-without-reasons",
    ]
    assert cases.divergences == []
    assert cases.position == len(DRILL) + 1


async def test_projection_takes_the_agreement_from_the_log(tmp_path: Path) -> None:
    """The exercise-start event carries the parties and settings; nothing else is needed."""
    path = tmp_path / "drill.db"
    await write_log(path)
    cases = CaseProjection()
    cases.apply_all(await _events(path))
    assert cases.agreement is not None
    assert sorted(cases.agreement.parties) == ["alpha", "beta", "gamma"]


async def test_projection_resumes_and_applies_each_event_once(tmp_path: Path) -> None:
    """Stopped half way and fed overlapping events, a projection ends as if run once."""
    path = tmp_path / "drill.db"
    await write_log(path)
    events = await _events(path)
    whole = CaseProjection()
    whole.apply_all(events)
    resumed = CaseProjection()
    async with open_log(path, read_only=True) as store:
        await catch_up(store, resumed, until=4)
        assert resumed.position == 4
        resumed.apply_all(events[:6])  # overlap: 1-4 again are skipped
        await catch_up(store, resumed)
    assert resumed.cases == whole.cases
    assert resumed.findings == whole.findings


async def test_projection_refuses_a_gap(tmp_path: Path) -> None:
    """An event after a missing one is refused rather than folded into a wrong view."""
    path = tmp_path / "drill.db"
    await write_log(path)
    events = await _events(path)
    cases = CaseProjection()
    cases.apply(events[0])
    with pytest.raises(ProjectionGap, match="expected event 2, got 3"):
        cases.apply(events[2])


async def test_divergence_is_reported_when_rules_change(tmp_path: Path) -> None:
    """Recorded violations that today's fold would not give are listed by position."""
    path = tmp_path / "drill.db"
    await write_log(path)
    events = await _events(path)
    tampered = events[3].model_copy(update={"data": {**events[3].data, "violations": []}})
    cases = CaseProjection()
    cases.apply_all([*events[:3], tampered, *events[4:]])
    assert [d.position for d in cases.divergences] == [4]
    assert {v.rule_id for v in cases.divergences[0].recomputed} == {
        "refusal-without-reasons",
        "refusal-without-consultation",
    }


async def test_findings_are_the_recorded_verdicts(tmp_path: Path) -> None:
    """Where today's fold judges otherwise, the findings stay what the umpire recorded."""
    path = tmp_path / "drill.db"
    await write_log(path)
    events = await _events(path)
    as_run = CaseProjection()
    as_run.apply_all(events)
    # The refusal at position 4 recorded as judged clean: a rule later made stricter.
    tampered = events[3].model_copy(update={"data": {**events[3].data, "violations": []}})
    cases = CaseProjection()
    cases.apply_all([*events[:3], tampered, *events[4:]])
    assert [f for f in as_run.findings if f.position != 4] == cases.findings
    assert cases.cases == as_run.cases


async def test_timeline_lists_every_event_with_its_gist(tmp_path: Path) -> None:
    """The timeline has one entry per event, with who, what and the recorded findings."""
    path = tmp_path / "drill.db"
    await write_log(path)
    timeline = TimelineProjection()
    timeline.apply_all(await _events(path))
    assert len(timeline.entries) == len(DRILL) + 1
    refusal = timeline.entries[3]
    assert (refusal.type, refusal.sender, refusal.recipient) == ("refusal", "beta", "alpha")
    assert "refusal-without-reasons" in refusal.rule_ids
    assert timeline.entries[1].gist.startswith("A regional sports final")
