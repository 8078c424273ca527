"""Every rule of the rule book: a play where it fires, and a compliant play where it does not."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from simulator.protocol import RULES, SignatureStatus
from tests.protocol.builders import AGREEMENT, DROP, TWO_AGREEMENTS, Play


def _forgery_aware() -> Play:
    # The verifier stands in for Ed25519 checking: a value "forged" does not verify.
    def verify(message: object) -> SignatureStatus:
        signature = getattr(message, "signature", None)
        if signature is not None and signature.value == "forged":
            return SignatureStatus.INVALID
        return SignatureStatus.VALID

    return Play(agreement=replace(AGREEMENT, verify_signature=verify))


FORGED: dict[str, Any] = {
    "signature": {"name": "A. Head", "value": "forged"},
    "seal": "ALPHA-SEAL-1",
}


def accepted(p: Play) -> None:
    p.send("written_request")
    p.send("acknowledgement")
    p.send("acceptance")


@dataclass(frozen=True)
class RuleCase:
    rule_id: str
    fires: Callable[[Play], object]
    complies: Callable[[Play], object]
    make_play: Callable[[], Play] = Play


def _steps(*steps: Callable[[Play], object]) -> Callable[[Play], None]:
    def run(p: Play) -> None:
        for step in steps:
            step(p)

    return run


CASES = [
    RuleCase(
        "no-common-agreement",
        lambda p: p.send("written_request", recipient="gamma"),
        lambda p: p.send("written_request", recipient="beta"),
        lambda: Play(agreement=TWO_AGREEMENTS),
    ),
    RuleCase(
        "area-outside-agreement",
        lambda p: p.send("written_request", area="customs_offences"),
        lambda p: p.send("written_request", area="public_order"),
    ),
    RuleCase(
        "request-incomplete",
        lambda p: p.send("written_request", essence="", justification="  "),
        lambda p: p.send("written_request"),
    ),
    RuleCase(
        "request-not-signed-or-sealed",
        lambda p: p.send("written_request", signature=None),
        lambda p: p.send("written_request", signature={"name": "A. Deputy"}),
    ),
    RuleCase(
        "oral-request-not-urgent",
        lambda p: p.send("oral_request", urgent=False),
        lambda p: p.send("oral_request", urgent=True),
    ),
    RuleCase(
        "oral-request-not-confirmed",
        _steps(lambda p: p.send("oral_request"), lambda p: p.wait(timedelta(days=3, minutes=1))),
        # "No more than 3 days later": exactly 3 days is still in time.
        _steps(
            lambda p: p.send("oral_request", after=timedelta(0)),
            lambda p: p.send("written_confirmation", after=timedelta(days=3)),
        ),
    ),
    RuleCase(
        "forged-request-acted-on",
        _steps(lambda p: p.send("written_request", **FORGED), lambda p: p.send("acceptance")),
        _steps(
            lambda p: p.send("written_request", **FORGED),
            lambda p: p.send("confirmation_request"),
            lambda p: p.send("additional_confirmation"),
            lambda p: p.send("acceptance"),
        ),
        _forgery_aware,
    ),
    RuleCase(
        "refusal-not-in-writing",
        _steps(lambda p: p.send("written_request"), lambda p: p.send("refusal", medium="oral")),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_rejected"),
            lambda p: p.send("refusal", medium="electronic"),
        ),
    ),
    RuleCase(
        "refusal-without-reasons",
        _steps(lambda p: p.send("written_request"), lambda p: p.send("refusal", reasons="")),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_rejected"),
            lambda p: p.send("refusal"),
        ),
    ),
    RuleCase(
        "refusal-parts-unspecified",
        _steps(lambda p: p.send("written_request"), lambda p: p.send("refusal", scope="partial")),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_rejected"),
            lambda p: p.send("refusal", scope="partial", refused_parts=["liaison officer"]),
        ),
    ),
    RuleCase(
        "refusal-ground-outside-5-1",
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("refusal", grounds=["lack of staff"]),
        ),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_rejected"),
            lambda p: p.send("refusal", grounds=["sovereignty", "contradicts_national_law"]),
        ),
    ),
    RuleCase(
        "refusal-without-consultation",
        _steps(lambda p: p.send("written_request"), lambda p: p.send("refusal")),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_rejected"),
            lambda p: p.send("refusal"),
        ),
    ),
    RuleCase(
        "assistance-despite-rejected-conditions",
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_rejected"),
            lambda p: p.send("results"),
        ),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("consultation"),
            lambda p: p.send("conditions_accepted"),
            lambda p: p.send("results"),
        ),
    ),
    RuleCase(
        "impediment-not-prompt",
        _steps(
            accepted,
            # Arose an hour after acceptance, notified three days later.
            lambda p: p.send(
                "impediment_notice",
                after=timedelta(days=3),
                occurred_at=(p.at + timedelta(hours=1)),
            ),
        ),
        _steps(
            accepted,
            lambda p: p.send("impediment_notice", occurred_at=(p.at - timedelta(hours=2))),
        ),
    ),
    RuleCase(
        "execution-without-disclosure-consent",
        _steps(
            accepted,
            lambda p: p.send("confidentiality_impossible"),
            lambda p: p.send("results"),
        ),
        _steps(
            accepted,
            lambda p: p.send("confidentiality_impossible"),
            lambda p: p.send("confidentiality_decision", proceed=True),
            lambda p: p.send("results"),
        ),
    ),
    RuleCase(
        "results-overdue",
        _steps(accepted, lambda p: p.send("results", after=timedelta(days=11))),
        _steps(accepted, lambda p: p.send("results", after=timedelta(days=9))),
    ),
    RuleCase(
        "transfer-without-consent",
        _steps(accepted, lambda p: p.send("results"), lambda p: p.send("results_transfer")),
        _steps(
            accepted,
            lambda p: p.send("results"),
            lambda p: p.send("transfer_consent_request"),
            lambda p: p.send("transfer_consent", granted=True),
            lambda p: p.send("results_transfer"),
        ),
    ),
    RuleCase(
        "not-allowed-in-state",
        _steps(lambda p: p.send("written_request"), lambda p: p.send("results")),
        _steps(accepted, lambda p: p.send("results")),
    ),
    RuleCase(
        "unknown-case",
        lambda p: p.send("acceptance"),
        _steps(lambda p: p.send("written_request"), lambda p: p.send("acceptance")),
    ),
    RuleCase(
        "case-closed",
        _steps(accepted, lambda p: p.send("results"), lambda p: p.send("withdrawal")),
        _steps(accepted, lambda p: p.send("withdrawal")),
    ),
    RuleCase(
        "wrong-party",
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("acceptance", sender="alpha", recipient="beta"),
        ),
        _steps(
            lambda p: p.send("written_request"),
            lambda p: p.send("acceptance", sender="beta", recipient="alpha"),
        ),
    ),
    RuleCase(
        "not-working-language",
        lambda p: p.send("written_request", language="en"),
        lambda p: p.send("written_request", language="ru"),
    ),
]


def test_every_rule_has_a_firing_and_a_compliant_play() -> None:
    """The table below covers the whole rule book, once per rule."""
    assert sorted(c.rule_id for c in CASES) == sorted(r.id for r in RULES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule_id)
def test_rule_fires(case: RuleCase) -> None:
    """The rule fires on the play that breaks it, citing its article."""
    play = case.make_play()
    case.fires(play)
    fired = [v for v in play.violations if v.rule_id == case.rule_id]
    assert fired, f"{case.rule_id} did not fire; got {play.rule_ids()}"
    rule = next(r for r in RULES if r.id == case.rule_id)
    assert all(v.article == rule.article and v.severity == rule.severity for v in fired)
    assert all(v.detail and v.case_id == play.case_id for v in fired)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule_id)
def test_compliant_play_has_no_violation(case: RuleCase) -> None:
    """Following the procedure yields no violation at all."""
    play = case.make_play()
    case.complies(play)
    assert play.violations == []


def test_incomplete_request_names_each_missing_element() -> None:
    """The 4.3 violation lists every element that is missing, in words a trainee reads."""
    play = Play()
    found = play.send(
        "written_request", requesting_party_name=DROP, purpose="", assistance_sought=DROP
    )
    (violation,) = [v for v in found if v.rule_id == "request-incomplete"]
    assert "requesting party's name" in violation.detail
    assert "purpose" in violation.detail
    assert "assistance sought" in violation.detail
    assert "essence" not in violation.detail


def test_request_naming_the_wrong_party_is_incomplete() -> None:
    """Art. 4.3 asks for the names of both parties: a wrong name is a defect too."""
    play = Play()
    found = play.send("written_request", requested_party_name="Gamma Border Agency")
    assert [v.rule_id for v in found] == ["request-incomplete"]
    assert "Gamma Border Agency" in found[0].detail


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"signature": {"name": "Duty Officer"}}, "neither the head nor a deputy"),
        ({"seal": DROP}, "no seal"),
        ({"seal": "BETA-SEAL-1"}, "not 'ALPHA-SEAL-1'"),
    ],
)
def test_signature_and_seal_defects_are_named(overrides: dict[str, Any], expected: str) -> None:
    """Art. 4.4: a request signed by someone else or sealed wrongly says exactly what is wrong."""
    play = Play()
    found = play.send("written_request", **overrides)
    assert [v.rule_id for v in found] == ["request-not-signed-or-sealed"]
    assert expected in found[0].detail


def test_defective_content_does_not_stop_the_act() -> None:
    """A refusal without reasons is still a refusal: the case is refused and the defect recorded."""
    play = Play()
    play.send("written_request")
    play.send("refusal", reasons="")
    assert play.state == "refused"
    assert "refusal-without-reasons" in play.rule_ids()


def test_state_violation_leaves_the_state_unchanged() -> None:
    """Results before acceptance are recorded as a violation and the case stays where it was."""
    play = Play()
    play.send("written_request")
    play.send("results")
    assert play.state == "received"


def test_results_overdue_is_reported_once() -> None:
    """The 6.4 warning fires once per case, whether time passes or late results arrive."""
    play = Play()
    accepted(play)
    play.wait(timedelta(days=11))
    play.wait(timedelta(days=5))
    play.send("results")
    assert play.rule_ids().count("results-overdue") == 1
    assert play.state == "completed"


def test_transfer_needs_consent_for_that_third_party() -> None:
    """Consent refused (or never asked) for the recipient makes the transfer a 7.3 breach."""
    play = Play()
    accepted(play)
    play.send("results")
    play.send("transfer_consent_request")
    play.send("transfer_consent", granted=False)
    found = play.send("results_transfer")
    assert [v.rule_id for v in found] == ["transfer-without-consent"]


def test_forged_signature_still_forged_after_forged_confirmation() -> None:
    """An additional confirmation that is itself forged does not clear the doubt."""
    play = _forgery_aware()
    play.send("written_request", **FORGED)
    play.send("confirmation_request")
    play.send("additional_confirmation", **FORGED)
    found = play.send("acceptance")
    assert [v.rule_id for v in found] == ["forged-request-acted-on"]


def test_refusing_part_of_a_forged_request_and_executing_the_rest_acts_on_it() -> None:
    """A partial refusal before execution begins executing the rest: acting on a request whose
    signature does not verify, as an acceptance would. Before, only acceptance and
    consultation were named; a partial refusal put the forged request into execution unseen.
    A full refusal acts on nothing."""
    play = _forgery_aware()
    play.send("written_request", **FORGED)
    # Consulted first (Art. 5.2), so the refusal's one other finding does not come in.
    play.send("consultation")
    play.send("conditions_rejected")
    found = play.send("refusal", scope="partial", refused_parts=["patrol schedules"])
    assert [v.rule_id for v in found] == ["forged-request-acted-on"]
    assert play.state == "in_execution"
    whole = _forgery_aware()
    whole.send("written_request", **FORGED)
    assert "forged-request-acted-on" not in [v.rule_id for v in whole.send("refusal")]


def test_refusing_part_in_execution_warns_unless_consulted_there_or_before() -> None:
    """Art. 5.2: a partial refusal in execution without any consultation is the warning; one
    after a consultation held in execution (the conditions rejected) is not. Before, that
    consultation was itself out of order, so the requested party had no way to comply."""
    unconsulted = Play()
    accepted(unconsulted)
    found = unconsulted.send("refusal", scope="partial", refused_parts=["liaison officer"])
    assert [(v.rule_id, v.article) for v in found] == [("refusal-without-consultation", "5.2")]
    consulted = Play()
    accepted(consulted)
    consulted.send("consultation")
    consulted.send("conditions_rejected")
    consulted.send("refusal", scope="partial", refused_parts=["liaison officer"])
    assert consulted.violations == []
    assert consulted.state == "in_execution"


def test_consulting_in_execution_on_a_forged_request_acts_on_it() -> None:
    """A consultation in execution is acting on the request, as one before it is: when the
    signature of the writing read in execution does not verify, it needs a doubt first."""
    play = _forgery_aware()
    play.send("oral_request")
    play.send("acceptance")
    play.send("written_confirmation", **FORGED)
    found = play.send("consultation")
    assert [v.rule_id for v in found] == ["forged-request-acted-on"]
    assert play.state == "in_consultation"
