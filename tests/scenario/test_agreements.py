"""A scenario's agreements: one profile for all, or several each binding some parties."""

from simulator.scenario import parse_scenario
from tests.scenario.samples import BASE, problem_at, problems_of

TWO = BASE.replace(
    "parties:\n",
    "agreements:\n  - {id: ab, profile: default, parties: [alpha, beta]}\nparties:\n",
    1,
)


def test_one_agreement_names_a_shipped_profile() -> None:
    """`agreement: profile:` takes a shipped profile and refuses others, naming them."""
    text = BASE.replace("parties:\n", "agreement: {profile: customs-maa}\nparties:\n", 1)
    assert parse_scenario(text, "s.yaml").protocol_agreement().profile.id == "customs-maa"
    bad = BASE.replace("parties:\n", "agreement: {profile: treaty}\nparties:\n", 1)
    assert "customs-maa" in problem_at(bad, "agreement.profile").message


def test_several_agreements_bind_the_parties_they_name() -> None:
    """Each agreement of `agreements` binds its parties, under its profile."""
    agreement = parse_scenario(TWO, "s.yaml").protocol_agreement()
    assert [(b.id, b.profile.id, b.parties) for b in agreement.bindings] == [
        ("ab", "default", ("alpha", "beta"))
    ]


def test_agreements_name_known_parties_and_bilateral_ones_two() -> None:
    """An agreement naming an unknown party, or a bilateral one binding three, is refused."""
    text = TWO.replace("[alpha, beta]", "[alpha, beta, gamma]")
    messages = [p.message for p in problems_of(text)]
    assert any("'gamma' is not a party" in m for m in messages)
    assert any("binds exactly two parties" in m for m in messages)


def test_agreement_and_agreements_do_not_mix() -> None:
    """A scenario gives one agreement for all or several, not both."""
    text = TWO.replace("agreements:\n", "agreement: {promptly: 1d}\nagreements:\n", 1)
    assert "not both" in problem_at(text, "agreement").message


def test_a_policy_may_only_name_an_agreement_of_the_exercise() -> None:
    """A response's `when: {agreement: X}` must name one of the exercise's agreements."""
    text = TWO.replace(
        "        - reply: acknowledgement\n",
        "        - reply: acknowledgement\n          when: {agreement: cd}\n",
        1,
    )
    assert "no agreement 'cd'" in problems_of(text)[0].message


def test_an_inject_may_only_name_an_agreement_of_the_exercise() -> None:
    """A request on the timeline may name its agreement, one of the exercise's."""
    named = TWO.replace(
        "fields: {area: public_order}", "fields: {area: public_order, agreement: ab}"
    )
    assert parse_scenario(named, "s.yaml").injects[0].send.fields["agreement"] == "ab"
    wrong = TWO.replace(
        "fields: {area: public_order}", "fields: {area: public_order, agreement: cd}"
    )
    assert "no agreement 'cd'" in problem_at(wrong, "injects[0].send.fields.agreement").message
