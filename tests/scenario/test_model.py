"""The scenario models' rules: references resolve, ids are unique, messages fit their types."""

import re
from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from simulator.messaging.wire import MAX_PAYLOAD_BYTES
from simulator.protocol import MESSAGE_TYPES
from simulator.scenario import (
    ENVELOPE_FIELDS,
    INHERITED_FIELDS,
    MAX_MESSAGE_BYTES,
    Generator,
    InjectMessage,
    Response,
    Scenario,
    parse_scenario,
)
from simulator.scenario.loader import parse_yaml
from tests.scenario.samples import BASE, EXAMPLE, problem_at, with_line

GENERATOR = """\
generators:
  - id: routine
    from: alpha
    to: beta
    count: 5
    every: 1h..2h
    send: {type: written_request, fields: {area: public_order}}
"""


def test_scenario_built_in_code_is_held_to_the_same_rules() -> None:
    """Validating a dict in code refuses what the loader refuses, naming the field."""
    data: dict[str, Any] = parse_yaml(BASE)
    data["injects"][0]["send"]["to"] = "gamma"
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate(data)
    assert "injects[0].send.to: 'gamma' is not a party of this scenario" in str(caught.value)


def test_duplicate_party_ids_are_refused() -> None:
    """Two parties may not share an id."""
    problem = problem_at(with_line(15, "  - id: alpha"), "parties[1].id")
    assert problem.message == "party id 'alpha' is already used by parties[0]"


def test_a_scenario_needs_two_parties() -> None:
    """A scenario with fewer than two parties is refused."""
    one_party = "\n".join(BASE.splitlines()[:14] + BASE.splitlines()[21:]) + "\n"
    assert "at least 2 items" in problem_at(one_party, "parties").message


def test_inject_ids_and_generator_ids_share_one_namespace() -> None:
    """A generator may not reuse an inject's id, nor an inject another's."""
    text = with_line(37, "  - id: first")
    assert problem_at(text, "injects[1].id").message == "id 'first' is already used by injects[0]"
    text = BASE + GENERATOR.replace("id: routine", "id: second")
    assert (
        problem_at(text, "generators[0].id").message == "id 'second' is already used by injects[1]"
    )
    assert problem_at(text, "generators[0].id").line == 41


def test_inject_needs_exactly_one_of_at_and_when() -> None:
    """An inject fires at a time or on a condition: exactly one of the two."""
    neither = with_line(30, "")
    assert "needs `at` (a time) or `when`" in problem_at(neither, "injects[0]").message
    both = with_line(38, "    when: {case: case-1, state: refused}\n    at: 1h")
    assert problem_at(both, "injects[1].when").message == "give `at` or `when`, not both"


def test_after_goes_with_when_only() -> None:
    """`after` delays a conditional inject; on a timed inject it is refused."""
    problem = problem_at(with_line(30, "    at: 2h\n    after: 1h"), "injects[0].after")
    assert problem.line == 31


@pytest.mark.parametrize(
    ("when", "field"),
    [
        ("{case: case-1, message: results}", None),
        ("{rule: refusal-without-reasons}", None),
        ("{rule: refusal-without-reasons, case: case-1}", None),
        ("{case: case-1}", "injects[1].when"),
        ("{case: case-1, state: refused, message: results}", "injects[1].when.message"),
        ("{rule: results-overdue, case: case-7}", "injects[1].when.case"),
    ],
)
def test_conditions(when: str, field: str | None) -> None:
    """`when` is {case, state}, {case, message} or {rule} with an optional known case."""
    text = with_line(38, f"    when: {when}")
    if field is None:
        assert parse_scenario(text).injects[1].when is not None
    else:
        problem_at(text, field)


def test_conditions_and_expectations_may_name_generated_cases() -> None:
    """A generated case id (routine-0003) may be watched or scored; one past the count may not."""
    text = with_line(38, "    when: {case: routine-0003, message: results}") + GENERATOR
    assert parse_scenario(text).injects[1].when is not None
    text = with_line(38, "    when: {case: routine-0006, message: results}") + GENERATOR
    message = problem_at(text, "injects[1].when.case").message
    assert "(cases: case-1, routine-0001..routine-0005)" in message


@pytest.mark.parametrize(
    ("case", "refused"),
    [
        ("case-1", None),
        ("case-*", None),
        ("routine-*", None),
        ("routine-000*", None),
        ("case-2", "no inject or generator creates case 'case-2'"),
        ("cases-*", "no inject or generator creates a case matching 'cases-*'"),
        ("routine-0006", "no inject or generator creates case 'routine-0006'"),
        ("routine-1*", "creates a case matching 'routine-1*'"),
    ],
)
def test_a_response_may_only_be_for_cases_the_scenario_opens(
    case: str, refused: str | None
) -> None:
    """A response's `when: {case}` names a case, or a prefix, an inject or generator opens."""
    text = with_line(27, f"          after: 2h..6h\n          when: {{case: {case}}}") + GENERATOR
    if refused is None:
        assert parse_scenario(text).policies["calm"].on["written_request"][0].when is not None
        return
    problem = problem_at(text, "policies.calm.on.written_request[0].when.case")
    assert refused in problem.message
    assert "(cases: case-1, routine-0001..routine-0005)" in problem.message
    assert problem.line == 28


def test_a_response_may_be_for_a_case_a_trainee_opens() -> None:
    """With a human seat, whose cases have ids of its own, any case may be named."""
    text = with_line(27, "          after: 2h..6h\n          when: {case: berth-*}")
    text = text.replace("    policy: calm\n  - id: beta", "    human: true\n  - id: beta", 1)
    assert parse_scenario(text).policies["calm"].on["written_request"][0].when is not None


def test_expectations() -> None:
    """An expectation names one outcome, a known case or none, and a unique id."""
    ok = BASE + "expectations:\n  - {id: a, message: results, within: 10d}\n"
    assert parse_scenario(ok).expectations[0].within == timedelta(days=10)
    both = BASE + "expectations:\n  - {id: a, message: results, state: completed}\n"
    assert "exactly one of `message` and `state`" in problem_at(both, "expectations[0]").message
    unknown = BASE + "expectations:\n  - {id: a, case: nope, state: completed}\n"
    assert problem_at(unknown, "expectations[0].case").line == 41
    twice = BASE + "expectations:\n  - {id: a, state: completed}\n  - {id: a, state: refused}\n"
    assert problem_at(twice, "expectations[1].id").line == 42
    zero = BASE + "expectations:\n  - {id: a, state: completed, within: 0s}\n"
    assert problem_at(zero, "expectations[0].within").message == "must be longer than 0s"


def test_generator_cases_routes_and_times() -> None:
    """Case n of a generator is "{id}-{n:04d}", routed round-robin over `from` and `to`."""
    text = BASE + GENERATOR.replace("from: alpha", "from: [alpha, beta]").replace(
        "to: beta", "to: [beta, alpha]"
    )
    generator = parse_scenario(text).generators[0]
    assert [generator.case_id(n) for n in (1, 5)] == ["routine-0001", "routine-0005"]
    assert [generator.route(n) for n in (1, 2, 3)] == [
        ("alpha", "beta"),
        ("beta", "alpha"),
        ("alpha", "beta"),
    ]
    assert generator.creates("routine-0005")
    assert not generator.creates("routine-0006")
    assert not generator.creates("routine-5")
    assert not generator.creates("routine-00001")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("count: 5", "count: 0"), "generators[0].count", "greater than or equal to 1"),
        (("count: 5", "count: 100001"), "generators[0].count", "less than or equal to 100000"),
        (("to: beta", "to: [beta, alpha]"), "generators[0].to", "case 2 would go from 'alpha'"),
        (("to: beta", "to: [beta, gamma]"), "generators[0].to[1]", "'gamma' is not a party"),
        (("from: alpha", "from: gamma"), "generators[0].from", "'gamma' is not a party"),
        (("{type:", "{from: alpha, type:"), "generators[0].send.from", "unknown key 'from'"),
        (("every: 1h..2h", "every: 2h..1h"), "generators[0].every", "runs backwards"),
        (("count: 5", "count: 5\n    start: 10d"), "generators[0].start", "not before the end"),
        (("id: routine", "id: " + "r" * 60), "generators[0].id", "would be too long"),
    ],
)
def test_bad_generators_are_refused(change: tuple[str, str], field: str, message: str) -> None:
    """Generator counts, routes, templates and timing are checked."""
    problem = problem_at(BASE + GENERATOR.replace(*change), field)
    assert message in problem.message


def test_policy_rules() -> None:
    """Responses need a positive weight somewhere; late replies need a lateness."""
    zero = with_line(27, "          after: 2h..6h\n          weight: 0")
    problem = problem_at(zero, "policies.calm.on.written_request")
    assert problem.message == "at least one response needs a weight above 0"
    late = with_line(27, "          after: 2h..6h\n    mistakes: {late_reply: 0.5}")
    assert "needs a late_by" in problem_at(late, "policies.calm.mistakes.late_by").message
    empty = BASE.replace(
        "      written_request:\n        - reply: acknowledgement\n          after: 2h..6h\n",
        "      written_request: []\n",
    )
    assert "at least 1 item" in problem_at(empty, "policies.calm.on.written_request").message


def test_weights_that_add_up_past_the_largest_number_are_refused() -> None:
    """Weights are relative chances; two of 1e308 add up to infinity, where the pick always
    fell on the last response (silence) instead of half the time. Large weights that add up
    to a number are fine."""
    text = with_line(
        27, "          after: 2h..6h\n          weight: 1e308\n        - reply: silence"
    )
    huge = text.replace("- reply: silence", "- reply: silence\n          weight: 1e308")
    problem = problem_at(huge, "policies.calm.on.written_request")
    assert "add up to more than" in problem.message
    fine = text.replace("- reply: silence", "- reply: silence\n          weight: 1e307")
    assert len(parse_scenario(fine).policies["calm"].on["written_request"]) == 2


def test_a_negative_expected_delay_is_refused_in_a_reply() -> None:
    """An impediment notice the umpire would refuse (a delay below zero) is a scenario error,
    at the field, not a run that sends it."""
    text = BASE.replace(
        "        - reply: acknowledgement\n          after: 2h..6h\n",
        "        - reply: acknowledgement\n          after: 2h..6h\n"
        "          then:\n"
        "            - reply: impediment_notice\n"
        "              fields: {circumstances: A strike., expected_delay: -P1D}\n",
    )
    problem = problem_at(text, "policies.calm.on.written_request[0].then[0].fields.expected_delay")
    assert problem.message == "an expected delay cannot be negative (got -1 day, 0:00:00)"


def test_a_message_too_large_for_the_wire_is_refused_at_its_fields() -> None:
    """A message whose fields would not fit a broker message is refused where it is written.

    Each text may hold 20,000 characters, but two of them in emoji are 160,000 bytes:
    sent by a party, such a follow-up was resent for a minute and the run then blamed the
    party for not reporting; as an inject on Mosquitto, the run stopped when the broker
    refused to carry it."""
    big = "\U0001f600" * 20_000
    follow_up = BASE.replace(
        "          after: 2h..6h\n",
        "          after: 2h..6h\n"
        "          then:\n"
        "            - reply: written_request\n"
        f"              fields: {{area: public_order, essence: {big}, purpose: {big}}}\n",
    )
    problem = problem_at(follow_up, "policies.calm.on.written_request[0].then[0].fields")
    assert problem.line == 30
    assert re.search(r"takes 160,\d{3} bytes .* at most 98,304", problem.message)
    inject = with_line(36, f"      fields: {{area: public_order, essence: {big}, purpose: {big}}}")
    assert "bytes" in problem_at(inject, "injects[0].send.fields").message
    # One text at its longest is a message like any other.
    parse_scenario(with_line(36, f"      fields: {{area: public_order, essence: {big}}}"))
    # Twice the most a message takes (a written confirmation repeats its oral request's
    # content beside its own) and room for its envelope fit what the wire carries.
    assert 2 * MAX_MESSAGE_BYTES + 64 * 1024 <= MAX_PAYLOAD_BYTES


def many_parties(count: int, deputies: int = 1) -> str:
    """BASE with `count` more parties, each with `deputies` deputies."""
    more = "".join(
        f"  - {{id: p{i}, name: Agency number {i} of the federation, head: {{name: Head {i}}},"
        f" deputies: [{', '.join(f'{{name: Deputy {i}-{d}}}' for d in range(deputies))}],"
        f" seal: SEAL-{i}, coordination_unit: International Cooperation Office}}\n"
        for i in range(count)
    )
    return BASE.replace("policies:\n", more + "policies:\n", 1)


def test_parties_and_profiles_that_would_not_fit_the_opening_record_are_refused() -> None:
    """The record that opens the exercise goes to every party in one broker message, so the
    parties, their officials and the agreement profiles must fit it. Before, 998 parties
    (1,000 are allowed) validated, and no party ever started: the run ended after a minute
    with "no report for round 0" from all of them, or as Mosquitto refused the record."""
    assert len(parse_scenario(many_parties(300)).parties) == 302
    problem = problem_at(many_parties(998), "parties")
    assert problem.line == 7
    assert re.search(
        r"would take [0-9,]+ bytes \(1,000 parties .* at most 229,376", problem.message
    )
    assert "bytes" in problem_at(many_parties(1, deputies=2_000), "parties").message
    grounds = ", ".join(f"g{i}: {'x' * 2_000}" for i in range(200))
    profile = yaml.safe_load(
        (EXAMPLE.parent / "profiles" / "tri-river-convention.yaml").read_text()
    )
    inline = yaml.safe_dump(profile, default_flow_style=True, width=10**6).replace(
        "refusal_grounds: {", f"refusal_grounds: {{{grounds}, ", 1
    )
    fat = BASE.replace(
        "parties:\n",
        f"profiles:\n  - {inline}agreement: {{profile: tri-river-convention}}\nparties:\n",
    )
    assert "agreement profiles: 4" in problem_at(fat, "profiles").message


def test_silence_sends_nothing() -> None:
    """`silence` is a response only, and takes no delay, fields or follow-ups."""
    plain = with_line(26, "        - reply: silence").replace("          after: 2h..6h\n", "")
    assert parse_scenario(plain).policies["calm"].on["written_request"][0].reply == "silence"
    dressed = with_line(26, "        - reply: silence")
    problem = problem_at(dressed, "policies.calm.on.written_request[0].after")
    assert problem.message == "silence sends nothing, so it takes no after"
    follow_up = with_line(36, "      fields: {area: public_order}\n    then: [{reply: silence}]")
    assert "only a policy response" in problem_at(follow_up, "injects[0].then[0].reply").message


def test_follow_ups_have_no_weight() -> None:
    """Follow-ups are a chain, not a choice: `weight` is refused on them."""
    text = with_line(
        36, "      fields: {area: public_order}\n    then: [{reply: withdrawal, weight: 2}]"
    )
    assert problem_at(text, "injects[0].then[0].weight").message == "unknown key 'weight'"


def test_written_confirmation_inherits_the_oral_request() -> None:
    """A written confirmation may leave out the request content and `confirms`, not give it."""
    text = with_line(
        36, "      fields: {area: public_order}\n    then: [{reply: written_confirmation}]"
    )
    assert parse_scenario(text).injects[0].then[0].fields == {}
    confirms = text.replace(
        "{reply: written_confirmation}", "{reply: written_confirmation, fields: {confirms: m-1}}"
    )
    assert (
        "filled in by the runtime"
        in problem_at(confirms, "injects[0].then[0].fields.confirms").message
    )


def test_signature_may_be_blanked_or_given() -> None:
    """`signature: null` sends a message unsigned; a given signature is checked."""
    unsigned = with_line(36, "      fields: {area: public_order, signature: null}")
    assert parse_scenario(unsigned).injects[0].send.fields["signature"] is None
    signed = with_line(36, "      fields: {area: public_order, signature: {name: X. Other}}")
    assert parse_scenario(signed).injects[0].send.fields["signature"] == {"name": "X. Other"}
    bad = with_line(36, "      fields: {area: public_order, signature: {nam: X. Other}}")
    assert problem_at(bad, "injects[0].send.fields.signature.nam").message == "unknown key 'nam'"
    assert (
        problem_at(bad, "injects[0].send.fields.signature.name").message == "this key is required"
    )


def test_third_party_must_be_a_party() -> None:
    """A message field naming a party (third_party) must name one of the scenario's."""
    text = with_line(
        36,
        "      fields: {area: public_order}\n"
        "    then: [{reply: transfer_consent_request, fields: {third_party: gamma}}]",
    )
    assert (
        "'gamma' is not a party"
        in problem_at(text, "injects[0].then[0].fields.third_party").message
    )


def test_envelope_and_runtime_fields_are_real_message_fields() -> None:
    """The fields the runtime fills exist on the message types they are filled on."""
    for cls in MESSAGE_TYPES.values():
        assert set(ENVELOPE_FIELDS) <= set(cls.model_fields)
    for message_type, inherited in INHERITED_FIELDS.items():
        assert set(inherited) <= set(MESSAGE_TYPES[message_type].model_fields)
        assert set(inherited) <= set(MESSAGE_TYPES["oral_request"].model_fields)


def test_every_message_type_can_be_a_reply() -> None:
    """Each of the protocol's message types is accepted as a reply with its required fields."""
    required: dict[str, dict[str, Any]] = {
        "written_request": {"area": "public_order"},
        "oral_request": {"area": "public_order"},
        "offer": {"area": "public_order", "description": "d"},
        "confirmation_request": {"doubt": "d"},
        "additional_confirmation": {"statement": "s"},
        "consultation": {"conditions": ["c"]},
        "impediment_notice": {"circumstances": "c"},
        "information_request": {"questions": ["q"]},
        "additional_information": {"answers": "a"},
        "confidentiality_impossible": {"explanation": "e"},
        "confidentiality_decision": {"proceed": True},
        "results": {"summary": "s"},
        "transfer_consent_request": {"third_party": "gamma"},
        "transfer_consent": {"third_party": "gamma", "granted": True},
    }
    for message_type in MESSAGE_TYPES:
        response = Response(reply=message_type, fields=required.get(message_type, {}))
        assert response.reply == message_type
        if message_type in required:
            with pytest.raises(ValidationError, match="needs the field"):
                Response(reply=message_type)


def test_inject_message_takes_names_or_aliases() -> None:
    """In code, an inject's route is given as sender/recipient; in YAML as from/to."""
    by_name = InjectMessage(type="withdrawal", sender="alpha", recipient="beta", case="c")
    by_alias = InjectMessage.model_validate(
        {"type": "withdrawal", "from": "alpha", "to": "beta", "case": "c"}
    )
    assert by_name == by_alias
    assert by_name.model_dump(by_alias=True)["from"] == "alpha"


def test_yaml_1_1_surprises_are_off() -> None:
    """`on`, `no`, `yes` stay text and 0123 is not octal, unlike YAML 1.1."""
    data = parse_yaml(
        "on: x\nlanguage: no\nflag: yes\nseed: 0123\ntime: 1:30\nt: true\nn: 12\nf: 1.5\n"
    )
    assert data == {
        "on": "x",
        "language": "no",
        "flag": "yes",
        "seed": "0123",
        "time": "1:30",
        "t": True,
        "n": 12,
        "f": 1.5,
    }
    assert yaml.safe_load("on: x") == {True: "x"}  # what the plain SafeLoader would have done


def test_party_language_no_is_a_language() -> None:
    """A party writing Norwegian (`language: no`) is read as the tag 'no', not false."""
    text = with_line(9, "    name: Alpha Agency\n    language: no")
    assert parse_scenario(text).parties[0].language == "no"


def test_generator_from_a_single_party_is_a_one_item_route() -> None:
    """`from: alpha` and `from: [alpha]` mean the same."""
    single = parse_scenario(BASE + GENERATOR).generators[0]
    listed = parse_scenario(BASE + GENERATOR.replace("from: alpha", "from: [alpha]")).generators[0]
    assert single == listed
    assert isinstance(single, Generator)
    assert single.senders == ("alpha",)


def test_a_generator_sending_to_several_may_not_name_one_requested_party() -> None:
    """A generator whose cases go to beta and gamma in turn, its request naming beta's name:
    refused at that field, saying to leave it out. Before: accepted, and every case to gamma
    named beta, a request-incomplete breach (Art. 4.3) nobody had planted. Left out, each
    request names its own parties; with one recipient the name may still be written (how a
    scenario plants a wrong one)."""
    three = BASE.replace(
        "parties:\n",
        "parties:\n  - id: gamma\n    name: Gamma Agency\n    head: {name: G. Head}\n"
        "    deputies: [{name: G. Deputy}]\n    seal: G-SEAL\n    coordination_unit: Liaison\n",
        1,
    )
    named = GENERATOR.replace("to: beta", "to: [beta, gamma]").replace(
        "fields: {area: public_order}",
        "fields: {area: public_order, requested_party_name: Beta Agency}",
    )
    problem = problem_at(three + named, "generators[0].send.fields.requested_party_name")
    assert problem.message == (
        "names one party, but the cases go to beta, gamma in turn: leave it out, and each "
        "case's request names its own parties"
    )
    unnamed = GENERATOR.replace("to: beta", "to: [beta, gamma]")
    scenario = parse_scenario(three + unnamed)
    assert [g.recipients for g in scenario.generators] == [("beta", "gamma")]
    one = GENERATOR.replace(
        "fields: {area: public_order}",
        "fields: {area: public_order, requested_party_name: Beta Agency}",
    )
    assert parse_scenario(BASE + one).generators
