"""The fast fold gives exactly what the reference fold gives: states, findings, divergences.

The reference (tests/projections/reference_fold.py) is the fold as it was
before it was made fast, reading every message through the discriminated
union. Both run over the log of every shipped scenario, over the golden
version-1 log, and over hypothesis-generated message sequences.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simulator.cli.logview import import_log
from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.projections import CaseProjection
from simulator.protocol import MESSAGE_ADAPTER, MESSAGE_TYPES, Agreement, AgreementSettings, Case
from simulator.protocol import Violation as ProtocolViolation
from simulator.records import read_agreement, read_message
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from tests.logs import WALL
from tests.projections import reference_fold
from tests.protocol.builders import AGREEMENT, valid_fields
from tests.protocol.test_state_machine import ProcedureMachine

SCENARIOS = Path(__file__).parents[2] / "scenarios"
GOLDEN = Path(__file__).parents[1] / "golden"


@pytest.fixture(scope="module")
def scenario_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One run of every scenario in scenarios/, on the embedded broker."""
    workdir = tmp_path_factory.mktemp("scenario-logs")
    logs: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMULATOR_KEY_DIR", str(workdir / "keys"))
        for path in sorted(SCENARIOS.glob("*.yaml")):
            log = workdir / f"{path.stem}.db"
            asyncio.run(run_exercise(load_scenario(path), RunOptions(log=str(log))))
            logs[path.stem] = log
        yield logs


async def _events(log: Path) -> list[Event]:
    async with open_log(log, read_only=True) as store:
        return [event async for event in store.read()]


def _assert_same(events: list[Event], agreement: Agreement | None = None) -> CaseProjection:
    """Folds the events both ways and checks every result is identical."""
    fast = CaseProjection(agreement)
    reference = reference_fold.ReferenceProjection(agreement)
    fast.apply_all(events)
    for event in events:
        reference.handle(event)
    assert fast.cases == reference.cases
    assert all(type(case) is Case for case in fast.cases.values())
    assert fast.findings == reference.findings
    assert fast.divergences == reference.divergences
    return fast


def _log_agreement(events: list[Event]) -> Agreement:
    return read_agreement(next(e for e in events if e.type == "coop.exercise.started"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
async def test_fast_fold_equals_reference_on_every_scenario(
    name: str, scenario_logs: dict[str, Path]
) -> None:
    """Each shipped scenario's log folds to the same cases, findings and divergences."""
    events = await _events(scenario_logs[name])
    fast = _assert_same(events)
    assert fast.cases, f"{name}: no case was folded"
    assert fast.divergences == []
    # Other settings than the log's: the umpire's recorded findings now differ
    # from today's fold, and both folds report the same divergences.
    agreement = _log_agreement(events)
    strict = Agreement.of(
        list(agreement.parties.values()),
        AgreementSettings(
            promptly=agreement.settings.promptly,
            as_soon_as_possible=agreement.settings.as_soon_as_possible,
            working_language="en",
        ),
    )
    assert _assert_same(events, strict).divergences


async def test_fast_fold_equals_reference_on_the_v1_golden_log(tmp_path: Path) -> None:
    """The upgraded version-1 log (violations not recorded) folds the same both ways."""
    log = tmp_path / "v1.db"
    await import_log(GOLDEN / "v1-drill.jsonl", str(log), now=lambda: WALL)
    fast = _assert_same(await _events(log))
    assert len(fast.findings) == 3


async def test_findings_of_the_scenarios_match(scenario_logs: dict[str, Path]) -> None:
    """Across the scenarios both folds find the same, non-empty, set of violations."""
    found: list[str] = []
    for log in scenario_logs.values():
        found.extend(f.violation.rule_id for f in _assert_same(await _events(log)).findings)
    assert {"not-allowed-in-state", "unknown-case", "case-closed"} <= set(found)


class EquivalenceMachine(ProcedureMachine):
    """The state-machine test's random plays, replayed through the reference fold too."""

    def teardown(self) -> None:
        super().teardown()
        agreement = AGREEMENT
        cases: dict[str, Case | None] = dict.fromkeys(self.cases)
        violations: list[ProtocolViolation] = []
        for case_id, message, at in self.history:
            current = cases[case_id]
            if message is None:
                if current is not None:
                    current, found = reference_fold.elapse(current, at, agreement)
                    cases[case_id] = current
                    violations.extend(found)
                continue
            # The message as a log holds it, read back by the fast reader.
            event_data = {"message": message.model_dump(mode="json")}
            assert read_message(_event_with(event_data)) == message
            cases[case_id], found = reference_fold.apply(current, message, at, agreement)
            violations.extend(found)
        assert cases == self.cases
        assert violations == self.all_violations


def _event_with(data: dict[str, Any]) -> Event:
    """A committed event carrying this data, as a log would hold it."""
    return Event(
        id="e-1",
        source="party/alpha",
        type="coop.msg.any",
        subject="case-1",
        time=WALL,
        data=data,
        exercise="equivalence",
        wallclock=WALL,
        position=1,
        caseversion=1,
        prevhash="0" * 64,
        hash="0" * 64,
        schemaversion=2,
    )


EquivalenceMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_plays_fold_the_same = EquivalenceMachine.TestCase

_KINDS = sorted(MESSAGE_TYPES)
_BREAKAGES: list[tuple[str, Any]] = [
    ("type", "no_such_type"),
    ("type", 7),
    ("type", ["written_request"]),
    ("case_id", "Not An Id"),
    ("sender", None),
    ("recipient", "alpha"),
    ("medium", "carrier pigeon"),
    ("language", 3),
    ("surplus", "field"),
    ("area", "space"),
    ("parts", "not a list"),
    ("urgent", "perhaps"),
]


@given(
    kind=st.sampled_from(_KINDS),
    breakage=st.sampled_from([None, *_BREAKAGES]),
    drop=st.sampled_from([None, "message_id", "type", "sender", "area", "summary", "conditions"]),
)
@settings(max_examples=300, deadline=None)
def test_message_reader_equals_the_union(
    kind: str, breakage: tuple[str, Any] | None, drop: str | None
) -> None:
    """read_message accepts exactly what the union accepts, and raises the union's errors."""
    data: dict[str, Any] = {
        "type": kind,
        "message_id": "m-1",
        "case_id": "case-1",
        "sender": "alpha",
        "recipient": "beta",
        **valid_fields(kind, "alpha", "beta"),
    }
    if breakage is not None:
        data[breakage[0]] = breakage[1]
    if drop is not None:
        data.pop(drop, None)
    expected: object
    try:
        expected = MESSAGE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        expected = exc
    if isinstance(expected, ValidationError):
        with pytest.raises(ValidationError) as caught:
            read_message(_event_with({"message": data}))
        # Without context: it holds the raised ValueError, which compares by identity.
        assert caught.value.errors(include_context=False) == expected.errors(include_context=False)
        assert str(caught.value) == str(expected)
    else:
        got = read_message(_event_with({"message": data}))
        assert got == expected
        assert type(got) is type(expected)
