"""Logs for the report tests, written through the umpire's own sequencer.

`DRILL` is a small run whose every figure is known by construction: three
parties, three cases (completed, lapsed, refused), a reply to a case never
opened, five violations under five articles, one rejected submission and
one deadline passing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.eventlog import NewEvent
from simulator.logfiles import open_log
from simulator.protocol import Agreement
from simulator.records import (
    EXERCISE_ENDED,
    UMPIRE_SOURCE,
    record_control,
    record_exercise_started,
    record_note,
)
from simulator.umpire.sequencer import Sequencer
from tests.logs import WALL
from tests.protocol.builders import AGREEMENT, T0, build

EXERCISE = "drill"
TITLE = "Drill of the assistance procedure"
SEED = 5


@dataclass(frozen=True)
class Step:
    after: timedelta
    kind: str
    sender: str
    recipient: str
    case: str
    fields: dict[str, Any]


def _step(hours: float, kind: str, sender: str, recipient: str, case: str, **fields: Any) -> Step:
    return Step(timedelta(hours=hours), kind, sender, recipient, case, fields)


# Offsets are hours after T0 (2026-03-02 09:00 UTC).
DRILL: list[Step] = [
    _step(2, "written_request", "alpha", "beta", "case-1"),
    _step(6, "acknowledgement", "beta", "alpha", "case-1"),
    _step(24, "acceptance", "beta", "alpha", "case-1"),
    _step(25, "oral_request", "alpha", "beta", "case-2"),
    _step(48, "written_request", "gamma", "alpha", "case-3", language="en"),
    _step(52, "refusal", "alpha", "gamma", "case-3", reasons=""),
    _step(120, "results", "beta", "alpha", "case-1"),
    _step(144, "results", "beta", "alpha", "case-9"),
]
REJECTED_AT = timedelta(hours=72)
# The oral request of case-2 (hour 25) is due in writing 3 days later; the umpire
# looks once past that.
DEADLINE_AT = timedelta(hours=25 + 72, seconds=1)
ENDED_AT = timedelta(hours=150)


def drill_events(
    steps: list[Step] = DRILL, agreement: Agreement = AGREEMENT, *, with_extras: bool = True
) -> list[NewEvent]:
    """The events of a run of `steps`, in the order the umpire would commit them."""
    sequencer = Sequencer(agreement, EXERCISE, wallclock=lambda: WALL)
    sequencer.stage(
        record_exercise_started(
            agreement,
            event_id="start",
            exercise=EXERCISE,
            at=T0,
            wallclock=WALL,
            scenario=TITLE,
            seed=SEED,
        )
    )
    pending_extras = [(REJECTED_AT, "reject"), (DEADLINE_AT, "deadline")] if with_extras else []
    for number, step in enumerate(steps, start=1):
        while pending_extras and pending_extras[0][0] < step.after:
            at, what = pending_extras.pop(0)
            if what == "reject":
                sequencer.submit(b"{not json", "beta", T0 + at)
            else:
                sequencer.elapse_due(T0 + at, lambda case: f"elapsed-{case}")
        message = build(
            step.kind,
            case_id=step.case,
            message_id=f"{step.sender}.{number}",
            sender=step.sender,
            recipient=step.recipient,
            **step.fields,
        )
        sequencer.record(message, T0 + step.after, party=step.sender)
    sequencer.stage(
        NewEvent(
            id="ended",
            source=UMPIRE_SOURCE,
            type=EXERCISE_ENDED,
            time=T0 + (ENDED_AT if steps else timedelta(0)),
            data={"reason": "the drill is over", "rounds": 1},
            exercise=EXERCISE,
            wallclock=WALL,
        )
    )
    return list(sequencer.take().events)


async def write_drill(
    path: Path,
    steps: list[Step] = DRILL,
    *,
    metadata: dict[str, str] | None = None,
    with_extras: bool = True,
) -> None:
    """A SQLite log of the drill, with the given metadata (none by default: no scenario)."""
    async with open_log(path, create=True, now=lambda: WALL) as store:
        await store.append(drill_events(steps, with_extras=with_extras))
        for key, value in (metadata or {}).items():
            await store.set_metadata(key, value)


async def write_empty(path: Path) -> None:
    """A log that was created and never written to."""
    async with open_log(path, create=True, now=lambda: WALL):
        pass


def many_cases(count: int) -> list[Step]:
    """`count` plain cases, each requested, acknowledged, accepted and answered."""
    steps = []
    for index in range(count):
        case = f"case-{index + 1:03d}"
        base = index * 3.0
        steps += [
            _step(base + 1, "written_request", "alpha", "beta", case),
            _step(base + 2, "acknowledgement", "beta", "alpha", case),
            _step(base + 3, "acceptance", "beta", "alpha", case),
        ]
    steps.sort(key=lambda s: s.after)
    return steps


PARENT = "runs/parent.db"
DESK_FORK_POSITION = 4


def desk_events() -> list[NewEvent]:
    """A run a controller was busy in, kept as a fork of another run.

    case-1 is accepted straight away (no acknowledgement owed) and the controller
    notes it by name; it pauses and resumes the clock; it sends inject `lorry` by hand,
    an urgent oral request (case-2) whose written confirmation comes after the case
    lapsed (late, not "never"); its last note names no case, so it goes with case-2.
    """
    sequencer = Sequencer(AGREEMENT, EXERCISE, wallclock=lambda: WALL)
    sequencer.stage(
        record_exercise_started(
            AGREEMENT, event_id="start", exercise=EXERCISE, at=T0, wallclock=WALL, seed=SEED
        )
    )

    def hours(value: float) -> datetime:
        return T0 + timedelta(hours=value)

    def control(command: str, at: datetime, answer: str, **arguments: Any) -> None:
        sequencer.stage(
            record_control(
                command,
                arguments,
                answer,
                event_id=f"control-{command}",
                exercise=EXERCISE,
                at=at,
                wallclock=WALL,
            )
        )

    def note(text: str, at: datetime, number: int) -> None:
        sequencer.stage(
            record_note(
                text, event_id=f"control-note-{number}", exercise=EXERCISE, at=at, wallclock=WALL
            )
        )

    def send(kind: str, sender: str, recipient: str, case: str, at: datetime, **kw: Any) -> None:
        source = kw.pop("source", None)
        message = build(
            kind,
            case_id=case,
            message_id=f"{sender}.{kind}.{case}",
            sender=sender,
            recipient=recipient,
            **kw,
        )
        sequencer.record(message, at, party=sender, source=source)

    send("written_request", "alpha", "beta", "case-1", hours(2))
    send("acceptance", "beta", "alpha", "case-1", hours(3))
    note("Beta accepted case-1 without acknowledging it.", hours(4), 1)
    control("pause", hours(5), "paused at 2026-03-02 14:00")
    control("resume", hours(5), "resumed at 2026-03-02 14:00")
    control("inject", hours(6), "inject 'lorry' sent at 2026-03-02 15:00", inject="lorry")
    send("oral_request", "alpha", "beta", "case-2", hours(6), urgent=True, source="inject/lorry")
    note("Good pace so far.", hours(7), 2)
    sequencer.elapse_due(hours(6 + 72) + timedelta(seconds=1), lambda case: f"elapsed-{case}")
    send(
        "written_confirmation",
        "alpha",
        "beta",
        "case-2",
        hours(6 + 96),
        confirms="alpha.oral_request.case-2",
    )
    send("results", "beta", "alpha", "case-1", hours(6 + 100))
    return list(sequencer.take().events)


async def write_desk(path: Path) -> None:
    """The desk run as a fork of `PARENT` at `DESK_FORK_POSITION`, generation 1."""
    async with open_log(path, create=True, now=lambda: WALL) as store:
        await store.append(desk_events())
        await store.set_metadata("parent", PARENT)
        await store.set_metadata("fork_position", str(DESK_FORK_POSITION))
        await store.set_metadata("generation", "1")
