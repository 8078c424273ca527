"""report.md: the same sections as the page, readable as plain text."""

import asyncio
from pathlib import Path

from simulator.report import ReportData, read_report, render_markdown
from tests.report.drill import many_cases, write_drill

HEADINGS = [
    "## 1. Summary",
    "## 2. Cases",
    "## 3. The controller's notes and actions",
    "## 4. Response times",
    "## 5. Violations",
    "## 6. Rejections",
    "## 7. Expectations",
    "## 8. Parties",
    "## 9. Timeline",
]


def test_markdown_has_every_section_in_order(drill_report: ReportData) -> None:
    """report.md has the nine section headings, in the page's order."""
    text = render_markdown(drill_report)
    positions = [text.index(heading) for heading in HEADINGS]
    assert positions == sorted(positions)
    assert text.startswith("# After-action report: Drill of the assistance procedure\n")


def test_markdown_sections_carry_the_drill(drill_report: ReportData) -> None:
    """Each section shows the drill: diagrams, times, articles, rejection, note, parties, events."""
    text = render_markdown(drill_report)
    assert text.count("```mermaid") == 4
    assert "P0->>P1: written request @ 2026-03-02 11:00, pos 2" in text
    assert (
        "Note over P0,P1: deadline passed @ 2026-03-06 10:00 ⚠ oral-request-not-confirmed" in text
    )
    assert "| Acknowledgement | request | 1 | 4h | 4h |" in text
    # case-3 was refused straight away: its acknowledgement was not owed.
    assert "| — | — | — | case-2, case-3 |" in text
    assert "| case-3 |  | not owed: went straight to refusal |" in text
    assert "### Art. 4.2 — 1 violation" in text
    assert "### no article (procedure) — 1 violation" in text
    assert "| 8 | 2026-03-05 09:00 | beta |  | not JSON" in text
    assert "no scenario, so no expectations were scored" in text
    assert "| alpha | 3 | 5 | 2 | 1 | 3 | 0 | 1 | 4h |" in text
    assert "| 12 | 2026-03-08 15:00 |  | exercise ended |" in text
    # The umpire's sentences in words: no message id, ISO time or snake_case state.
    assert "the oral request of 2026-03-03 10:00 was not confirmed in writing" in text
    assert "alpha.4" not in text
    assert "+00:00" not in text


def test_markdown_table_cells_cannot_break_rows(drill_report: ReportData) -> None:
    """Every table row of report.md has as many cells as its header."""
    lines = render_markdown(drill_report).splitlines()
    header_cells = 0
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("|") and following.startswith("|---"):
            header_cells = line.count(" | ") + 1
        elif line.startswith("|") and not line.startswith("|---"):
            assert line.replace("\\|", "").count(" | ") + 1 == header_cells, line


def test_many_cases_get_diagrams_for_the_first_and_a_table_for_the_rest(tmp_path: Path) -> None:
    """With more cases than charted, the first get diagrams and the others one table row each."""
    path = tmp_path / "many.db"
    asyncio.run(write_drill(path, many_cases(12), with_extras=False))
    report = asyncio.run(read_report(path))
    text = render_markdown(report, charted_cases=5)
    assert text.count("```mermaid") == 5
    assert "### The other 7 cases" in text
    assert "| case-012 | alpha → beta | in execution | 3 | 0 |" in text


def test_words_from_a_scenario_or_a_note_are_shown_never_read_as_markdown_or_html(
    drill_report: ReportData,
) -> None:
    """A party's name, a title or a note holding `<script>`, `**`, `[link](…)` or `#` had
    gone into report.md as is: rendered, it ran the script and made links and headings."""
    summary = drill_report.summary.model_copy(
        update={
            "title": "Drill <script>alert(1)</script> **bold** [x](javascript:alert(2))",
            "parties": [
                p.model_copy(update={"name": f"{p.name} <img src=x onerror=alert(3)>"})
                for p in drill_report.summary.parties
            ],
        }
    )
    hostile = drill_report.model_copy(update={"summary": summary})
    text = render_markdown(hostile)
    assert "<script" not in text
    assert "<img" not in text
    assert "[x](javascript" not in text
    assert text.startswith(
        "# After-action report: Drill &lt;script&gt;alert(1)&lt;/script&gt; \\*\\*bold\\*\\* "
        "\\[x\\](javascript:alert(2))\n"
    )
    assert "&lt;img src=x onerror=alert(3)&gt;" in text
