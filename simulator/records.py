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

import enum
import hashlib
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal, NamedTuple, Union

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    NaiveDatetime,
    TypeAdapter,
    ValidationError,
)

from simulator.eventlog import Event, NewEvent, UpgradeRegistry
from simulator.protocol import (
    DEFAULT_PROFILE_ID,
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    Agreement,
    AgreementProfile,
    AgreementSettings,
    Binding,
    Message,
    Party,
    Severity,
    Violation,
    load_profile,
)
from simulator.signing import Signatories

EXERCISE_STARTED = "coop.exercise.started"
EXERCISE_ENDED = "coop.exercise.ended"
CLOCK_ELAPSED = "coop.clock.elapsed"
REJECTION = "coop.rejection"
NOTE = "coop.note"
NOTE_SOURCE = "control"
# What the controller did (pause, resume, speed, jump, inject, stop), as the umpire answered.
CONTROL = "coop.control"
# The controller's own record: no party sees it, and it moves no simulated round.
CONTROLLER_RECORDS = frozenset({NOTE, CONTROL})
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


# Field types whose JSON form (model_dump(mode="json")) is a string, a number
# without a fraction, a boolean or null.
_PLAIN_LEAVES: frozenset[Any] = frozenset(
    {str, int, bool, type(None), datetime, date, time, timedelta, AwareDatetime, NaiveDatetime}
)
_UNIONS = (Union, types.UnionType)
_SEQUENCES = (tuple, list, set, frozenset)


def _plain_type(annotation: Any, seen: set[type[BaseModel]]) -> bool:
    """Whether every value of this type dumps to JSON without a float.

    Conservative: anything not recognised here (float, Any, dict, a custom
    type) counts as not plain.
    """
    if annotation in _PLAIN_LEAVES:
        return True
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _plain_type(typing.get_args(annotation)[0], seen)
    if origin is Literal:
        return all(
            type(v) in (str, int, bool, type(None))
            or (isinstance(v, enum.Enum) and type(v.value) in (str, int))
            for v in typing.get_args(annotation)
        )
    if origin in _UNIONS:
        return all(_plain_type(arg, seen) for arg in typing.get_args(annotation))
    if origin in _SEQUENCES:
        return all(arg is Ellipsis or _plain_type(arg, seen) for arg in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return all(type(member.value) in (str, int) for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _plain_model(annotation, seen)
    return False


def _plain_model(model: type[BaseModel], seen: set[type[BaseModel]]) -> bool:
    if model in seen:
        return False  # a recursive model may nest past any depth limit
    decorators = model.__pydantic_decorators__
    if (
        model.model_config.get("extra") == "allow"
        or model.model_config.get("ser_json_timedelta", "iso8601") != "iso8601"
        or model.model_computed_fields
        or decorators.field_serializers
        or decorators.model_serializers
    ):
        return False
    inner = seen | {model}
    return all(_plain_type(field.annotation, inner) for field in model.model_fields.values())


# Message classes whose JSON form holds no float: for them orjson writes the
# canonical text (json and orjson write some floats differently), so a message
# is encoded once, for its digest and its event alike.
_PLAIN_MESSAGES = frozenset(cls for cls in MESSAGE_TYPES.values() if _plain_model(cls, set()))
_SORTED_EXACT = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _sorted_text(value: Any) -> str | None:
    # OPT_PASSTHROUGH_SUBCLASS: a str or int subclass raises instead of being
    # written as its value, so what passes holds exact types only.
    try:
        return orjson.dumps(value, option=_SORTED_EXACT).decode()
    except TypeError:  # also orjson.JSONEncodeError: an int past 64 bits, say
        return None


class MessageJson(NamedTuple):
    """A message's JSON form (``model_dump(mode="json")``), and its text with sorted keys.

    ``text`` is None where the message's class may hold floats or orjson
    refused the data; ``data`` is not to be changed: the event takes it over.
    (A NamedTuple, not a frozen dataclass: one is made per message decided, and
    a frozen dataclass's __init__ cost twice as much.)
    """

    data: dict[str, Any]
    text: str | None


def message_json(message: Message) -> MessageJson:
    # model_dump(mode="json") without its wrapper's keyword handling.
    data: dict[str, Any] = message.__pydantic_serializer__.to_python(message, mode="json")
    return MessageJson(data, _sorted_text(data) if type(message) in _PLAIN_MESSAGES else None)


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
    dumped: MessageJson | None = None,
) -> NewEvent:
    """The event for one committed message; its id defaults to the message id (idempotency).

    ``dumped``: ``message_json(message)``, where the caller has it already.
    """
    if dumped is None:
        dumped = message_json(message)
    found = violation_payload(violations)
    if dumped.text is not None:
        found_text = _violations_text(found)
        if found_text is not None:
            # The keys of data in sorted order, no whitespace: its canonical text.
            case_id = message.case_id
            return NewEvent.composed(
                f'{{"message":{dumped.text},"violations":{found_text}}}',
                event_id=event_id or message.message_id,
                source=f"party/{message.sender}",
                kind=MESSAGE_PREFIX + message.type,
                subject=case_id,
                time=at,
                data={"message": dumped.data, "violations": found},
                exercise=exercise,
                sender=message.sender,
                recipient=message.recipient,
                correlationid=correlation or case_id,
                causationid=causation or message.in_reply_to,
                wallclock=wallclock,
                schemaversion=MESSAGE_SCHEMA_VERSION,
            )
    given: dict[str, Any] = {
        "id": event_id or message.message_id,
        "source": f"party/{message.sender}",
        "type": message_event_type(message.type),
        "subject": message.case_id,
        "time": at,
        "data": {"message": dumped.data, "violations": found},
        "exercise": exercise,
        "sender": message.sender,
        "recipient": message.recipient,
        "correlationid": correlation or message.case_id,
        "causationid": causation or message.in_reply_to,
        "wallclock": wallclock,
        "schemaversion": MESSAGE_SCHEMA_VERSION,
    }
    return NewEvent(**given)


def _violations_text(found: list[dict[str, str | None]]) -> str | None:
    if not found:
        return "[]"
    # A violation's fields are typed str or None but not validated: checked here.
    if all(type(value) is str or value is None for v in found for value in v.values()):
        return _sorted_text(found)
    return None


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RejectionData(_Payload):
    """What a `coop.rejection` carries: whose submission, which, why, and what it looked like."""

    party: str
    seq: int | None = None
    message_id: str | None = None
    reason: str
    bytes: int = 0
    excerpt: str = ""


class EndedData(_Payload):
    """What `coop.exercise.ended` carries."""

    reason: str
    rounds: int = 0


class NoteData(_Payload):
    text: str


class ControlData(_Payload):
    """What the controller did (`coop.control`) and what the umpire answered."""

    command: str
    answer: str
    speed: float | None = None
    inject: str | None = None


def payload_digest(payload: bytes) -> str:
    """The first 24 hex digits of a payload's SHA-256: what names a payload in an id."""
    return hashlib.sha256(payload).hexdigest()[:24]


def rejection_id(party: str, seq: int | None, payload: bytes) -> str:
    """The id of the rejection of `payload`, which came on `party`'s connection under `seq`.

    Deterministic, so the same bad payload sent twice is one rejection; and the
    payload's digest is part of it, so two different payloads under one sequence
    number (spoofs, a garbled resend) are two (with the number alone their ids
    collided, and the append's id conflict stopped the run), and a party can tell
    which of them a rejection is about (`rejects`).
    """
    digest = payload_digest(payload)
    return f"rej-{party}-{digest}" if seq is None else f"rej-{party}-{seq}-{digest}"


def rejects(event_id: str, payload: bytes) -> bool:
    """Whether the rejection `event_id` is of `payload`, and not of another under its number.

    A party settles a submission it sees rejected; a rejection that names only the
    submission's sequence number may be of anything else sent on its connection
    under that number (a fuzzer's payload, a hand-typed `mosquitto_pub`), and
    settling on the number alone dropped the party's real submission unsent.
    """
    return event_id.endswith("-" + payload_digest(payload))


def record_rejection(
    party: str,
    reason: str,
    *,
    seq: int | None,
    message_id: str | None,
    payload: bytes,
    event_id: str,
    exercise: str,
    at: datetime,
    wallclock: datetime,
) -> NewEvent:
    """The event for a submission the umpire refused, with the reason the sender is told."""
    data = RejectionData(
        party=party,
        seq=seq,
        message_id=message_id,
        reason=reason,
        bytes=len(payload),
        excerpt=payload[:200].decode("utf-8", "replace"),
    )
    return NewEvent(
        id=event_id,
        source=UMPIRE_SOURCE,
        type=REJECTION,
        time=at,
        data=data.model_dump(),
        exercise=exercise,
        recipient=party,
        wallclock=wallclock,
    )


def record_ended(
    reason: str, rounds: int, *, event_id: str, exercise: str, at: datetime, wallclock: datetime
) -> NewEvent:
    """The last event of a run: why it ended, after how many rounds."""
    return NewEvent(
        id=event_id,
        source=UMPIRE_SOURCE,
        type=EXERCISE_ENDED,
        time=at,
        data=EndedData(reason=reason, rounds=rounds).model_dump(),
        exercise=exercise,
        wallclock=wallclock,
    )


def read_rejection(event: Event | NewEvent) -> RejectionData:
    return RejectionData.model_validate(event.data)


def read_ended(event: Event | NewEvent) -> EndedData:
    return EndedData.model_validate(event.data)


def read_note(event: Event | NewEvent) -> NoteData:
    return NoteData.model_validate(event.data)


def read_control(event: Event | NewEvent) -> ControlData:
    return ControlData.model_validate(event.data)


def message_payload(event: Event | NewEvent) -> dict[str, Any]:
    """The message of a message event, as the JSON object it was committed as."""
    message: dict[str, Any] = event.data["message"]
    return message


def has_violations(event: Event | NewEvent) -> bool:
    """Whether an event records at least one violation (cheap: nothing is parsed)."""
    return bool(event.data.get("violations"))


def records_no_violations(event: Event | NewEvent) -> bool:
    """Whether an event says it found nothing (an empty list), as against saying nothing."""
    return event.data.get("violations") == []


def violation_payloads(event: Event | NewEvent) -> list[dict[str, Any]]:
    """The violations an event records, as committed (empty when it records none)."""
    found: list[dict[str, Any]] = event.data.get("violations") or []
    return found


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
        data=NoteData(text=text).model_dump(),
        exercise=exercise,
        wallclock=wallclock,
    )


def record_control(
    command: str,
    arguments: dict[str, Any],
    answer: str,
    *,
    event_id: str,
    exercise: str,
    at: datetime,
    wallclock: datetime,
) -> NewEvent:
    """The event for a control command the umpire carried out, at the simulated time of it."""
    return NewEvent(
        id=event_id,
        source=NOTE_SOURCE,
        type=CONTROL,
        time=at,
        data=ControlData(command=command, answer=answer, **arguments).model_dump(exclude_none=True),
        exercise=exercise,
        wallclock=wallclock,
    )


def audience_of(
    event_type: str, sender: str | None, recipient: str | None, data: Mapping[str, Any]
) -> frozenset[str] | None:
    """The parties that may see an event of this type, from its parts; None means everyone.

    One rule for every reader: `audience` on an `Event`, and the load generators
    on the JSON they receive (`audience_json`).
    """
    if is_message_event(event_type):
        return frozenset(p for p in (sender, recipient) if p is not None)
    if event_type == REJECTION and recipient is not None:
        return frozenset({recipient})
    if event_type == CLOCK_ELAPSED:
        return frozenset(data.get("parties", ()))
    if event_type in CONTROLLER_RECORDS:
        # The controller's own record: no party sees it.
        return frozenset()
    return None


def audience(event: Event | NewEvent) -> frozenset[str] | None:
    """The parties that may see an event; None means every participant."""
    return audience_of(event.type, event.sender, event.recipient, event.data)


def audience_json(event: Mapping[str, Any]) -> frozenset[str] | None:
    """`audience` of an event as the JSON object it travels as."""
    return audience_of(event["type"], event.get("sender"), event.get("recipient"), event["data"])


def agreement_payload(agreement: Agreement) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "parties": [p.model_dump(mode="json") for p in agreement.parties.values()],
        "settings": agreement.settings.model_dump(mode="json"),
    }
    # Logs from before profiles existed were all under the default one, and say nothing:
    # so a log under the default still says nothing, and stays as it was byte for byte.
    if agreement.profile.id != DEFAULT_PROFILE_ID:
        payload["profile"] = agreement.profile.id
    # Every other profile is recorded whole: the log then holds what was enforced, for a
    # scenario's own profile (no file needed to replay or report) and for a shipped one
    # that a later version of the simulator words differently.
    recorded = {
        p.id: p.model_dump(mode="json")
        for p in (agreement.profile, *(b.profile for b in agreement.bindings))
        if p.id != DEFAULT_PROFILE_ID
    }
    if recorded:
        payload["profiles"] = recorded
    if agreement.bindings:
        payload["agreements"] = [
            {
                "id": b.id,
                "profile": b.profile.id,
                "parties": list(b.parties),
                "settings": b.settings.model_dump(mode="json"),
            }
            for b in agreement.bindings
        ]
    return payload


def read_agreement(event: Event) -> Agreement:
    """The agreement a `coop.exercise.started` event put in force.

    Where the event records the signature keys, signatures are checked
    with them, so a report finds what the umpire found.
    """
    payload = event.data["agreement"]
    parties = _PARTIES.validate_python(payload["parties"])
    settings = AgreementSettings.model_validate(payload["settings"])
    recorded = {
        profile_id: AgreementProfile.model_validate(data)
        for profile_id, data in payload.get("profiles", {}).items()
    }

    def profile_of(profile_id: str) -> AgreementProfile:
        # Logs from before profiles were recorded whole name a shipped one.
        return recorded.get(profile_id) or load_profile(profile_id)

    profile = profile_of(payload.get("profile", DEFAULT_PROFILE_ID))
    bindings = tuple(
        Binding(
            id=b["id"],
            profile=profile_of(b["profile"]),
            settings=AgreementSettings.model_validate(b["settings"]),
            parties=tuple(b["parties"]),
        )
        for b in payload.get("agreements", ())
    )
    signatures = event.data.get("signatures")
    if isinstance(signatures, Mapping):
        verify = Signatories.from_record(signatures).verify
        return Agreement.of(parties, settings, verify, profile, bindings)
    return Agreement.of(parties, settings, profile=profile, bindings=bindings)


# The validator of each message class by its type: what the discriminated
# union runs once it has looked at "type", without the union's dispatch around
# it (a third of the cost of reading a message).
_VALIDATORS = {kind: cls.__pydantic_validator__ for kind, cls in MESSAGE_TYPES.items()}


def read_message(event: Event | NewEvent) -> Message:
    """The protocol message a `coop.msg.*` event recorded."""
    return message_from_json(event.data["message"])


def message_from_json(data: object) -> Message:
    """``parse_message(data)``, faster: the same message, or the same ValidationError."""
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
