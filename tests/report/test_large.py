"""A large log's report: long tables paged, response points sampled, letters of charted cases only.

The limits are made small here (they are module constants) so that a few dozen
cases stand for a load run's hundred thousand.
"""

import asyncio
import gc
import json
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from simulator.report import (
    ReportData,
    charts,
    files,
    html_page,
    lettered_cases,
    markdown_page,
    read_report,
    read_report_letters,
    render_html,
    render_json,
    render_markdown,
    save_report,
)
from simulator.report.builder import collector_paused
from tests.report.drill import many_cases, write_drill


@pytest.fixture
def many(tmp_path: Path) -> tuple[Path, ReportData]:
    path = tmp_path / "many.db"
    asyncio.run(write_drill(path, many_cases(30), with_extras=False))
    return path, asyncio.run(read_report(path))


def _positions(html: str) -> list[int]:
    """The log positions in a page's timeline table, in order."""
    table = html.split('<table class="timeline">', 1)[1].split("</table>", 1)[0]
    return [int(p) for p in re.findall(r'<tr[^>]*><td class="n">(\d+)</td>', table)]


def test_a_long_timeline_shows_its_first_page_and_pages_the_rest(
    many: tuple[Path, ReportData], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every event is in exactly one page of the timeline, in log order, and each page links all."""
    _, report = many
    monkeypatch.setattr(html_page, "TABLE_PAGE_ROWS", 25)
    pages: dict[str, str] = {}

    page = render_html(report, charted_cases=2, pages=pages)

    rows = len(report.timeline)
    count = -(-rows // 25)
    assert sorted(name for name in pages if name.startswith("report-timeline-")) == sorted(
        f"report-timeline-{n}.html" for n in range(2, count + 1)
    )
    assert "report-cases-2.html" in pages  # 28 other cases
    seen = _positions(page)
    assert len(seen) == 25
    for number in range(2, count + 1):
        other = pages[f"report-timeline-{number}.html"]
        seen += _positions(other)
        assert f'href="report-timeline-{count}.html"' in other or number == count
        assert 'href="report.html#timeline"' in other
    assert seen == [row.position for row in report.timeline]
    assert f"{rows:,} rows, 25 a page" in page
    assert f'href="report-timeline-{count}.html"' in page


def test_the_markdown_shows_a_long_tables_first_page_and_says_where_the_rest_is(
    many: tuple[Path, ReportData], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Markdown keeps a long table's first page and names where the other rows are."""
    _, report = many
    monkeypatch.setattr(markdown_page, "TABLE_PAGE_ROWS", 10)

    text = render_markdown(report, charted_cases=2)

    timeline = text.split("## 9. Timeline", 1)[1]
    assert f"The first 10 of {len(report.timeline):,} rows" in timeline
    assert timeline.count("\n| ") == 1 + 10  # the head row and the first page
    assert "The first 10 of 28 rows" in text.split("### The other 28 cases", 1)[1]
    per_case = text.split("### Per case", 1)[1].split("## 5.", 1)[0]
    assert "The first 10 of 30 rows" in per_case
    assert per_case.count("\n| ") == 1 + 10


def test_a_short_table_is_not_paged(many: tuple[Path, ReportData]) -> None:
    """Below the page size nothing changes: one table, no pages."""
    _, report = many
    pages: dict[str, str] = {}
    render_html(report, pages=pages)
    assert pages == {}


def test_save_report_writes_the_pages_beside_the_report(
    many: tuple[Path, ReportData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages of long tables are files beside report.html, named as it links them."""
    _, report = many
    monkeypatch.setattr(html_page, "TABLE_PAGE_ROWS", 25)

    written = save_report(report, tmp_path / "out", charted_cases=2)

    assert written.pages
    for path in written.pages:
        assert path.parent == tmp_path / "out"
        assert f'href="{path.name}"' in written.html.read_text(encoding="utf-8")


def test_past_the_letter_limit_only_the_charted_cases_letters_are_written_and_linked(
    many: tuple[Path, ReportData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log with more written messages than MAX_LETTERS gets its charted cases' letters
    only, and its pages link no letter that is not there."""
    path, report = many
    assert lettered_cases(report, 3) is None
    monkeypatch.setattr(files, "MAX_LETTERS", 5)

    cases = lettered_cases(report, 3)
    letters = asyncio.run(read_report_letters(path, cases))
    written = save_report(report, tmp_path / "out", charted_cases=3, letters=letters)

    assert cases == {c.case_id for c in report.cases[:3]}
    assert letters
    assert {letter.case_id for letter in letters} == cases
    on_disk = {p.name for p in (tmp_path / "out" / "letters").glob("0*.html")}
    assert on_disk == {f"{letter.stem}.html" for letter in letters}
    for page in (written.html, written.markdown):
        linked = set(re.findall(r"letters/(0[^\")]+\.html)", page.read_text(encoding="utf-8")))
        assert linked
        assert linked <= on_disk


def test_all_letters_are_read_as_the_letters_command_reads_them(
    many: tuple[Path, ReportData],
) -> None:
    """Under the limit the report's letters are every letter of the log."""
    from simulator.letters import read_letters  # noqa: PLC0415 - only this test compares

    path, _ = many
    assert asyncio.run(read_report_letters(path, None)) == asyncio.run(read_letters(path))


def test_a_row_of_the_response_chart_draws_a_sample_past_max_points(
    many: tuple[Path, ReportData], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_POINTS a row's points are a sample, so the chart draws fewer."""
    _, report = many
    full = charts.response_chart(report.cases, report.response_times)
    monkeypatch.setattr(charts, "MAX_POINTS", 3)
    sampled = charts.response_chart(report.cases, report.response_times)

    assert full is not None
    assert sampled is not None
    assert sampled.count("<circle ") < full.count("<circle ")


def test_the_sample_is_spread_in_order_and_keeps_the_slowest() -> None:
    """At most MAX_POINTS points, in their order, the slowest among them; fewer are all kept."""
    values = [(float((i * 37) % 1000), i % 3 == 0) for i in range(1000)]

    shown = charts.sample_points(values)

    assert len(shown) <= charts.MAX_POINTS
    assert max(values) in shown
    indices = [values.index(point) for point in shown]
    assert indices == sorted(indices)
    assert charts.sample_points(values[:10]) == values[:10]


def test_report_json_is_the_text_json_dumps_writes(many: tuple[Path, ReportData]) -> None:
    """render_json (pydantic-core) gives the text json.dumps(indent=2) gives."""
    _, report = many
    expected = json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n"
    assert render_json(report) == expected


def _float_fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    """The fields of a model and the models it holds whose type names float (or Any)."""
    found = []
    seen.add(model)
    for name, field in model.model_fields.items():
        annotation = field.annotation
        text = repr(annotation)
        if "float" in text or "Any" in text:
            found.append(f"{model.__name__}.{name}")
        for inner in (annotation, *typing.get_args(annotation)):
            for arg in (inner, *typing.get_args(inner)):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen:
                    found += _float_fields(arg, seen)
    return found


def test_the_report_model_holds_no_floats() -> None:
    """No field of the report is a float, which pydantic-core would write otherwise than json."""
    assert _float_fields(ReportData, set()) == []


def test_a_reports_repr_is_short(many: tuple[Path, ReportData]) -> None:
    """repr() of a report names it and its size (asyncio.run takes it of what it returns)."""
    _, report = many
    assert repr(report) == (
        f"ReportData(exercise={report.summary.exercise!r}, cases=30, "
        f"timeline={len(report.timeline)})"
    )


def test_building_a_report_leaves_the_cycle_collector_as_it_found_it(
    many: tuple[Path, ReportData],
) -> None:
    """The collector is paused while a report is built, and on again after (or off if it was)."""
    path, _ = many
    assert gc.isenabled()
    asyncio.run(read_report(path))
    assert gc.isenabled()
    gc.disable()
    try:
        asyncio.run(read_report(path))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_comes_back_when_the_block_fails() -> None:
    """An error inside the paused block still turns the collector back on."""
    seen: list[bool] = []

    def fail() -> None:
        with collector_paused():
            seen.append(gc.isenabled())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert seen == [False]
    assert gc.isenabled()


def test_a_reports_letters_stop_where_its_reading_of_the_log_stopped(
    many: tuple[Path, ReportData],
) -> None:
    """A log still being written had more letters by the time they were read than the
    report it goes with knew of (139 letters for 147 events, three of events past them)."""
    path, _ = many
    every = asyncio.run(read_report_letters(path, None))
    middle = every[len(every) // 2].position
    cut = asyncio.run(read_report_letters(path, None, until=middle))
    assert cut == [letter for letter in every if letter.position <= middle]
    assert len(cut) < len(every)


def test_a_report_written_again_into_its_directory_keeps_only_its_own_letters(
    many: tuple[Path, ReportData], tmp_path: Path
) -> None:
    """The first report wrote every letter; the second, of three cases, had left the rest
    beside its own (963 letters on disk, 29 listed). Files not named as letters stay."""
    path, report = many
    out = tmp_path / "out"
    every = asyncio.run(read_report_letters(path, None))
    save_report(report, out, letters=every)
    kept = out / "letters" / "notes.txt"
    kept.write_text("mine", encoding="utf-8")
    cases = {c.case_id for c in report.cases[:3]}
    some = asyncio.run(read_report_letters(path, cases))
    assert 0 < len(some) < len(every)
    save_report(report, out, letters=some)
    on_disk = {p.name for p in (out / "letters").glob("0*.html")}
    assert on_disk == {f"{letter.stem}.html" for letter in some}
    assert kept.read_text(encoding="utf-8") == "mine"
