"""Small real logs for tests: plays of messages folded by the sequencer into a SQLite log."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.logfiles import open_log
from simulator.protocol import Agreement
from simulator.records import record_exercise_started
from simulator.umpire.sequencer import Sequencer
from tests.protocol.builders import AGREEMENT, T0, build

WALL = datetime(2026, 11, 23, 12, 0, tzinfo=T0.tzinfo)

# (type, sender, recipient, case, extra fields)
Step = tuple[str, str, str, str, dict[str, Any]]

DRILL: list[Step] = [
    ("written_request", "alpha", "beta", "case-1", {}),
    ("acknowledgement", "beta", "alpha", "case-1", {}),
    ("refusal", "beta", "alpha", "case-1", {"reasons": ""}),
    ("oral_request", "beta", "alpha", "case-2", {}),
    ("acceptance", "alpha", "beta", "case-2", {}),
    ("written_request", "gamma", "alpha", "case-3", {"language": "en"}),
    ("acceptance", "alpha", "gamma", "case-3", {}),
    ("results", "alpha", "gamma", "case-3", {}),
]


def staged(
    steps: Sequence[Step], agreement: Agreement = AGREEMENT, exercise: str = "drill"
) -> Sequencer:
    sequencer = Sequencer(agreement, exercise, wallclock=lambda: WALL)
    sequencer.stage(
        record_exercise_started(
            agreement, event_id="start", exercise=exercise, at=T0, wallclock=WALL, seed=1
        )
    )
    at = T0
    for number, (kind, sender, recipient, case, extra) in enumerate(steps, start=1):
        at += timedelta(hours=5)
        message = build(
            kind,
            case_id=case,
            message_id=f"{sender}.{number}",
            sender=sender,
            recipient=recipient,
            **extra,
        )
        sequencer.record(message, at, party=sender)
    return sequencer


async def write_log(path: Path | str, steps: Sequence[Step] = DRILL) -> int:
    """Write a log of `steps` (after an exercise start); returns the number of events."""
    sequencer = staged(steps)
    batch = sequencer.take()
    async with open_log(path, create=True, now=lambda: WALL) as store:
        await store.append(batch.events)
    return len(batch.events)
