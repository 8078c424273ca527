"""The run's own facts that the case projections leave out: start, end, rejections, the span.

A projection like the others, so a report is one fold over the log.
"""

from dataclasses import dataclass
from datetime import datetime

from simulator.eventlog import Event
from simulator.projections import Projection
from simulator.records import (
    CLOCK_ELAPSED,
    EXERCISE_ENDED,
    EXERCISE_STARTED,
    REJECTION,
    is_message_event,
)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A submission the umpire refused, as recorded."""

    position: int
    time: datetime
    party: str | None
    message_id: str | None
    reason: str


class RunFacts(Projection):
    def __init__(self) -> None:
        super().__init__()
        self.exercise = ""
        # `coop.exercise.started` carries the scenario's title and the seed, so
        # a log without the scenario in its metadata still names its exercise.
        self.title: str | None = None
        self.seed: int | None = None
        self.ended_because: str | None = None
        self.first_time: datetime | None = None
        self.last_time: datetime | None = None
        self.head_hash: str | None = None
        self.messages = 0
        self.deadline_events = 0
        self.rejections: list[Rejected] = []
        # What the timeline shows for events that are not messages, by position.
        self.notes: dict[int, str] = {}

    def handle(self, event: Event) -> None:
        self.exercise = self.exercise or event.exercise
        self.first_time = self.first_time or event.time
        self.last_time = event.time
        self.head_hash = event.hash
        kind = event.type
        data = event.data
        if is_message_event(kind):
            self.messages += 1
        elif kind == EXERCISE_STARTED:
            title = data.get("scenario")
            seed = data.get("seed")
            self.title = title if isinstance(title, str) else None
            self.seed = seed if isinstance(seed, int) else None
            self.notes[event.position] = f"exercise started: {self.title or event.exercise}"
        elif kind == EXERCISE_ENDED:
            self.ended_because = str(data.get("reason", ""))
            self.notes[event.position] = f"exercise ended: {self.ended_because}"
        elif kind == CLOCK_ELAPSED:
            self.deadline_events += 1
            details = [str(v.get("detail", "")) for v in data.get("violations") or ()]
            self.notes[event.position] = "; ".join(["deadline passed", *details])
        elif kind == REJECTION:
            reason = str(data.get("reason", ""))
            message_id = data.get("message_id")
            self.rejections.append(
                Rejected(
                    position=event.position,
                    time=event.time,
                    party=event.recipient,
                    message_id=message_id if isinstance(message_id, str) else None,
                    reason=reason,
                )
            )
            self.notes[event.position] = f"rejected: {reason}"
