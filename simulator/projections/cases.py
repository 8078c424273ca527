"""The case-state projection: the protocol fold run over the log."""

from dataclasses import dataclass
from datetime import datetime

from simulator.eventlog import Event
from simulator.projections.framework import Projection
from simulator.protocol import Agreement, Case, Violation, apply, elapse
from simulator.records import (
    CLOCK_ELAPSED,
    EXERCISE_STARTED,
    MESSAGE_PREFIX,
    read_agreement,
    read_message,
    read_violations,
    records_no_violations,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A violation, with where in the log it was committed."""

    position: int
    time: datetime
    violation: Violation


@dataclass(frozen=True, slots=True)
class Divergence:
    """The fold today finds other violations than the umpire recorded at this position."""

    position: int
    recorded: tuple[Violation, ...]
    recomputed: tuple[Violation, ...]


class MissingAgreement(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(
            f"event {position} needs the agreement, but the log has no "
            "coop.exercise.started event before it and none was given"
        )


class CaseProjection(Projection):
    """Every case's state, every violation, and where today's rules disagree with the log.

    States are today's fold of the messages. `findings` are the violations the
    umpire recorded with each event (today's fold's only for events that
    recorded none, schema version 1), so a stored log keeps its verdicts when a
    rule changes; `divergences` name the positions where today's rules would
    judge otherwise, and `last_found` is what today's fold found at the last event.
    """

    def __init__(self, agreement: Agreement | None = None) -> None:
        super().__init__()
        self.agreement = agreement
        self.cases: dict[str, Case] = {}
        self.findings: list[Finding] = []
        self.divergences: list[Divergence] = []
        # What the event just handled caused; derived views read it.
        self.last_found: tuple[Violation, ...] = ()

    def handle(self, event: Event) -> None:
        self.last_found = ()
        kind = event.type
        if kind.startswith(MESSAGE_PREFIX):
            message = read_message(event)
            agreement = self.agreement
            if agreement is None:
                raise MissingAgreement(event.position)
            case_id = message.case_id
            case, found = apply(self.cases.get(case_id), message, event.time, agreement)
            if case is not None:
                self.cases[case_id] = case
            self._found(event, found)
        elif kind == CLOCK_ELAPSED and event.subject is not None:
            current = self.cases.get(event.subject)
            if current is not None:
                current, found = elapse(current, event.time, self._agreement(event))
                self.cases[event.subject] = current
                self._found(event, found)
        elif kind == EXERCISE_STARTED and self.agreement is None:
            self.agreement = read_agreement(event)

    def _agreement(self, event: Event) -> Agreement:
        if self.agreement is None:
            raise MissingAgreement(event.position)
        return self.agreement

    def _found(self, event: Event, found: tuple[Violation, ...]) -> None:
        # Most events find nothing and recorded nothing: no Violation is built
        # to compare nothing with nothing.
        if found or not records_no_violations(event):
            recorded = read_violations(event)
            verdicts = found
            if recorded is not None:
                # The umpire's ruling, as recorded, is the exercise's result: a log
                # stored before a rule changed reports what the participants were
                # told, and today's reading of it is listed as a divergence. Only an
                # event that recorded nothing (schema version 1) is judged today.
                verdicts = recorded
                if recorded != found:
                    self.divergences.append(Divergence(event.position, recorded, found))
            self.findings.extend(Finding(event.position, event.time, v) for v in verdicts)
        self.last_found = found
