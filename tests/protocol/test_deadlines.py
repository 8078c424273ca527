"""Deadlines as data: what a case owes, by when, and when it is overdue."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from simulator.protocol import AgreementSettings, DeadlineKind, deadlines, overdue
from tests.protocol.builders import SETTINGS, Play


def test_oral_request_owes_written_confirmation_in_three_days() -> None:
    """Art. 4.2: the requesting party owes written confirmation 3 days after an oral request."""
    play = Play()
    play.send("oral_request")
    assert play.case is not None
    (due,) = deadlines(play.case, SETTINGS)
    assert due.kind is DeadlineKind.WRITTEN_CONFIRMATION
    assert due.owed_by == "alpha"
    assert due.article == "4.2"
    assert due.due_at == play.at + timedelta(days=3)
    assert not due.overdue(play.at + timedelta(days=3))
    assert due.overdue(play.at + timedelta(days=3, microseconds=1))


def test_accepted_case_owes_results_as_soon_as_possible() -> None:
    """Art. 6.4: execution owes results within the exercise's "as soon as possible"."""
    play = Play()
    play.send("written_request")
    play.send("acceptance")
    assert play.case is not None
    settings = AgreementSettings(as_soon_as_possible=timedelta(days=2))
    (due,) = deadlines(play.case, settings)
    assert due.kind is DeadlineKind.RESULTS
    assert due.owed_by == "beta"
    assert due.due_at == play.at + timedelta(days=2)
    assert overdue(play.case, play.at + timedelta(days=1), settings) == ()
    assert overdue(play.case, play.at + timedelta(days=3), settings) == (due,)


@pytest.mark.parametrize(
    ("ask", "answer"),
    [
        ("information_request", "additional_information"),
        ("confidentiality_impossible", "confidentiality_decision"),
        ("confirmation_request", "additional_confirmation"),
    ],
)
def test_as_soon_as_possible_stands_still_while_execution_waits_on_the_requesting_party(
    ask: str, answer: str
) -> None:
    """Art. 6.4 (10 days here): beta executes for 4 days, asks alpha (information, a decision
    on confidentiality, a confirmation), alpha answers 9 days later, and beta sends results 5
    days after that: 9 days of beta's own, not late. Before, the 9 days alpha took counted
    against beta, and its results were reported overdue (`results-overdue`, Art. 6.4).

    Sent 7 days after the answer instead (11 of its own), they are late, and the finding says
    what was not counted. While it waits, the case owes no results (no deadline is open)."""
    on_time, late = Play(), Play()
    for play in (on_time, late):
        play.send("written_request")
        play.send("acceptance")
        started = play.at
        play.send(ask, after=timedelta(days=4))
        assert play.case is not None
        assert deadlines(play.case, SETTINGS) == ()
        assert play.wait(timedelta(days=8)) == ()
        play.send(answer, after=timedelta(days=1))
        assert play.state == "in_execution"
        (due,) = deadlines(play.case, SETTINGS)
        assert due.due_at == started + timedelta(days=10 + 9)
    assert on_time.wait(timedelta(days=5)) == ()
    on_time.send("results")
    assert "results-overdue" not in on_time.rule_ids()
    (found,) = late.wait(timedelta(days=7))
    assert found.rule_id == "results-overdue"
    assert "not counting 9 days, 0:00:00 spent waiting on the requesting party" in found.detail


def test_closed_or_undecided_cases_owe_nothing() -> None:
    """A case under consideration or completed has no open deadline."""
    play = Play()
    play.send("written_request")
    assert play.case is not None
    assert deadlines(play.case, SETTINGS) == ()
    play.send("acceptance")
    play.send("results")
    assert deadlines(play.case, SETTINGS) == ()


def test_settings_refuse_non_positive_windows() -> None:
    """A "promptly" of zero or less is not a setting an exercise can have."""
    with pytest.raises(ValidationError, match="promptly"):
        AgreementSettings(promptly=timedelta(0))
