"""The timeline projection: one line per event, for people reading a run."""

from dataclasses import dataclass
from datetime import datetime

from simulator.eventlog import Event
from simulator.projections.controller import controller_gist
from simulator.projections.framework import Projection
from simulator.records import (
    MESSAGE_PREFIX,
    has_violations,
    is_message_event,
    message_payload,
    read_violations,
)

# The field that best says what a message is about, by message type.
_GIST_FIELDS = (
    "essence",
    "description",
    "doubt",
    "statement",
    "conditions",
    "reasons",
    "circumstances",
    "questions",
    "answers",
    "explanation",
    "summary",
    "reason",
    "note",
)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    position: int
    time: datetime
    type: str
    case_id: str | None
    sender: str | None
    recipient: str | None
    gist: str
    rule_ids: tuple[str, ...]
    # A message's id (None for the umpire's and the controller's events).
    message_id: str | None = None
    # How a message travelled: written, electronic (both in writing, Art. 4.2) or oral.
    medium: str | None = None


def gist(data: dict[str, object], limit: int = 90) -> str:
    """A one-line summary of a message's content."""
    for name in _GIST_FIELDS:
        value = data.get(name)
        if isinstance(value, list | tuple):
            value = "; ".join(str(v) for v in value)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


class TimelineProjection(Projection):
    def __init__(self) -> None:
        super().__init__()
        self.entries: list[TimelineEntry] = []

    def handle(self, event: Event) -> None:
        # No Violation is built to list the rules of none (most events).
        recorded = read_violations(event) if has_violations(event) else None
        message = message_payload(event) if is_message_event(event.type) else None
        sent: object = None
        medium: object = None
        if isinstance(message, dict):
            summary = gist(message)
            sent = message.get("message_id")
            medium = message.get("medium", "written")
        else:
            # The controller's note as written, or what it did: the rest says itself.
            summary = controller_gist(event)
        self.entries.append(
            TimelineEntry(
                position=event.position,
                time=event.time,
                type=event.type.removeprefix(MESSAGE_PREFIX),
                case_id=event.subject,
                sender=event.sender,
                recipient=event.recipient,
                gist=summary,
                rule_ids=tuple(v.rule_id for v in recorded or ()),
                message_id=sent if isinstance(sent, str) else None,
                medium=medium if isinstance(medium, str) else None,
            )
        )
