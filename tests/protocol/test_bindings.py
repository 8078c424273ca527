"""Several agreements in one exercise: each case is folded under the one that binds its parties."""

from datetime import timedelta

from simulator.protocol import Agreement, Binding, CaseState, default_profile, load_profile
from tests.protocol.builders import PARTIES, SETTINGS, TWO_AGREEMENTS, Play


def test_a_case_is_under_the_agreement_its_parties_share() -> None:
    """A request between beta and gamma opens a case under their customs agreement."""
    play = Play(requesting="gamma", requested="beta", agreement=TWO_AGREEMENTS)
    play.send("written_request", language="en", area="customs_offences")
    assert play.case is not None
    assert play.case.agreement == "beta-gamma"
    assert play.violations == []


def test_each_agreement_keeps_its_own_working_language() -> None:
    """Russian is the working language between alpha and beta, English between beta and gamma."""
    customs = Play(requesting="gamma", requested="beta", agreement=TWO_AGREEMENTS)
    customs.send("written_request", language="ru", area="customs_offences")
    default = Play(requesting="alpha", requested="beta", agreement=TWO_AGREEMENTS)
    default.send("written_request", language="ru")
    assert [(v.rule_id, v.article) for v in customs.violations] == [("not-working-language", "6.3")]
    assert default.violations == []


def test_each_agreement_keeps_its_own_confirmation_window() -> None:
    """An oral request lapses after a day under the customs agreement, after 3 under the other."""
    customs = Play(requesting="gamma", requested="beta", agreement=TWO_AGREEMENTS)
    customs.send("oral_request", urgent=True, language="en", area="customs_offences")
    customs.wait(timedelta(days=1, hours=1))
    default = Play(requesting="alpha", requested="beta", agreement=TWO_AGREEMENTS)
    default.send("oral_request", urgent=True)
    default.wait(timedelta(days=1, hours=1))
    assert customs.case is not None
    assert customs.case.state is CaseState.LAPSED
    assert [(v.rule_id, v.article) for v in customs.violations] == [
        ("oral-request-not-confirmed", "6.1")
    ]
    assert "within 1 day" in customs.violations[0].detail
    assert default.case is not None
    assert default.case.state is CaseState.RECEIVED
    assert default.violations == []


def test_a_request_between_parties_sharing_no_agreement_is_recorded_with_the_scope_rule() -> None:
    """alpha and gamma share no agreement: the request opens its case and breaches Art. 1."""
    play = Play(requesting="alpha", requested="gamma", agreement=TWO_AGREEMENTS)
    found = play.send("written_request")
    assert [(v.rule_id, v.article, v.severity.value) for v in found] == [
        ("no-common-agreement", "1", "error")
    ]
    assert play.case is not None
    assert play.case.state is CaseState.RECEIVED
    assert play.case.agreement is None


def test_a_request_may_name_the_agreement_it_is_made_under() -> None:
    """Where two parties share two agreements, the request's `agreement` chooses between them."""
    both = Agreement.of(
        PARTIES,
        bindings=(
            Binding("alpha-beta", default_profile(), SETTINGS, ("alpha", "beta")),
            Binding("ab-customs", load_profile("customs-maa"), SETTINGS, ("alpha", "beta")),
        ),
    )
    first = Play(agreement=both)
    first.send("written_request")
    named = Play(agreement=both)
    named.send("written_request", agreement="ab-customs", area="customs_offences")
    assert first.case is not None
    assert first.case.agreement == "alpha-beta"
    assert named.case is not None
    assert named.case.agreement == "ab-customs"
    assert named.violations == []


def test_naming_an_agreement_that_does_not_bind_both_parties_breaches_the_scope() -> None:
    """A request naming an agreement that does not bind both its parties breaches the scope."""
    play = Play(requesting="gamma", requested="beta", agreement=TWO_AGREEMENTS)
    found = play.send(
        "written_request", agreement="alpha-beta", language="en", area="customs_offences"
    )
    assert [(v.rule_id, v.article) for v in found] == [("no-common-agreement", "2")]
    assert "does not bind both parties" in found[0].detail


def test_with_one_agreement_a_request_may_name_only_its_profile() -> None:
    """With one agreement for all, a request may name it by its profile's id, and nothing else."""
    play = Play()
    assert play.send("written_request", agreement="default") == ()
    other = Play(case_id="case-2")
    found = other.send("written_request", agreement="customs-maa")
    assert [(v.rule_id, v.article) for v in found] == [("no-common-agreement", "1")]


def test_a_request_accepting_an_offer_stays_under_the_offers_agreement() -> None:
    """Accepting an offer made under one agreement while naming another breaches the scope."""
    both = Agreement.of(
        PARTIES,
        bindings=(
            Binding("alpha-beta", default_profile(), SETTINGS, ("alpha", "beta")),
            Binding("ab-customs", load_profile("customs-maa"), SETTINGS, ("alpha", "beta")),
        ),
    )
    named = Play(agreement=both)
    assert named.send("offer") == ()
    found = named.send("written_request", agreement="ab-customs")
    assert [(v.rule_id, v.article) for v in found] == [("no-common-agreement", "1")]
    assert "the offer it accepts is under 'alpha-beta'" in found[0].detail
    assert named.case is not None
    assert (named.case.state, named.case.agreement) == (CaseState.RECEIVED, "alpha-beta")
    same = Play(agreement=both)
    same.send("offer")
    assert same.send("written_request", agreement="alpha-beta") == ()
    unnamed = Play(agreement=both)
    unnamed.send("offer")
    assert unnamed.send("written_request") == ()


def test_with_one_agreement_accepting_an_offer_may_name_only_its_profile() -> None:
    """With one agreement for all, a request accepting an offer names it or nothing."""
    play = Play()
    play.send("offer")
    assert play.send("written_request", agreement="default") == ()
    other = Play(case_id="case-2")
    other.send("offer")
    found = other.send("written_request", agreement="customs-maa")
    assert [(v.rule_id, v.article) for v in found] == [("no-common-agreement", "1")]


def test_who_may_sign_is_the_agreements() -> None:
    """Under an agreement that lets only the head sign, a deputy's signature is a defect."""
    head_only = default_profile().model_copy(update={"signatories": ("head",)})
    agreement = Agreement.of(PARTIES, SETTINGS, profile=head_only)
    deputy = Play(agreement=agreement)
    found = deputy.send("written_request", signature={"name": "A. Deputy"}, seal="ALPHA-SEAL-1")
    assert [(v.rule_id, v.article) for v in found] == [("request-not-signed-or-sealed", "4.4")]
    assert "a deputy of Ministry of Internal Affairs of Alpha" in found[0].detail
    assert "only the head signs" in found[0].detail
    head = Play(agreement=agreement, case_id="case-2")
    assert head.send("written_request") == ()
    # Under the default agreement (head or deputy) the deputy signs.
    assert (
        Play(case_id="case-3").send(
            "written_request", signature={"name": "A. Deputy"}, seal="ALPHA-SEAL-1"
        )
        == ()
    )
