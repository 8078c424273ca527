"""Composing letters from committed events: the letter each written message stands for.

The agreement is a procedure of written letters: signed by the head or a deputy,
sealed, in Russian (Art. 9), between the parties' coordination units (Art. 10).
Every message that went in writing (all but oral requests) is composed here as
that letter, in its own language's template: letterhead, date and number, the
addressee's unit, the body (the Art. 4.3 headings for a request; the reasons and
Art. 5.1 grounds for a refusal), the signature block with the seal, and a line
saying whether the signature verified, as the umpire's fold checks it.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from simulator.eventlog import Event
from simulator.letters.model import Block, Letter, Signatory, SignatureCheck
from simulator.letters.vocabulary import Words, words_for
from simulator.protocol import Agreement, Medium, Message, Party, RefusalScope, SignatureStatus
from simulator.protocol import messages as m
from simulator.records import EXERCISE_STARTED, is_message_event, read_agreement, read_message
from simulator.wording import duration

# The messages that carry a signature (Art. 4.4); the others are sent in the head's name.
SIGNED = (m.WrittenRequest, m.WrittenConfirmation, m.AdditionalConfirmation)


def is_written(message: Message) -> bool:
    """Whether a message went in writing (technical text transmission counts, Art. 4.2)."""
    return message.medium is not Medium.ORAL


def letters_of(
    events: Iterable[Event], agreement: Agreement | None = None, *, case: str | None = None
) -> list[Letter]:
    """The letters of the written messages among `events`, in log order.

    Without `agreement` the log's own `coop.exercise.started` gives the parties and
    the public keys the signatures are checked with.
    """
    letters: list[Letter] = []
    numbers: dict[str, Cited] = {}
    for event in events:
        if event.type == EXERCISE_STARTED and agreement is None:
            agreement = read_agreement(event)
            continue
        if not is_message_event(event.type) or event.subject is None:
            continue
        message = read_message(event)
        reference = f"{event.subject}/{event.caseversion}"
        numbers[message.message_id] = Cited(
            reference, event.time, is_written(message), message.sender
        )
        if agreement is None or not is_written(message):
            continue
        if case is not None and event.subject != case:
            continue
        letter = compose(event, message, agreement, numbers)
        if letter is not None:
            letters.append(letter)
    return letters


class Cited(NamedTuple):
    """What a letter may cite of an earlier message: its number and date, whether it was a
    letter (written) at all, and who sent it."""

    reference: str
    time: datetime
    written: bool
    sender: str


def _date(words: Words, moment: datetime) -> str:
    at = moment.astimezone(UTC)
    return words.date(at.day, at.month, at.year)


def compose(
    event: Event,
    message: Message,
    agreement: Agreement,
    numbers: dict[str, "Cited"],
) -> Letter | None:
    """One message's letter; None when a party it names is not in the agreement."""
    sender = agreement.parties.get(message.sender)
    recipient = agreement.parties.get(message.recipient)
    if sender is None or recipient is None:
        return None
    words = words_for(message.language)
    cited = numbers.get(message.in_reply_to) if message.in_reply_to else None
    # "Your No. …" only of a letter the addressee sent: an oral request has no number,
    # and a confirmation of one's own oral request answers no letter of the addressee.
    theirs = cited is not None and cited.sender == message.recipient
    replied = cited if theirs and cited is not None and cited.written else None
    oral = cited if theirs and cited is not None and not cited.written else None
    signatory, seal, check, remarks = _signature(message, sender, agreement, words)
    if words.language != message.language.split("-", 1)[0]:
        remarks.insert(0, words["other_language"].format(language=message.language))
    return Letter(
        exercise=event.exercise,
        position=event.position,
        case_id=message.case_id,
        message_id=message.message_id,
        message_type=message.type,
        language=message.language,
        template=words.language,
        time=event.time,
        date=_date(words, event.time),
        reference=f"{message.case_id}/{event.caseversion}",
        reply_reference=replied.reference if replied else None,
        reply_date=_date(words, replied.time) if replied else None,
        reply_oral_date=_date(words, oral.time) if oral else None,
        sender_name=sender.name,
        sender_unit=sender.coordination_unit,
        recipient_name=recipient.name,
        recipient_unit=recipient.coordination_unit,
        title=words.titles.get(message.type, message.type),
        blocks=_body(message, words, agreement, numbers),
        signatory=signatory,
        seal=seal,
        check=check,
        verification=_verification(check, words),
        remarks=remarks,
    )


def _signature(
    message: Message, sender: Party, agreement: Agreement, words: Words
) -> tuple[Signatory | None, str | None, SignatureCheck, list[str]]:
    """Who signs, the seal, and what checking the signature found."""
    remarks: list[str] = []
    if not isinstance(message, SIGNED):
        # Sent by the coordination unit in the head's name; the agreement asks no signature.
        head = sender.head
        return (
            Signatory(name=head.name, title=head.title, role=words["head"]),
            sender.seal,
            "not_required",
            remarks,
        )
    signature = message.signature
    if message.seal is None:
        remarks.append(words["no_seal"])
    if signature is None:
        return None, message.seal, "missing", remarks
    role = ""
    if signature.name == sender.head.name:
        role = words["head"]
    elif any(d.name == signature.name for d in sender.deputies):
        role = words["deputy"]
    else:
        remarks.append(words["signer_not_entitled"])
    status = agreement.verify_signature(message)
    check: SignatureCheck
    if status is SignatureStatus.VALID:
        check = "verified"
    elif status is SignatureStatus.INVALID:
        check = "invalid"
    else:
        check = "paper" if signature.value is None else "unchecked"
    return (
        Signatory(name=signature.name, title=signature.title, role=role),
        message.seal,
        check,
        remarks,
    )


def _verification(check: SignatureCheck, words: Words) -> str:
    return {
        "verified": words["signature_verified"],
        "invalid": words["signature_invalid"],
        "unchecked": words["signature_unchecked"],
        "paper": words["signature_paper"],
        "missing": words["signature_missing"],
        "not_required": words["signature_not_required"],
    }[check]


def _text(words: Words, value: str) -> list[str]:
    return [value] if value.strip() else [words["not_given"]]


def _body(
    message: Message,
    words: Words,
    agreement: Agreement,
    numbers: dict[str, "Cited"],
) -> list[Block]:
    """The body: the parts of the letter each message type has, with its own headings."""
    w = words
    match message:
        case m.WrittenRequest() | m.WrittenConfirmation() | m.OralRequest():
            return _request(message, w, numbers)
        case m.Offer():
            return [
                Block(heading=w["area"], lines=[_area(w, message.area)]),
                Block(heading=w["description"], lines=_text(w, message.description)),
            ]
        case m.OfferDeclined() | m.ConditionsRejected() | m.Withdrawal():
            opening = {
                "offer_declined": [],
                "conditions_rejected": [w["rejected"]],
                "withdrawal": [w["withdrawal"]],
            }[message.type]
            blocks = [Block(lines=opening)] if opening else []
            if message.reason.strip() or not opening:
                blocks.append(Block(heading=w["reason"], lines=_text(w, message.reason)))
            return blocks
        case m.ConfirmationRequest():
            return [Block(heading=w["doubt"], lines=_text(w, message.doubt))]
        case m.AdditionalConfirmation():
            return [Block(heading=w["statement"], lines=_text(w, message.statement))]
        case m.Acknowledgement():
            return _noted(w, message.note)
        case m.Consultation():
            return [
                Block(heading=w["conditions"], lines=list(message.conditions), listed=True),
                *_noted(w, message.note, plain=False),
            ]
        case m.ConditionsAccepted():
            return [Block(lines=[w["accepted"]])]
        case m.Acceptance():
            return [Block(lines=[w["acceptance"]]), *_noted(w, message.note, plain=False)]
        case m.Refusal():
            return _refusal(message, w)
        case m.ImpedimentNotice():
            blocks = [Block(heading=w["circumstances"], lines=_text(w, message.circumstances))]
            if message.occurred_at is not None:
                occurred = message.occurred_at.astimezone(UTC)
                stamp = f"{_date(w, occurred)} {occurred:%H:%M} UTC"
                blocks.append(Block(heading=w["occurred"], lines=[stamp]))
            if message.expected_delay is not None:
                blocks.append(Block(heading=w["delay"], lines=[duration(message.expected_delay)]))
            return blocks
        case m.InformationRequest():
            return [Block(heading=w["questions"], lines=list(message.questions), listed=True)]
        case m.AdditionalInformation():
            return [Block(heading=w["answers"], lines=_text(w, message.answers))]
        case m.ConfidentialityImpossible():
            return [Block(heading=w["explanation"], lines=_text(w, message.explanation))]
        case m.ConfidentialityDecision():
            return [Block(lines=[w["proceed"] if message.proceed else w["withdraw"]])]
        case m.Results():
            blocks = [Block(heading=w["summary"], lines=_text(w, message.summary))]
            if message.partial:
                blocks.append(Block(lines=[w["partial_results"]]))
            return blocks
        case m.TransferConsentRequest():
            return [
                Block(
                    heading=w["third_party"], lines=[_party_name(agreement, message.third_party)]
                ),
                Block(heading=w["transfer_purpose"], lines=_text(w, message.purpose)),
            ]
        case m.TransferConsent():
            return [
                Block(
                    heading=w["third_party"], lines=[_party_name(agreement, message.third_party)]
                ),
                Block(lines=[w["granted"] if message.granted else w["refused_transfer"]]),
            ]
        case m.ResultsTransfer():
            return [Block(heading=w["transferred"], lines=_text(w, message.summary))]
    return []


def _noted(words: Words, note: str, *, plain: bool = True) -> list[Block]:
    if not note.strip():
        return []
    return [Block(heading="" if plain else words["note"], lines=[note])]


def _area(words: Words, area: str) -> str:
    return words.areas.get(area, area)


def _party_name(agreement: Agreement, party: str) -> str:
    known = agreement.parties.get(party)
    return known.name if known is not None else party


def _request(
    message: m.WrittenRequest | m.WrittenConfirmation | m.OralRequest,
    w: Words,
    numbers: dict[str, "Cited"],
) -> list[Block]:
    """Art. 4.3: the request's required content under its own five headings."""
    blocks: list[Block] = []
    if isinstance(message, m.WrittenConfirmation):
        confirmed = numbers.get(message.confirms)
        said = (
            # An oral request has a date, not an outgoing number.
            f"{w['confirms']} {w['of']} {_date(w, confirmed.time)}"
            if confirmed
            else f"{w['confirms']} {message.confirms}"
        )
        # A Russian date ends in "г." already.
        blocks.append(Block(lines=[said if said.endswith(".") else said + "."]))
    if message.urgent:
        blocks.append(Block(lines=[w["urgent"]]))
    blocks += [
        Block(heading=w["area"], lines=[_area(w, message.area)]),
        Block(
            heading=w["names"],
            lines=[
                f"{w['requesting']}: {message.requesting_party_name or w['not_given']}",
                f"{w['requested']}: {message.requested_party_name or w['not_given']}",
            ],
        ),
        Block(heading=w["essence"], lines=_text(w, message.essence)),
        Block(
            heading=w["purpose"],
            lines=[
                f"{w['purpose_only']}: {message.purpose or w['not_given']}",
                f"{w['justification']}: {message.justification or w['not_given']}",
            ],
        ),
        Block(heading=w["assistance"], lines=_text(w, message.assistance_sought)),
    ]
    if message.parts:
        blocks.append(Block(heading=w["parts"], lines=list(message.parts), listed=True))
    blocks.append(Block(heading=w["other"], lines=_text(w, message.other_information)))
    if message.confidential:
        blocks.append(Block(lines=[w["confidential"]]))
    return blocks


def _refusal(message: m.Refusal, w: Words) -> list[Block]:
    """Art. 5.1, 5.3: full or partial, the reasons, and the grounds of Art. 5.1."""
    full = message.scope is RefusalScope.FULL
    blocks = [Block(heading=w["scope"], lines=[w["full"] if full else w["partial"]])]
    if message.refused_parts:
        blocks.append(
            Block(heading=w["refused_parts"], lines=list(message.refused_parts), listed=True)
        )
    blocks.append(Block(heading=w["reasons"], lines=_text(w, message.reasons)))
    grounds = [w.grounds[g] if g in w.grounds else f"{g} ({w['outside']})" for g in message.grounds]
    blocks.append(
        Block(heading=w["grounds"], lines=grounds or [w["no_grounds"]], listed=bool(grounds))
    )
    return blocks
