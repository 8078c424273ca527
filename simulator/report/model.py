"""The after-action report as data: what report.json holds and what the renderers draw.

Durations are whole seconds and times are the log's simulated times, so
the JSON is exact and the renderings decide how to round.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from simulator.lineage import Lineage

REPORT_FORMAT = 2
"""Bumped when a field changes meaning or goes away, so readers of report.json can tell.

2: case times per answer (`Answer`: answered, still owed, never answered, not owed);
response measures split `unanswered` into `owed`, `unanswered` and `not_owed`; the
controller's notes and actions; the fork's lineage; findings in words (`what`).
"""

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
    # Where the run came from, when it is a fork.
    lineage: Lineage | None = None
    # The events after which the run was resumed (`simulator resume`), oldest first.
    resumed_at: list[int] = []
    notes: int = 0
    controller_actions: int = 0


class ControllerRow(_Model):
    """A note the controller wrote, or something it did (pause, inject sent by hand, ...)."""

    position: int
    time: datetime
    kind: Literal["note", "action"]
    command: str | None
    # The note as written, or what the controller did in words ("paused the clock").
    text: str
    # The umpire's answer in words, for an action.
    answer: str
    # The case it concerns (an inject's case; a case a note names or follows), if any.
    case: str | None


class CaseStep(_Model):
    """One arrow of a sequence chart: a message, or a deadline passing (no sender)."""

    position: int
    time: datetime
    kind: Literal["message", "deadline"]
    type: str
    sender: str | None
    recipient: str | None
    rule_ids: list[str]
    message_id: str | None = None
    # The letter this message stands for (written messages only), relative to the report.
    letter: str | None = None


AnswerStatus = Literal["answered", "owed", "unanswered", "not_owed"]


class Answer(_Model):
    """One answer a case was due, and what became of it.

    `answered`: it came, `after` seconds from when its clock started (`late` past
    its deadline). `owed`: still owed when the log ends (`after`: waited so far).
    `unanswered`: the case closed while it was owed (an oral request never confirmed).
    `not_owed`: the case went another way first (a request accepted straight away
    needs no acknowledgement; a lapsed case no decision); `note` says which.
    """

    status: AnswerStatus
    after: int | None
    late: bool = False
    note: str = ""


class CaseTimes(_Model):
    """The answers a case was due; None where the case never called for that answer."""

    request_at: datetime | None
    # Art. 4.2: from the oral request to its written confirmation (oral cases only).
    written_confirmation: Answer | None
    # From the request (requested cases only).
    acknowledgement: Answer | None
    decision: Answer | None
    # What the decision was: execution (acceptance, partial refusal) or full refusal.
    decision_kind: Literal["executed", "refused"] | None
    # Art. 6.4 counts from the start of execution, as the umpire does.
    execution_started_at: datetime | None
    results: Answer | None


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
    # The controller's notes and actions about this case, in log order.
    controller: list[ControllerRow] = []


MeasureName = Literal["written_confirmation", "acknowledgement", "decision", "results"]


class ResponseMeasure(_Model):
    """One kind of answer across all cases, against its deadline where the agreement sets one."""

    name: MeasureName
    label: str
    counted_from: str
    reference_seconds: int | None
    reference_label: str | None
    # Answers that came (late ones too); the median and the longest are of these.
    samples: int
    median_seconds: int | None
    max_seconds: int | None
    # Cases whose answer came later than the reference.
    over_reference: list[str]
    # Cases still owing the answer when the log ends.
    owed: list[str]
    # Cases that closed while the answer was owed: it never came.
    unanswered: list[str]
    # Cases that went another way, so the answer was not owed.
    not_owed: list[str]


class ResponseTimes(_Model):
    measures: list[ResponseMeasure]


class FindingEntry(_Model):
    position: int
    time: datetime
    event_type: str
    case: str
    party: str | None
    message_id: str | None
    # As the umpire recorded it, and in the report's words (times, durations, names).
    detail: str
    what: str


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
    message_id: str | None = None
    letter: str | None = None


class LogIntegrity(_Model):
    """What `log verify` found of the log when the report was written from it.

    The report is read from the log as it is now, so a log edited after its
    run shows edited figures; this says whether the log still holds what its
    writer signed. Filled by `simulator report` (not by a live run's console).
    """

    sound: bool
    checked: int
    """Events that passed every check (every partition's, for a partitioned run)."""
    closed: bool | None
    """A closing checkpoint vouches for the head (None: its checkpoints do not say)."""
    metadata_vouched: bool | None
    """The last checkpoint signs the metadata as it is (None: its checkpoints sign none)."""
    keys: list[str]
    """Fingerprints of the checkpoint keys trusted: those the log names (a report pins
    none; `log verify --key` does)."""
    problem: str | None = None
    partitions: int = 0

    def describe(self) -> str:
        """One sentence for the report's summary."""
        if not self.sound:
            return f"DOES NOT VERIFY: {self.problem}"
        parts = [f"sound: {self.checked:,} events, chain intact"]
        if self.partitions:
            parts[0] += f" in {self.partitions} partitions"
        if self.closed:
            parts.append("closed cleanly")
        elif self.closed is False:
            parts.append("not closed cleanly (its writer was killed, or is still writing)")
        if self.metadata_vouched:
            parts.append("its metadata as signed")
        elif self.metadata_vouched is False:
            parts.append("metadata changed after its last checkpoint")
        else:
            parts.append("its checkpoints do not sign its metadata")
        parts.append(f"checkpoint key {', '.join(self.keys)} (read from the log itself)")
        return "; ".join(parts)


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
    controller: list[ControllerRow]
    timeline: list[TimelineRow]
    integrity: LogIntegrity | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=self.unchecked())

    def unchecked(self) -> set[str] | None:
        """Left out of the JSON when the log was not checked (a live run's console): its
        report has no `integrity` key, as reports had none before."""
        return {"integrity"} if self.integrity is None else None

    def __repr__(self) -> str:
        # Short: asyncio.run() of Python 3.11 takes the repr of its task, and so of a
        # report it returns, twice as it restores the SIGINT handler; pydantic's repr of
        # a load run's report (every case and row) took longer than building it.
        return (
            f"ReportData(exercise={self.summary.exercise!r}, cases={len(self.cases)}, "
            f"timeline={len(self.timeline)})"
        )
