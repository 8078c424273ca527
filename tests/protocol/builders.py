"""Well-formed messages and scripted plays for the protocol tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.protocol import (
    Agreement,
    AgreementSettings,
    Binding,
    Case,
    Message,
    Official,
    Party,
    Violation,
    apply,
    default_profile,
    elapse,
    load_profile,
    parse_message,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

PARTIES = (
    Party(
        id="alpha",
        name="Ministry of Internal Affairs of Alpha",
        head=Official(name="A. Head", title="Minister"),
        deputies=(Official(name="A. Deputy", title="Deputy Minister"),),
        seal="ALPHA-SEAL-1",
        coordination_unit="Department of International Cooperation",
    ),
    Party(
        id="beta",
        name="Federal Guard Service of Beta",
        head=Official(name="B. Head", title="Director"),
        deputies=(Official(name="B. Deputy"), Official(name="B. Second Deputy")),
        seal="BETA-SEAL-1",
        coordination_unit="Main Organisational Directorate",
    ),
    Party(
        id="gamma",
        name="Gamma Border Agency",
        head=Official(name="G. Head"),
        deputies=(Official(name="G. Deputy"),),
        seal="GAMMA-SEAL-1",
        coordination_unit="Liaison Office",
    ),
)
BY_ID = {p.id: p for p in PARTIES}
SETTINGS = AgreementSettings(promptly=timedelta(days=1), as_soon_as_possible=timedelta(days=10))
AGREEMENT = Agreement.of(PARTIES, SETTINGS)
# Two bilateral agreements: alpha-beta under the default, beta-gamma under customs-maa (in
# English, confirmations within a day); alpha and gamma share none.
CUSTOMS_SETTINGS = SETTINGS.model_copy(update={"working_language": "en"})
TWO_AGREEMENTS = Agreement.of(
    PARTIES,
    bindings=(
        Binding("alpha-beta", default_profile(), SETTINGS, ("alpha", "beta")),
        Binding("beta-gamma", load_profile("customs-maa"), CUSTOMS_SETTINGS, ("beta", "gamma")),
    ),
)

# Message types the requesting party sends; the rest come from the requested party.
FROM_REQUESTING = frozenset(
    {
        "written_request",
        "oral_request",
        "written_confirmation",
        "additional_confirmation",
        "conditions_accepted",
        "conditions_rejected",
        "additional_information",
        "confidentiality_decision",
        "withdrawal",
        "transfer_consent_request",
        "results_transfer",
        "offer_declined",
    }
)


def request_content(sender: str, recipient: str) -> dict[str, Any]:
    return {
        "area": "fuel_and_energy_safety",
        "requesting_party_name": _name(sender),
        "requested_party_name": _name(recipient),
        "essence": "A regional sports final is held next to the Northbank power station.",
        "purpose": "Coordinate protection of the station during the event.",
        "justification": "Both sides' crowds will pass the station's perimeter.",
        "assistance_sought": "Exchange of patrol schedules and a liaison officer.",
        "parts": ["patrol schedules", "liaison officer"],
    }


def _name(party_id: str) -> str:
    # Strangers to the exercise are allowed here: tests send as them on purpose.
    return BY_ID[party_id].name if party_id in BY_ID else party_id.title()


def signed_by(sender: str) -> dict[str, Any]:
    if sender not in BY_ID:
        return {"signature": {"name": "Stranger"}, "seal": "NO-SEAL"}
    return {"signature": {"name": BY_ID[sender].head.name}, "seal": BY_ID[sender].seal}


def valid_fields(kind: str, sender: str, recipient: str) -> dict[str, Any]:
    """Fields that make a message of `kind` complete and correct in form."""
    if kind == "written_request":
        return request_content(sender, recipient) | signed_by(sender)
    if kind == "written_confirmation":
        return request_content(sender, recipient) | signed_by(sender) | {"urgent": True}
    if kind == "oral_request":
        return request_content(sender, recipient) | {"urgent": True}
    simple: dict[str, dict[str, Any]] = {
        "offer": {"area": "sports_and_culture", "description": "Joint staff training course."},
        "confirmation_request": {"doubt": "The seal impression is unclear."},
        "additional_confirmation": {"statement": "Confirmed by the head's office."},
        "consultation": {"conditions": ["Liaison officer stays in uniform of the host."]},
        "refusal": {"reasons": "The station is closed to foreign staff.", "grounds": ["security"]},
        "impediment_notice": {"circumstances": "Flooding closed the access road."},
        "information_request": {"questions": ["Expected crowd size?"]},
        "additional_information": {"answers": "About 12,000 spectators."},
        "confidentiality_impossible": {"explanation": "The schedule must go to the station."},
        "confidentiality_decision": {"proceed": True},
        "results": {"summary": "Schedules exchanged; liaison officer assigned."},
        "transfer_consent_request": {"third_party": "gamma", "purpose": "Border crossing plan."},
        "transfer_consent": {"third_party": "gamma", "granted": True},
        "results_transfer": {"summary": "Patrol schedules."},
    }
    return dict(simple.get(kind, {}))


def build(
    kind: str, *, case_id: str, message_id: str, sender: str, recipient: str, **overrides: Any
) -> Message:
    data = {
        "type": kind,
        "message_id": message_id,
        "case_id": case_id,
        "sender": sender,
        "recipient": recipient,
        **valid_fields(kind, sender, recipient),
    }
    data.update(overrides)
    return parse_message({k: v for k, v in data.items() if v is not _DROP})


# Marks a field to leave out of a built message.
_DROP: Any = object()
DROP = _DROP


class Play:
    """A case played message by message through the fold, with a running clock."""

    def __init__(
        self,
        *,
        requesting: str = "alpha",
        requested: str = "beta",
        case_id: str = "case-1",
        agreement: Agreement = AGREEMENT,
    ) -> None:
        self.requesting = requesting
        self.requested = requested
        self.case_id = case_id
        self.agreement = agreement
        self.case: Case | None = None
        self.at = T0
        self.violations: list[Violation] = []
        self.sent: list[Message] = []

    def send(
        self,
        kind: str,
        *,
        after: timedelta = timedelta(hours=1),
        sender: str | None = None,
        recipient: str | None = None,
        **overrides: Any,
    ) -> tuple[Violation, ...]:
        if sender is None:
            sender = self.requesting if kind in FROM_REQUESTING else self.requested
        if recipient is None:
            if kind == "results_transfer":
                recipient = "gamma"
            else:
                recipient = self.requested if sender == self.requesting else self.requesting
        if kind == "written_confirmation" and "confirms" not in overrides:
            overrides["confirms"] = self.case.oral_request_id if self.case else "m-none"
        self.at += after
        message = build(
            kind,
            case_id=self.case_id,
            message_id=f"m{len(self.sent) + 1}",
            sender=sender,
            recipient=recipient,
            **overrides,
        )
        self.sent.append(message)
        self.case, found = apply(self.case, message, self.at, self.agreement)
        self.violations.extend(found)
        return found

    def wait(self, delta: timedelta) -> tuple[Violation, ...]:
        self.at += delta
        assert self.case is not None
        self.case, found = elapse(self.case, self.at, self.agreement)
        self.violations.extend(found)
        return found

    def rule_ids(self) -> list[str]:
        return [v.rule_id for v in self.violations]

    @property
    def state(self) -> str:
        assert self.case is not None
        return self.case.state.value
