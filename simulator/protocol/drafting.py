"""Drafting a protocol message from a scenario's template, as a coordination unit would.

A scenario says only what is particular to a message; the rest is filled in
here: the sender's head signs and its seal is applied to written requests,
the request names both parties, replies get procedural boilerplate. The
result is a plain dict: the umpire validates it like any submission.
"""

from typing import Any

from simulator.protocol.messages import REQUEST_CONTENT_FIELDS
from simulator.protocol.parties import Party

DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "offer": {"description": "Assistance offered on our own initiative."},
    "confirmation_request": {"doubt": "Please confirm the authenticity of the request."},
    "additional_confirmation": {"statement": "The request is confirmed by the head."},
    "acknowledgement": {"note": "Received by the coordination unit; under consideration."},
    "consultation": {"conditions": ["Assistance is given within the requested party's rules."]},
    "conditions_rejected": {"reason": "The conditions cannot be met."},
    "acceptance": {"note": "The request will be executed."},
    "refusal": {
        "reasons": "Execution would harm the essential interests of the state.",
        "grounds": ["essential_interests"],
    },
    "impediment_notice": {"circumstances": "Circumstances delay execution."},
    "information_request": {"questions": ["Please give further details of the case."]},
    "additional_information": {"answers": "Further details are attached."},
    "confidentiality_impossible": {
        "explanation": "Execution requires disclosing the request to other services."
    },
    "confidentiality_decision": {"proceed": True},
    "results": {"summary": "The request has been executed."},
    "withdrawal": {"reason": "The request is no longer needed."},
    "transfer_consent_request": {"purpose": "Coordination with a third party."},
    "transfer_consent": {"granted": True},
    "results_transfer": {"summary": "Results passed on with consent."},
    "offer_declined": {"reason": "The offer is not needed at present."},
}
REQUEST_TYPES = frozenset({"written_request", "oral_request", "written_confirmation"})
SIGNED_TYPES = frozenset({"written_request", "written_confirmation", "additional_confirmation"})
REQUEST_CONTENT = tuple(sorted(REQUEST_CONTENT_FIELDS))


def draft(
    kind: str,
    *,
    message_id: str,
    case_id: str,
    sender: Party,
    recipient: Party,
    fields: dict[str, Any],
    in_reply_to: str | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The message: envelope, defaults, then `base` (the request it confirms), then fields."""
    message: dict[str, Any] = {
        "type": kind,
        "message_id": message_id,
        "case_id": case_id,
        "sender": sender.id,
        "recipient": recipient.id,
        "language": sender.language,
        "in_reply_to": in_reply_to,
    }
    message.update(DEFAULT_FIELDS.get(kind, {}))
    if kind in REQUEST_TYPES:
        message["requesting_party_name"] = sender.name
        message["requested_party_name"] = recipient.name
    if kind in SIGNED_TYPES:
        message["signature"] = {"name": sender.head.name, "title": sender.head.title}
        message["seal"] = sender.seal
    if base:
        message.update(base)
    message.update(fields)
    return message
