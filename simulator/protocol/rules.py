"""The rule book: every check the umpire makes, with its article and severity.

Each rule has a stable id (used in logs, reports and scenario expectations;
never renamed), the article of the agreement it enforces, a severity and
one sentence a trainee understands. A breach is a `Violation`: an exercise
result recorded in the log, never an exception.
"""

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    article: str
    severity: Severity
    summary: str

    def breach(
        self, detail: str, *, case_id: str, message_id: str | None, party: str | None
    ) -> "Violation":
        return Violation(
            rule_id=self.id,
            article=self.article,
            severity=self.severity,
            detail=detail,
            case_id=case_id,
            message_id=message_id,
            party=party,
        )


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach of the procedure, tied to the case, the message and who is at fault."""

    rule_id: str
    article: str
    severity: Severity
    detail: str
    case_id: str
    message_id: str | None
    party: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "rule_id": self.rule_id,
            "article": self.article,
            "severity": self.severity.value,
            "detail": self.detail,
            "case_id": self.case_id,
            "message_id": self.message_id,
            "party": self.party,
        }


# Procedural rules that the agreement implies but PROTOCOL.md lists without
# an article carry this marker.
NO_ARTICLE = "—"

NO_COMMON_AGREEMENT = Rule(
    "no-common-agreement",
    "1",
    Severity.ERROR,
    "A request or an offer passes only between parties bound by a common agreement: the "
    "parties cooperate under the agreement, not outside it.",
)
AREA_OUTSIDE_AGREEMENT = Rule(
    "area-outside-agreement",
    "2",
    Severity.ERROR,
    "A request or an offer must fall within one of the agreement's areas of cooperation.",
)
REQUEST_INCOMPLETE = Rule(
    "request-incomplete",
    "4.3",
    Severity.ERROR,
    "A written request must name both parties, state the essence of the case, its purpose "
    "and justification, and describe the assistance sought.",
)
REQUEST_NOT_SIGNED_OR_SEALED = Rule(
    "request-not-signed-or-sealed",
    "4.4",
    Severity.ERROR,
    "A written request must be signed by the head of the requesting party or a deputy "
    "and carry that party's seal.",
)
ORAL_REQUEST_NOT_URGENT = Rule(
    "oral-request-not-urgent",
    "4.2",
    Severity.ERROR,
    "A request may be made orally only in an urgent case; otherwise it must be in writing.",
)
ORAL_REQUEST_NOT_CONFIRMED = Rule(
    "oral-request-not-confirmed",
    "4.2",
    Severity.ERROR,
    "An oral request must be confirmed in writing no more than 3 days after it was made.",
)
FORGED_REQUEST_ACTED_ON = Rule(
    "forged-request-acted-on",
    "4.2, 4.4",
    Severity.ERROR,
    "When a request's signature does not verify, ask for additional confirmation before "
    "going on with the case.",
)
REFUSAL_NOT_IN_WRITING = Rule(
    "refusal-not-in-writing",
    "5.3",
    Severity.ERROR,
    "A refusal, full or partial, must be notified in writing.",
)
REFUSAL_WITHOUT_REASONS = Rule(
    "refusal-without-reasons",
    "5.3",
    Severity.ERROR,
    "A refusal must state the reasons for refusing.",
)
REFUSAL_PARTS_UNSPECIFIED = Rule(
    "refusal-parts-unspecified",
    "5.3",
    Severity.ERROR,
    "A partial refusal must say which parts of the request it refuses.",
)
REFUSAL_GROUND_OUTSIDE_ARTICLE_5_1 = Rule(
    "refusal-ground-outside-5-1",
    "5.1",
    Severity.ERROR,
    "A refusal may rest only on harm to sovereignty, security, public order or other "
    "essential interests of the state, or on a conflict with its law or international "
    "obligations.",
)
REFUSAL_WITHOUT_CONSULTATION = Rule(
    "refusal-without-consultation",
    "5.2",
    Severity.WARNING,
    "Before refusing, consult the requesting party, if possible, on whether assistance "
    "can be given on conditions.",
)
ASSISTANCE_DESPITE_REJECTED_CONDITIONS = Rule(
    "assistance-despite-rejected-conditions",
    "5.2",
    Severity.ERROR,
    "Once the requesting party rejects the proposed conditions, the requested party may "
    "propose other conditions or refuse, but may not go on to assist.",
)
IMPEDIMENT_NOT_PROMPT = Rule(
    "impediment-not-prompt",
    "6.1",
    Severity.WARNING,
    "Circumstances that prevent or significantly delay execution must be notified promptly.",
)
EXECUTION_WITHOUT_DISCLOSURE_CONSENT = Rule(
    "execution-without-disclosure-consent",
    "6.3",
    Severity.ERROR,
    "When confidentiality cannot be kept, wait for the requesting party's decision before "
    "accepting or executing the request.",
)
RESULTS_OVERDUE = Rule(
    "results-overdue",
    "6.4",
    Severity.WARNING,
    "The requesting party must be told the results of execution as soon as possible.",
)
TRANSFER_WITHOUT_CONSENT = Rule(
    "transfer-without-consent",
    "7.3",
    Severity.ERROR,
    "Results may be passed to a third party only with the prior consent of the party that "
    "provided them.",
)
NOT_ALLOWED_IN_STATE = Rule(
    "not-allowed-in-state",
    NO_ARTICLE,
    Severity.ERROR,
    "A message must fit the stage the case is at (for example, no results before the "
    "request was accepted).",
)
UNKNOWN_CASE = Rule(
    "unknown-case",
    NO_ARTICLE,
    Severity.ERROR,
    "A reply must belong to a case that was opened by a request or an offer.",
)
CASE_CLOSED = Rule(
    "case-closed",
    NO_ARTICLE,
    Severity.ERROR,
    "Nothing more may be sent in a case that is completed, refused, withdrawn, declined or lapsed.",
)
WRONG_PARTY = Rule(
    "wrong-party",
    NO_ARTICLE,
    Severity.ERROR,
    "Each message must come from the party whose turn it is and go to the other party of the case.",
)
NOT_WORKING_LANGUAGE = Rule(
    "not-working-language",
    "9",
    Severity.INFO,
    "Correspondence under the agreement is in its working language.",
)

RULES: tuple[Rule, ...] = (
    NO_COMMON_AGREEMENT,
    AREA_OUTSIDE_AGREEMENT,
    REQUEST_INCOMPLETE,
    REQUEST_NOT_SIGNED_OR_SEALED,
    ORAL_REQUEST_NOT_URGENT,
    ORAL_REQUEST_NOT_CONFIRMED,
    FORGED_REQUEST_ACTED_ON,
    REFUSAL_NOT_IN_WRITING,
    REFUSAL_WITHOUT_REASONS,
    REFUSAL_PARTS_UNSPECIFIED,
    REFUSAL_GROUND_OUTSIDE_ARTICLE_5_1,
    REFUSAL_WITHOUT_CONSULTATION,
    ASSISTANCE_DESPITE_REJECTED_CONDITIONS,
    IMPEDIMENT_NOT_PROMPT,
    EXECUTION_WITHOUT_DISCLOSURE_CONSENT,
    RESULTS_OVERDUE,
    TRANSFER_WITHOUT_CONSENT,
    NOT_ALLOWED_IN_STATE,
    UNKNOWN_CASE,
    CASE_CLOSED,
    WRONG_PARTY,
    NOT_WORKING_LANGUAGE,
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
