"""The after-action report as data: what report.json holds and what the renderers draw.

Durations are whole seconds and times are the log's simulated times, so
the JSON is exact and the renderings decide how to round.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

REPORT_FORMAT = 1
"""Bumped when a field changes meaning or goes away, so readers of report.json can tell."""

NEVER_OPENED = "never_opened"
"""The state shown for a case id that messages named but no request or offer opened."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PartyInfo(_Model):
    id: str
    name: str


class AgreementTerms(_Model):
    """The settings the run was umpired under; the 3 days of Art. 4.2 are fixed by the text."""

    promptly_seconds: int
    as_soon_as_possible_seconds: int
    written_confirmation_seconds: int
    working_language: str
    # Under an agreement other than the default: which one, and the articles its settings
    # cite. Left out under the default, so reports of older logs stay as they were.
    profile: str | None = None
    title: str | None = None
    promptly_article: str = "6.1"
    as_soon_as_possible_article: str = "6.4"
    written_confirmation_article: str = "4.2"
    working_language_article: str = "9"

    @model_serializer(mode="wrap")
    def _default_unsaid(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and self.profile is None:
            for name in _PROFILE_FIELDS:
                data.pop(name, None)
        return data


_PROFILE_FIELDS = (
    "profile",
    "title",
    "promptly_article",
    "as_soon_as_possible_article",
    "written_confirmation_article",
    "working_language_article",
)


class ExerciseSummary(_Model):
    exercise: str
    title: str
    seed: int | None
    # Identify the log without naming where it was read from: the same log
    # copied elsewhere gives the same report.
    log_id: str | None
    head_hash: str | None
    simulated_start: datetime | None
    simulated_end: datetime | None
    simulated_seconds: int
    ended_because: str | None
    events: int
    messages: int
    deadline_events: int
    rejections: int
    violations: int
    violations_by_severity: dict[str, int]
    cases: int
    cases_by_state: dict[str, int]
    # Case ids that messages named although no request or offer opened them.
    unopened_cases: list[str]
    # Positions where today's rules find other violations than the umpire recorded.
    divergences: list[int]
    parties: list[PartyInfo]
    agreement: AgreementTerms | None


class CaseStep(_Model):
    """One arrow of a sequence chart: a message, or a deadline passing (no sender)."""

    position: int
    time: datetime
    kind: Literal["message", "deadline"]
    type: str
    sender: str | None
    recipient: str | None
    rule_ids: list[str]


class CaseTimes(_Model):
    """How long the case's answers took, in seconds; None where the answer never came."""

    request_at: datetime | None
    # Art. 4.2: from the oral request to its written confirmation.
    confirmed_after: int | None
    acknowledged_after: int | None
    # From the request to acceptance (the case went into execution) or refusal.
    decided_after: int | None
    decision: Literal["executed", "refused"] | None
    # Art. 6.4 counts from the start of execution, as the umpire does.
    execution_started_at: datetime | None
    results_after: int | None
    # Execution started and no results by the end of the log: results_after is
    # then the time waited so far.
    results_pending: bool


class CaseReport(_Model):
    case_id: str
    state: str
    requesting: str | None
    requested: str | None
    offered_by: str | None
    offered_to: str | None
    area: str | None
    # The sequence chart's lanes, left to right.
    lanes: list[str]
    opened_at: datetime | None
    last_at: datetime
    violations: int
    steps: list[CaseStep]
    times: CaseTimes


MeasureName = Literal["written_confirmation", "acknowledgement", "decision", "results"]


class ResponseMeasure(_Model):
    """One kind of answer across all cases, against its deadline where the agreement sets one."""

    name: MeasureName
    label: str
    counted_from: str
    reference_seconds: int | None
    reference_label: str | None
    samples: int
    median_seconds: int | None
    max_seconds: int | None
    # Cases whose answer took longer than the reference.
    over_reference: list[str]
    # Cases where the clock started and the answer never came (owed, lapsed or closed).
    unanswered: list[str]


class ResponseTimes(_Model):
    measures: list[ResponseMeasure]


class FindingEntry(_Model):
    position: int
    time: datetime
    event_type: str
    case: str
    party: str | None
    message_id: str | None
    detail: str


class RuleGroup(_Model):
    rule_id: str
    severity: str
    summary: str
    findings: list[FindingEntry]


class ArticleGroup(_Model):
    article: str
    label: str
    count: int
    rules: list[RuleGroup]


class ExpectationScore(_Model):
    id: str
    description: str
    case: str | None
    target: str
    within_seconds: int | None
    met: list[str]
    missed: list[str]


class Expectations(_Model):
    scored: bool
    note: str
    results: list[ExpectationScore]


class PartyStats(_Model):
    party: str
    name: str
    sent: int
    received: int
    cases_requesting: int
    cases_requested: int
    violations_caused: int
    rejections: int
    # A party's response: a message it sent in a case whose previous message
    # was addressed to it; the time is the gap between the two.
    responses: int
    median_response_seconds: int | None


class RejectionEntry(_Model):
    position: int
    time: datetime
    party: str | None
    message_id: str | None
    reason: str


class TimelineRow(_Model):
    position: int
    time: datetime
    case: str | None
    type: str
    sender: str | None
    recipient: str | None
    gist: str
    findings: list[str]


class ReportData(_Model):
    """Everything the report shows, read from one log's projections."""

    format: int = REPORT_FORMAT
    summary: ExerciseSummary
    cases: list[CaseReport]
    response_times: ResponseTimes
    violations: list[ArticleGroup]
    expectations: Expectations
    parties: list[PartyStats]
    rejections: list[RejectionEntry]
    timeline: list[TimelineRow]

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
