"""Message events: encoded once, for the digest and the event, and the same as validation's."""

import unicodedata
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, field_serializer

from simulator.eventlog import GENESIS_HASH, NewEvent, committed_event
from simulator.eventlog.envelope import seal
from simulator.messaging.wire import Submission
from simulator.protocol import MESSAGE_TYPES, Message, Severity, Violation, parse_message
from simulator.records import (
    MESSAGE_SCHEMA_VERSION,
    _plain_model,
    message_from_json,
    message_json,
    record_message,
    violation_payload,
)
from simulator.umpire.sequencer import Sequencer
from tests.eventlog.helpers import sealed_slowly
from tests.protocol.builders import AGREEMENT, T0, build

WALLCLOCK = T0 + timedelta(seconds=1, microseconds=7)
FINDING = Violation(
    rule_id="request-incomplete",
    article="—",
    severity=Severity.ERROR,
    detail="Grüße: the purpose is missing",
    case_id="case-1",
    message_id="alpha.1",
    party="alpha",
)


def validated(message: Message, violations: list[Violation]) -> NewEvent:
    """The event full validation makes of what record_message is given (the reference)."""
    return NewEvent.model_validate(
        {
            "id": message.message_id,
            "source": f"party/{message.sender}",
            "type": f"coop.msg.{message.type}",
            "subject": message.case_id,
            "time": T0,
            "data": {
                "message": message.model_dump(mode="json"),
                "violations": violation_payload(violations),
            },
            "exercise": "drill",
            "sender": message.sender,
            "recipient": message.recipient,
            "correlationid": message.case_id,
            "causationid": message.in_reply_to,
            "wallclock": WALLCLOCK,
            "schemaversion": MESSAGE_SCHEMA_VERSION,
        }
    )


def message_of(kind: str, **overrides: Any) -> Message:
    sender, recipient = ("beta", "alpha") if kind == "transfer_consent" else ("alpha", "beta")
    if kind == "written_confirmation":
        overrides.setdefault("confirms", "alpha.0")
    return build(
        kind,
        case_id="case-1",
        message_id="alpha.1",
        sender=sender,
        recipient=recipient,
        in_reply_to="alpha.0",
        **overrides,
    )


@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
@pytest.mark.parametrize("violations", [[], [FINDING]], ids=["clean", "violation"])
def test_every_message_is_recorded_as_validation_records_it(
    kind: str, violations: list[Violation]
) -> None:
    """The event of each message type, with and without findings, is the validated one."""
    message = message_of(kind)
    event = record_message(message, violations, exercise="drill", at=T0, wallclock=WALLCLOCK)
    reference = validated(message, violations)

    assert event == reference
    assert event.model_fields_set == reference.model_fields_set
    assert seal(event, 7, 2, GENESIS_HASH) == seal(reference, 7, 2, GENESIS_HASH)


def test_text_not_in_nfc_is_normalised_as_validation_does() -> None:
    """Decomposed free text in a message is stored in NFC, exactly as full validation stores it."""
    decomposed = unicodedata.normalize("NFD", "Café, Grüße")
    message = message_of("results", summary=decomposed)
    event = record_message(message, [], exercise="drill", at=T0, wallclock=WALLCLOCK)

    assert event.data["message"]["summary"] == unicodedata.normalize("NFC", decomposed)
    assert event == validated(message, [])
    assert seal(event, 1, 1, GENESIS_HASH) == seal(validated(message, []), 1, 1, GENESIS_HASH)


def test_every_message_type_is_encoded_once() -> None:
    """No protocol message can hold a float, so each is encoded once for digest and event."""
    message = message_of("written_request")
    dumped = message_json(message)

    assert all(_plain_model(cls, set()) for cls in MESSAGE_TYPES.values())
    assert dumped.text is not None
    assert dumped.data == message.model_dump(mode="json")


class _Floaty(BaseModel):
    share: float


class _Loose(BaseModel):
    anything: Any


class _Mapping(BaseModel):
    extra: dict[str, str]


class _Serialised(BaseModel):
    name: str

    @field_serializer("name")
    def _as_number(self, value: str) -> float:
        return float(len(value))


class _Nested(BaseModel):
    inner: tuple[_Floaty, ...] = ()


@pytest.mark.parametrize("model", [_Floaty, _Loose, _Mapping, _Serialised, _Nested])
def test_models_that_may_dump_a_float_are_not_encoded_by_orjson(model: type[BaseModel]) -> None:
    """A float, an Any, a dict or a custom serialiser anywhere in a model rules orjson out."""
    assert not _plain_model(model, set())


def test_a_restarted_sequencer_knows_resends_and_reuses_as_the_live_one() -> None:
    """Message digests rebuilt from the log equal the ones made live, so a resend stays a resend."""
    live = Sequencer(AGREEMENT, "drill", wallclock=lambda: WALLCLOCK)
    sent = [
        message_of("written_request"),
        build(
            "acceptance", case_id="case-1", message_id="beta.9", sender="beta", recipient="alpha"
        ),
    ]
    for message in sent:
        live.record(message, T0, party=message.sender)
    batch = live.take()
    live.committed(batch)
    events = []
    prevhash = GENESIS_HASH
    for position, proposal in enumerate(batch.events, start=1):
        digest, _ = seal(proposal, position, position, prevhash)
        events.append(committed_event(proposal, position, position, prevhash, digest))
        prevhash = digest

    restarted = Sequencer(AGREEMENT, "drill", wallclock=lambda: WALLCLOCK)
    restarted.load(events)

    assert restarted.message_ids == live.message_ids
    again = restarted.submission(_submission(sent[0]), "alpha", T0)
    assert again.duplicate_of == "alpha.1"
    other = restarted.submission(_submission(message_of("oral_request")), "alpha", T0)
    assert other.notice is not None
    assert "already used" in other.notice.reason


def _submission(message: Message) -> Submission:
    return Submission(party=message.sender, seq=5, message=message.model_dump(mode="json"))


def _parsed(parse: Any, data: object) -> Any:
    try:
        return parse(data)
    except ValidationError as exc:
        return exc.errors(include_url=False)


@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
def test_a_submitted_message_is_parsed_as_parse_message_parses_it(kind: str) -> None:
    """The same message from valid data; the same errors from data that is no message."""
    data = message_of(kind).model_dump(mode="json")
    broken: list[object] = [
        {**data, "sender": "Not An Id"},
        {**data, "unexpected": 1},
        {**data, "type": "nonsense"},
        {**data, "type": 5},
        {key: value for key, value in data.items() if key != "type"},
        [data],
        None,
    ]
    for sample in [data, *broken]:
        assert _parsed(message_from_json, sample) == _parsed(parse_message, sample), sample


# Free text as parties may write it: decomposed accents (not NFC), compatibility
# characters, astral planes, bidirectional controls, quotes and escapes, C0 controls.
odd_text = st.text(min_size=1, max_size=30) | st.sampled_from(
    [
        unicodedata.normalize("NFD", "Café, Grüße, Ångström"),
        "\u212b \ufb01 \u2126",
        "\U0001f600 \U00010348",
        "\u202eevil\u202c",
        '"quoted" \\ back\\slash </script>',
        "\x00\x01\x1f\x7f",
        "Москва, 東京",
    ]
)
_IDS = ("type", "message_id", "case_id", "sender", "recipient", "language", "in_reply_to")


@st.composite
def submissions(draw: st.DrawFn) -> tuple[str, Submission, bytes]:
    """(connection party, submission, payload): a message with odd free text, sometimes not
    one the umpire takes (a spoofed party or sender, an id in its namespace, a bad field)."""
    kind = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    number = draw(st.integers(min_value=0, max_value=3))
    message_id = draw(
        st.sampled_from([f"alpha.{number}"] * 6 + [f"umpire-{number}", f"alpha {number}"])
    )
    data = message_of(kind).model_dump(mode="json")
    data["message_id"] = message_id
    texts = sorted(key for key, value in data.items() if type(value) is str and key not in _IDS)
    if texts:
        data[draw(st.sampled_from(texts))] = draw(odd_text)
    party = data["sender"]
    connection = draw(st.sampled_from([party] * 7 + ["gamma"]))
    submission = Submission(party=party, seq=draw(st.integers(1, 3)), message=data)
    payload = orjson.dumps(submission.model_dump(mode="json"))
    return connection, submission, payload


def reference(event: NewEvent) -> NewEvent:
    """The event full validation makes of the same fields, the message's from the message itself."""
    fields = {name: getattr(event, name) for name in event.model_fields_set}
    if event.type.startswith("coop.msg."):
        message = message_from_json(event.data["message"])
        fields["data"] = {
            "message": message.model_dump(mode="json"),
            "violations": event.data["violations"],
        }
    return NewEvent.model_validate(fields)


@settings(max_examples=300)
@given(st.lists(submissions(), min_size=1, max_size=6))
def test_staged_events_are_the_ones_validation_builds(
    sent: list[tuple[str, Submission, bytes]],
) -> None:
    """Over generated submissions, taken and rejected, each staged event is the validated one,
    down to the bytes it is stored as."""
    sequencer = Sequencer(AGREEMENT, "drill", wallclock=lambda: WALLCLOCK)
    for connection, submission, payload in sent:
        sequencer.submission(submission, connection, T0, payload)
    prevhash = GENESIS_HASH
    for position, staged in enumerate(sequencer.take().events, start=1):
        event(staged.type.partition(".")[2].partition(".")[0])  # msg or rejection
        expected = reference(staged)
        assert staged == expected
        assert staged.model_fields_set == expected.model_fields_set
        digest, line = seal(staged, position, 1, prevhash)
        assert (digest, line) == seal(expected, position, 1, prevhash)
        assert (digest, line) == sealed_slowly(staged, position, 1, prevhash)
        prevhash = digest
