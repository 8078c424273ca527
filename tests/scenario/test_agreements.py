"""A scenario's agreements: one profile for all, or several each binding some parties."""

from datetime import timedelta

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


def test_a_policy_written_inline_may_only_name_an_agreement_of_the_exercise() -> None:
    """A party's inline policy is held to the exercise's agreements as a named one is."""
    inline = TWO.replace(
        "    policy: calm\n  - id: beta",
        "    policy:\n      on:\n        offer:\n          - reply: offer_declined\n"
        "            when: {agreement: cd}\n  - id: beta",
        1,
    )
    problem = problem_at(inline, "parties[0].policy.on.offer[0].when.agreement")
    assert "no agreement 'cd' in this exercise (there are: ab)" in problem.message
    assert problem.line == 20


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


def test_what_an_agreement_leaves_out_is_its_profiles() -> None:
    """Deadlines and the working language left out are the profile's, not the default's."""
    text = BASE.replace("parties:\n", "agreement: {profile: customs-maa}\nparties:\n", 1)
    settings = parse_scenario(text, "s.yaml").protocol_agreement().settings
    assert (settings.promptly, settings.as_soon_as_possible, settings.working_language) == (
        timedelta(days=2),
        timedelta(days=30),
        "en",
    )
    said = text.replace("{profile: customs-maa}", "{profile: customs-maa, promptly: 6h}")
    assert parse_scenario(said, "s.yaml").protocol_agreement().settings.promptly == timedelta(
        hours=6
    )
    bound = TWO.replace("profile: default", "profile: customs-maa")
    binding = parse_scenario(bound, "s.yaml").protocol_agreement().bindings[0]
    assert binding.settings.working_language == "en"


def test_the_working_language_is_one_of_the_agreements() -> None:
    """A working language the agreement does not have is refused, naming the ones it has."""
    text = BASE.replace(
        "parties:\n", "agreement: {profile: customs-maa, working_language: ru}\nparties:\n", 1
    )
    problem = problem_at(text, "agreement")
    assert "'ru' is not a language of the agreement 'customs-maa'" in problem.message
    assert "Art. 6.3: en" in problem.message
