"""Every message type an inject can carry either runs or is refused with file, line and field.

"Runs" is what the umpire does with a due inject (`_stage_timers`): the
agenda drafts its message and the sequencer folds it. A written confirmation
needs what only the runtime fills in (`confirms`, the request content), so
it names the oral request's inject, or takes the one of its case, and a
scenario where that cannot be known is refused before anything starts.
"""

import random
from typing import Any

import pytest

from simulator.protocol import MESSAGE_TYPES, Agreement
from simulator.scenario import InvalidScenarioError, Scenario, parse_scenario
from simulator.umpire.agenda import ScenarioAgenda
from simulator.umpire.sequencer import Sequencer
from tests.protocol.builders import FROM_REQUESTING, T0, valid_fields
from tests.scenario.samples import problem_at, problems_of, two_parties

HEAD = two_parties("inject-types", "Every inject type")
ORAL = """\
  - id: call
    at: 1h
    send:
      type: oral_request
      from: alpha
      to: beta
      case: case-1
      fields:
        area: public_order
        urgent: true
        essence: A wagon of transformer parts is missing.
        purpose: Find it.
        justification: The grid repair waits for it.
        assistance_sought: Search of the sidings.
"""


def _fields(kind: str) -> dict[str, Any]:
    """What an author writes for `kind`: its required content (two parties, no third)."""
    if kind == "written_confirmation":
        return {}  # the content of the oral request it confirms
    sender, recipient = ("alpha", "beta") if kind in FROM_REQUESTING else ("beta", "alpha")
    fields = valid_fields(kind, sender, recipient)
    if kind in ("written_request", "oral_request"):
        # The party names are the runtime's to fill in: the scenario's parties are others.
        fields = {k: v for k, v in fields.items() if not k.endswith("_party_name")}
    for key in ("third_party", "signature", "seal"):
        fields.pop(key, None)
    if kind in ("transfer_consent_request", "transfer_consent"):
        fields["third_party"] = "alpha" if kind == "transfer_consent" else "beta"
    return fields


def _scenario_with(kind: str, *, opened: bool) -> str:
    sender, recipient = ("alpha", "beta") if kind in FROM_REQUESTING else ("beta", "alpha")
    fields = "".join(
        f"        {key}: {value!r}\n"
        if not isinstance(value, list)
        else f"        {key}: [{', '.join(repr(v) for v in value)}]\n"
        for key, value in _fields(kind).items()
    )
    probe = f"""\
  - id: probe
    at: 1d
    send:
      type: {kind}
      from: {sender}
      to: {recipient}
      case: case-1
"""
    if fields:
        probe += "      fields:\n" + fields
    return HEAD + "injects:\n" + (ORAL if opened else "") + probe


def _parse(text: str) -> Scenario | InvalidScenarioError:
    try:
        return parse_scenario(text, "scenarios/probe.yaml")
    except InvalidScenarioError as refused:
        return refused


def _runs(scenario: Scenario) -> list[tuple[str, list[str]]]:
    """Each due inject as the umpire stages it: (message type, rules its fold found)."""
    agreement: Agreement = scenario.protocol_agreement()
    agenda = ScenarioAgenda(scenario, random.Random(0))
    sequencer = Sequencer(agreement, scenario.exercise, wallclock=lambda: T0)
    staged: list[tuple[str, list[str]]] = []
    for message, source in agenda.due(scenario.end):
        decision = sequencer.record(message, scenario.start, party=message.sender, source=source)
        assert decision.event is not None
        violations = decision.event.data["violations"]
        staged.append((message.type, [v["rule_id"] for v in violations]))
    return staged


@pytest.mark.parametrize("opened", [True, False], ids=["after-an-oral-request", "alone"])
@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
def test_every_inject_type_runs_or_is_refused(kind: str, *, opened: bool) -> None:
    """Validated, an inject of any type is staged by the umpire; refused, it says where."""
    scenario = _parse(_scenario_with(kind, opened=opened))
    if isinstance(scenario, InvalidScenarioError):
        assert scenario.problems
        assert str(scenario).startswith("scenarios/probe.yaml:")
        for problem in scenario.problems:
            assert problem.line is not None
            assert problem.path.startswith("injects[")
        # Only a confirmation with no oral request to confirm is refused.
        assert (kind, opened) == ("written_confirmation", False)
        return
    staged = _runs(scenario)
    assert [k for k, _ in staged] == (["oral_request", kind] if opened else [kind])


def test_written_confirmation_inject_confirms_the_oral_request_of_its_case() -> None:
    """Scheduled on its own, the confirmation names the oral request and repeats its content."""
    scenario = parse_scenario(_scenario_with("written_confirmation", opened=True))
    (call, probe) = scenario.injects
    fields = scenario.inject_fields(probe)
    assert fields["confirms"] == "inject.call"
    assert fields["essence"] == call.send.fields["essence"]
    assert _runs(scenario) == [("oral_request", []), ("written_confirmation", [])]


def _confirmation(
    *lines: str, case: str = "case-1", sender: str = "alpha", recipient: str = "beta"
) -> str:
    """An inject of a written confirmation, with extra lines under `send`."""
    extra = "".join(f"      {line}\n" for line in lines)
    return f"""\
  - id: fax
    at: 1d
    send:
      type: written_confirmation
      from: {sender}
      to: {recipient}
      case: {case}
{extra}"""


def test_written_confirmation_inject_may_name_the_oral_request() -> None:
    """`send.confirms` picks the oral request where a case has several."""
    second = ORAL.replace("id: call", "id: recall").replace("at: 1h", "at: 2h")
    text = HEAD + "injects:\n" + ORAL + second + _confirmation()
    problem = problem_at(text, "injects[2].send.type")
    assert "injects call, recall all send an oral_request in case 'case-1'" in problem.message
    scenario = parse_scenario(HEAD + "injects:\n" + ORAL + second + _confirmation("confirms: call"))
    assert scenario.inject_fields(scenario.injects[2])["confirms"] == "inject.call"
    # The second oral request in an open case is out of turn; the first is confirmed.
    assert _runs(scenario) == [
        ("oral_request", []),
        ("oral_request", ["not-allowed-in-state"]),
        ("written_confirmation", []),
    ]


OTHER = """\
  - id: other
    at: 1h
    send:
      type: written_request
      from: alpha
      to: beta
      case: case-1
      fields: {area: public_order}
"""


@pytest.mark.parametrize(
    ("confirms", "expected"),
    [
        ("cal", "no inject 'cal' (did you mean 'call'?)"),
        ("other", "inject 'other' sends a message of type written_request, not oral_request"),
    ],
)
def test_confirms_must_name_an_oral_request_inject(confirms: str, expected: str) -> None:
    """A `confirms` naming no inject, or one that sends no oral request, is refused at its line."""
    text = HEAD + "injects:\n" + ORAL + OTHER + _confirmation(f"confirms: {confirms}")
    problem = problem_at(text, "injects[2].send.confirms")
    assert expected in problem.message
    assert problem.line == text.splitlines().index(f"      confirms: {confirms}") + 1


def test_confirmation_goes_as_its_oral_request_went() -> None:
    """Same case, same sender and recipient as the oral request it confirms."""
    other_case = HEAD + "injects:\n" + ORAL + _confirmation("confirms: call", case="case-2")
    assert "inject 'call' is in case 'case-1', this confirmation in 'case-2'" in (
        problem_at(other_case, "injects[1].send.confirms").message
    )
    backwards = HEAD + "injects:\n" + ORAL + _confirmation(sender="beta", recipient="alpha")
    problem = problem_at(backwards, "injects[1].send.type")
    assert "its confirmation goes the same way" in problem.message
    assert problem.line == backwards.splitlines().index("      type: written_confirmation") + 1


def test_only_a_written_confirmation_confirms() -> None:
    """`send.confirms` on another type is refused at its line."""
    text = _scenario_with("acknowledgement", opened=True).replace(
        "      type: acknowledgement\n", "      type: acknowledgement\n      confirms: call\n"
    )
    problem = problem_at(text, "injects[1].send.confirms")
    assert problem.message == "only a written_confirmation confirms an oral request"


def test_confirms_in_fields_points_at_send_confirms() -> None:
    """`fields.confirms` stays the runtime's; the message says where an inject names it."""
    text = HEAD + "injects:\n" + ORAL + _confirmation("fields: {confirms: inject.call}")
    problem = problem_at(text, "injects[1].send.fields.confirms")
    assert "`send.confirms`" in problem.message


def test_generated_written_confirmations_are_refused() -> None:
    """A generator opens new cases: no oral request in them to confirm."""
    text = (
        HEAD
        + """\
generators:
  - id: routine
    from: alpha
    to: beta
    count: 2
    every: 1d
    send: {type: written_confirmation}
"""
    )
    (problem,) = problems_of(text)
    assert problem.path == "generators[0].send.type"
    assert problem.line == text.splitlines().index("    send: {type: written_confirmation}") + 1
    assert "no oral request in them to confirm" in problem.message
