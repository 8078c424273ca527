"""The case state machine as a pure fold.

`apply(case, message, at, agreement)` returns the case after the message and
the violations the message caused. It never raises on a participant's
mistake: a message the case's state does not allow is recorded by the caller
(it happened) and reported here as a violation, and the case stays as it was.
A defect in a message's content (a refusal without reasons, an unsigned
request) does not stop the act: the case moves on and the defect is reported.

`elapse(case, at, agreement)` applies the passing of time: an oral request
that was not confirmed within 3 days is reported and an open case lapses, and
execution that has gone on past "as soon as possible" without results is
reported once. `apply` calls it first, so a replay that folds only the
messages reaches the same states.

Where the agreement leaves room, the comment at each handler says which
choice is made and why; docs/procedure.md gives trainers the same choices,
with the diagram and table `procedure.py` explores from this fold.
"""

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from simulator.protocol import rules as r
from simulator.protocol.agreement import (
    Agreement,
    Binding,
    SignatureStatus,
)
from simulator.protocol.messages import (
    Acceptance,
    Acknowledgement,
    AdditionalConfirmation,
    AdditionalInformation,
    ConditionsAccepted,
    ConditionsRejected,
    ConfidentialityDecision,
    ConfidentialityImpossible,
    ConfirmationRequest,
    Consultation,
    ImpedimentNotice,
    InformationRequest,
    Message,
    Offer,
    OfferDeclined,
    OralRequest,
    Refusal,
    RefusalScope,
    Results,
    ResultsTransfer,
    TransferConsent,
    TransferConsentRequest,
    Withdrawal,
    WrittenConfirmation,
    WrittenRequest,
)
from simulator.protocol.parties import Party
from simulator.protocol.profile import describe_window
from simulator.protocol.rules import Violation


class CaseState(StrEnum):
    OFFERED = "offered"
    RECEIVED = "received"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    UNDER_CONSIDERATION = "under_consideration"
    IN_CONSULTATION = "in_consultation"
    IN_EXECUTION = "in_execution"
    AWAITING_INFORMATION = "awaiting_information"
    AWAITING_DECISION = "awaiting_decision"
    COMPLETED = "completed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"
    LAPSED = "lapsed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        CaseState.COMPLETED,
        CaseState.REFUSED,
        CaseState.WITHDRAWN,
        CaseState.DECLINED,
        CaseState.LAPSED,
    }
)
# Executing the request, or waiting on the requesting party (Art. 6): where an
# impediment may be notified and results may be passed on under Art. 7.
EXECUTION_STATES = frozenset(
    {CaseState.IN_EXECUTION, CaseState.AWAITING_INFORMATION, CaseState.AWAITING_DECISION}
)
# A request still open (an offer is no request yet): Art. 6.1 asks that the requesting
# party be told "promptly" of circumstances interfering with or significantly delaying
# the execution of the request, so an impediment may be notified from receipt on.
OPEN_REQUEST_STATES = frozenset(CaseState) - TERMINAL_STATES - {CaseState.OFFERED}
# Waiting on the requesting party: its answer to a doubt (Art. 4.2), a question
# (Art. 6.2), conditions proposed (Art. 5.2) or its decision on confidentiality
# (Art. 6.3). Once execution has begun, the time spent here is not the requested
# party's delay (Art. 6.4): it can give no results until the answer comes.
WAITING_ON_REQUESTING = frozenset(
    {
        CaseState.AWAITING_CONFIRMATION,
        CaseState.IN_CONSULTATION,
        CaseState.AWAITING_INFORMATION,
        CaseState.AWAITING_DECISION,
    }
)
# Before a decision: where the requested party may consult, accept or refuse.
DECISION_STATES = frozenset({CaseState.RECEIVED, CaseState.UNDER_CONSIDERATION})
# Where the requested party may consult on conditions (Art. 5.2): before it decides, and in
# execution, where part of the request may still be refused (Art. 5.1) and the consultation
# comes "pending a decision to refuse" as before one. The answer resumes execution there.
CONSULTING_STATES = DECISION_STATES | {CaseState.IN_EXECUTION}
# Where the requested party may ask for additional information (Art. 6.2) or say
# that confidentiality cannot be kept (Art. 6.3): from receipt on, before it
# decides as well as while it executes. The answer resumes the case there.
ASKING_STATES = frozenset(
    {CaseState.RECEIVED, CaseState.UNDER_CONSIDERATION, CaseState.IN_EXECUTION}
)


class ConditionsStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ConfirmationStatus(StrEnum):
    """Art. 4.2: the written confirmation an oral request owes, alongside the case."""

    OWED = "owed"
    GIVEN = "given"
    # Not given within 3 days: reported once; it may still come where the case allows.
    OVERDUE = "overdue"


class Case(NamedTuple):
    """What is known about one case after folding its messages.

    A NamedTuple rather than a frozen dataclass: the fold copies the case on
    every message, and `_replace` is several times cheaper than
    `dataclasses.replace`, which dominated the cost of a fold step.
    """

    case_id: str
    state: CaseState
    opened_at: datetime
    updated_at: datetime
    # Unknown while the case is only an offer (Art. 4.1): the offer's
    # recipient becomes the requesting party if it answers with a request.
    requesting: str | None = None
    requested: str | None = None
    offered_by: str | None = None
    offered_to: str | None = None
    area: str | None = None
    urgent: bool = False
    confidential: bool = False
    parts: tuple[str, ...] = ()
    oral_request_id: str | None = None
    oral_at: datetime | None = None
    # None unless the case was opened by an oral request.
    confirmation: ConfirmationStatus | None = None
    # Where a wait (an authenticity query, Art. 4.2; a question, Art. 6.2; a
    # confidentiality decision, Art. 6.3; conditions proposed in execution,
    # Art. 5.2) returns to once answered.
    resume_state: CaseState | None = None
    # The requested party asked for information (Art. 6.2), in turn or not, and
    # has no answer yet: answering it is never a breach of the requesting party.
    information_open: bool = False
    signature_forged: bool = False
    consulted: bool = False
    conditions: tuple[str, ...] = ()
    conditions_status: ConditionsStatus | None = None
    refusal_scope: RefusalScope | None = None
    refused_parts: tuple[str, ...] = ()
    execution_started_at: datetime | None = None
    impediments: int = 0
    disclosure_consented: bool = False
    results_at: datetime | None = None
    results_overdue_reported: bool = False
    transfer_consents: frozenset[str] = frozenset()
    transferred_to: tuple[str, ...] = ()
    messages: int = 0
    # The agreement (of several in the exercise) the case is under; None with one agreement.
    agreement: str | None = None
    # When the request came (Art. 6.1 counts "promptly" from no earlier); None for an offer.
    requested_at: datetime | None = None
    # Art. 6.4's "as soon as possible" does not run while execution waits on the
    # requesting party: since when it waits now, and how long it waited before.
    paused_at: datetime | None = None
    waited: timedelta = timedelta(0)


Outcome = tuple[Case | None, tuple[Violation, ...]]

# What a handler changes in a case, by field name. Handlers return changes
# rather than a new case so that `apply` builds each step's case once, together
# with the bookkeeping every message updates (`updated_at`, `messages`): copying
# the 29 fields of a case was the largest cost of a fold step.
Changes = Mapping[str, Any]
_NO_CHANGE: Changes = {}

_OPENING = (WrittenRequest, OralRequest, Offer)
_ART_7 = (TransferConsentRequest, TransferConsent, ResultsTransfer)
_INDEX = {name: index for index, name in enumerate(Case._fields)}
_UPDATED_AT = _INDEX["updated_at"]
_MESSAGES = _INDEX["messages"]
_PAUSED_AT = _INDEX["paused_at"]
_WAITED = _INDEX["waited"]
_new_case = tuple.__new__


def apply(case: Case | None, message: Message, at: datetime, agreement: Agreement) -> Outcome:
    """Fold one message into its case (None for a case not opened yet)."""
    if agreement.bindings or (case is None and _named(message) is not None):
        return _apply_bound(case, message, at, agreement)
    after, found = _apply(case, message, at, agreement)
    if found:
        # The rules are the same under every agreement; the articles they cite are its own.
        return after, tuple(map(agreement.profile.cite, found))
    return after, found


def _apply_bound(
    case: Case | None, message: Message, at: datetime, agreement: Agreement
) -> Outcome:
    """`apply` in an exercise of several agreements: the case's own one governs it."""
    if case is not None:
        view = agreement.under(case.agreement)
        after, found = _apply(case, message, at, view)
        return after, tuple(map(view.profile.cite, found))
    named = _named(message)
    scope: list[Violation] = []
    if named is not None:
        binding, problem = _named_binding(agreement, named, message)
        if problem:
            scope.append(_breach(r.NO_COMMON_AGREEMENT, message, problem))
    else:
        binding = agreement.binding_between(message.sender, message.recipient)
        known = message.sender in agreement.parties and message.recipient in agreement.parties
        if binding is None and isinstance(message, _OPENING) and agreement.bindings and known:
            # Art. 1: the parties cooperate under the agreement.
            scope.append(
                _breach(
                    r.NO_COMMON_AGREEMENT,
                    message,
                    f"{message.sender} and {message.recipient} share no agreement of the exercise",
                )
            )
    if binding is None:
        # Recorded and folded as any other message, under the sender's own agreement.
        mine = agreement.first_binding_of(message.sender)
        view = agreement.under(mine.id if mine else None)
    else:
        view = agreement.under(binding.id)
    after, found = _apply(case, message, at, view)
    if after is not None and binding is not None:
        after = after._replace(agreement=binding.id)
    return after, tuple(map(view.profile.cite, (*scope, *found)))


def _named(message: Message) -> str | None:
    """The agreement an opening message names, if it names one."""
    return message.agreement if isinstance(message, _OPENING) else None


def _named_binding(
    agreement: Agreement, named: str, message: Message
) -> tuple[Binding | None, str]:
    """The binding a request names, or why the name does not hold for its parties."""
    if not agreement.bindings:
        if named == agreement.profile.id:
            return None, ""
        return None, f"names the agreement {named!r}; the exercise's is {agreement.profile.id!r}"
    binding = next((b for b in agreement.bindings if b.id == named), None)
    if binding is None:
        return None, f"names the agreement {named!r}, which is not one of the exercise's"
    if message.sender in binding.parties and message.recipient in binding.parties:
        return binding, ""
    return None, f"names the agreement {named!r}, which does not bind both parties"


def _apply(case: Case | None, message: Message, at: datetime, agreement: Agreement) -> Outcome:
    if case is not None and case.case_id != message.case_id:
        raise ValueError(f"message for case {message.case_id!r} folded into {case.case_id!r}")
    found: list[Violation] = []
    settings = agreement.settings
    if message.language != settings.working_language:
        found.append(
            _breach(
                r.NOT_WORKING_LANGUAGE,
                message,
                f"written in {message.language!r}, the working language is "
                f"{settings.working_language!r}",
            )
        )
    parties = agreement.parties
    if message.sender not in parties or message.recipient not in parties:
        who = ", ".join(p for p in (message.sender, message.recipient) if p not in parties)
        found.append(_breach(r.WRONG_PARTY, message, f"{who} is not a party to the exercise"))
        return case, tuple(found)

    if case is None:
        if isinstance(message, _OPENING):
            return _open(message, at, agreement, found), tuple(found)
        found.append(
            _breach(
                r.UNKNOWN_CASE,
                message,
                f"{message.type} refers to case {message.case_id!r}, which was never opened",
            )
        )
        return None, tuple(found)

    outsider = _outsider(case, message)
    if outsider is not None:
        # The fact of a request, its content and the assistance given may be kept
        # confidential (Art. 6.3, 7.1), and a verdict is seen by the message's sender
        # and recipient: for a message to or from a party outside the case it names
        # neither the case's parties nor its state, and the message leaves the case
        # as it was (it is not counted among the case's messages either).
        found.append(
            _breach(r.WRONG_PARTY, message, f"{outsider} is not a party to case {case.case_id}")
        )
        return case, tuple(found)

    case = _deadlines(case, at, agreement, found)
    if case.state in TERMINAL_STATES and not _open_after_close(case, message):
        found.append(
            _breach(r.CASE_CLOSED, message, f"{message.type} after the case was {case.state.value}")
        )
        changes = _NO_CHANGE
        if isinstance(message, InformationRequest) and _is_from_requested(case, message):
            changes = _QUESTION_ASKED
    else:
        changes = _HANDLERS[message.type](case, message, at, agreement, found)
    # `case._replace(...)` without its per-field map and keyword checks.
    values = list(case)
    values[_UPDATED_AT] = at
    values[_MESSAGES] = case.messages + 1
    for name, value in changes.items():
        values[_INDEX[name]] = value
    state = changes.get("state", case.state)
    if state is not case.state and case.execution_started_at is not None:
        if state in WAITING_ON_REQUESTING and case.paused_at is None:
            values[_PAUSED_AT] = at
        elif state not in WAITING_ON_REQUESTING and case.paused_at is not None:
            values[_PAUSED_AT] = None
            values[_WAITED] = case.waited + (at - case.paused_at)
    return _new_case(Case, values), tuple(found)


def elapse(case: Case, at: datetime, agreement: Agreement) -> tuple[Case, tuple[Violation, ...]]:
    """Apply the deadlines that have passed by `at`."""
    found: list[Violation] = []
    agreement = agreement.under(case.agreement)
    case = _deadlines(case, at, agreement, found)
    return case, tuple(map(agreement.profile.cite, found))


def confirmation_owed(case: Case) -> bool:
    """Whether an oral request's written confirmation is still running against its 3 days.

    Art. 4.2 asks for the confirmation whatever became of the request, so the
    obligation outlives completion and refusal; only withdrawing the request
    (or the case lapsing) ends it.
    """
    return case.confirmation is ConfirmationStatus.OWED and case.state is not CaseState.WITHDRAWN


def _deadlines(case: Case, at: datetime, agreement: Agreement, found: list[Violation]) -> Case:
    window = agreement.profile.deadlines.written_confirmation
    if (
        case.confirmation is ConfirmationStatus.OWED
        and case.oral_at is not None
        and at > case.oral_at + window
        and case.state is not CaseState.WITHDRAWN
    ):
        # Urgency lets the case go on before the confirmation; the lapse comes when
        # the 3 days pass, whatever stage the case has reached by then.
        lapses = case.state not in TERMINAL_STATES
        outcome = "the case lapsed" if lapses else f"the case had already ended {case.state.value}"
        found.append(
            r.ORAL_REQUEST_NOT_CONFIRMED.breach(
                f"oral request {case.oral_request_id} of {case.oral_at.isoformat()} was not "
                f"confirmed in writing within {describe_window(window)}; {outcome}",
                case_id=case.case_id,
                message_id=case.oral_request_id,
                party=case.requesting,
            )
        )
        if lapses:
            case = case._replace(
                state=CaseState.LAPSED, confirmation=ConfirmationStatus.OVERDUE, updated_at=at
            )
        else:
            case = case._replace(confirmation=ConfirmationStatus.OVERDUE)
    if (
        case.execution_started_at is not None
        and case.results_at is None
        and not case.results_overdue_reported
        and case.state not in TERMINAL_STATES
        and case.paused_at is None
        and at > case.execution_started_at + agreement.settings.as_soon_as_possible + case.waited
    ):
        waited = (
            f", not counting {case.waited} spent waiting on the requesting party"
            if case.waited
            else ""
        )
        found.append(
            r.RESULTS_OVERDUE.breach(
                f"execution began {case.execution_started_at.isoformat()} and no results were "
                f"notified within {agreement.settings.as_soon_as_possible}{waited}",
                case_id=case.case_id,
                message_id=None,
                party=case.requested,
            )
        )
        case = case._replace(results_overdue_reported=True)
    return case


def _breach(rule: r.Rule, message: Message, detail: str) -> Violation:
    return rule.breach(
        detail, case_id=message.case_id, message_id=message.message_id, party=message.sender
    )


def _open(
    message: WrittenRequest | OralRequest | Offer,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    _check_area(message, agreement, found)
    if isinstance(message, Offer):
        return Case(
            case_id=message.case_id,
            state=CaseState.OFFERED,
            opened_at=at,
            updated_at=at,
            offered_by=message.sender,
            offered_to=message.recipient,
            area=message.area.value,
            messages=1,
        )
    # `state` comes with the changes.
    changes = _request(message, at, agreement, found)
    return Case(message.case_id, opened_at=at, updated_at=at, messages=1, **changes)


def _check_area(
    message: WrittenRequest | OralRequest | Offer, agreement: Agreement, found: list[Violation]
) -> None:
    profile = agreement.profile
    if message.area.value not in profile.areas:
        found.append(
            _breach(
                r.AREA_OUTSIDE_AGREEMENT,
                message,
                f"{message.area.value!r} is not an area of cooperation of Art. "
                f"{profile.areas_article} of the {profile.short_title}",
            )
        )


def _request(
    message: WrittenRequest | OralRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "requesting": message.sender,
        "requested": message.recipient,
        "area": message.area.value,
        "urgent": message.urgent,
        "confidential": message.confidential,
        "parts": message.parts,
        "requested_at": at,
    }
    if isinstance(message, OralRequest):
        if not message.urgent:
            found.append(
                _breach(r.ORAL_REQUEST_NOT_URGENT, message, "oral request in a case not urgent")
            )
        # Art. 4.2: urgency is why an oral request is allowed at all, so the case
        # proceeds at once; the written confirmation is owed alongside.
        changes["state"] = CaseState.RECEIVED
        changes["oral_request_id"] = message.message_id
        changes["oral_at"] = at
        changes["confirmation"] = ConfirmationStatus.OWED
        return changes
    changes["state"] = CaseState.RECEIVED
    changes["signature_forged"] = _check_written(message, agreement, found)
    return changes


def _not_a_signatory(name: str, party: Party, agreement: Agreement) -> str:
    kinds = agreement.profile.signatories
    if kinds == ("head",):
        if any(d.name == name for d in party.deputies):
            return (
                f"it is signed by {name!r}, a deputy of {party.name}; only the head signs "
                f"under Art. {agreement.profile.signatories_article} of the "
                f"{agreement.profile.short_title}"
            )
        return f"it is signed by {name!r}, who is not the head of {party.name}"
    return f"it is signed by {name!r}, who is neither the head nor a deputy of {party.name}"


def _check_written(
    message: WrittenRequest | WrittenConfirmation, agreement: Agreement, found: list[Violation]
) -> bool:
    """Art. 4.3 content and Art. 4.4 form; returns whether the signature is forged."""
    requesting = agreement.parties[message.sender]
    requested = agreement.parties[message.recipient]
    requesting_name = message.requesting_party_name
    requested_name = message.requested_party_name
    # All present is the common case: one test of the lot before naming what is missing.
    if not (
        requesting_name.strip()
        and requested_name.strip()
        and message.essence.strip()
        and message.purpose.strip()
        and message.justification.strip()
        and message.assistance_sought.strip()
    ):
        missing = [
            label
            for label, text in (
                ("the requesting party's name", requesting_name),
                ("the requested party's name", requested_name),
                ("the essence of the case", message.essence),
                ("the purpose", message.purpose),
                ("the justification", message.justification),
                ("a description of the assistance sought", message.assistance_sought),
            )
            if not text.strip()
        ]
        found.append(_breach(r.REQUEST_INCOMPLETE, message, "lacks " + ", ".join(missing)))
    for written, party, role in (
        (requesting_name, requesting, "requesting"),
        (requested_name, requested, "requested"),
    ):
        if written.strip() and not _names(written, party.name, party.id):
            found.append(
                _breach(
                    r.REQUEST_INCOMPLETE,
                    message,
                    f"names {written!r} as the {role} party, which is {party.name!r}",
                )
            )

    defects = []
    if message.signature is None:
        defects.append("it is not signed")
    elif not requesting.may_sign(message.signature.name, agreement.profile.signatories):
        defects.append(_not_a_signatory(message.signature.name, requesting, agreement))
    if message.seal is None:
        defects.append("it carries no seal")
    elif message.seal != requesting.seal:
        defects.append(f"it carries the seal {message.seal!r}, not {requesting.seal!r}")
    if defects:
        found.append(_breach(r.REQUEST_NOT_SIGNED_OR_SEALED, message, "; ".join(defects)))
    return (
        message.signature is not None
        and agreement.verify_signature(message) is SignatureStatus.INVALID
    )


# Whether a written name names a party, by (text as written, party name, party
# id): the same few names recur in every request of a log. Bounded, as the
# texts come from participants.
_NAMED: dict[tuple[str, str, str], bool] = {}
_NAMED_LIMIT = 4096


def _names(written: str, name: str, party_id: str) -> bool:
    key = (written, name, party_id)
    named = _NAMED.get(key)
    if named is None:
        folded = " ".join(written.split()).casefold()
        named = any(folded == " ".join(n.split()).casefold() for n in (name, party_id))
        if len(_NAMED) >= _NAMED_LIMIT:
            _NAMED.clear()
        _NAMED[key] = named
    return named


Handler = Callable[[Case, Any, datetime, Agreement, list[Violation]], Changes]


def _on_request(
    case: Case,
    message: WrittenRequest | OralRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    # Art. 4.1: an offer accepted becomes a request from the offer's recipient.
    if case.state is not CaseState.OFFERED:
        return _not_allowed(case, message, found)
    if not _parties(case, message, found, sender=case.offered_to, recipient=case.offered_by):
        return _NO_CHANGE
    _check_offer_agreement(case, message, agreement, found)
    _check_area(message, agreement, found)
    return _request(message, at, agreement, found)


def _check_offer_agreement(
    case: Case, message: WrittenRequest | OralRequest, agreement: Agreement, found: list[Violation]
) -> None:
    """A request accepting an offer stays under the offer's agreement; naming another breaches."""
    named = message.agreement
    if named is None:
        return
    # The offer's agreement: its binding, or the exercise's one agreement. An offer under no
    # agreement (already a scope breach) leaves nothing the name could be checked against.
    under = (
        case.agreement
        if case.agreement is not None
        else (None if agreement.bindings else agreement.profile.id)
    )
    if under is not None and named != under:
        found.append(
            _breach(
                r.NO_COMMON_AGREEMENT,
                message,
                f"names the agreement {named!r}; the offer it accepts is under {under!r}",
            )
        )


def _on_offer(
    case: Case, message: Offer, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    return _not_allowed(case, message, found)


def _on_offer_declined(
    case: Case, message: OfferDeclined, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    if case.state is not CaseState.OFFERED:
        return _not_allowed(case, message, found)
    if not _parties(case, message, found, sender=case.offered_to, recipient=case.offered_by):
        return _NO_CHANGE
    return {"state": CaseState.DECLINED}


def _on_withdrawal(
    case: Case, message: Withdrawal, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    if case.state is CaseState.OFFERED:
        if not _parties(case, message, found, sender=case.offered_by, recipient=case.offered_to):
            return _NO_CHANGE
    elif not _from_requesting(case, message, found):
        return _NO_CHANGE
    return {"state": CaseState.WITHDRAWN}


def _on_written_confirmation(
    case: Case,
    message: WrittenConfirmation,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    if case.confirmation not in _CONFIRMABLE:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return _NO_CHANGE
    if message.confirms != case.oral_request_id:
        found.append(
            _breach(
                r.NOT_ALLOWED_IN_STATE,
                message,
                f"confirms {message.confirms!r}, but the oral request in this case is "
                f"{case.oral_request_id!r}",
            )
        )
        return _NO_CHANGE
    forged = _check_written(message, agreement, found)
    # The case stays where it is: it did not wait for the confirmation. A late one
    # (its lateness already reported) is still the request in writing.
    return {
        "confirmation": ConfirmationStatus.GIVEN,
        "signature_forged": forged,
        "urgent": message.urgent or case.urgent,
        "confidential": message.confidential,
        "parts": message.parts or case.parts,
    }


def _on_confirmation_request(
    case: Case,
    message: ConfirmationRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    # Art. 4.2 para. 2: "If there is any doubt about the authenticity or content of the
    # request, additional confirmation may be requested", at no stage in particular. An
    # urgent oral request is acted on before its written confirmation, so the writing
    # (its content, its signature) may first be read in execution: the doubt may be
    # raised there too. The answer resumes the case where it was.
    if case.state not in ASKING_STATES:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    return {"state": CaseState.AWAITING_CONFIRMATION, "resume_state": case.state}


def _on_additional_confirmation(
    case: Case,
    message: AdditionalConfirmation,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    if case.state is not CaseState.AWAITING_CONFIRMATION:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return _NO_CHANGE
    still_forged = (
        message.signature is not None
        and agreement.verify_signature(message) is SignatureStatus.INVALID
    )
    return {
        "state": case.resume_state or CaseState.RECEIVED,
        "resume_state": None,
        "signature_forged": still_forged,
    }


def _on_acknowledgement(
    case: Case, message: Acknowledgement, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    if case.state is not CaseState.RECEIVED:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    return _TO_UNDER_CONSIDERATION


def _on_consultation(
    case: Case, message: Consultation, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    # Art. 5.2: consultations come "pending a decision to refuse", in full or in part, and
    # part of a request may be refused in execution (Art. 5.1): so a requested party may
    # consult there too, before it refuses the part. Execution waits on the answer and
    # resumes with it, counted from when it began.
    if case.state not in CONSULTING_STATES:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    _check_not_forged(case, message, found)
    return {
        "state": CaseState.IN_CONSULTATION,
        "consulted": True,
        "conditions": message.conditions,
        "conditions_status": ConditionsStatus.PROPOSED,
        "resume_state": CaseState.IN_EXECUTION if case.state is CaseState.IN_EXECUTION else None,
    }


def _on_conditions_answer(
    case: Case,
    message: ConditionsAccepted | ConditionsRejected,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    if case.state is not CaseState.IN_CONSULTATION:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return _NO_CHANGE
    if case.resume_state is CaseState.IN_EXECUTION:
        # Consulted in execution: it resumes whatever the answer. Rejected, the part the
        # conditions were for is refused in part (Art. 5.1, 5.3) or other conditions are
        # proposed; the rest was accepted already and goes on.
        accepted = isinstance(message, ConditionsAccepted)
        return {
            "state": CaseState.IN_EXECUTION,
            "resume_state": None,
            "conditions_status": ConditionsStatus.ACCEPTED
            if accepted
            else ConditionsStatus.REJECTED,
        }
    if isinstance(message, ConditionsAccepted):
        return {
            "state": CaseState.IN_EXECUTION,
            "conditions_status": ConditionsStatus.ACCEPTED,
            "execution_started_at": at,
        }
    return {
        "state": CaseState.UNDER_CONSIDERATION,
        "conditions_status": ConditionsStatus.REJECTED,
    }


def _on_acceptance(
    case: Case, message: Acceptance, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    if case.state not in DECISION_STATES:
        # Accepting while a confidentiality decision is awaited is the Art. 6.3 breach.
        return _not_execution_state(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    if case.conditions_status is ConditionsStatus.REJECTED:
        return _despite_rejected_conditions(case, message, found)
    _check_not_forged(case, message, found)
    return {"state": CaseState.IN_EXECUTION, "execution_started_at": at}


def _on_refusal(
    case: Case, message: Refusal, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    # Art. 5.1 "in full or in part" sets no order: part of a request may be refused
    # once it is in execution too, after conditions accepted as well as rejected.
    # Refusing it all is a decision on the request, made before executing it.
    executing = case.state is CaseState.IN_EXECUTION
    if not (case.state in DECISION_STATES or (executing and message.scope is RefusalScope.PARTIAL)):
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    _check_refusal(case, message, agreement, found)
    if message.scope is RefusalScope.FULL:
        return _REFUSED_IN_FULL
    if executing:
        # Execution goes on for the rest, counted from when it began.
        refused = (
            *case.refused_parts,
            *(p for p in message.refused_parts if p not in case.refused_parts),
        )
        return {"refusal_scope": RefusalScope.PARTIAL, "refused_parts": refused}
    # Execution begins for the rest: acting on the request, as an acceptance is.
    _check_not_forged(case, message, found)
    return {
        "state": CaseState.IN_EXECUTION,
        "refusal_scope": RefusalScope.PARTIAL,
        "refused_parts": message.refused_parts,
        "execution_started_at": at,
    }


def _on_impediment(
    case: Case,
    message: ImpedimentNotice,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    # Art. 6.1 "promptly": a notice is not execution, and the circumstances may arise
    # (or be known) before execution begins: received, under consideration, in
    # consultation or while the case waits. Held back until acceptance the notice would
    # be late (impediment-not-prompt); refused before it, the party could not be prompt.
    # Nor is a notice assistance: after rejected conditions it is no Art. 5.2 breach.
    if case.state not in OPEN_REQUEST_STATES:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    promptly = agreement.settings.promptly
    arose = message.occurred_at
    if arose is not None:
        # Circumstances that arose before the request came could not be notified
        # before it: "promptly" runs from whichever came later.
        came = case.requested_at or case.opened_at
        if arose >= came and at - arose > promptly:
            detail = (
                f"the circumstances arose {arose.isoformat()} and were notified "
                f"{at - arose} later (promptly: {promptly})"
            )
        elif arose < came and at - came > promptly:
            detail = (
                f"the circumstances arose {arose.isoformat()}, before the request came "
                f"{came.isoformat()}, and were notified {at - came} after it "
                f"(promptly: {promptly})"
            )
        else:
            detail = ""
        if detail:
            found.append(_breach(r.IMPEDIMENT_NOT_PROMPT, message, detail))
    return {"impediments": case.impediments + 1}


def _on_results(
    case: Case, message: Results, at: datetime, agreement: Agreement, found: list[Violation]
) -> Changes:
    if case.state is not CaseState.IN_EXECUTION:
        return _not_execution_state(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    return {"state": CaseState.COMPLETED, "results_at": at}


def _on_information_request(
    case: Case,
    message: InformationRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    # Art. 6.2 gives the right "for the proper execution of the request": the
    # requested party may need the information to decide whether it can execute
    # properly, so it may ask before it accepts as well as while it executes.
    if case.state not in ASKING_STATES:
        _not_execution_state(case, message, found)
        # Out of turn, it is still a question put to the requesting party.
        return _QUESTION_ASKED if _is_from_requested(case, message) else _NO_CHANGE
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    return {
        "state": CaseState.AWAITING_INFORMATION,
        "resume_state": case.state,
        "information_open": True,
    }


def _on_confidentiality_impossible(
    case: Case,
    message: ConfidentialityImpossible,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    # Art. 6.3: the requesting party decides "whether the request should be complied
    # with under such conditions", which comes before compliance: so from receipt on.
    if case.state not in ASKING_STATES:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return _NO_CHANGE
    return {"state": CaseState.AWAITING_DECISION, "resume_state": case.state}


def _on_additional_information(
    case: Case,
    message: AdditionalInformation,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    # An answer to a question asked is never a breach of its own, wherever the
    # question came (an out-of-turn question is the asker's breach).
    if case.state is not CaseState.AWAITING_INFORMATION and not case.information_open:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return _NO_CHANGE
    if case.state is CaseState.AWAITING_INFORMATION:
        return {
            "state": case.resume_state or CaseState.IN_EXECUTION,
            "resume_state": None,
            "information_open": False,
        }
    return _QUESTION_ANSWERED


def _on_confidentiality_decision(
    case: Case,
    message: ConfidentialityDecision,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    if case.state is not CaseState.AWAITING_DECISION:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return _NO_CHANGE
    if message.proceed:
        return {
            "state": case.resume_state or CaseState.IN_EXECUTION,
            "resume_state": None,
            "disclosure_consented": True,
        }
    return {"state": CaseState.WITHDRAWN, "resume_state": None}


def _on_article_7(
    case: Case,
    message: TransferConsentRequest | TransferConsent | ResultsTransfer,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Changes:
    if case.state not in EXECUTION_STATES and case.state is not CaseState.COMPLETED:
        return _not_allowed(case, message, found)
    if isinstance(message, TransferConsentRequest | TransferConsent):
        check = _from_requesting if isinstance(message, TransferConsentRequest) else _from_requested
        if not check(case, message, found):
            return _NO_CHANGE
        if message.third_party in (case.requesting, case.requested) or (
            message.third_party not in agreement.parties
        ):
            found.append(
                _breach(
                    r.WRONG_PARTY,
                    message,
                    f"{message.third_party!r} is not a third party known to the exercise",
                )
            )
            return _NO_CHANGE
        if isinstance(message, TransferConsent) and message.granted:
            return {"transfer_consents": case.transfer_consents | {message.third_party}}
        if isinstance(message, TransferConsent):
            return {"transfer_consents": case.transfer_consents - {message.third_party}}
        return _NO_CHANGE
    if message.sender != case.requesting or message.recipient == case.requested:
        found.append(
            _breach(
                r.WRONG_PARTY,
                message,
                f"results of this case go from the requesting party {case.requesting} to a "
                f"third party; this went from {message.sender} to {message.recipient}",
            )
        )
        return _NO_CHANGE
    if case.results_at is None:
        found.append(_breach(r.NOT_ALLOWED_IN_STATE, message, "no results have been notified yet"))
        return _NO_CHANGE
    if message.recipient not in case.transfer_consents:
        found.append(
            _breach(
                r.TRANSFER_WITHOUT_CONSENT,
                message,
                f"results passed to {message.recipient} without {case.requested}'s prior consent",
            )
        )
    return {"transferred_to": (*case.transferred_to, message.recipient)}


def _outsider(case: Case, message: Message) -> str | None:
    return outsider(case, message.sender, message.recipient, message.type)


def outsider(case: Case, sender: str, recipient: str, kind: str) -> str | None:
    """The sender or recipient of a message of `kind` that is no party to the case, if one is.

    Results passed on under Art. 7 go to a third party by design; whether
    that one may have them is `_on_article_7`'s question. The umpire's
    conditioned injects ask this too: a message from outside a case is not
    one of the case's.
    """
    members = (case.requesting, case.requested, case.offered_by, case.offered_to)
    if sender not in members:
        return sender
    if recipient not in members and kind != "results_transfer":
        return recipient
    return None


def _parties(
    case: Case,
    message: Message,
    found: list[Violation],
    *,
    sender: str | None,
    recipient: str | None,
) -> bool:
    if message.sender == sender and message.recipient == recipient:
        return True
    found.append(
        _breach(
            r.WRONG_PARTY,
            message,
            f"{message.type} in this case goes from {sender} to {recipient}; this went from "
            f"{message.sender} to {message.recipient}",
        )
    )
    return False


def _from_requesting(case: Case, message: Message, found: list[Violation]) -> bool:
    if message.sender == case.requesting and message.recipient == case.requested:
        return True
    return _parties(case, message, found, sender=case.requesting, recipient=case.requested)


def _from_requested(case: Case, message: Message, found: list[Violation]) -> bool:
    if message.sender == case.requested and message.recipient == case.requesting:
        return True
    return _parties(case, message, found, sender=case.requested, recipient=case.requesting)


def _is_from_requested(case: Case, message: Message) -> bool:
    return message.sender == case.requested and message.recipient == case.requesting


def _open_after_close(case: Case, message: Message) -> bool:
    """What may still come once a case is closed."""
    if isinstance(message, _ART_7):
        # Art. 7.3: results are passed on after they were given.
        return case.state is CaseState.COMPLETED
    if isinstance(message, WrittenConfirmation):
        # Art. 4.2: the confirmation is owed whatever became of the request; in a
        # lapsed case its lateness is the lapse's one finding, not a second.
        return case.state in _CONFIRMABLE_CLOSED and case.confirmation in _CONFIRMABLE
    if isinstance(message, AdditionalInformation):
        return case.information_open
    return False


def _not_allowed(case: Case, message: Message, found: list[Violation]) -> Changes:
    found.append(
        _breach(
            r.NOT_ALLOWED_IN_STATE,
            message,
            f"{message.type} is not allowed while the case is {case.state.value}",
        )
    )
    return _NO_CHANGE


def _not_execution_state(case: Case, message: Message, found: list[Violation]) -> Changes:
    """Execution outside execution: the specific Art. 5.2 / 6.3 rule where one applies."""
    if message.sender == case.requested:
        if (
            case.state is CaseState.UNDER_CONSIDERATION
            and case.conditions_status is ConditionsStatus.REJECTED
        ):
            return _despite_rejected_conditions(case, message, found)
        if case.state is CaseState.AWAITING_DECISION:
            found.append(
                _breach(
                    r.EXECUTION_WITHOUT_DISCLOSURE_CONSENT,
                    message,
                    f"{message.type} while the requesting party has not yet decided whether to "
                    "go ahead without confidentiality",
                )
            )
            return _NO_CHANGE
    return _not_allowed(case, message, found)


def _despite_rejected_conditions(case: Case, message: Message, found: list[Violation]) -> Changes:
    found.append(
        _breach(
            r.ASSISTANCE_DESPITE_REJECTED_CONDITIONS,
            message,
            f"{message.type} after the requesting party rejected the conditions "
            f"({'; '.join(case.conditions)})",
        )
    )
    return _NO_CHANGE


def _check_not_forged(case: Case, message: Message, found: list[Violation]) -> None:
    if case.signature_forged:
        found.append(
            _breach(
                r.FORGED_REQUEST_ACTED_ON,
                message,
                f"{message.type} on a request whose signature does not verify, without asking "
                "for additional confirmation",
            )
        )


def _check_refusal(
    case: Case, message: Refusal, agreement: Agreement, found: list[Violation]
) -> None:
    if not message.medium.in_writing:
        found.append(_breach(r.REFUSAL_NOT_IN_WRITING, message, "the refusal was given orally"))
    if not message.reasons.strip():
        found.append(_breach(r.REFUSAL_WITHOUT_REASONS, message, "the refusal gives no reasons"))
    profile = agreement.profile
    outside = [g for g in message.grounds if g not in profile.refusal_grounds]
    if outside:
        found.append(
            _breach(
                r.REFUSAL_GROUND_OUTSIDE_ARTICLE_5_1,
                message,
                f"cites {', '.join(repr(g) for g in outside)}, "
                f"not a ground of Art. {profile.refusal_article}",
            )
        )
    elif not message.grounds:
        found.append(
            _breach(
                r.REFUSAL_GROUND_OUTSIDE_ARTICLE_5_1,
                message,
                f"cites no ground of Art. {profile.refusal_article}",
            )
        )
    if message.scope is RefusalScope.PARTIAL:
        if not message.refused_parts:
            found.append(
                _breach(r.REFUSAL_PARTS_UNSPECIFIED, message, "does not say which parts it refuses")
            )
        elif case.parts:
            unknown = [p for p in message.refused_parts if p not in case.parts]
            if unknown:
                found.append(
                    _breach(
                        r.REFUSAL_PARTS_UNSPECIFIED,
                        message,
                        f"refuses {', '.join(unknown)}, which the request does not contain",
                    )
                )
    if not case.consulted:
        found.append(
            _breach(
                r.REFUSAL_WITHOUT_CONSULTATION,
                message,
                "refused without first consulting on conditions",
            )
        )


# The changes shared by many steps, made once (read-only: typed as Mapping).
_TO_UNDER_CONSIDERATION: Changes = {"state": CaseState.UNDER_CONSIDERATION}
_REFUSED_IN_FULL: Changes = {"state": CaseState.REFUSED, "refusal_scope": RefusalScope.FULL}
_QUESTION_ASKED: Changes = {"information_open": True}
_QUESTION_ANSWERED: Changes = {"information_open": False}

# A written confirmation is taken while one is owed, late or not; after the case
# closed, only where the request was answered (completed or refused).
_CONFIRMABLE = frozenset({ConfirmationStatus.OWED, ConfirmationStatus.OVERDUE})
_CONFIRMABLE_CLOSED = frozenset({CaseState.COMPLETED, CaseState.REFUSED, CaseState.LAPSED})

_HANDLERS: dict[str, Handler] = {
    "written_request": _on_request,
    "oral_request": _on_request,
    "written_confirmation": _on_written_confirmation,
    "offer": _on_offer,
    "offer_declined": _on_offer_declined,
    "confirmation_request": _on_confirmation_request,
    "additional_confirmation": _on_additional_confirmation,
    "acknowledgement": _on_acknowledgement,
    "consultation": _on_consultation,
    "conditions_accepted": _on_conditions_answer,
    "conditions_rejected": _on_conditions_answer,
    "acceptance": _on_acceptance,
    "refusal": _on_refusal,
    "impediment_notice": _on_impediment,
    "information_request": _on_information_request,
    "confidentiality_impossible": _on_confidentiality_impossible,
    "results": _on_results,
    "additional_information": _on_additional_information,
    "confidentiality_decision": _on_confidentiality_decision,
    "transfer_consent_request": _on_article_7,
    "transfer_consent": _on_article_7,
    "results_transfer": _on_article_7,
    "withdrawal": _on_withdrawal,
}
