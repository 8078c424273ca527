"""Message models: what can be a message at all, and what is refused before the fold."""

import json

import pytest
from pydantic import ValidationError

from simulator.protocol import MESSAGE_TYPES, Party, is_party_id, parse_message, parse_message_json
from tests.protocol.builders import PARTIES, build

BASE = {"message_id": "m1", "case_id": "c1", "sender": "alpha", "recipient": "beta"}


def test_every_type_round_trips_through_json() -> None:
    """Each message type serialises to JSON and parses back equal, via the one union."""
    for kind in MESSAGE_TYPES:
        extra = {"confirms": "m0"} if kind == "written_confirmation" else {}
        message = build(
            kind, case_id="c1", message_id="m1", sender="alpha", recipient="beta", **extra
        )
        again = parse_message_json(message.model_dump_json())
        assert again == message
        assert type(again) is MESSAGE_TYPES[kind]


@pytest.mark.parametrize(
    "bad",
    ["", "A", "a/b", "a+b", "a#", "$sys", "a\x00b", "é", "a" * 65, "a\n", " a", "ⅰ"],
)
def test_party_ids_outside_the_alphabet_are_refused(bad: str) -> None:
    """Party ids reach MQTT topics: wildcards, separators, NUL, `$`, non-ASCII are refused."""
    assert not is_party_id(bad)
    with pytest.raises(ValidationError, match=r"sender\n  String should match pattern"):
        parse_message({**BASE, "type": "acceptance", "sender": bad})


def test_unknown_type_is_refused_naming_the_tag() -> None:
    """A message of a type the procedure does not know is refused with the tag it gave."""
    with pytest.raises(ValidationError, match="telegram"):
        parse_message({**BASE, "type": "telegram"})


def test_extra_fields_are_refused() -> None:
    """Unknown fields are refused rather than silently dropped."""
    with pytest.raises(ValidationError, match="colour"):
        parse_message({**BASE, "type": "acceptance", "colour": "red"})


def test_wrong_types_are_refused() -> None:
    """A field of the wrong type is refused and named."""
    with pytest.raises(ValidationError, match="proceed"):
        parse_message({**BASE, "type": "confidentiality_decision", "proceed": "perhaps"})


def test_message_to_self_is_refused() -> None:
    """A party cannot send a message to itself."""
    with pytest.raises(ValidationError, match="both 'alpha'"):
        parse_message({**BASE, "type": "acceptance", "recipient": "alpha"})


def test_messages_are_frozen() -> None:
    """A recorded message cannot be altered in place."""
    message = parse_message({**BASE, "type": "acceptance"})
    with pytest.raises(ValidationError):
        message.sender = "gamma"  # type: ignore[misc]


def test_oversize_text_is_refused() -> None:
    """Free text is bounded so one message cannot carry megabytes."""
    with pytest.raises(ValidationError, match="summary"):
        parse_message({**BASE, "type": "results", "summary": "x" * 20_001})


def test_ground_outside_article_5_1_parses() -> None:
    """A refusal citing a ground outside Art. 5.1 is still a message: the umpire reports it."""
    message = parse_message({**BASE, "type": "refusal", "grounds": ["lack of staff"]})
    assert message.type == "refusal"


def test_timezone_naive_times_are_refused() -> None:
    """Times inside messages must say their time zone."""
    with pytest.raises(ValidationError, match="occurred_at"):
        parse_message(
            {
                **BASE,
                "type": "impediment_notice",
                "circumstances": "x",
                "occurred_at": "2026-03-02T09:00:00",
            }
        )


def test_party_needs_distinct_signatories() -> None:
    """A party's head cannot also be listed as its deputy."""
    data = json.loads(PARTIES[0].model_dump_json())
    data["deputies"] = [data["head"]]
    with pytest.raises(ValidationError, match="different people"):
        Party.model_validate(data)


def test_deep_nesting_and_huge_numbers_are_refused() -> None:
    """Hostile JSON (deep nesting, huge numbers in boolean fields) fails validation cleanly."""
    nested: object = "x"
    for _ in range(200):
        nested = [nested]
    with pytest.raises(ValidationError):
        parse_message({**BASE, "type": "consultation", "conditions": nested})
    with pytest.raises(ValidationError):
        parse_message_json(
            '{"type":"confidentiality_decision","message_id":"m1","case_id":"c1",'
            '"sender":"alpha","recipient":"beta","proceed":1e999}'
        )
