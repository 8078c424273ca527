"""When each case first reached each state and first saw each message type."""

from dataclasses import dataclass, field
from datetime import datetime

from simulator.eventlog import Event
from simulator.projections.cases import CaseProjection
from simulator.protocol.rules import CASE_CLOSED, NOT_ALLOWED_IN_STATE, UNKNOWN_CASE, WRONG_PARTY
from simulator.records import MESSAGE_PREFIX, is_message_event

OUT_OF_ORDER = frozenset(
    r.id for r in (NOT_ALLOWED_IN_STATE, WRONG_PARTY, CASE_CLOSED, UNKNOWN_CASE)
)


@dataclass
class Milestones:
    opened_at: datetime
    states: dict[str, datetime] = field(default_factory=dict)
    messages: dict[str, datetime] = field(default_factory=dict)


class MilestonesProjection(CaseProjection):
    """A case projection that also remembers the first time of every state and message type."""

    def __init__(self) -> None:
        super().__init__()
        self.milestones: dict[str, Milestones] = {}

    def handle(self, event: Event) -> None:
        super().handle(event)
        case_id = event.subject
        if case_id is None or case_id not in self.cases:
            return
        case = self.cases[case_id]
        marks = self.milestones.setdefault(case_id, Milestones(opened_at=case.opened_at))
        marks.states.setdefault(case.state.value, event.time)
        out_of_order = any(v.rule_id in OUT_OF_ORDER for v in self.last_found)
        # A message the procedure did not allow then did not happen as a step of the case.
        if is_message_event(event.type) and not out_of_order:
            marks.messages.setdefault(event.type.removeprefix(MESSAGE_PREFIX), event.time)
