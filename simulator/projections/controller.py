"""What the controller did during a run: its notes and its actions, in log order.

Neither reaches any party (records.audience_of), so only the log's readers
see them: the report, the console and the terminal. An entry is tied to a
case where it concerns one: an inject sent by hand concerns the case its
message went into; a note concerns a case it names, or else the case the
last message before it was about (the controller writes about what just
happened).
"""

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from simulator.eventlog import Event
from simulator.projections.framework import Projection
from simulator.records import (
    CONTROL,
    NOTE,
    ControlData,
    is_message_event,
    read_control,
    read_note,
)
from simulator.wording import prose

INJECT_SOURCE = "inject/"


@dataclass(frozen=True, slots=True)
class ControllerEntry:
    position: int
    time: datetime
    kind: Literal["note", "action"]
    # pause, resume, speed, jump, inject, stop; None for a note.
    command: str | None
    # The note as written, or what the controller did, in words.
    text: str
    case_id: str | None
    # The umpire's answer, in words ("paused at 2026-03-02 11:00").
    answer: str = ""


def describe_control(data: ControlData) -> str:
    """What the controller did, as a sentence without a subject: "paused the clock"."""
    match data.command:
        case "pause":
            return "paused the clock"
        case "resume":
            return "resumed the clock"
        case "speed":
            factor = f"×{data.speed:g}" if data.speed is not None else "another factor"
            return f"set the clock's speed to {factor} (simulated seconds per second)"
        case "jump":
            return "jumped the clock to the next event"
        case "inject":
            return f"sent inject {data.inject or '?'} by hand"
        case "stop":
            return "ended the exercise"
    return f"gave the command {data.command}"


def controller_gist(event: Event) -> str:
    """A controller's record in a line: the note as written, or "the controller paused ..."."""
    if event.type == NOTE:
        return read_note(event).text
    if event.type == CONTROL:
        return "the controller " + describe_control(read_control(event))
    return ""


class ControllerProjection(Projection):
    def __init__(self) -> None:
        super().__init__()
        self.entries: list[ControllerEntry] = []
        self._cases: set[str] = set()
        self._last_case: str | None = None
        # The case each inject's message went into (an inject is sent once), and the
        # injects sent by hand whose message comes after the action: id -> entry index.
        self._inject_cases: dict[str, str] = {}
        self._waiting: dict[str, int] = {}

    def handle(self, event: Event) -> None:
        if is_message_event(event.type) and event.subject is not None:
            self._cases.add(event.subject)
            self._last_case = event.subject
            if event.source.startswith(INJECT_SOURCE):
                inject = event.source.removeprefix(INJECT_SOURCE)
                self._inject_cases.setdefault(inject, event.subject)
                index = self._waiting.pop(inject, None)
                if index is not None:
                    self.entries[index] = dataclasses.replace(
                        self.entries[index], case_id=event.subject
                    )
        elif event.type == NOTE:
            text = read_note(event).text
            self.entries.append(
                ControllerEntry(
                    position=event.position,
                    time=event.time,
                    kind="note",
                    command=None,
                    text=text,
                    case_id=self._named_case(text) or self._last_case,
                )
            )
        elif event.type == CONTROL:
            data = read_control(event)
            case_id = None
            if data.command == "inject" and data.inject:
                case_id = self._inject_cases.get(data.inject)
                if case_id is None:
                    self._waiting[data.inject] = len(self.entries)
            self.entries.append(
                ControllerEntry(
                    position=event.position,
                    time=event.time,
                    kind="action",
                    command=data.command,
                    text=describe_control(data),
                    case_id=case_id,
                    answer=prose(data.answer),
                )
            )

    def _named_case(self, text: str) -> str | None:
        """The first case the text names by its id (ids are [a-z0-9_-], so whole words)."""
        words: list[str] = re.findall(r"[a-z0-9_-]+", text.lower())
        return next((word for word in words if word in self._cases), None)
