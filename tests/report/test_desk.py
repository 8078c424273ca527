"""The report tells the whole story: the controller's notes and actions, a fork's lineage,
and answers that were late or not owed kept apart from answers never given."""

import asyncio
import json
import re
from pathlib import Path

import pytest

from simulator.letters import read_letters
from simulator.lineage import Lineage
from simulator.logfiles import open_log
from simulator.projections.summary import summarize
from simulator.report import ReportData, read_report, save_report
from simulator.report.model import Answer
from tests.report.drill import DESK_FORK_POSITION, PARENT, write_desk

FORK = Lineage(parent=PARENT, position=DESK_FORK_POSITION, generation=1)
FORK_SENTENCE = f"a fork (generation 1) of {PARENT}, from its first {DESK_FORK_POSITION} events"


@pytest.fixture
def desk_log(tmp_path: Path) -> Path:
    path = tmp_path / "desk.db"
    asyncio.run(write_desk(path))
    return path


@pytest.fixture
def desk(desk_log: Path) -> ReportData:
    return asyncio.run(read_report(desk_log))


def test_the_controllers_notes_and_actions_are_in_the_report(desk: ReportData) -> None:
    """Every note and action in log order, each tied to the case it concerns."""
    assert [(r.position, r.kind, r.command, r.text, r.case) for r in desk.controller] == [
        (4, "note", None, "Beta accepted case-1 without acknowledging it.", "case-1"),
        (5, "action", "pause", "paused the clock", None),
        (6, "action", "resume", "resumed the clock", None),
        (7, "action", "inject", "sent inject lorry by hand", "case-2"),
        # Names no case: it goes with the case of the last message before it.
        (9, "note", None, "Good pace so far.", "case-2"),
    ]
    assert desk.controller[1].answer == "paused at 2026-03-02 14:00"
    cases = {c.case_id: c for c in desk.cases}
    assert [r.position for r in cases["case-1"].controller] == [4]
    assert [r.position for r in cases["case-2"].controller] == [7, 9]
    assert (desk.summary.notes, desk.summary.controller_actions) == (2, 3)
    gists = {row.position: (row.case, row.gist) for row in desk.timeline}
    assert gists[4] == ("case-1", "Beta accepted case-1 without acknowledging it.")
    assert gists[7] == ("case-2", "the controller sent inject lorry by hand")


def test_a_fork_says_so_in_every_rendering(desk: ReportData, tmp_path: Path) -> None:
    """The summary, report.json, the page and the Markdown name the parent, position, generation."""
    assert desk.summary.lineage == FORK
    files = save_report(desk, tmp_path / "out")
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert data["summary"]["lineage"] == {"parent": PARENT, "position": 4, "generation": 1}
    assert FORK_SENTENCE in files.html.read_text(encoding="utf-8")
    assert FORK_SENTENCE in files.markdown.read_text(encoding="utf-8")


def test_the_page_and_the_markdown_show_notes_and_actions(desk: ReportData, tmp_path: Path) -> None:
    """Both renderings list the notes and actions, in their section and under their case."""
    files = save_report(desk, tmp_path / "out")
    page = files.html.read_text(encoding="utf-8")
    section = page.split('<section id="controller">', 1)[1].split("</section>", 1)[0]
    assert "Beta accepted case-1 without acknowledging it." in section
    assert "sent inject lorry by hand" in section
    figure = page.split('<figure id="case-case-2"', 1)[1].split("</ul>", 1)[0]
    assert "the controller sent inject lorry by hand" in figure
    assert "note: Good pace so far." in figure
    text = files.markdown.read_text(encoding="utf-8")
    assert "Note over P0,P1: ✎ controller sent inject lorry by hand @ 2026-03-02 15:00" in text
    assert "| 5 | 2026-03-02 14:00 | action | paused the clock |  | paused at" in text


def test_late_and_not_owed_answers_are_not_never_answered(desk: ReportData) -> None:
    """A confirmation after the lapse is late; an acknowledgement after acceptance not owed."""
    times = {c.case_id: c.times for c in desk.cases}
    assert times["case-2"].written_confirmation == Answer(
        status="answered", after=4 * 86400, late=True
    )
    assert times["case-1"].acknowledgement == Answer(
        status="not_owed", after=None, note="went straight to acceptance"
    )
    measures = {m.name: m for m in desk.response_times.measures}
    confirmation = measures["written_confirmation"]
    assert (confirmation.over_reference, confirmation.unanswered) == (["case-2"], [])
    assert measures["acknowledgement"].unanswered == []
    assert measures["acknowledgement"].not_owed == ["case-1", "case-2"]


async def test_the_run_summary_names_lineage_and_the_controllers_work(desk_log: Path) -> None:
    """The summary `run` and `fork` print (and --json-summary writes) carries both."""
    async with open_log(desk_log, read_only=True) as store:
        summary = await summarize(store, location=str(desk_log))
    assert summary.lineage == FORK
    assert (summary.controller_notes, summary.controller_actions) == (2, 3)
    data = summary.as_json()
    assert data["lineage"]["parent"] == PARENT
    lapse = next(v for v in summary.violations if v.rule == "oral-request-not-confirmed")
    assert lapse.what == (
        "the oral request of 2026-03-02 15:00 was not confirmed in writing within 3 days; "
        "the case lapsed"
    )


def test_the_report_links_every_letter_written_beside_it(desk_log: Path, tmp_path: Path) -> None:
    """With the letters, each written message's row links its letter, which is there, and the
    same log gives the same letters byte for byte."""
    report = asyncio.run(read_report(desk_log))
    letters = asyncio.run(read_letters(desk_log))
    files = save_report(report, tmp_path / "a", letters=letters)
    page = files.html.read_text(encoding="utf-8")
    linked = set(re.findall(r'href="(letters/[^"]+)"', page))
    written = {row.letter for row in report.timeline if row.letter}
    # Every message but the oral request of case-2 went in writing.
    assert [row.type for row in report.timeline if row.message_id and not row.letter] == [
        "oral_request"
    ]
    assert linked == written
    assert len(written) == len(letters) == 4
    assert all((tmp_path / "a" / link).is_file() for link in linked)
    markdown = files.markdown.read_text(encoding="utf-8")
    assert all(f"]({link})" in markdown for link in written)
    again = save_report(report, tmp_path / "b", letters=asyncio.run(read_letters(desk_log)))
    for link in written:
        assert (tmp_path / "a" / link).read_bytes() == (again.html.parent / link).read_bytes()
