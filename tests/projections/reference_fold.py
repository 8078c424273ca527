"""The fold as it was before it was made fast: the oracle of the equivalence tests.

A verbatim copy of the functions of simulator/protocol/case.py at e2f37e0
(only the imports changed: the data types are today's), and the case
projection's handling of an event at that commit, reading every message
through the discriminated union. tests/projections/test_fast_fold.py checks
that today's fold gives exactly what this one gives. It is frozen on
purpose: a rule changed deliberately in case.py is changed here too, in the
same commit, so the two can only ever differ by accident.

Changed since: issue 14 (an oral request is received at once with its
written confirmation owed alongside; a partial refusal also in execution;
information and confidentiality from receipt on, each answer resuming where
the case was; an answer to a question never a breach); issue 14 items 2-3
(the agreement's profile: its articles cited, its grounds of refusal, its
written-confirmation window, a request outside its areas of cooperation;
several agreements, each case under one, a request outside all of them);
a late written confirmation in a lapsed case taken without a second finding;
an impediment notified from receipt on, in every state of an open request (Art. 6.1);
additional confirmation asked in execution too (Art. 4.2); a consultation in
execution too, resuming execution whatever the answer, the results clock standing
still meanwhile (Art. 5.2, 6.4).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulator.eventlog import Event
from simulator.projections import Divergence, Finding
from simulator.protocol import MESSAGE_ADAPTER
from simulator.protocol import rules as r
from simulator.protocol.agreement import (
    Agreement,
    Binding,
    SignatureStatus,
)
from simulator.protocol.case import (
    ASKING_STATES,
    DECISION_STATES,
    EXECUTION_STATES,
    OPEN_REQUEST_STATES,
    Case,
    CaseState,
    ConditionsStatus,
    ConfirmationStatus,
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
from simulator.protocol.profile import describe_window
from simulator.protocol.rules import Violation
from simulator.records import (
    CLOCK_ELAPSED,
    EXERCISE_STARTED,
    is_message_event,
    read_agreement,
    read_violations,
)


@dataclass
class ReferenceProjection:
    """CaseProjection.handle as it was, over the reference fold."""

    agreement: Agreement | None = None
    cases: dict[str, Case] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)

    def handle(self, event: Event) -> None:
        kind = event.type
        if is_message_event(kind):
            message = MESSAGE_ADAPTER.validate_python(event.data["message"])
            assert self.agreement is not None
            case, found = apply(
                self.cases.get(message.case_id), message, event.time, self.agreement
            )
            if case is not None:
                self.cases[message.case_id] = case
            self._found(event, found)
        elif kind == CLOCK_ELAPSED and event.subject is not None:
            current = self.cases.get(event.subject)
            if current is not None:
                assert self.agreement is not None
                current, found = elapse(current, event.time, self.agreement)
                self.cases[event.subject] = current
                self._found(event, found)
        elif kind == EXERCISE_STARTED and self.agreement is None:
            self.agreement = read_agreement(event)

    def _found(self, event: Event, found: tuple[Violation, ...]) -> None:
        recorded = read_violations(event)
        if recorded is not None and recorded != found:
            self.divergences.append(Divergence(event.position, recorded, found))
        verdicts = found if recorded is None else recorded
        self.findings.extend(Finding(event.position, event.time, v) for v in verdicts)


Outcome = tuple[Case | None, tuple[Violation, ...]]

_OPENING = (WrittenRequest, OralRequest, Offer)
_ART_7 = (TransferConsentRequest, TransferConsent, ResultsTransfer)


def apply(case: Case | None, message: Message, at: datetime, agreement: Agreement) -> Outcome:
    """Fold one message into its case (None for a case not opened yet)."""
    # Several agreements: the case is under the one its request names, or else the first
    # that binds both its parties.
    binding = None
    if case is not None:
        view = agreement.under(case.agreement)
        after, found = _apply(case, message, at, view)
        return after, tuple(map(view.profile.cite, found))
    named = message.agreement if isinstance(message, _OPENING) else None
    scope: list[Violation] = []
    if named is not None:
        binding, problem = _named_binding_ref(agreement, named, message)
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


def _named_binding_ref(
    agreement: Agreement, named: str, message: Message
) -> tuple[Binding | None, str]:
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
    if message.language != agreement.settings.working_language:
        found.append(
            _breach(
                r.NOT_WORKING_LANGUAGE,
                message,
                f"written in {message.language!r}, the working language is "
                f"{agreement.settings.working_language!r}",
            )
        )
    strangers = [p for p in (message.sender, message.recipient) if p not in agreement.parties]
    if strangers:
        who = ", ".join(strangers)
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

    # Art. 6.3, 7.1: a party outside the case learns nothing of it from a verdict,
    # and its message (or one addressed to it) does not touch the case. Results
    # passed on to a third party under Art. 7.3 go outside by design.
    members = {case.requesting, case.requested, case.offered_by, case.offered_to} - {None}
    outside = message.sender not in members or (
        message.recipient not in members and not isinstance(message, ResultsTransfer)
    )
    if outside:
        who = message.sender if message.sender not in members else message.recipient
        found.append(
            _breach(r.WRONG_PARTY, message, f"{who} is not a party to case {case.case_id}")
        )
        return case, tuple(found)

    case, lapsed = elapse(case, at, agreement)
    found.extend(lapsed)
    case = case._replace(updated_at=at, messages=case.messages + 1)

    if case.state.terminal and not _open_after_close(case, message):
        found.append(
            _breach(r.CASE_CLOSED, message, f"{message.type} after the case was {case.state.value}")
        )
        if (
            isinstance(message, InformationRequest)
            and message.sender == case.requested
            and message.recipient == case.requesting
        ):
            case = case._replace(information_open=True)
        return case, tuple(found)
    return _step(case, message, at, agreement, found), tuple(found)


def _open_after_close(case: Case, message: Message) -> bool:
    if isinstance(message, _ART_7):
        return case.state is CaseState.COMPLETED
    if isinstance(message, WrittenConfirmation):
        return case.state in (
            CaseState.COMPLETED,
            CaseState.REFUSED,
            CaseState.LAPSED,
        ) and case.confirmation in (
            ConfirmationStatus.OWED,
            ConfirmationStatus.OVERDUE,
        )
    if isinstance(message, AdditionalInformation):
        return case.information_open
    return False


def elapse(case: Case, at: datetime, agreement: Agreement) -> tuple[Case, tuple[Violation, ...]]:
    """Apply the deadlines that have passed by `at`."""
    found: list[Violation] = []
    agreement = agreement.under(case.agreement)
    if (
        case.confirmation is ConfirmationStatus.OWED
        and case.state is not CaseState.WITHDRAWN
        and case.oral_at is not None
        and at > case.oral_at + agreement.profile.deadlines.written_confirmation
    ):
        outcome = (
            f"the case had already ended {case.state.value}"
            if case.state.terminal
            else "the case lapsed"
        )
        found.append(
            r.ORAL_REQUEST_NOT_CONFIRMED.breach(
                f"oral request {case.oral_request_id} of {case.oral_at.isoformat()} was not "
                f"confirmed in writing within "
                f"{describe_window(agreement.profile.deadlines.written_confirmation)}; {outcome}",
                case_id=case.case_id,
                message_id=case.oral_request_id,
                party=case.requesting,
            )
        )
        if case.state.terminal:
            case = case._replace(confirmation=ConfirmationStatus.OVERDUE)
        else:
            case = case._replace(
                state=CaseState.LAPSED, confirmation=ConfirmationStatus.OVERDUE, updated_at=at
            )
    if (
        case.execution_started_at is not None
        and case.results_at is None
        and not case.results_overdue_reported
        and not case.state.terminal
        and case.paused_at is None
        and at > case.execution_started_at + agreement.settings.as_soon_as_possible + case.waited
    ):
        not_counting = (
            f", not counting {case.waited} spent waiting on the requesting party"
            if case.waited
            else ""
        )
        found.append(
            r.RESULTS_OVERDUE.breach(
                f"execution began {case.execution_started_at.isoformat()} and no results were "
                f"notified within {agreement.settings.as_soon_as_possible}{not_counting}",
                case_id=case.case_id,
                message_id=None,
                party=case.requested,
            )
        )
        case = case._replace(results_overdue_reported=True)
    return case, tuple(map(agreement.profile.cite, found))


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
    case = Case(case_id=message.case_id, state=CaseState.RECEIVED, opened_at=at, updated_at=at)
    _check_area(message, agreement, found)
    if isinstance(message, Offer):
        return case._replace(
            state=CaseState.OFFERED,
            offered_by=message.sender,
            offered_to=message.recipient,
            area=message.area.value,
            messages=1,
        )
    return _request(case._replace(messages=1), message, at, agreement, found)


def _request(
    case: Case,
    message: WrittenRequest | OralRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    case = case._replace(
        requesting=message.sender,
        requested=message.recipient,
        area=message.area.value,
        urgent=message.urgent,
        confidential=message.confidential,
        parts=message.parts,
        requested_at=at,
    )
    if isinstance(message, OralRequest):
        if not message.urgent:
            found.append(
                _breach(r.ORAL_REQUEST_NOT_URGENT, message, "oral request in a case not urgent")
            )
        return case._replace(
            state=CaseState.RECEIVED,
            oral_request_id=message.message_id,
            oral_at=at,
            confirmation=ConfirmationStatus.OWED,
        )
    forged = _check_written(message, agreement, found)
    return case._replace(state=CaseState.RECEIVED, signature_forged=forged)


def _check_written(
    message: WrittenRequest | WrittenConfirmation, agreement: Agreement, found: list[Violation]
) -> bool:
    """Art. 4.3 content and Art. 4.4 form; returns whether the signature is forged."""
    requesting = agreement.parties[message.sender]
    requested = agreement.parties[message.recipient]
    missing = [
        label
        for label, text in (
            ("the requesting party's name", message.requesting_party_name),
            ("the requested party's name", message.requested_party_name),
            ("the essence of the case", message.essence),
            ("the purpose", message.purpose),
            ("the justification", message.justification),
            ("a description of the assistance sought", message.assistance_sought),
        )
        if not text.strip()
    ]
    if missing:
        found.append(_breach(r.REQUEST_INCOMPLETE, message, "lacks " + ", ".join(missing)))
    for written, party, role in (
        (message.requesting_party_name, requesting, "requesting"),
        (message.requested_party_name, requested, "requested"),
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
        name, profile = message.signature.name, agreement.profile
        deputy = any(d.name == name for d in requesting.deputies)
        if profile.signatories == ("head",) and deputy:
            defects.append(
                f"it is signed by {name!r}, a deputy of {requesting.name}; only the head signs "
                f"under Art. {profile.signatories_article} of the {profile.short_title}"
            )
        elif profile.signatories == ("head",):
            defects.append(f"it is signed by {name!r}, who is not the head of {requesting.name}")
        else:
            defects.append(
                f"it is signed by {name!r}, who is neither the head nor a deputy of "
                f"{requesting.name}"
            )
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


def _names(written: str, *accepted: str) -> bool:
    folded = " ".join(written.split()).casefold()
    return any(folded == " ".join(name.split()).casefold() for name in accepted)


Handler = Callable[[Case, Any, datetime, Agreement, list[Violation]], Case]


_WAITING = (
    CaseState.AWAITING_CONFIRMATION,
    CaseState.IN_CONSULTATION,
    CaseState.AWAITING_INFORMATION,
    CaseState.AWAITING_DECISION,
)


def _step(
    case: Case, message: Message, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    after = _HANDLERS[message.type](case, message, at, agreement, found)
    # Art. 6.4: once executing, time spent waiting on the requesting party is not counted.
    if case.execution_started_at is None or after.state == case.state:
        return after
    if after.state in _WAITING and case.state not in _WAITING:
        return after._replace(paused_at=at)
    if case.state in _WAITING and after.state not in _WAITING and case.paused_at is not None:
        return after._replace(paused_at=None, waited=case.waited + (at - case.paused_at))
    return after


def _on_request(
    case: Case,
    message: WrittenRequest | OralRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    # Art. 4.1: an offer accepted becomes a request from the offer's recipient.
    if case.state is not CaseState.OFFERED:
        return _not_allowed(case, message, found)
    if not _parties(case, message, found, sender=case.offered_to, recipient=case.offered_by):
        return case
    # The offer's agreement governs the request that accepts it.
    if case.agreement is not None:
        under: str | None = case.agreement
    else:
        under = None if agreement.bindings else agreement.profile.id
    if message.agreement is not None and under is not None and message.agreement != under:
        found.append(
            _breach(
                r.NO_COMMON_AGREEMENT,
                message,
                f"names the agreement {message.agreement!r}; the offer it accepts is under "
                f"{under!r}",
            )
        )
    _check_area(message, agreement, found)
    return _request(case, message, at, agreement, found)


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


def _on_offer(
    case: Case, message: Offer, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    return _not_allowed(case, message, found)


def _on_offer_declined(
    case: Case, message: OfferDeclined, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    if case.state is not CaseState.OFFERED:
        return _not_allowed(case, message, found)
    if not _parties(case, message, found, sender=case.offered_to, recipient=case.offered_by):
        return case
    return case._replace(state=CaseState.DECLINED)


def _on_withdrawal(
    case: Case, message: Withdrawal, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    if case.state is CaseState.OFFERED:
        if not _parties(case, message, found, sender=case.offered_by, recipient=case.offered_to):
            return case
    elif not _from_requesting(case, message, found):
        return case
    return case._replace(state=CaseState.WITHDRAWN)


def _on_written_confirmation(
    case: Case,
    message: WrittenConfirmation,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.confirmation not in (ConfirmationStatus.OWED, ConfirmationStatus.OVERDUE):
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return case
    if message.confirms != case.oral_request_id:
        found.append(
            _breach(
                r.NOT_ALLOWED_IN_STATE,
                message,
                f"confirms {message.confirms!r}, but the oral request in this case is "
                f"{case.oral_request_id!r}",
            )
        )
        return case
    forged = _check_written(message, agreement, found)
    return case._replace(
        confirmation=ConfirmationStatus.GIVEN,
        signature_forged=forged,
        urgent=message.urgent or case.urgent,
        confidential=message.confidential,
        parts=message.parts or case.parts,
    )


def _on_confirmation_request(
    case: Case,
    message: ConfirmationRequest,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.state not in ASKING_STATES:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return case
    return case._replace(state=CaseState.AWAITING_CONFIRMATION, resume_state=case.state)


def _on_additional_confirmation(
    case: Case,
    message: AdditionalConfirmation,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.state is not CaseState.AWAITING_CONFIRMATION:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return case
    still_forged = (
        message.signature is not None
        and agreement.verify_signature(message) is SignatureStatus.INVALID
    )
    return case._replace(
        state=case.resume_state or CaseState.RECEIVED,
        resume_state=None,
        signature_forged=still_forged,
    )


def _on_acknowledgement(
    case: Case, message: Acknowledgement, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    if case.state is not CaseState.RECEIVED:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return case
    return case._replace(state=CaseState.UNDER_CONSIDERATION)


def _on_consultation(
    case: Case, message: Consultation, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    # Art. 5.2 "pending a decision to refuse", in part too, which may come in execution.
    executing = case.state is CaseState.IN_EXECUTION
    if case.state not in DECISION_STATES and not executing:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return case
    _check_not_forged(case, message, found)
    return case._replace(
        state=CaseState.IN_CONSULTATION,
        consulted=True,
        conditions=message.conditions,
        conditions_status=ConditionsStatus.PROPOSED,
        resume_state=CaseState.IN_EXECUTION if executing else None,
    )


def _on_conditions_answer(
    case: Case,
    message: ConditionsAccepted | ConditionsRejected,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.state is not CaseState.IN_CONSULTATION:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return case
    if case.resume_state is CaseState.IN_EXECUTION:
        # Consulted in execution: it goes on, from when it began, whatever the answer.
        status = (
            ConditionsStatus.ACCEPTED
            if isinstance(message, ConditionsAccepted)
            else ConditionsStatus.REJECTED
        )
        return case._replace(
            state=CaseState.IN_EXECUTION, resume_state=None, conditions_status=status
        )
    if isinstance(message, ConditionsAccepted):
        return case._replace(
            state=CaseState.IN_EXECUTION,
            conditions_status=ConditionsStatus.ACCEPTED,
            execution_started_at=at,
        )
    return case._replace(
        state=CaseState.UNDER_CONSIDERATION, conditions_status=ConditionsStatus.REJECTED
    )


def _on_acceptance(
    case: Case, message: Acceptance, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    if case.state not in DECISION_STATES:
        return _not_execution_state(case, message, found)
    if not _from_requested(case, message, found):
        return case
    if case.conditions_status is ConditionsStatus.REJECTED:
        return _despite_rejected_conditions(case, message, found)
    _check_not_forged(case, message, found)
    return case._replace(state=CaseState.IN_EXECUTION, execution_started_at=at)


def _on_refusal(
    case: Case, message: Refusal, at: datetime, agreement: Agreement, found: list[Violation]
) -> Case:
    executing = case.state is CaseState.IN_EXECUTION
    if case.state not in DECISION_STATES and not (
        executing and message.scope is RefusalScope.PARTIAL
    ):
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return case
    _check_refusal(case, message, agreement, found)
    if message.scope is RefusalScope.FULL:
        return case._replace(state=CaseState.REFUSED, refusal_scope=RefusalScope.FULL)
    if executing:
        added = tuple(p for p in message.refused_parts if p not in case.refused_parts)
        return case._replace(
            refusal_scope=RefusalScope.PARTIAL, refused_parts=case.refused_parts + added
        )
    # Art. 5.1 "in full or in part": execution goes on for the rest, on the request as it
    # stands (a forged one acted on).
    _check_not_forged(case, message, found)
    return case._replace(
        state=CaseState.IN_EXECUTION,
        refusal_scope=RefusalScope.PARTIAL,
        refused_parts=message.refused_parts,
        execution_started_at=at,
    )


def _on_impediment(
    case: Case,
    message: ImpedimentNotice,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    # Art. 6.1 "promptly": from receipt on, in every state of an open request.
    if case.state not in OPEN_REQUEST_STATES:
        return _not_allowed(case, message, found)
    if not _from_requested(case, message, found):
        return case
    promptly = agreement.settings.promptly
    arose = message.occurred_at
    came = case.requested_at if case.requested_at is not None else case.opened_at
    if arose is not None and arose >= came and at - arose > promptly:
        found.append(
            _breach(
                r.IMPEDIMENT_NOT_PROMPT,
                message,
                f"the circumstances arose {arose.isoformat()} and were notified "
                f"{at - arose} later (promptly: {promptly})",
            )
        )
    if arose is not None and arose < came and at - came > promptly:
        # Art. 6.1: not before the request came.
        found.append(
            _breach(
                r.IMPEDIMENT_NOT_PROMPT,
                message,
                f"the circumstances arose {arose.isoformat()}, before the request came "
                f"{came.isoformat()}, and were notified {at - came} after it "
                f"(promptly: {promptly})",
            )
        )
    return case._replace(impediments=case.impediments + 1)


def _on_execution(
    case: Case,
    message: InformationRequest | ConfidentialityImpossible | Results,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if isinstance(message, Results):
        if case.state is not CaseState.IN_EXECUTION:
            return _not_execution_state(case, message, found)
        if not _from_requested(case, message, found):
            return case
        return case._replace(state=CaseState.COMPLETED, results_at=at)
    if case.state not in ASKING_STATES:
        if isinstance(message, ConfidentialityImpossible):
            return _not_allowed(case, message, found)
        case = _not_execution_state(case, message, found)
        if message.sender == case.requested and message.recipient == case.requesting:
            return case._replace(information_open=True)
        return case
    if not _from_requested(case, message, found):
        return case
    if isinstance(message, InformationRequest):
        return case._replace(
            state=CaseState.AWAITING_INFORMATION, resume_state=case.state, information_open=True
        )
    return case._replace(state=CaseState.AWAITING_DECISION, resume_state=case.state)


def _on_additional_information(
    case: Case,
    message: AdditionalInformation,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.state is not CaseState.AWAITING_INFORMATION and not case.information_open:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return case
    if case.state is not CaseState.AWAITING_INFORMATION:
        return case._replace(information_open=False)
    return case._replace(
        state=case.resume_state or CaseState.IN_EXECUTION,
        resume_state=None,
        information_open=False,
    )


def _on_confidentiality_decision(
    case: Case,
    message: ConfidentialityDecision,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.state is not CaseState.AWAITING_DECISION:
        return _not_allowed(case, message, found)
    if not _from_requesting(case, message, found):
        return case
    if message.proceed:
        return case._replace(
            state=case.resume_state or CaseState.IN_EXECUTION,
            resume_state=None,
            disclosure_consented=True,
        )
    return case._replace(state=CaseState.WITHDRAWN, resume_state=None)


def _on_article_7(
    case: Case,
    message: TransferConsentRequest | TransferConsent | ResultsTransfer,
    at: datetime,
    agreement: Agreement,
    found: list[Violation],
) -> Case:
    if case.state not in EXECUTION_STATES and case.state is not CaseState.COMPLETED:
        return _not_allowed(case, message, found)
    if isinstance(message, TransferConsentRequest | TransferConsent):
        check = _from_requesting if isinstance(message, TransferConsentRequest) else _from_requested
        if not check(case, message, found):
            return case
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
            return case
        if isinstance(message, TransferConsent) and message.granted:
            return case._replace(transfer_consents=case.transfer_consents | {message.third_party})
        if isinstance(message, TransferConsent):
            return case._replace(transfer_consents=case.transfer_consents - {message.third_party})
        return case
    if message.sender != case.requesting or message.recipient == case.requested:
        found.append(
            _breach(
                r.WRONG_PARTY,
                message,
                f"results of this case go from the requesting party {case.requesting} to a "
                f"third party; this went from {message.sender} to {message.recipient}",
            )
        )
        return case
    if case.results_at is None:
        found.append(_breach(r.NOT_ALLOWED_IN_STATE, message, "no results have been notified yet"))
        return case
    if message.recipient not in case.transfer_consents:
        found.append(
            _breach(
                r.TRANSFER_WITHOUT_CONSENT,
                message,
                f"results passed to {message.recipient} without {case.requested}'s prior consent",
            )
        )
    return case._replace(transferred_to=(*case.transferred_to, message.recipient))


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
    return _parties(case, message, found, sender=case.requesting, recipient=case.requested)


def _from_requested(case: Case, message: Message, found: list[Violation]) -> bool:
    return _parties(case, message, found, sender=case.requested, recipient=case.requesting)


def _not_allowed(case: Case, message: Message, found: list[Violation]) -> Case:
    found.append(
        _breach(
            r.NOT_ALLOWED_IN_STATE,
            message,
            f"{message.type} is not allowed while the case is {case.state.value}",
        )
    )
    return case


def _not_execution_state(case: Case, message: Message, found: list[Violation]) -> Case:
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
            return case
    return _not_allowed(case, message, found)


def _despite_rejected_conditions(case: Case, message: Message, found: list[Violation]) -> Case:
    found.append(
        _breach(
            r.ASSISTANCE_DESPITE_REJECTED_CONDITIONS,
            message,
            f"{message.type} after the requesting party rejected the conditions "
            f"({'; '.join(case.conditions)})",
        )
    )
    return case


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
    article = agreement.profile.refusal_article
    outside = [g for g in message.grounds if g not in agreement.profile.refusal_grounds]
    if outside:
        found.append(
            _breach(
                r.REFUSAL_GROUND_OUTSIDE_ARTICLE_5_1,
                message,
                f"cites {', '.join(repr(g) for g in outside)}, not a ground of Art. {article}",
            )
        )
    elif not message.grounds:
        found.append(
            _breach(
                r.REFUSAL_GROUND_OUTSIDE_ARTICLE_5_1, message, f"cites no ground of Art. {article}"
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
    "information_request": _on_execution,
    "confidentiality_impossible": _on_execution,
    "results": _on_execution,
    "additional_information": _on_additional_information,
    "confidentiality_decision": _on_confidentiality_decision,
    "transfer_consent_request": _on_article_7,
    "transfer_consent": _on_article_7,
    "results_transfer": _on_article_7,
    "withdrawal": _on_withdrawal,
}
