"""The seat's forms: what the procedure allows now, and messages exactly as the trainee wrote."""

from datetime import timedelta

import pytest

from simulator.protocol import parse_message
from simulator.web.forms import FORMS, FormError, allowed_now, message_from_form
from tests.protocol.builders import AGREEMENT, BY_ID, Play


def allowed(play: Play, party: str) -> list[str]:
    assert play.case is not None
    return allowed_now(play.case, BY_ID[party], BY_ID, AGREEMENT, play.at + timedelta(hours=1))


def test_what_each_side_may_send_follows_the_case() -> None:
    """Received: the requested party decides; executing: it reports; refused: nobody acts."""
    play = Play()
    play.send("written_request")
    # Art. 6.1, 6.2 and 6.3 from receipt on: it may notify an impediment, ask, or say
    # confidentiality cannot be kept.
    assert allowed(play, "beta") == [
        "confirmation_request",
        "acknowledgement",
        "consultation",
        "acceptance",
        "refusal",
        "impediment_notice",
        "information_request",
        "confidentiality_impossible",
    ]
    assert allowed(play, "alpha") == ["withdrawal"]
    play.send("consultation")
    assert allowed(play, "alpha") == ["conditions_accepted", "conditions_rejected", "withdrawal"]
    play.send("conditions_accepted")
    # A refusal in execution is a partial one (Art. 5.1); the form asks for its scope. The
    # requested party may consult before it (Art. 5.2).
    assert allowed(play, "beta") == [
        "confirmation_request",
        "consultation",
        "refusal",
        "impediment_notice",
        "information_request",
        "confidentiality_impossible",
        "results",
        "transfer_consent",
    ]
    assert "transfer_consent_request" in allowed(play, "alpha")
    play.send("results")
    # Art. 7.3 goes on after completion; the rest of the procedure is over.
    assert allowed(play, "beta") == ["transfer_consent"]
    refused = Play(case_id="case-2")
    refused.send("written_request")
    refused.send("refusal")
    assert allowed(refused, "beta") == []
    assert allowed(refused, "alpha") == []


def test_a_blank_stays_blank_and_the_signatory_signs() -> None:
    """Reasons left empty are sent empty; a deputy signs with the party's seal."""
    refusal = message_from_form(
        "refusal",
        {"scope": "full", "reasons": "", "grounds": ["security"], "refused_parts": ""},
        sender=BY_ID["beta"],
        recipient=BY_ID["alpha"],
        case_id="case-1",
        message_id="beta.1",
        in_reply_to="alpha.1",
    )
    assert refusal["reasons"] == ""
    assert refusal["grounds"] == ["security"]
    assert refusal["in_reply_to"] == "alpha.1"
    parse_message(refusal)
    values = {"statement": "Confirmed.", "signature": "A. Deputy"}
    signed = message_from_form(
        "additional_confirmation",
        values,
        sender=BY_ID["alpha"],
        recipient=BY_ID["beta"],
        case_id="case-1",
        message_id="alpha.2",
        in_reply_to=None,
    )
    assert signed["signature"] == {"name": "A. Deputy", "title": "Deputy Minister"}
    assert signed["seal"] == "ALPHA-SEAL-1"
    unsigned = message_from_form(
        "additional_confirmation",
        {"statement": "Confirmed.", "signature": ""},
        sender=BY_ID["alpha"],
        recipient=BY_ID["beta"],
        case_id="case-1",
        message_id="alpha.3",
        in_reply_to=None,
    )
    assert unsigned["signature"] is None
    assert unsigned["seal"] is None


def test_a_form_that_cannot_be_a_message_names_the_field() -> None:
    """Consultation without conditions is no message at all: the error says which field."""
    with pytest.raises(FormError, match="conditions"):
        message_from_form(
            "consultation",
            {"conditions": "  \n "},
            sender=BY_ID["beta"],
            recipient=BY_ID["alpha"],
            case_id="case-1",
            message_id="beta.2",
            in_reply_to=None,
        )
    with pytest.raises(FormError, match="not a message type"):
        message_from_form(
            "telegram",
            {},
            sender=BY_ID["beta"],
            recipient=BY_ID["alpha"],
            case_id="case-1",
            message_id="beta.2",
            in_reply_to=None,
        )


def test_every_message_type_has_a_form_without_envelope_fields() -> None:
    """23 forms; who, which case and the reply chain are filled in, never asked."""
    assert len(FORMS) == 23
    for form in FORMS.values():
        names = {f.name for f in form.fields}
        assert not names & {"message_id", "case_id", "sender", "recipient", "type", "seal"}
    assert {f.name: f.kind for f in FORMS["refusal"].fields}["grounds"] == "multi"
    assert {f.name: f.kind for f in FORMS["written_request"].fields}["signature"] == "signatory"


def test_placeholders_are_hints_of_their_own_form() -> None:
    """Every placeholder starts "e.g."; an acknowledgement's is an acknowledgement's."""
    hints = [f.placeholder for form in FORMS.values() for f in form.fields if f.placeholder]
    assert hints
    assert all(h.startswith("e.g. ") for h in hints)
    note = next(f for f in FORMS["acknowledgement"].fields if f.name == "note")
    assert note.placeholder == "e.g. Received by the coordination unit; under consideration."
