"""Several agreements in one exercise: each case is folded under the one that binds its parties."""

from datetime import timedelta

from simulator.protocol import CaseState
from tests.protocol.builders import TWO_AGREEMENTS, Play


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
