"""report.html as a file: self-contained, with a chart per charted case and tables for the rest."""

import asyncio
import re
from pathlib import Path

from simulator.report import ReportData, read_report, render_html
from tests.report.drill import many_cases, write_drill


def test_page_fetches_nothing_from_elsewhere(drill_report: ReportData) -> None:
    """The page has no scripts, links, external images, fonts or URLs beyond its own anchors."""
    page = render_html(drill_report)
    assert "<script" not in page
    assert "<link" not in page
    assert "<img" not in page
    # Charts refer to their own clip paths and markers, nothing else.
    assert re.findall(r"url\((?!#)", page) == []
    assert "@import" not in page
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert hrefs
    assert all(h.startswith("#") for h in hrefs), [h for h in hrefs if not h.startswith("#")]


def test_page_inlines_one_svg_chart_per_case_and_one_for_response_times(
    drill_report: ReportData,
) -> None:
    """Four cases give four sequence charts, plus the response-time chart, all inline SVG."""
    page = render_html(drill_report)
    assert page.count('<figure id="case-') == 4
    assert page.count("<svg ") == 5
    assert page.count('role="img"') == 5
    # Each chart's ids carry its own prefix, so no two inlined charts share one.
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_page_marks_violations_and_rejections(drill_report: ReportData) -> None:
    """Faulty arrows, finding rows and the rejected submission are shown in the page."""
    page = render_html(drill_report)
    # One rule a line under the arrow, so the label fits however many rules there are.
    assert "⚠ refusal-without-reasons" in page
    assert "⚠ refusal-without-consultation" in page
    assert '<span class="sev warning">warning</span>' in page
    assert "not JSON: Expecting property name" in page
    assert "no scenario, so no expectations were scored" in page


def test_many_cases_chart_the_first_and_tabulate_the_rest(tmp_path: Path) -> None:
    """With 30 cases and 10 charted, the page has 10 charts and a 20-row table of the others."""
    path = tmp_path / "many.db"
    asyncio.run(write_drill(path, many_cases(30), with_extras=False))
    report = asyncio.run(read_report(path))
    page = render_html(report, charted_cases=10)
    assert page.count('<figure id="case-') == 10
    assert "<h3>The other 20 cases</h3>" in page
    others = page.split("<h3>The other 20 cases</h3>", 1)[1].split("</table>", 1)[0]
    assert others.count("<tr>") + others.count("<tr class=") == 21
    smaller = render_html(report, charted_cases=2)
    assert len(smaller) < len(page)


def test_a_titles_right_to_left_override_stays_inside_the_title(drill_report: ReportData) -> None:
    """U+202E in a title had reversed the exercise id, seed and dates after it in the header."""
    summary = drill_report.summary.model_copy(update={"title": "Title \u202eREVERSED"})
    page = render_html(drill_report.model_copy(update={"summary": summary}))
    assert '<p class="sub"><bdi>Title \u202eREVERSED</bdi> · exercise ' in page
