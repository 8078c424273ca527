"""Deadlines as data: what a case owes, to whom, by when, and whether it is overdue.

The umpire asks `deadlines` for the next time it must wake up and fold
`elapse`; reports and dashboards show the same list.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from simulator.protocol import rules as r
from simulator.protocol.agreement import AgreementSettings
from simulator.protocol.case import Case, confirmation_owed
from simulator.protocol.profile import AgreementProfile, default_profile


class DeadlineKind(StrEnum):
    WRITTEN_CONFIRMATION = "written_confirmation"
    RESULTS = "results"


@dataclass(frozen=True, slots=True)
class Deadline:
    case_id: str
    kind: DeadlineKind
    article: str
    rule_id: str
    owed_by: str | None
    due_at: datetime

    def overdue(self, at: datetime) -> bool:
        """Art. 4.2 says "no more than 3 days later": the due instant itself is in time."""
        return at > self.due_at


def deadlines(
    case: Case, settings: AgreementSettings, profile: AgreementProfile | None = None
) -> tuple[Deadline, ...]:
    """The obligations the case has open now, earliest first, under `profile` (the default)."""
    profile = profile or default_profile()
    found: list[Deadline] = []
    if confirmation_owed(case) and case.oral_at is not None:
        found.append(
            Deadline(
                case_id=case.case_id,
                kind=DeadlineKind.WRITTEN_CONFIRMATION,
                article=profile.article(r.ORAL_REQUEST_NOT_CONFIRMED),
                rule_id=r.ORAL_REQUEST_NOT_CONFIRMED.id,
                owed_by=case.requesting,
                due_at=case.oral_at + profile.deadlines.written_confirmation,
            )
        )
    if (
        case.execution_started_at is not None
        and case.results_at is None
        and not case.state.terminal
        # Not running while execution waits on the requesting party (Art. 6.4).
        and case.paused_at is None
    ):
        found.append(
            Deadline(
                case_id=case.case_id,
                kind=DeadlineKind.RESULTS,
                article=profile.article(r.RESULTS_OVERDUE),
                rule_id=r.RESULTS_OVERDUE.id,
                owed_by=case.requested,
                due_at=case.execution_started_at + settings.as_soon_as_possible + case.waited,
            )
        )
    if len(found) > 1:
        found.sort(key=_due_at)
    return tuple(found)


def _due_at(deadline: Deadline) -> datetime:
    return deadline.due_at


def overdue(
    case: Case, at: datetime, settings: AgreementSettings, profile: AgreementProfile | None = None
) -> tuple[Deadline, ...]:
    """The open obligations that have passed their due time by `at`."""
    return tuple(d for d in deadlines(case, settings, profile) if d.overdue(at))
