"""What the simulator records in the event log, and how it reads it back.

Event types (CloudEvents `type`):

- `coop.exercise.started`: the agreement in force (parties, settings) and the
  run's scenario and seed, so a log can be folded with nothing beside it.
- `coop.msg.<message type>`: one protocol message as sent, valid or not,
  with the violations the umpire found when it was committed.
- `coop.clock.elapsed`: a deadline passed for a case (a lapse, results
  overdue), with the violations that caused and the case's parties.
- `coop.rejection`: a submission the umpire refused (malformed, oversize,
  spoofed, a reused message id), with the reason the sender was told.
- `coop.exercise.ended`: the run ended, and why.
- `coop.note`: a controller's note, recorded where it was made in the run.

Who may see an event (`audience`): the sender and recipient of a message,
the submitting party of a rejection, the parties of a case for a deadline,
everyone for the exercise's own events, nobody but the log's readers for a
controller's note (trainees do not see what the controller writes).

Schema versions of message events: version 1 (the pre-release format) had
the message itself as `data` and recorded no findings; version 2 wraps it as
`{"message": ..., "violations": [...]}`. Version 1 events are upgraded on
load with `violations: null`, meaning "not recorded": readers recompute them.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from simulator.eventlog import Event, NewEvent, UpgradeRegistry
from simulator.protocol import (
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    Agreement,
    AgreementSettings,
    Message,
    Party,
    Severity,
    Violation,
)
from simulator.signing import Signatories

EXERCISE_STARTED = "coop.exercise.started"
EXERCISE_ENDED = "coop.exercise.ended"
CLOCK_ELAPSED = "coop.clock.elapsed"
REJECTION = "coop.rejection"
NOTE = "coop.note"
NOTE_SOURCE = "control"
MESSAGE_PREFIX = "coop.msg."
MESSAGE_SCHEMA_VERSION = 2
UMPIRE_SOURCE = "umpire"

_PARTIES = TypeAdapter(list[Party])


def message_event_type(kind: str) -> str:
    return MESSAGE_PREFIX + kind


def is_message_event(event_type: str) -> bool:
    return event_type.startswith(MESSAGE_PREFIX)


def violation_payload(violations: Sequence[Violation]) -> list[dict[str, str | None]]:
    return [v.as_dict() for v in violations]


def record_message(
    message: Message,
    violations: Sequence[Violation],
    *,
    exercise: str,
    at: datetime,
    wallclock: datetime,
    event_id: str | None = None,
    correlation: str | None = None,
    causation: str | None = None,
) -> NewEvent:
    """The event for one committed message; its id defaults to the message id (idempotency)."""
    return NewEvent(
        id=event_id or message.message_id,
        source=f"party/{message.sender}",
        type=message_event_type(message.type),
        subject=message.case_id,
        time=at,
        data={
            "message": message.model_dump(mode="json"),
            "violations": violation_payload(violations),
        },
        exercise=exercise,
        sender=message.sender,
        recipient=message.recipient,
        correlationid=correlation or message.case_id,
        causationid=causation or message.in_reply_to,
        wallclock=wallclock,
        schemaversion=MESSAGE_SCHEMA_VERSION,
    )


def record_elapsed(
    case_id: str,
    violations: Sequence[Violation],
    *,
    parties: Sequence[str],
    event_id: str,
    exercise: str,
    at: datetime,
    wallclock: datetime,
) -> NewEvent:
    """The event for deadlines passing in one case."""
    return NewEvent(
        id=event_id,
        source=UMPIRE_SOURCE,
        type=CLOCK_ELAPSED,
        subject=case_id,
        time=at,
        data={"violations": violation_payload(violations), "parties": sorted(set(parties))},
        exercise=exercise,
        correlationid=case_id,
        wallclock=wallclock,
    )


def record_exercise_started(
    agreement: Agreement,
    *,
    event_id: str,
    exercise: str,
    at: datetime,
    wallclock: datetime,
    scenario: str | None = None,
    seed: int | None = None,
    signatures: Mapping[str, Any] | None = None,
) -> NewEvent:
    """`signatures`: the public keys the run's signatures verify with (`Signatories.record`)."""
    data: dict[str, Any] = {
        "agreement": agreement_payload(agreement),
        "scenario": scenario,
        "seed": seed,
    }
    if signatures is not None:
        data["signatures"] = dict(signatures)
    return NewEvent(
        id=event_id,
        source=UMPIRE_SOURCE,
        type=EXERCISE_STARTED,
        time=at,
        data=data,
        exercise=exercise,
        wallclock=wallclock,
    )


def record_note(
    text: str, *, event_id: str, exercise: str, at: datetime, wallclock: datetime
) -> NewEvent:
    """The event for a controller's note, at the simulated time it was made."""
    return NewEvent(
        id=event_id,
        source=NOTE_SOURCE,
        type=NOTE,
        time=at,
        data={"text": text},
        exercise=exercise,
        wallclock=wallclock,
    )


def audience(event: Event | NewEvent) -> frozenset[str] | None:
    """The parties that may see an event; None means every participant."""
    if is_message_event(event.type):
        return frozenset(p for p in (event.sender, event.recipient) if p is not None)
    if event.type == REJECTION and event.recipient is not None:
        return frozenset({event.recipient})
    if event.type == CLOCK_ELAPSED:
        return frozenset(event.data.get("parties", ()))
    if event.type == NOTE:
        return frozenset()
    return None


def agreement_payload(agreement: Agreement) -> dict[str, Any]:
    return {
        "parties": [p.model_dump(mode="json") for p in agreement.parties.values()],
        "settings": agreement.settings.model_dump(mode="json"),
    }


def read_agreement(event: Event) -> Agreement:
    """The agreement a `coop.exercise.started` event put in force.

    Where the event records the signature keys, signatures are checked
    with them, so a report finds what the umpire found.
    """
    payload = event.data["agreement"]
    parties = _PARTIES.validate_python(payload["parties"])
    settings = AgreementSettings.model_validate(payload["settings"])
    signatures = event.data.get("signatures")
    if isinstance(signatures, Mapping):
        return Agreement.of(parties, settings, Signatories.from_record(signatures).verify)
    return Agreement.of(parties, settings)


# The validator of each message class by its type: what the discriminated
# union runs once it has looked at "type", without the union's dispatch around
# it (a third of the cost of reading a message).
_VALIDATORS = {kind: cls.__pydantic_validator__ for kind, cls in MESSAGE_TYPES.items()}


def read_message(event: Event) -> Message:
    """The protocol message a `coop.msg.*` event recorded."""
    data = event.data["message"]
    if type(data) is dict:
        kind = data.get("type")
        validator = _VALIDATORS.get(kind) if type(kind) is str else None
        if validator is not None:
            try:
                message: Message = validator.validate_python(data)
            except ValidationError:
                pass  # the union's error, which names the message type, is the one raised
            else:
                return message
    return MESSAGE_ADAPTER.validate_python(data)


def read_violations(event: Event | NewEvent) -> tuple[Violation, ...] | None:
    """The violations the umpire recorded with an event; None where none were recorded."""
    recorded = event.data.get("violations")
    if recorded is None:
        return None
    return tuple(
        Violation(
            rule_id=v["rule_id"],
            article=v["article"],
            severity=Severity(v["severity"]),
            detail=v["detail"],
            case_id=v["case_id"],
            message_id=v.get("message_id"),
            party=v.get("party"),
        )
        for v in recorded
    )


def _message_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"message": data, "violations": None}


def upgrades() -> UpgradeRegistry:
    """The upgraders of every event type the simulator has ever written."""
    registry = UpgradeRegistry()
    for kind in MESSAGE_TYPES:
        registry.add(message_event_type(kind), 1, _message_v1_to_v2)
    return registry


UPGRADES = upgrades()
