"""The plays issue 14 found misjudged, judged against the agreement's text.

Each play the text allows now passes; each breach the text does name still
fires, with its article. docs/procedure.md gives trainers the same choices.
"""

from datetime import timedelta

from simulator.protocol import deadlines
from tests.protocol.builders import SETTINGS, Play

THREE_DAYS = timedelta(days=3)


def _articles(play: Play) -> list[tuple[str, str]]:
    return [(v.rule_id, v.article) for v in play.violations]


# --- Art. 4.2: urgent oral requests -------------------------------------------------


def test_urgent_oral_request_is_acted_on_before_its_confirmation() -> None:
    """Acknowledging, consulting, accepting, executing and results may all precede the writing."""
    play = Play()
    play.send("oral_request")
    play.send("acknowledgement")
    play.send("consultation")
    play.send("conditions_accepted")
    play.send("information_request")
    play.send("additional_information")
    play.send("results")
    assert play.state == "completed"
    play.send("written_confirmation", after=timedelta(days=1))
    assert play.state == "completed"
    assert play.case is not None
    assert play.case.confirmation == "given"
    assert play.violations == []


def test_oral_request_unconfirmed_in_three_days_lapses_whatever_its_stage() -> None:
    """The 3 days run alongside the case: past them an open case lapses, under Art. 4.2."""
    play = Play()
    play.send("oral_request", after=timedelta(0))
    play.send("acceptance")
    assert play.state == "in_execution"
    play.wait(THREE_DAYS - timedelta(hours=1))  # exactly 3 days after the oral request
    assert play.violations == []
    play.wait(timedelta(seconds=1))
    assert _articles(play) == [("oral-request-not-confirmed", "4.2")]
    assert play.state == "lapsed"


def test_confirmation_later_than_three_days_still_fires_art_4_2() -> None:
    """A confirmation sent after the 3 days finds the case lapsed: the Art. 4.2 rule fires."""
    play = Play()
    play.send("oral_request")
    play.send("acknowledgement")
    found = play.send("written_confirmation", after=THREE_DAYS)
    assert [(v.rule_id, v.article) for v in found] == [
        ("oral-request-not-confirmed", "4.2"),
        ("case-closed", "—"),
    ]
    assert play.state == "lapsed"


def test_completed_case_still_owes_its_confirmation() -> None:
    """Results do not discharge Art. 4.2: the 3 days passing still fire it; the case stays done."""
    play = Play()
    play.send("oral_request", after=timedelta(0))
    play.send("acceptance")
    play.send("results")
    assert play.case is not None
    due = deadlines(play.case, SETTINGS)
    assert [d.kind for d in due] == ["written_confirmation"]
    assert play.case.oral_at is not None
    assert due[0].due_at == play.case.oral_at + THREE_DAYS
    play.wait(THREE_DAYS)
    assert _articles(play) == [("oral-request-not-confirmed", "4.2")]
    assert play.state == "completed"
    # Late, and already reported: the confirmation is taken without a second finding.
    assert play.send("written_confirmation") == ()
    assert play.case.confirmation == "given"
    assert deadlines(play.case, SETTINGS) == ()


def test_withdrawn_oral_request_owes_no_confirmation() -> None:
    """A request withdrawn is not there to confirm: the 3 days stop running."""
    play = Play()
    play.send("oral_request")
    play.send("withdrawal")
    assert play.case is not None
    assert deadlines(play.case, SETTINGS) == ()
    play.wait(timedelta(days=5))
    assert play.violations == []


def test_oral_request_in_a_case_not_urgent_is_still_a_breach() -> None:
    """Acting on it is no longer the point; asking orally without urgency still is (Art. 4.2)."""
    play = Play()
    play.send("oral_request", urgent=False)
    play.send("acceptance")
    assert _articles(play) == [("oral-request-not-urgent", "4.2")]
