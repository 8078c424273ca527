"""Every edge of PROTOCOL.md's state diagram, walked through the fold."""

from datetime import timedelta
from typing import Any

import pytest

from simulator.protocol import MESSAGE_TYPES
from tests.protocol.builders import Play


def test_written_request_is_received() -> None:
    """A written request opens the case as received, with its roles set."""
    play = Play()
    play.send("written_request")
    assert play.state == "received"
    assert play.case is not None
    assert (play.case.requesting, play.case.requested) == ("alpha", "beta")


def test_oral_request_is_received_with_its_confirmation_owed() -> None:
    """Art. 4.2: an urgent oral request is received at once; its written confirmation is owed."""
    play = Play()
    play.send("oral_request")
    assert play.state == "received"
    assert play.case is not None
    assert play.case.confirmation == "owed"
    play.send("written_confirmation", after=timedelta(days=2))
    assert play.state == "received"
    assert play.case.confirmation == "given"
    assert play.violations == []


def test_unconfirmed_oral_request_lapses() -> None:
    """Three days without written confirmation: the case lapses; a late one is taken, once judged.

    The lapse is the Art. 4.2 finding; the confirmation that comes after it is
    still the request in writing (as in a completed or refused case), not a
    second breach of a closed case.
    """
    play = Play()
    play.send("oral_request")
    play.wait(timedelta(days=3, seconds=1))
    assert play.state == "lapsed"
    found = play.send("written_confirmation")
    assert found == ()
    assert play.state == "lapsed"
    assert play.case is not None
    assert play.case.confirmation == "given"


def test_confirmation_after_three_days_lapses_the_case_first() -> None:
    """A confirmation that arrives late finds the case lapsed, even with no clock event between."""
    play = Play()
    play.send("oral_request")
    found = play.send("written_confirmation", after=timedelta(days=4))
    assert [v.rule_id for v in found] == ["oral-request-not-confirmed"]
    assert play.state == "lapsed"


def test_confirmation_must_confirm_the_oral_request() -> None:
    """A written confirmation that refers to another message does not confirm the case."""
    play = Play()
    play.send("oral_request")
    found = play.send("written_confirmation", confirms="m-other")
    assert [v.rule_id for v in found] == ["not-allowed-in-state"]
    assert play.case is not None
    assert play.case.confirmation == "owed"


@pytest.mark.parametrize("from_state", ["received", "under_consideration"])
def test_authenticity_query_returns_where_it_came_from(from_state: str) -> None:
    """Art. 4.2: a doubt suspends the case; the answer resumes it where it was."""
    play = Play()
    play.send("written_request")
    if from_state == "under_consideration":
        play.send("acknowledgement")
    play.send("confirmation_request")
    assert play.state == "awaiting_confirmation"
    play.send("additional_confirmation")
    assert play.state == from_state


def test_consultation_accepted_goes_to_execution() -> None:
    """Art. 5.2: conditions accepted put the case in execution."""
    play = Play()
    play.send("written_request")
    play.send("acknowledgement")
    assert play.state == "under_consideration"
    play.send("consultation")
    assert play.state == "in_consultation"
    play.send("conditions_accepted")
    assert play.state == "in_execution"
    assert play.case is not None
    assert play.case.conditions_status == "accepted"


def test_consultation_rejected_returns_to_consideration() -> None:
    """Art. 5.2: conditions rejected send the case back to consideration."""
    play = Play()
    play.send("written_request")
    play.send("consultation")
    play.send("conditions_rejected")
    assert play.state == "under_consideration"


def test_new_conditions_may_follow_rejected_ones() -> None:
    """After a rejection the requested party may consult again, and proceed once accepted."""
    play = Play()
    play.send("written_request")
    play.send("consultation")
    play.send("conditions_rejected")
    play.send("consultation", conditions=["Only the patrol schedules."])
    play.send("conditions_accepted")
    assert play.state == "in_execution"
    assert play.violations == []


def test_full_refusal_is_terminal() -> None:
    """A full refusal ends the case."""
    play = Play()
    play.send("written_request")
    play.send("consultation")
    play.send("conditions_rejected")
    play.send("refusal")
    assert play.state == "refused"


def test_partial_refusal_executes_the_rest() -> None:
    """Art. 5.1 "in part": the rest goes into execution and may complete with partial results."""
    play = Play()
    play.send("written_request")
    play.send("consultation")
    play.send("conditions_rejected")
    play.send("refusal", scope="partial", refused_parts=["liaison officer"])
    assert play.state == "in_execution"
    assert play.case is not None
    assert play.case.refused_parts == ("liaison officer",)
    play.send("results", partial=True)
    assert play.state == "completed"
    assert play.violations == []


def test_information_round_trip() -> None:
    """Art. 6.2: information requested suspends execution until it is given."""
    play = Play()
    play.send("written_request")
    play.send("acceptance")
    play.send("information_request")
    assert play.state == "awaiting_information"
    play.send("additional_information")
    assert play.state == "in_execution"


@pytest.mark.parametrize(("proceed", "end"), [(True, "in_execution"), (False, "withdrawn")])
def test_confidentiality_decision(proceed: bool, end: str) -> None:
    """Art. 6.3: the requesting party goes ahead without confidentiality, or withdraws."""
    play = Play()
    play.send("written_request", confidential=True)
    play.send("acceptance")
    play.send("confidentiality_impossible")
    assert play.state == "awaiting_decision"
    play.send("confidentiality_decision", proceed=proceed)
    assert play.state == end


def test_impediment_records_a_delay() -> None:
    """Art. 6.1: an impediment notice keeps the case in execution and records the delay."""
    play = Play()
    play.send("written_request")
    play.send("acceptance")
    play.send("impediment_notice")
    assert play.state == "in_execution"
    assert play.case is not None
    assert play.case.impediments == 1


def test_results_complete_the_case() -> None:
    """Art. 6.4: results complete the case."""
    play = Play()
    play.send("written_request")
    play.send("acceptance")
    play.send("results")
    assert play.state == "completed"
    assert play.violations == []


def _reach(play: Play, state: str) -> None:
    paths: dict[str, list[str]] = {
        "received": ["written_request"],
        "awaiting_confirmation": ["written_request", "confirmation_request"],
        "under_consideration": ["written_request", "acknowledgement"],
        "in_consultation": ["written_request", "consultation"],
        "in_execution": ["written_request", "acceptance"],
        "awaiting_information": ["written_request", "acceptance", "information_request"],
        "awaiting_decision": ["written_request", "acceptance", "confidentiality_impossible"],
    }
    for kind in paths[state]:
        play.send(kind)
    assert play.state == state


@pytest.mark.parametrize(
    "state",
    [
        "received",
        "awaiting_confirmation",
        "under_consideration",
        "in_consultation",
        "in_execution",
        "awaiting_information",
        "awaiting_decision",
    ],
)
def test_withdrawal_from_any_open_state(state: str) -> None:
    """The requesting party may withdraw from any non-terminal state."""
    play = Play()
    _reach(play, state)
    found = play.send("withdrawal")
    assert play.state == "withdrawn"
    assert found == ()


def test_offer_declined() -> None:
    """Art. 4.1: an offer of assistance may be declined, which ends the case."""
    play = Play()
    play.send("offer")  # from beta, the would-be requested party
    assert play.state == "offered"
    play.send("offer_declined")
    assert play.state == "declined"


def test_offer_accepted_becomes_a_request() -> None:
    """Art. 4.1: accepting an offer is a request from its recipient to the offering party."""
    play = Play()
    play.send("offer")
    play.send("written_request")
    assert play.state == "received"
    assert play.case is not None
    assert (play.case.requesting, play.case.requested) == ("alpha", "beta")
    assert play.violations == []


def test_offer_withdrawn_by_the_offering_party() -> None:
    """The offering party may take its offer back; the recipient cannot withdraw it."""
    play = Play()
    play.send("offer")
    found = play.send("withdrawal", sender="alpha", recipient="beta")
    assert [v.rule_id for v in found] == ["wrong-party"]
    play.send("withdrawal", sender="beta", recipient="alpha")
    assert play.state == "withdrawn"


TERMINAL_PATHS = {
    "completed": ["written_request", "acceptance", "results"],
    "refused": ["written_request", "refusal"],
    "withdrawn": ["written_request", "withdrawal"],
    "declined": ["offer", "offer_declined"],
}


@pytest.mark.parametrize("terminal", sorted(TERMINAL_PATHS))
@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
def test_terminal_states_are_final(terminal: str, kind: str) -> None:
    """After a terminal state no message changes the state; all but Art. 7 ones are violations."""
    play = Play()
    for step in TERMINAL_PATHS[terminal]:
        play.send(step)
    before = play.violations[:]
    if kind == "written_confirmation":
        play.send(kind, confirms="m1")
    else:
        play.send(kind)
    assert play.state == terminal
    new = play.violations[len(before) :]
    article_7 = kind in {"transfer_consent_request", "transfer_consent", "results_transfer"}
    if not (terminal == "completed" and article_7):
        assert "case-closed" in [v.rule_id for v in new]


def test_second_request_in_an_open_case_is_not_allowed() -> None:
    """A case has one request: another one in the same case is a state violation."""
    play = Play()
    play.send("written_request")
    found = play.send("written_request")
    assert [v.rule_id for v in found] == ["not-allowed-in-state"]


def test_messages_naming_strangers_are_refused_as_wrong_party() -> None:
    """A message to or from a party outside the exercise changes nothing."""
    play = Play()
    play.send("written_request")
    found = play.send("acceptance", sender="beta", recipient="zeta")
    assert [v.rule_id for v in found] == ["wrong-party"]
    assert "zeta" in found[0].detail
    assert play.state == "received"


OPEN_PATHS = {
    "received": ["written_request"],
    "executing": ["written_request", "acceptance"],
    "awaiting_information": ["written_request", "information_request"],
    "offered": ["offer"],
    **TERMINAL_PATHS,
}


@pytest.mark.parametrize("path", sorted(OPEN_PATHS))
@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
def test_a_party_outside_a_case_learns_nothing_of_it_and_changes_nothing(
    path: str, kind: str
) -> None:
    """Art. 6.3, 7.1: gamma, a party of the exercise but not of alpha and beta's case, writes
    into it (every kind, at every state), and beta writes to gamma in it.

    The verdict each reads is that it is no party to the case: not the case's parties, nor its
    state (before: "acceptance in this case goes from beta to alpha", "... while the case is
    executing", "... after the case was refused"), and the case is as it was, messages and all.
    """
    play = Play()
    for step in OPEN_PATHS[path]:
        play.send(step)
    before = play.case
    assert before is not None
    extra: dict[str, Any] = {"confirms": "m1"} if kind == "written_confirmation" else {}
    found = play.send(kind, sender="gamma", recipient="beta", **extra)
    assert [(v.rule_id, v.detail) for v in found] == [
        ("wrong-party", "gamma is not a party to case case-1")
    ]
    assert play.case == before
    if kind != "results_transfer":
        found = play.send(kind, sender="beta", recipient="gamma", **extra)
        assert [(v.rule_id, v.detail) for v in found] == [
            ("wrong-party", "gamma is not a party to case case-1")
        ]
        assert play.case == before
