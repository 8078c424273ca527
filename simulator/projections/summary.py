"""The summary of a run, read from its log: what happened, what broke the rules, what was met."""

from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from simulator.eventlog import EventStore
from simulator.lineage import RESUMED_AT, Lineage, read_lineage, resumed_positions
from simulator.projections.controller import ControllerProjection
from simulator.projections.milestones import MilestonesProjection
from simulator.records import (
    EXERCISE_ENDED,
    MESSAGE_PREFIX,
    REJECTION,
    is_message_event,
    message_payload,
    read_ended,
)
from simulator.scenario.model import Expectation, Scenario
from simulator.wording import Sent, prose


class ViolationEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    article: str
    severity: str
    case: str
    party: str | None
    position: int
    time: datetime
    detail: str
    # The detail in words: times, durations and names as people write them.
    what: str = ""


class ExpectationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    description: str
    met: list[str]
    missed: list[str]


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    log: str
    exercise: str
    events: int
    messages: int
    rejections: int
    cases: dict[str, int]
    case_states: dict[str, str]
    violations: list[ViolationEntry]
    violations_by_rule: dict[str, int]
    violations_by_article: dict[str, int]
    expectations: list[ExpectationResult]
    simulated_start: datetime | None
    simulated_end: datetime | None
    ended_because: str | None
    seed: int | None = None
    broker: str | None = None
    wall_seconds: float | None = None
    # Where the run came from, when it is a fork (its parent, the position, the generation).
    lineage: Lineage | None = None
    # The events after which the run was resumed (`simulator resume`), oldest first.
    resumed_at: list[int] = []
    controller_notes: int = 0
    controller_actions: int = 0

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def score(expectation: Expectation, marks: MilestonesProjection) -> ExpectationResult:
    # "Every case" means every case in which a request was made (not bare offers).
    requested = (c for c, case in marks.cases.items() if case.requesting is not None)
    cases = [expectation.case] if expectation.case else sorted(requested)
    met: list[str] = []
    missed: list[str] = []
    for case_id in cases:
        milestone = marks.milestones.get(case_id)
        reached: datetime | None = None
        if milestone is not None:
            if expectation.message is not None:
                reached = milestone.messages.get(expectation.message)
            elif expectation.state is not None:
                reached = milestone.states.get(expectation.state.value)
        in_time = (
            reached is not None
            and milestone is not None
            and (expectation.within is None or reached - milestone.opened_at <= expectation.within)
        )
        (met if in_time else missed).append(case_id)
    return ExpectationResult(
        id=expectation.id, description=expectation.description, met=met, missed=missed
    )


async def summarize(
    store: EventStore,
    *,
    location: str,
    scenario: Scenario | None = None,
    seed: int | None = None,
    broker: str | None = None,
    wall_seconds: float | None = None,
) -> RunSummary:
    marks = MilestonesProjection()
    controller = ControllerProjection()
    sent: dict[str, Sent] = {}
    counts: Counter[str] = Counter()
    first: datetime | None = None
    last: datetime | None = None
    ended: str | None = None
    exercise = scenario.exercise if scenario else ""
    async for event in store.read():
        marks.apply(event)
        controller.apply(event)
        exercise = exercise or event.exercise
        first = first or event.time
        last = event.time
        if is_message_event(event.type):
            counts["messages"] += 1
            message_id = message_payload(event).get("message_id")
            if isinstance(message_id, str):
                sent[message_id] = Sent(event.type.removeprefix(MESSAGE_PREFIX), event.time)
        elif event.type == REJECTION:
            counts["rejections"] += 1
        elif event.type == EXERCISE_ENDED:
            ended = read_ended(event).reason
    violations = [
        ViolationEntry(
            rule=f.violation.rule_id,
            article=f.violation.article,
            severity=f.violation.severity.value,
            case=f.violation.case_id,
            party=f.violation.party,
            position=f.position,
            time=f.time,
            detail=f.violation.detail,
            what=prose(f.violation.detail, sent),
        )
        for f in marks.findings
    ]
    return RunSummary(
        log=location,
        exercise=exercise,
        events=marks.position,
        messages=counts["messages"],
        rejections=counts["rejections"],
        cases=dict(Counter(c.state.value for c in marks.cases.values())),
        case_states={k: v.state.value for k, v in sorted(marks.cases.items())},
        violations=violations,
        violations_by_rule=dict(Counter(v.rule for v in violations).most_common()),
        violations_by_article=dict(Counter(v.article for v in violations).most_common()),
        expectations=[score(e, marks) for e in scenario.expectations] if scenario else [],
        simulated_start=first,
        simulated_end=last,
        ended_because=ended,
        seed=seed,
        broker=broker,
        wall_seconds=wall_seconds,
        lineage=read_lineage(metadata := await store.metadata()),
        resumed_at=resumed_positions(metadata.get(RESUMED_AT)),
        controller_notes=sum(1 for e in controller.entries if e.kind == "note"),
        controller_actions=sum(1 for e in controller.entries if e.kind == "action"),
    )
