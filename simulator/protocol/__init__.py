"""The Article 4-7 procedure as pure code: messages, the case fold, deadlines and rules."""

from simulator.protocol.agreement import (
    WRITTEN_CONFIRMATION_WINDOW,
    Agreement,
    AgreementSettings,
    SignatureStatus,
    SignatureVerifier,
)
from simulator.protocol.case import (
    TERMINAL_STATES,
    Case,
    CaseState,
    ConditionsStatus,
    ConfirmationStatus,
    apply,
    elapse,
)
from simulator.protocol.deadlines import Deadline, DeadlineKind, deadlines, overdue
from simulator.protocol.ids import CaseId, MessageId, PartyId, is_party_id
from simulator.protocol.messages import (
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    REQUEST_CONTENT_FIELDS,
    Area,
    Medium,
    Message,
    RefusalGround,
    RefusalScope,
    Signature,
    parse_message,
    parse_message_json,
)
from simulator.protocol.parties import Official, Party
from simulator.protocol.profile import (
    DEFAULT_PROFILE_ID,
    AgreementProfile,
    default_profile,
    load_profile,
    profile_ids,
)
from simulator.protocol.rules import RULES, RULES_BY_ID, Rule, Severity, Violation

__all__ = [
    "DEFAULT_PROFILE_ID",
    "MESSAGE_ADAPTER",
    "MESSAGE_TYPES",
    "REQUEST_CONTENT_FIELDS",
    "RULES",
    "RULES_BY_ID",
    "TERMINAL_STATES",
    "WRITTEN_CONFIRMATION_WINDOW",
    "Agreement",
    "AgreementProfile",
    "AgreementSettings",
    "Area",
    "Case",
    "CaseId",
    "CaseState",
    "ConditionsStatus",
    "ConfirmationStatus",
    "Deadline",
    "DeadlineKind",
    "Medium",
    "Message",
    "MessageId",
    "Official",
    "Party",
    "PartyId",
    "RefusalGround",
    "RefusalScope",
    "Rule",
    "Severity",
    "Signature",
    "SignatureStatus",
    "SignatureVerifier",
    "Violation",
    "apply",
    "deadlines",
    "default_profile",
    "elapse",
    "is_party_id",
    "load_profile",
    "overdue",
    "parse_message",
    "parse_message_json",
    "profile_ids",
]
