"""The messages of the assistance procedure (Art. 4-7), one frozen model each.

Every message belongs to one case and names its sender and recipient. The
models accept what a participant could really send, including defective
content (a request without a purpose, a refusal without reasons or citing a
ground outside Art. 5.1): such content is an exercise result that the rules
record as a violation, not a parse error. Only what cannot be a message at
all (wrong types, unknown fields, a party id that is not an id) is refused
here.
"""

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from simulator.protocol.ids import CaseId, LanguageTag, MessageId, PartyId

# Free-text fields are bounded so that one message cannot carry megabytes of
# prose; transport-level size limits come on top of this.
Text = Annotated[str, Field(max_length=20_000)]
ShortText = Annotated[str, Field(max_length=500)]
Items = Annotated[tuple[ShortText, ...], Field(max_length=100)]


class Area(StrEnum):
    """The areas of cooperation of the shipped agreements; every request names one.

    A message may name any of them; the agreement in force says which it covers
    (its profile's `areas`), and a request outside them is a violation
    (`area-outside-agreement`), not a message that cannot be read.
    """

    # Art. 2 of the default agreement.
    PUBLIC_ORDER = "public_order"
    STATE_FACILITIES_AND_SPECIAL_CARGO = "state_facilities_and_special_cargo"
    TERRORISM_AND_EXTREMISM = "terrorism_and_extremism"
    ARMS_TRAFFICKING_CONTROL = "arms_trafficking_control"
    FUEL_AND_ENERGY_SAFETY = "fuel_and_energy_safety"
    SPECIAL_REGIME_FACILITIES = "special_regime_facilities"
    PROPERTY_PROTECTION = "property_protection"
    FORCE_SUPPORT = "force_support"
    SPORTS_AND_CULTURE = "sports_and_culture"
    HEALTH_RESORT_TREATMENT = "health_resort_treatment"
    # Art. 2 of the customs mutual administrative assistance profile (customs-maa).
    CUSTOMS_LEGISLATION = "customs_legislation"
    CUSTOMS_OFFENCES = "customs_offences"


class RefusalGround(StrEnum):
    """Art. 5.1: the only grounds on which assistance may be refused."""

    SOVEREIGNTY = "sovereignty"
    SECURITY = "security"
    PUBLIC_ORDER = "public_order"
    ESSENTIAL_INTERESTS = "essential_interests"
    CONTRADICTS_NATIONAL_LAW = "contradicts_national_law"
    CONTRADICTS_INTERNATIONAL_OBLIGATIONS = "contradicts_international_obligations"


class Medium(StrEnum):
    """How a message travelled. Art. 4.2 counts technical text transmission as writing."""

    WRITTEN = "written"
    ELECTRONIC = "electronic"
    ORAL = "oral"

    @property
    def in_writing(self) -> bool:
        return self is not Medium.ORAL


class RefusalScope(StrEnum):
    FULL = "full"
    PARTIAL = "partial"


class Signature(BaseModel):
    """Art. 4.4: who signed, and the signature value when signatures are keyed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ShortText
    title: ShortText = ""
    # Base64 Ed25519 signature over the request's content; None on paper.
    value: Annotated[str, Field(max_length=200)] | None = None


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: MessageId
    case_id: CaseId
    sender: PartyId
    recipient: PartyId
    language: LanguageTag = "ru"
    medium: Medium = Medium.WRITTEN
    in_reply_to: MessageId | None = None

    @model_validator(mode="after")
    def _not_to_self(self) -> Any:
        if self.sender == self.recipient:
            raise ValueError(f"sender and recipient are both {self.sender!r}")
        return self


def _unsaid(value: object) -> bool:
    return value is None


# The agreement a request or an offer is made under, by its id in the exercise. Left out
# of the JSON when not named, so messages that name none are written as they always were.
def _blank_unsaid(value: object) -> object:
    # A form left blank names no agreement.
    return None if value == "" else value


AgreementName = Annotated[
    Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] | None,
    BeforeValidator(_blank_unsaid),
    Field(default=None, exclude_if=_unsaid),
]


class _RequestContent(_Message):
    """Art. 4.3 content. Elements may be blank: the rules report what is missing."""

    area: Area
    agreement: AgreementName = None
    requesting_party_name: ShortText = ""
    requested_party_name: ShortText = ""
    essence: Text = ""
    purpose: Text = ""
    justification: Text = ""
    assistance_sought: Text = ""
    other_information: Text = ""
    # Named parts of the assistance, so a partial refusal can say which it refuses.
    parts: Items = ()
    urgent: bool = False
    # Art. 6.3: the requesting party asks that the request be kept confidential.
    confidential: bool = False


# The Art. 4.3 content a request carries (and a written confirmation repeats).
REQUEST_CONTENT_FIELDS = frozenset(_RequestContent.model_fields) - frozenset(_Message.model_fields)


class WrittenRequest(_RequestContent):
    """Art. 4.1-4.4: a request in writing, signed by the head or a deputy and sealed."""

    type: Literal["written_request"] = "written_request"
    medium: Literal[Medium.WRITTEN, Medium.ELECTRONIC] = Medium.WRITTEN
    signature: Signature | None = None
    seal: ShortText | None = None


class OralRequest(_RequestContent):
    """Art. 4.2: an urgent request made orally, to be confirmed in writing within 3 days."""

    type: Literal["oral_request"] = "oral_request"
    medium: Literal[Medium.ORAL] = Medium.ORAL


class WrittenConfirmation(_RequestContent):
    """Art. 4.2: the written request that confirms an earlier oral one."""

    type: Literal["written_confirmation"] = "written_confirmation"
    medium: Literal[Medium.WRITTEN, Medium.ELECTRONIC] = Medium.WRITTEN
    confirms: MessageId
    signature: Signature | None = None
    seal: ShortText | None = None


class Offer(_Message):
    """Art. 4.1: assistance offered on a party's own initiative."""

    type: Literal["offer"] = "offer"
    area: Area
    agreement: AgreementName = None
    description: Text


class OfferDeclined(_Message):
    """The offer's recipient declines it. Accepting it means sending a request."""

    type: Literal["offer_declined"] = "offer_declined"
    reason: Text = ""


class ConfirmationRequest(_Message):
    """Art. 4.2: doubt about a request's authenticity or content; processing waits."""

    type: Literal["confirmation_request"] = "confirmation_request"
    doubt: Text


class AdditionalConfirmation(_Message):
    """Art. 4.2: the requesting party's answer to a doubt."""

    type: Literal["additional_confirmation"] = "additional_confirmation"
    statement: Text
    signature: Signature | None = None
    seal: ShortText | None = None


class Acknowledgement(_Message):
    """The requested party's coordination unit takes the request into consideration."""

    type: Literal["acknowledgement"] = "acknowledgement"
    note: Text = ""


class Consultation(_Message):
    """Art. 5.2: before refusing, the requested party proposes conditions."""

    type: Literal["consultation"] = "consultation"
    conditions: Annotated[Items, Field(min_length=1)]
    note: Text = ""


class ConditionsAccepted(_Message):
    """Art. 5.2: the requesting party accepts the conditions and must comply with them."""

    type: Literal["conditions_accepted"] = "conditions_accepted"


class ConditionsRejected(_Message):
    """Art. 5.2: the requesting party rejects the conditions."""

    type: Literal["conditions_rejected"] = "conditions_rejected"
    reason: Text = ""


class Acceptance(_Message):
    """The requested party decides to execute the request."""

    type: Literal["acceptance"] = "acceptance"
    note: Text = ""


class Refusal(_Message):
    """Art. 5.1, 5.3: full or partial refusal, in writing, with reasons and grounds.

    Grounds are plain strings so that a ground outside Art. 5.1 can be
    recorded and reported instead of being lost as a parse error.
    """

    type: Literal["refusal"] = "refusal"
    scope: RefusalScope = RefusalScope.FULL
    refused_parts: Items = ()
    reasons: Text = ""
    grounds: Annotated[tuple[ShortText, ...], Field(max_length=20)] = ()


class ImpedimentNotice(_Message):
    """Art. 6.1: circumstances that prevent or significantly delay execution."""

    type: Literal["impediment_notice"] = "impediment_notice"
    circumstances: Text
    # When the circumstances arose; "promptly" is measured from here.
    occurred_at: AwareDatetime | None = None
    expected_delay: timedelta | None = None


class InformationRequest(_Message):
    """Art. 6.2: what the requested party needs to execute properly."""

    type: Literal["information_request"] = "information_request"
    questions: Annotated[Items, Field(min_length=1)]


class AdditionalInformation(_Message):
    """Art. 6.2: the requesting party's answer."""

    type: Literal["additional_information"] = "additional_information"
    answers: Text


class ConfidentialityImpossible(_Message):
    """Art. 6.3: execution is impossible without disclosing the request."""

    type: Literal["confidentiality_impossible"] = "confidentiality_impossible"
    explanation: Text


class ConfidentialityDecision(_Message):
    """Art. 6.3: the requesting party goes ahead under those conditions, or withdraws."""

    type: Literal["confidentiality_decision"] = "confidentiality_decision"
    proceed: bool


class Results(_Message):
    """Art. 6.4: the results of execution; partial where part was refused."""

    type: Literal["results"] = "results"
    summary: Text
    partial: bool = False


class Withdrawal(_Message):
    """The requesting party ends the case (or the offering party its offer)."""

    type: Literal["withdrawal"] = "withdrawal"
    reason: Text = ""


class TransferConsentRequest(_Message):
    """Art. 7.3: the requesting party asks to pass results to a third party."""

    type: Literal["transfer_consent_request"] = "transfer_consent_request"
    third_party: PartyId
    purpose: Text = ""


class TransferConsent(_Message):
    """Art. 7.3: the providing party's prior consent (or its refusal) to a transfer."""

    type: Literal["transfer_consent"] = "transfer_consent"
    third_party: PartyId
    granted: bool


class ResultsTransfer(_Message):
    """Art. 7.3: results passed on to a third party (the recipient)."""

    type: Literal["results_transfer"] = "results_transfer"
    summary: Text = ""


Message = Annotated[
    WrittenRequest
    | OralRequest
    | WrittenConfirmation
    | Offer
    | OfferDeclined
    | ConfirmationRequest
    | AdditionalConfirmation
    | Acknowledgement
    | Consultation
    | ConditionsAccepted
    | ConditionsRejected
    | Acceptance
    | Refusal
    | ImpedimentNotice
    | InformationRequest
    | AdditionalInformation
    | ConfidentialityImpossible
    | ConfidentialityDecision
    | Results
    | Withdrawal
    | TransferConsentRequest
    | TransferConsent
    | ResultsTransfer,
    Field(discriminator="type"),
]

MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)

MESSAGE_TYPES: dict[str, type[_Message]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        WrittenRequest,
        OralRequest,
        WrittenConfirmation,
        Offer,
        OfferDeclined,
        ConfirmationRequest,
        AdditionalConfirmation,
        Acknowledgement,
        Consultation,
        ConditionsAccepted,
        ConditionsRejected,
        Acceptance,
        Refusal,
        ImpedimentNotice,
        InformationRequest,
        AdditionalInformation,
        ConfidentialityImpossible,
        ConfidentialityDecision,
        Results,
        Withdrawal,
        TransferConsentRequest,
        TransferConsent,
        ResultsTransfer,
    )
}


def parse_message(data: object) -> Message:
    """Validate a decoded JSON object as a message; raises pydantic.ValidationError."""
    return MESSAGE_ADAPTER.validate_python(data)


def parse_message_json(raw: str | bytes) -> Message:
    """Validate raw JSON as a message; raises pydantic.ValidationError."""
    return MESSAGE_ADAPTER.validate_json(raw)


def sending_problems(message: object) -> list[tuple[str, str]]:
    """What a new message may not say though its model takes it: (field, why) pairs.

    The models stay as lenient as the logs recorded under them (a log is read
    through them, and one holding such a value must still load); what is
    refused here is refused where a message is made: at the umpire's door and
    in a scenario's injects and replies.
    """
    if isinstance(message, ImpedimentNotice):
        delay = message.expected_delay
        if delay is not None and delay < timedelta(0):
            return [("expected_delay", f"an expected delay cannot be negative (got {delay})")]
    return []
